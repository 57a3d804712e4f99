// The Audit page: an auditor filters the log by environment and time,
// exports the filtered view as CSV (the API's rows), and sees a row edited
// in the database as the place where the chain breaks.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  test,
  expect,
  BASE_URL,
  DEMO_DIR,
  api,
  expectNoSeriousViolations,
  freshQaHead,
  openPage,
} from "./fixtures";

const DATABASE = path.join(DEMO_DIR, "data", "envline.sqlite");

/** Runs one statement on the server's database, as someone with the file could. */
function sql(statement: string): string {
  return execFileSync("sqlite3", [DATABASE, statement], { encoding: "utf8" }).trim();
}

test("an auditor filters by environment and time and exports the rows the API gives", async ({ page }) => {
  // Something recent to find: a promotion of qa.
  await freshQaHead("audit");
  const from = new Date(Date.now() - 60 * 60 * 1000).toISOString().slice(0, 16);
  await openPage(page, "/audit");
  await page.getByLabel("Environment").selectOption("qa");
  await page.getByLabel("From (UTC)").fill(from);
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/environment=qa/);
  const rows = page.getByTestId("audit").locator("tbody tr");
  await expect(rows.first()).toBeVisible();
  for (const env of await rows.locator("td:nth-child(5)").allTextContents()) expect(env).toBe("qa");
  // The page follows the log live: another promotion of qa shows up.
  const shown = await rows.count();
  await freshQaHead("audit, live");
  await expect.poll(() => rows.count()).toBeGreaterThan(shown);

  // The CSV download is the filtered view; its rows are the API's.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "CSV" }).click()]);
  const csv = fs.readFileSync(await download.path(), "utf8");
  const lines = csv.trim().split("\n");
  expect(lines[0]).toBe("id,at,actor,action,environment,old,new,reason,details,hash");
  const fromApi = await (
    await fetch(`${BASE_URL}/api/v1/audit?environment=qa&since=${encodeURIComponent(from)}`, {
      headers: { Authorization: `Bearer ${api("promoter").who.token}` },
    })
  ).json();
  const ids = lines.slice(1).map((l) => Number(l.split(",")[0]));
  expect(ids).toEqual(fromApi.events.map((e: { id: number }) => e.id));
  expect(ids.length).toBe(await rows.count());
  await expectNoSeriousViolations(page, "the audit log filtered");
});

test("a row edited in the database shows as the place where the chain breaks", async ({ page }) => {
  await openPage(page, "/audit");
  await page.getByRole("button", { name: "Check the chain" }).click();
  await expect(page.getByTestId("chain")).toHaveAttribute("data-intact", "true");

  // Someone with the database file drops the append-only trigger and
  // rewrites the reason of an event.
  const APPEND_ONLY =
    "CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";
  const [id, reason] = sql("SELECT id, reason FROM audit_events ORDER BY id DESC LIMIT 1 OFFSET 3").split("|");
  const edit = (text: string) =>
    sql(
      `BEGIN; DROP TRIGGER audit_events_append_only_update; UPDATE audit_events SET reason = '${text.replace(/'/g, "''")}' WHERE id = ${id}; ${APPEND_ONLY} COMMIT;`,
    );
  edit("nothing to see here");
  try {
    await openPage(page, "/audit");
    await page.getByRole("button", { name: "Check the chain" }).click();
    const chain = page.getByTestId("chain");
    await expect(chain).toHaveAttribute("data-intact", "false");
    await expect(chain).toHaveAttribute("data-first-broken", id);
    await expect(chain).toContainText(`The chain breaks at event ${id}.`);
    const row = page.locator(`tr[data-event="${id}"]`);
    await expect(row).toHaveAttribute("data-broken", "true");
    await expect(row).toContainText("nothing to see here");
    await expectNoSeriousViolations(page, "the audit log with a broken chain");
  } finally {
    edit(reason);
  }
  await page.getByRole("button", { name: "Check the chain" }).click();
  await expect(page.getByTestId("chain")).toHaveAttribute("data-intact", "true");
});
