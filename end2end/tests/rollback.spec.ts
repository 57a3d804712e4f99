// S3: an incident commander rolls all of prod-* back with the plan in front
// of them.

import { test, expect, PROD, STAGING, api, card, dialog, headOf, headsOf, readyForProd, short, signIn } from "./fixtures";

test("an incident commander rolls back prod-* with its plan", async ({ page }) => {
  // Give every prod environment a previous position in the audit log: promote
  // all three to a new commit, with two approvals each.
  const candidate = await readyForProd("rollback", STAGING);
  const previous = headsOf(PROD);
  const requests = await api("requester").promoteAll(PROD, "release before the incident");
  expect(requests.map((r) => r.state)).toEqual(["awaiting_approval", "awaiting_approval", "awaiting_approval"]);
  for (const r of requests) {
    await api("approverOne").decide(r.id, "approve");
    const done = await api("approverTwo").decide(r.id, "approve");
    expect(done.state).toBe("done");
  }
  for (const env of PROD) expect(headOf(env)).toBe(candidate);

  await signIn(page, "commander");
  await page.locator("#stage-rollback-prod-eu-prod-us-prod-asia").click();
  await expect(page).toHaveURL(/\/\?rollback=prod-eu,prod-us,prod-asia$/);

  for (const env of PROD) {
    const plan = dialog(page).locator(`section[data-plan="${env}"]`);
    await expect(plan).toContainText(`${short(candidate)} → ${short(previous[env])}`);
    await expect(plan.locator(`li[data-commit="${candidate}"]`)).toBeVisible();
    // prod-* do not promote themselves: there is no auto-promotion to hold.
    await expect(plan).not.toContainText("Auto-promotion will be held");
  }
  const confirm = dialog(page).getByRole("button", { name: "Roll back all 3" });
  // The reason is required: without one the browser does not submit.
  await confirm.click();
  const reason = dialog(page).locator("textarea[name=reason]");
  expect(await reason.evaluate((el) => (el as HTMLTextAreaElement).validity.valueMissing)).toBe(true);
  expect(headOf("prod-eu")).toBe(candidate);

  const incident = `INC-${Date.now()}`;
  await reason.fill(`${incident}: checkout errors after the release`);
  await confirm.click();
  const done = dialog(page).getByRole("status");
  for (const env of PROD) await expect(done).toContainText(`${env} is back at ${short(previous[env])}.`);

  for (const env of PROD) {
    expect(headOf(env), `${env} on the remote`).toBe(previous[env]);
    const c = card(page, env);
    await expect(c).toHaveAttribute("data-head", previous[env]);
    await expect(c.locator("[data-hold]", { hasText: incident })).toHaveCount(0);
  }
  for (const env of PROD) {
    const holds = (await api("commander").environment(env)).holds.filter((h) => h.reason.includes(incident));
    expect(holds, `${env} has no auto-promotion to hold`).toEqual([]);
  }
});
