// An environment's page: its story as the API made it (a promotion, a test
// result, a rollback, each with who and why), and a cherry-pick (S5) made
// from the page after its preview.

import {
  test,
  expect,
  api,
  expectNoSeriousViolations,
  newCommitOnMain,
  headOf,
  short,
  signIn,
} from "./fixtures";

test("the environment page tells loadtest's story and cherry-picks a commit onto it after a preview", async ({ page }) => {
  const promoter = api("promoter");
  const tester = api("tester");
  const before = headOf("loadtest");
  // A promotion, a test result and a rollback, through the API. The commit
  // adds a file of its own, so picking it alone later applies cleanly.
  const sha = await newCommitOnMain("env page: load test tuning", {
    path: `envs/loadtest/tuning-${Date.now()}.yml`,
    content: "connections: 400\n",
  });
  expect((await promoter.promote("qa", "env page: set-up")).state).toBe("done");
  await tester.verify("qa", sha);
  const promoted = await promoter.promote("loadtest", "env page: the new build for the load test");
  expect(promoted.state).toBe("done");
  await tester.verify("loadtest", sha, "failed", "https://ci.example.com/runs/4711");
  await promoter.rollback(["loadtest"], "env page: the load test failed");
  expect(headOf("loadtest")).toBe(before);

  await signIn(page, "promoter", "/env/loadtest");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Environment loadtest");
  await expect(page.getByTestId("head")).toHaveAttribute("data-head", before);
  const history = page.getByTestId("history");
  const promotion = history.locator('tr[data-action="promote"]', { hasText: "env page: the new build for the load test" });
  await expect(promotion).toContainText(person("promoter"));
  await expect(promotion).toContainText(`${short(before)} → ${short(sha)}`);
  const rollback = history.locator('tr[data-action="rollback"]', { hasText: "env page: the load test failed" });
  await expect(rollback).toContainText(`${short(sha)} → ${short(before)}`);
  await expect(rollback).toContainText(person("promoter"));
  const test = page.locator(`li[data-commit="${sha}"]`, { hasText: person("tester") });
  await expect(test).toContainText("failed");
  await expect(test.getByRole("link", { name: "test run" })).toHaveAttribute("href", "https://ci.example.com/runs/4711");
  // The rollback is a failed verdict on the commit it left (I3), by whoever rolled back.
  const verdict = page.locator(`li[data-commit="${sha}"]`, { hasText: person("promoter") });
  await expect(verdict).toContainText("failed");
  await expect(verdict).toContainText("rolled back by");
  // The next candidate is qa's commit, whose test here failed.
  await expect(page.locator('section[aria-labelledby="next-title"]')).toContainText(short(sha));
  await expectNoSeriousViolations(page, "an environment's page");

  // Cherry-pick qa's commit alone onto loadtest, after its preview.
  await page.getByLabel("Commit id").fill(short(sha));
  await page.getByRole("button", { name: "Preview" }).click();
  const preview = page.getByTestId("pick-preview");
  await expect(preview).toContainText("The commit picked");
  await expect(preview).toContainText("env page: load test tuning");
  expect(headOf("loadtest"), "a preview moves nothing").toBe(before);
  await preview.getByLabel("Reason (kept in the audit log)").fill("env page: only this change, for a rerun");
  await preview.getByRole("button", { name: "Cherry-pick" }).click();
  await expect(page.getByRole("status")).toContainText("Picked: loadtest is now at");
  const picked = headOf("loadtest");
  expect(picked).not.toBe(before);
  await expect(page.getByTestId("head")).toHaveAttribute("data-head", picked);
  await expect(history.locator('tr[data-action="cherry_pick"]')).toContainText("only this change, for a rerun");

  // Leave loadtest on the line for the tests after this one.
  await promoter.realign("loadtest", "env page: back on the line");
});

function person(key: "promoter" | "tester"): string {
  return api(key).who.name;
}
