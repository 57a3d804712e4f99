// I4 in the pages: a production promotion waits for two approvers, and the
// person who asked for it cannot be one of them.

import { test, expect, api, card, dialog, headOf, person, readyForProd, short, signedInPage } from "./fixtures";

test("two approvers sign off prod-eu while the requester is told they cannot", async ({ browser }) => {
  // staging-eu holds a new commit, verified there; prod-eu is behind it.
  const candidate = await readyForProd("sign-off", ["staging-eu"]);
  const prodBefore = headOf("prod-eu");
  expect(headOf("staging-eu")).toBe(candidate);
  expect(prodBefore).not.toBe(candidate);

  // The requester (promoter and approver) asks from the preview.
  const requester = await signedInPage(browser, "requester");
  const asking = requester.page;
  await asking.locator("#act-promote-prod-eu").click();
  const preview = dialog(asking).locator('section[data-preview="prod-eu"]');
  await expect(preview.locator('li[data-gate="verified"]')).toHaveAttribute("data-met", "true");
  await expect(preview).toContainText(`${short(prodBefore)} → ${short(candidate)}`);
  await expect(preview).toContainText("Needs 2 approvals from people other than you");
  await dialog(asking).locator("textarea[name=reason]").fill("EU release of the new build");
  await dialog(asking).getByRole("button", { name: "Request approval" }).click();
  const result = dialog(asking).locator('li[data-result="prod-eu"]');
  await expect(result).toHaveAttribute("data-state", "awaiting_approval");
  await expect(result).toContainText("awaits 2 approvals");
  expect(headOf("prod-eu")).toBe(prodBefore);

  const request = (await api("requester").environment("prod-eu")).open_request;
  expect(request).toMatchObject({ to_commit: candidate, requested_by: person("requester").name, state: "awaiting_approval" });
  const id = request!.id;
  await expect(card(asking, "prod-eu")).toContainText("awaiting approval 0/2");

  // On the approvals page the requester is told they need someone else, with no buttons.
  await asking.goto("/approvals");
  const own = asking.locator(`article[data-request="${id}"][data-env="prod-eu"]`);
  await expect(own.getByTestId("own-request")).toContainText("needs another approver");
  await expect(own.locator("button[value=approve]")).toHaveCount(0);
  await expect(own.locator("button[value=reject]")).toHaveCount(0);

  // Approver 1 approves: recorded, still waiting for a second.
  const first = await signedInPage(browser, "approverOne", "/approvals");
  await expect(first.page.getByTestId("waiting")).toBeVisible();
  const firstCard = first.page.locator(`article[data-request="${id}"]`);
  await expect(firstCard).toContainText(`${short(prodBefore)} → ${short(candidate)}`);
  await expect(firstCard.locator(`li[data-commit="${candidate}"]`)).toBeVisible();
  await firstCard.locator("textarea[name=comment]").fill("looks good, checked the diff");
  await firstCard.locator("button[value=approve]").click();
  await expect(first.page.getByTestId("decision-result")).toHaveText(
    `Your approval of request ${id} is recorded: 1 of 2 approvals.`,
  );
  expect(headOf("prod-eu")).toBe(prodBefore);
  expect((await api("approverOne").promotion(id)).state).toBe("awaiting_approval");
  await first.page.goto("/");
  await expect(card(first.page, "prod-eu")).toContainText("awaiting approval 1/2");
  await expect(card(first.page, "prod-eu")).toHaveAttribute("data-head", prodBefore);

  // Approver 2 approves: the promotion runs.
  const second = await signedInPage(browser, "approverTwo", "/approvals");
  const secondCard = second.page.locator(`article[data-request="${id}"]`);
  await secondCard.locator("textarea[name=comment]").fill("approved for the EU window");
  // A change elsewhere re-reads the page while the comment is being
  // written: the words stay.
  await expect(second.page.locator("body")).toHaveAttribute("data-live", "true");
  const reread = second.page.waitForResponse((r) => r.url().includes("/fn/approvals"));
  const holds = await api("promoter").hold(["qa"], "approvals: a change elsewhere");
  await reread;
  await api("promoter").release(holds[0].id);
  await expect(secondCard.locator("textarea[name=comment]")).toHaveValue("approved for the EU window");
  await secondCard.locator("button[value=approve]").click();
  await expect(second.page.getByTestId("decision-result")).toHaveText(
    `Request ${id} is approved and done: prod-eu is now at ${short(candidate)}.`,
  );

  expect(headOf("prod-eu")).toBe(headOf("staging-eu"));
  expect(headOf("prod-eu")).toBe(candidate);
  const done = await api("approverTwo").promotion(id);
  expect(done.state).toBe("done");
  expect(done.counted_approvers).toEqual([person("approverOne").name, person("approverTwo").name].sort());
  // The requester's page follows on its own.
  await asking.goto("/");
  await expect(card(asking, "prod-eu")).toHaveAttribute("data-head", candidate);
  await expect(card(asking, "prod-eu")).not.toContainText("awaiting approval");

  for (const s of [requester, first, second]) await s.context.close();
});
