// The page says it is hydrated (`body[data-hydrated]`) only once its buttons
// work, even when a page's own code (a split chunk) arrives late: people's
// tools and every other test act as soon as they see the mark.

import { test, expect, openPage } from "./fixtures";

test("a page whose code arrives late is marked hydrated only when its buttons work", async ({ page }) => {
  // Every split chunk (a lazy page or dialog) takes 1.5 s to arrive; the
  // main module comes at once.
  await page.route(/\/pkg\/.*\.wasm$/, async (route) => {
    if (!/\/envline(_bg)?\.wasm$/.test(route.request().url())) await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  await openPage(page, "/audit");
  await page.getByRole("button", { name: "Check the chain" }).click();
  await expect(page.getByTestId("chain")).toHaveAttribute("data-intact", "true");
});
