// Pages are live: a change made in one browser shows in another one without
// a reload, through the server's change stream (/api/v1/events).

import { test, expect, card, dialog, headOf, newCommitOnMain, newContext, openPage, short, signedInPage } from "./fixtures";

test("a promotion in one browser shows in another within 2 s, without a reload", async ({ browser }) => {
  // Context A: someone reading the pipeline without signing in.
  const watcherContext = await newContext(browser);
  const watcher = await watcherContext.newPage();
  await openPage(watcher, "/");
  await expect(watcher.locator("body")).toHaveAttribute("data-live", "true");
  // Marks this document: a reload would lose it.
  await watcher.evaluate(() => Object.assign(window, { e2eNotReloaded: true }));

  // The build pipeline pushes to main; A sees it by itself (the server fetches every second).
  const candidate = await newCommitOnMain("live: shop-api build");
  await expect(card(watcher, "main")).toHaveAttribute("data-head", candidate);
  const qaBefore = headOf("qa");
  await expect(card(watcher, "qa")).toHaveAttribute("data-head", qaBefore);

  // Context B: a promoter promotes qa in the page.
  const promoter = await signedInPage(browser, "liveUpdater", "/?promote=qa");
  await dialog(promoter.page).locator("textarea[name=reason]").fill("live update check");
  await dialog(promoter.page).getByRole("button", { name: "Promote", exact: true }).click();
  await expect(dialog(promoter.page).locator('li[data-result="qa"]')).toHaveAttribute("data-state", "done");
  expect(headOf("qa")).toBe(candidate);

  // A's card follows within 2 s, in the same document.
  await expect(card(watcher, "qa")).toHaveAttribute("data-head", candidate, { timeout: 2_000 });
  await expect(card(watcher, "qa").getByTestId("head")).toHaveText(short(candidate));
  expect(await watcher.evaluate(() => (window as unknown as { e2eNotReloaded?: boolean }).e2eNotReloaded)).toBe(true);

  await promoter.context.close();
  await watcherContext.close();
});
