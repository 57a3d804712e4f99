// The Admin page: people, roles and tokens managed in the browser (a revoked
// token is refused at once), and a freeze with a time window that blocks a
// promotion in the pipeline page.

import {
  test,
  expect,
  BASE_URL,
  api,
  dialog,
  expectNoSeriousViolations,
  freshQaHead,
  reloadPage,
  signIn,
  signedInPage,
} from "./fixtures";

/** A UTC date and time as a browser's datetime-local field takes it. */
function utcField(offsetMinutes: number): string {
  return new Date(Date.now() + offsetMinutes * 60_000).toISOString().slice(0, 16);
}

async function status(token: string): Promise<number> {
  return (await fetch(`${BASE_URL}/api/v1/environments`, { headers: { Authorization: `Bearer ${token}` } })).status;
}

test("an admin adds a person, grants and removes a role, and creates a token shown once, then revokes it", async ({ page }) => {
  const name = `e2e-${Date.now()}`;
  await signIn(page, "admin", "/admin");
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel(/^Roles/).fill("tester");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await expect(page.getByRole("status")).toContainText(`${name} is added.`);
  const row = page.locator(`tr[data-person="${name}"]`);
  await expect(row.locator('li[data-role="tester"]')).toBeVisible();

  await page.getByLabel(`Role to grant ${name}`).fill("approver:prod-*");
  await row.getByRole("button", { name: "Grant" }).click();
  await expect(row.locator('li[data-role="approver:prod-*"]')).toBeVisible();
  await row.getByRole("button", { name: `Remove tester from ${name}` }).click();
  await expect(row.locator('li[data-role="tester"]')).toHaveCount(0);
  await expect(row.locator('li[data-role="approver:prod-*"]')).toBeVisible();

  await page.getByLabel("User").selectOption(name);
  await page.getByLabel("Label (where it is used)").fill("e2e-ci");
  await page.getByRole("button", { name: "Create token" }).click();
  const shown = page.getByTestId("new-token").locator("code").first();
  const token = (await shown.textContent())!.trim();
  expect(token).toMatch(/^envl_[0-9a-f]{64}$/);
  await expect(page.getByTestId("new-token"), "how to use it from a terminal").toContainText(
    `envline login --server ${new URL(BASE_URL).origin}`,
  );
  expect(await status(token)).toBe(200);
  await expect(page.getByTestId("notifications"), "no [[notify]] in the test server's configuration").toContainText(
    "No notification targets",
  );
  await expectNoSeriousViolations(page, "the admin page with a new token");
  // Shown once: a fresh look at the page does not have it.
  await reloadPage(page);
  await expect(page.getByTestId("new-token")).toHaveCount(0);
  expect(await page.content()).not.toContain(token);

  await row.locator("li[data-token]").getByRole("button", { name: /^Revoke token \d+ \(e2e-ci\)$/ }).click();
  await expect(page.getByRole("status")).toContainText("is revoked");
  expect(await status(token), "a revoked token is refused at once").toBe(401);
});

test("a freeze with a time window, placed by an admin, blocks a promotion in the page", async ({ page, browser }) => {
  await freshQaHead("freeze");
  await api("tester").verify("qa", (await api("promoter").environment("qa")).head!.id);
  await signIn(page, "admin", "/admin");
  await page.getByLabel("Environments (names or globs, comma-separated)").fill("integration");
  await page.getByLabel("Why").fill("e2e freeze: release weekend");
  await page.getByLabel("From (UTC, optional: now)").fill(utcField(-1));
  await page.getByLabel("Until (UTC, optional: until released)").fill(utcField(60));
  await page.getByRole("button", { name: "Hold", exact: true }).click();
  await expect(page.getByRole("status")).toContainText("integration held.");
  const freeze = page.locator('tr[data-environment="integration"]', { hasText: "e2e freeze: release weekend" });
  await expect(freeze).toBeVisible();
  try {
    const { context, page: promoter } = await signedInPage(browser, "promoter", "/?promote=integration");
    const preview = dialog(promoter).locator('section[data-preview="integration"]');
    const hold = preview.locator('li[data-gate="hold"]');
    await expect(hold).toHaveAttribute("data-met", "false");
    await expect(hold).toContainText("e2e freeze: release weekend");
    await expect(dialog(promoter).getByRole("button", { name: "Promote", exact: true })).toBeDisabled();
    await context.close();
  } finally {
    await freeze.getByRole("button", { name: "Release the hold on integration" }).click();
    await expect(page.locator('tr[data-environment="integration"]', { hasText: "e2e freeze" })).toHaveCount(0);
  }
});
