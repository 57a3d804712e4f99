// Without JavaScript the server renders everything there is to read: the
// cards and a promotion's preview.

import { test, expect, card, dialog, headOf, newCommitOnMain, short } from "./fixtures";

const ENVIRONMENTS = [
  "main", "qa", "integration", "loadtest",
  "staging-eu", "staging-us", "staging-asia",
  "prod-eu", "prod-us", "prod-asia",
];

test.use({ javaScriptEnabled: false });

test("without JavaScript the cards and the promote preview render on the server", async ({ page }) => {
  const candidate = await newCommitOnMain("no-js: shop-api build");
  const qaHead = headOf("qa");

  await page.goto("/");
  // Never hydrated: what shows came from the server.
  await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
  await expect(page.locator("article[data-env]")).toHaveCount(ENVIRONMENTS.length);
  for (const env of ENVIRONMENTS) {
    const head = headOf(env);
    await expect(card(page, env), env).toHaveAttribute("data-head", head);
    await expect(card(page, env).getByTestId("head")).toHaveText(short(head));
  }

  await page.goto("/?promote=qa");
  await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
  const preview = dialog(page).locator('section[data-preview="qa"]');
  await expect(preview).toBeVisible();
  await expect(preview).toContainText(`${short(qaHead)} → ${short(candidate)}`);
  await expect(preview.locator(`li[data-commit="${candidate}"]`)).toContainText("no-js: shop-api build");
  await expect(preview.locator('li[data-gate="hold"]')).toHaveAttribute("data-met", "true");
  await expect(preview.locator("details summary", { hasText: "CHANGELOG.md" })).toBeVisible();
  await expect(dialog(page).locator("textarea[name=reason]")).toBeVisible();
  await expect(dialog(page).getByRole("link", { name: "Close" })).toHaveAttribute("href", "/");
});
