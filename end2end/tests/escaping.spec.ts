// Text from the repository (commit subjects, file contents) is shown as
// text: never parsed as HTML, never run.

import { test, expect, api, card, dialog, headOf, openPage, pushToMain } from "./fixtures";

const SUBJECT = "<img src=x onerror=alert(1)>";
const FILE_LINE = "<script>alert(2)</script><img src=x onerror=alert(3)>";

test("a commit subject with HTML in it shows as literal text in the promote preview", async ({ page, request }) => {
  const alerts: string[] = [];
  page.on("dialog", (d) => {
    alerts.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });

  // A change whose diff carries markup, then (on top, so main's card shows it)
  // a commit with main's tree whose subject is markup, both pushed straight to
  // the remote with git plumbing.
  const markupFile = `docs/markup-${Date.now()}.md`;
  const withDiff = pushToMain("docs: a page with markup in it", { path: markupFile, content: `${FILE_LINE}\n` });
  const evil = pushToMain(SUBJECT, null);
  expect(headOf("main")).toBe(evil);
  // The server fetches every second by itself.
  await expect.poll(async () => (await api("promoter").environment("main")).head?.id, { timeout: 5_000 }).toBe(evil);

  // The server-rendered HTML has the subject escaped (and only escaped).
  const html = await (await request.get("/?promote=qa")).text();
  expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
  expect(html.toLowerCase()).not.toContain("<img src=x");
  expect(html).not.toContain("<script>alert(2)");

  await openPage(page, "/?promote=qa");
  const preview = dialog(page).locator('section[data-preview="qa"]');
  const subject = preview.locator(`li[data-commit="${evil}"]`);
  await expect(subject).toContainText(SUBJECT);
  await expect(preview.locator(`li[data-commit="${withDiff}"]`)).toContainText("docs: a page with markup in it");
  // The diff shows the file's markup as text too.
  const file = preview.locator("details", { hasText: markupFile });
  await expect(file).toBeVisible();
  await file.locator("summary").click();
  await expect(file.locator("pre")).toContainText(`+${FILE_LINE}`);
  await expect(card(page, "main")).toContainText(SUBJECT);

  // Nothing was parsed or run.
  await expect(page.locator("img[src=x]")).toHaveCount(0);
  expect(await page.locator("script").evaluateAll((s) => s.filter((e) => e.textContent?.trim() === "alert(2)").length)).toBe(0);
  expect(alerts).toEqual([]);
});
