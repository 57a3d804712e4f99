// The Line page: the root's history as one line with every environment on
// it where git has it, an environment off the line drawn beside it and
// realigned from the page, and paging by position.

import {
  test,
  expect,
  api,
  dialog,
  expectNoSeriousViolations,
  freshQaHead,
  headOf,
  openPage,
  pushTo,
  signIn,
} from "./fixtures";

test("every environment sits on the line where git has it; one off the line is realigned from the page", async ({ page }) => {
  const promoter = api("promoter");
  // qa's newest commit, tested there: what integration may take.
  const qaHead = await freshQaHead("line");
  await api("tester").verify("qa", qaHead);
  // Someone commits straight onto integration: it leaves the line.
  const stray = pushTo("integration", "integration: hand-edited replica count", {
    path: "envs/integration/replicas.yml",
    content: "replicas: 5\n",
  });
  await promoter.refresh();
  await expect.poll(async () => (await promoter.environment("integration")).on_line).toBe(false);

  // Each environment's badge is at the commit `git rev-parse` gives for its branch on the remote.
  const environments = (await promoter.environments()).filter((e) => !e.is_root && e.on_line);
  expect(environments.length).toBeGreaterThan(5);
  for (const env of environments) {
    await page.goto(`/line?position=${env.position}`);
    const row = page.locator(`li[data-commit="${headOf(env.branch)}"]`);
    await expect(row.locator(`[data-env-at="${env.name}"]`), env.name).toBeVisible();
  }
  // The newest commit is on top, with what it affects and where it was tested.
  await page.goto("/line");
  const line = page.getByTestId("line");
  const top = line.locator("li").first();
  await expect(top).toHaveAttribute("data-commit", headOf("main"));
  const atQa = line.locator(`li[data-commit="${qaHead}"]`);
  await expect(atQa.locator('[data-verification="qa"]')).toHaveAttribute("data-status", "passed");
  await expect(atQa).toContainText("affects ");

  // integration is drawn beside the line with its stray commit.
  await signIn(page, "promoter", "/line");
  const offLine = page.locator('[data-off-line="integration"]');
  await expect(offLine).toContainText("integration: hand-edited replica count");
  await expect(offLine.locator(`li[data-commit="${stray}"]`)).toBeVisible();
  await expectNoSeriousViolations(page, "the line with an environment off it");

  await offLine.getByRole("link", { name: "Realign…" }).click();
  await expect(page).toHaveURL(/\/line\?realign=integration$/);
  await dialog(page).locator("textarea[name=reason]").fill("back on the line after a hand edit");
  await dialog(page).getByRole("button", { name: "Realign" }).click();
  await expect(dialog(page).getByRole("status")).toContainText("integration: done");
  expect(headOf("integration"), "integration on the remote").toBe(qaHead);
  await page.keyboard.press("Escape");
  // The page follows: integration is back on the line, at qa's commit.
  await expect(page.locator('[data-off-line="integration"]')).toHaveCount(0);
  await expect(line.locator(`li[data-commit="${qaHead}"] [data-env-at="integration"]`)).toBeVisible();
});

test("the line pages by position, down to the first commit", async ({ page }) => {
  await openPage(page, "/line");
  const total = Number((await page.locator("li[data-position]").first().getAttribute("data-position"))!) + 1;
  await page.getByLabel("Go to position").fill("0");
  await page.getByRole("button", { name: "Go" }).click();
  await expect(page).toHaveURL(/\/line\?position=0$/);
  await expect(page.locator('li[data-position="0"]')).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Pages of the line" }).first()).toContainText("At the first commit");
  if (total > 100) {
    await page.getByRole("link", { name: "Newer 100" }).first().click();
    await expect(page.locator('li[data-position="100"]')).toBeVisible();
  }
  // A position that is not a number says what to give.
  await page.goto("/line?position=abc");
  await expect(page.getByRole("alert")).toContainText("is not a position");
  await page.goto(`/line?position=${total + 5}`);
  await expect(page.getByRole("alert")).toContainText("past the line's newest commit");
});
