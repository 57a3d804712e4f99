// Promotions from the pipeline page: one environment, a whole stage, and the
// refusals (gates unmet in the preview, and a hold placed between the preview
// and the confirmation).

import {
  STAGING,
  api,
  card,
  dialog,
  freshQaHead,
  headOf,
  headsOf,
  newCommitOnMain,
  readyForStaging,
  short,
  signIn,
  type Hold,
  test,
  expect,
} from "./fixtures";

test("a promoter promotes qa from the preview and sees the card move", async ({ page }) => {
  const candidate = await newCommitOnMain("promote qa: shop-api build");
  const before = headOf("qa");
  expect(before).not.toBe(candidate);

  await signIn(page, "promoter");
  const qa = card(page, "qa");
  await expect(qa).toHaveAttribute("data-head", before);
  await page.locator("#act-promote-qa").click();

  await expect(page).toHaveURL(/\/\?promote=qa$/);
  const preview = dialog(page).locator('section[data-preview="qa"]');
  await expect(preview).toContainText(`${short(before)} → ${short(candidate)}`);
  await expect(preview.locator(`li[data-commit="${candidate}"]`)).toContainText("promote qa: shop-api build");
  await expect(preview.locator('li[data-gate="hold"]')).toHaveAttribute("data-met", "true");
  await expect(preview.locator("details summary", { hasText: "CHANGELOG.md" })).toBeVisible();

  await dialog(page).locator("textarea[name=reason]").fill("qa gets the new build");
  await dialog(page).getByRole("button", { name: "Promote", exact: true }).click();

  const result = dialog(page).locator('li[data-result="qa"]');
  await expect(result).toHaveAttribute("data-state", "done");
  await expect(result).toContainText(`qa is now at ${short(candidate)}`);
  // The remote moved, and the card (behind the dialog) with it.
  expect(headOf("qa")).toBe(headOf("main"));
  expect(headOf("qa")).toBe(candidate);
  await expect(qa).toHaveAttribute("data-head", headOf("main"));
  await expect(qa.getByTestId("head")).toHaveText(short(candidate));
});

test("a stage-wide promotion moves all three staging environments", async ({ page }) => {
  const candidate = await readyForStaging("stage-wide");
  const before = headsOf(STAGING);
  for (const env of STAGING) expect(before[env]).not.toBe(candidate);

  await signIn(page, "stagePromoter");
  await page.locator("#stage-promote-staging-eu-staging-us-staging-asia").click();
  await expect(page).toHaveURL(/\/\?promote=staging-eu,staging-us,staging-asia$/);

  for (const env of STAGING) {
    const preview = dialog(page).locator(`section[data-preview="${env}"]`);
    await expect(preview).toContainText(`${short(before[env])} → ${short(candidate)}`);
    // staging-* require the commit verified in integration and in loadtest.
    await expect(preview.locator('li[data-gate="verified"][data-met="true"]')).toHaveCount(2);
    await expect(preview.locator('li[data-gate][data-met="false"]')).toHaveCount(0);
    await expect(preview.locator(`li[data-commit="${candidate}"]`)).toBeVisible();
  }
  await dialog(page).locator("textarea[name=reason]").fill("staging everywhere");
  await dialog(page).getByRole("button", { name: "Promote all 3" }).click();

  for (const env of STAGING) {
    await expect(dialog(page).locator(`li[data-result="${env}"]`)).toHaveAttribute("data-state", "done");
  }
  for (const env of STAGING) {
    expect(headOf(env), `${env} on the remote`).toBe(candidate);
    await expect(card(page, env)).toHaveAttribute("data-head", candidate);
  }
});

test("a refused promotion shows its unmet gates, in the preview and at confirm time", async ({ page }) => {
  // qa's head is a new commit nobody has tested: integration may not take it.
  const untested = await freshQaHead("refusal");
  await signIn(page, "refused", "/?promote=integration");
  const integration = dialog(page).locator('section[data-preview="integration"]');
  const verified = integration.locator('li[data-gate="verified"]');
  await expect(verified).toHaveAttribute("data-met", "false");
  await expect(verified).toContainText("tested in qa");
  await expect(verified).toContainText(`${short(untested)} has no verification in \`qa\``);
  const promote = dialog(page).getByRole("button", { name: "Promote", exact: true });
  await expect(promote).toBeDisabled();
  await expect(dialog(page)).toContainText("Every gate must be met first");

  // Once it passed in qa, loadtest may take it: the preview allows it...
  await api("tester").verify("qa", untested, "passed");
  const loadtestBefore = headOf("loadtest");
  await page.goto("/?promote=loadtest");
  await expect(page.locator("body")).toHaveAttribute("data-live", "true");
  const loadtest = dialog(page).locator('section[data-preview="loadtest"]');
  await expect(loadtest.locator('li[data-gate="verified"]')).toHaveAttribute("data-met", "true");
  await expect(loadtest.locator('li[data-gate="hold"]')).toHaveAttribute("data-met", "true");
  await expect(promote).toBeEnabled();

  // ...and follows the world while it is open: a hold placed elsewhere shows
  // up as an unmet gate and the button turns off.
  let holds: Hold[] = [];
  try {
    holds = await api("promoter").hold(["loadtest"], "load test rig is being rebuilt");
    await expect(loadtest.locator('li[data-gate="hold"]')).toHaveAttribute("data-met", "false");
    await expect(promote).toBeDisabled();
  } finally {
    for (const h of holds) await api("promoter").release(h.id);
  }

  // A page that cannot hear about changes (its live connection is down) is
  // still refused at confirm time, with the gate that is not met.
  await page.route("**/api/v1/events", (route) => route.abort());
  await page.goto("/?promote=loadtest");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(promote).toBeEnabled();
  holds = [];
  try {
    holds = await api("promoter").hold(["loadtest"], "load test rig is being rebuilt");
    await dialog(page).locator("textarea[name=reason]").fill("loadtest please");
    await promote.click();

    const refusal = dialog(page).locator('[role=alert][data-error-code="gates_not_met"]');
    await expect(refusal).toBeVisible();
    const hold = refusal.locator('li[data-gate="hold"]');
    await expect(hold).toHaveAttribute("data-met", "false");
    await expect(hold).toContainText("load test rig is being rebuilt");
    await expect(dialog(page).locator("li[data-result]")).toHaveCount(0);
    // What was typed is kept, and nothing moved.
    await expect(dialog(page).locator("textarea[name=reason]")).toHaveValue("loadtest please");
    expect(headOf("loadtest")).toBe(loadtestBefore);
  } finally {
    for (const h of holds) await api("promoter").release(h.id);
    await page.unroute("**/api/v1/events");
  }
});
