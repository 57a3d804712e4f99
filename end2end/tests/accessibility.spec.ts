// Accessibility: the whole flow with the keyboard alone, and axe-core on the
// pages and dialogs (no serious or critical violation).

import type { Page } from "@playwright/test";
import {
  PASSWORD,
  api,
  card,
  dialog,
  expectNoSeriousViolations,
  headOf,
  newCommitOnMain,
  newContext,
  openPage,
  person,
  readyForProd,
  short,
  signIn,
  type Promotion,
  test,
  expect,
} from "./fixtures";

/** Presses Tab until the element matching `selector` has the focus (at most `limit` times). */
async function tabTo(page: Page, selector: string, limit = 60): Promise<void> {
  const target = page.locator(selector);
  for (let i = 0; i < limit; i++) {
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) return;
    await page.keyboard.press("Tab");
  }
  await expect(target, `Tab reaches ${selector} within ${limit} presses`).toBeFocused({ timeout: 1 });
}

test("a dialog opened from its address gives the focus to its action when closed", async ({ page }) => {
  await newCommitOnMain("linked preview: shop-api build");
  await signIn(page, "keyboardUser", "/?promote=qa");
  await expect(dialog(page).locator('section[data-preview="qa"]')).toBeVisible();
  await page.keyboard.press("Escape");
  await expect(page.locator("dialog[open]")).toHaveCount(0);
  await expect(page.locator("#act-promote-qa")).toBeFocused();
});

test("keyboard only: sign in, open a promote preview, close it, and confirm", async ({ page }) => {
  const candidate = await newCommitOnMain("keyboard: shop-api build");
  const who = person("keyboardUser");

  await openPage(page, "/login?next=/");
  // Single sign-on's button comes first (the tests' server has both ways).
  await expect(page.getByRole("button", { name: "Sign in with Test IdP" })).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.locator("input[name=user]")).toBeFocused();
  await page.keyboard.type(who.name);
  await page.keyboard.press("Tab");
  await expect(page.locator("input[name=password]")).toBeFocused();
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("signed-in")).toHaveAttribute("data-user", who.name);
  await expect(page).toHaveURL(/\/$/);

  // To the qa card's Promote action, and open its preview.
  await tabTo(page, "#act-promote-qa");
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\/\?promote=qa$/);
  await expect(dialog(page).locator('section[data-preview="qa"]')).toContainText(short(candidate));
  // Focus moved into the modal.
  expect(await dialog(page).evaluate((d) => d.contains(document.activeElement))).toBe(true);

  // Escape closes it and gives the focus back to the opener.
  await page.keyboard.press("Escape");
  await expect(page.locator("dialog[open]")).toHaveCount(0);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator("#act-promote-qa")).toBeFocused();

  // Open it again and confirm, still with the keyboard only.
  await page.keyboard.press("Enter");
  await expect(dialog(page).locator('section[data-preview="qa"]')).toBeVisible();
  await tabTo(page, "dialog[open] textarea[name=reason]");
  await page.keyboard.type("keyboard-only promotion");
  await tabTo(page, 'dialog[open] button[type=submit]:text-is("Promote")');
  await page.keyboard.press("Enter");
  await expect(dialog(page).locator('li[data-result="qa"]')).toHaveAttribute("data-state", "done");
  expect(headOf("qa")).toBe(candidate);

  await page.keyboard.press("Escape");
  await expect(page.locator("dialog[open]")).toHaveCount(0);
  await expect(card(page, "qa")).toHaveAttribute("data-head", candidate);
});

test("axe finds no serious violation on the pages and dialogs", async ({ page, browser }) => {
  // Something to show: an open request into prod-asia (on /approvals), qa
  // behind main (a promote preview with commits and diffs), and qa with a
  // previous position (a rollback plan).
  await readyForProd("axe", ["staging-asia"]);
  await newCommitOnMain("axe: next shop-api build");
  let request: Promotion | undefined;
  try {
    request = await api("requester").promote("prod-asia", "asia release for the axe check");
    expect(request.state).toBe("awaiting_approval");

    // The sign-in page, for someone not signed in.
    const anonymous = await newContext(browser);
    const login = await anonymous.newPage();
    await openPage(login, "/login");
    await expectNoSeriousViolations(login, "/login");
    await anonymous.close();

    // A promoter and approver (not the requester) sees every action and the decision form.
    await signIn(page, "reviewer");
    await expect(card(page, "qa")).toBeVisible();
    await expectNoSeriousViolations(page, "/");

    await openPage(page, "/approvals");
    await expect(page.locator(`article[data-request="${request.id}"] button[value=approve]`)).toBeVisible();
    await expectNoSeriousViolations(page, "/approvals");

    await openPage(page, "/?promote=qa");
    await expect(dialog(page).locator('section[data-preview="qa"] li[data-commit]').first()).toBeVisible();
    await dialog(page).locator("details").first().locator("summary").click();
    await expectNoSeriousViolations(page, "the promote dialog (/?promote=qa)");

    await openPage(page, "/?rollback=qa");
    await expect(dialog(page).locator('section[data-plan="qa"]')).toBeVisible();
    await expectNoSeriousViolations(page, "the rollback dialog (/?rollback=qa)");

    await openPage(page, "/?hold=qa");
    await expect(dialog(page).getByRole("button", { name: "Hold" })).toBeVisible();
    await expectNoSeriousViolations(page, "the hold dialog (/?hold=qa)");
  } finally {
    if (request) await api("approverOne").decide(request.id, "reject", "axe check done");
  }
});
