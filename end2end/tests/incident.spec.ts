// S4: production breaks while newer builds wait upstream. An incident
// commander starts hotfix mode from the Incident page (plan, then confirm),
// the fix goes through the normal gates, they resolve, the merge back stops
// on a conflict and says how to do it by hand, and after the hand rebase the
// merge back ends hotfix mode.
//
// This file leaves the pipeline out of hotfix mode, with main containing the
// fix, so the files after it run on a normal pipeline.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  REMOTE,
  api,
  expect,
  expectNoSeriousViolations,
  freshQaHead,
  git,
  headOf,
  headsOf,
  openPage,
  pushTo,
  readyForProd,
  short,
  signIn,
  test,
} from "./fixtures";

const UPSTREAM = ["qa", "integration", "loadtest", "staging-eu", "staging-us", "staging-asia"] as const;

/** Two approvals for a request into production. */
async function approveTwice(id: number): Promise<void> {
  await api("approverOne").decide(id, "approve");
  const done = await api("approverTwo").decide(id, "approve");
  expect(done.state).toBe("done");
}

/** A developer's rebase of main onto the fix, in their own clone, pushed with a lease. */
function rebaseByHand(branch: string, mainTip: string): void {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "envline-e2e-rebase-"));
  const run = (args: string[]) =>
    execFileSync("git", args, {
      cwd: work,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: "Dev Eloper",
        GIT_AUTHOR_EMAIL: "dev@acme.example",
        GIT_COMMITTER_NAME: "Dev Eloper",
        GIT_COMMITTER_EMAIL: "dev@acme.example",
      },
    });
  try {
    run(["clone", "-q", REMOTE, "."]);
    run(["checkout", "-q", "-B", "main", "origin/main"]);
    // Keep main's side of every conflicting hunk: what a person resolving it would choose here.
    run(["rebase", "-q", "-X", "theirs", `origin/${branch}`]);
    run(["push", "-q", `--force-with-lease=main:${mainTip}`, "origin", "main"]);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

test("an incident commander runs hotfix mode from the plan to the merge back", async ({ page }) => {
  // prod-eu runs a release; newer builds are in staging-eu and qa, newer still on main.
  const release = await readyForProd("hotfix release", ["staging-eu"]);
  await approveTwice((await api("requester").promote("prod-eu", "the release before the incident")).id);
  expect(headOf("prod-eu")).toBe(release);
  await readyForProd("hotfix newer", ["staging-eu"]);
  const newest = await freshQaHead("hotfix newest");
  const kept = headsOf(["prod-us", "prod-asia"]);
  expect(kept["prod-us"]).not.toBe(release);

  const incident = `INC-${Date.now()}`;
  const branch = `hotfix/${incident}`;

  // The wizard: what broke and where, then the plan.
  await signIn(page, "commander", "/incident");
  await page.getByLabel("Production environment that broke").selectOption("prod-eu");
  await page.getByLabel("Incident id").fill(incident);
  await page.getByLabel(/What broke/).fill("checkout times out after the release");
  await page.getByRole("button", { name: "Show the plan" }).click();
  await expect(page).toHaveURL(/\/incident\?/);
  const plan = page.getByTestId("hotfix-plan");
  await expect(plan).toContainText(`The plan for ${incident}`);
  await expect(plan.locator('tr[data-reset="qa"]')).toContainText(`${short(newest)} → ${short(release)}`);
  await expect(plan.locator('tr[data-reset="staging-eu"]')).toContainText(`→ ${short(release)}`);
  await expectNoSeriousViolations(page, "the hotfix plan");
  // The other production environments keep what they run.
  await page.locator("#keep-prod-us").check();
  await page.locator("#keep-prod-asia").check();
  expect(headOf("qa"), "the plan moves nothing").toBe(newest);

  await plan.getByRole("button", { name: `Start hotfix mode for ${incident}` }).click();
  const running = page.locator(`section[data-incident="${incident}"]`);
  await expect(running).toHaveAttribute("data-state", "active");
  await expect(page.getByTestId("hotfix-banner")).toContainText(`Hotfix mode: ${incident}`);
  expect(headOf(branch)).toBe(release);
  for (const env of UPSTREAM) expect(headOf(env), `${env} back at production's commit`).toBe(release);
  expect(headsOf(["prod-us", "prod-asia"]), "the kept environments did not move").toEqual(kept);
  expect(headOf("main"), "main is left alone").toBe(newest);
  // Everyone sees hotfix mode, on every page.
  for (const where of ["/", "/approvals"]) {
    await openPage(page, where);
    await expect(page.getByTestId("hotfix-banner")).toContainText(incident);
  }

  // The fix, pushed with git to the hotfix branch, through the usual gates.
  await openPage(page, "/incident");
  await expect(running.getByText("No fix pushed yet.")).toBeVisible();
  const fix = pushTo(branch, `${incident}: raise the checkout timeout`);
  const promoter = api("promoter");
  const tester = api("tester");
  await promoter.refresh();
  expect((await promoter.promote("qa", `${incident}: the fix`)).state).toBe("done");
  expect(headOf("qa")).toBe(fix);
  await tester.verify("qa", fix);
  await promoter.promoteAll(["integration", "loadtest"], `${incident}: the fix`);
  await tester.verify("integration", fix);
  await tester.verify("loadtest", fix);
  await promoter.promote("staging-eu", `${incident}: the fix`);
  await tester.verify("staging-eu", fix);
  await approveTwice((await api("requester").promote("prod-eu", `${incident}: the fix`)).id);
  expect(headOf("prod-eu")).toBe(fix);
  // The page follows the fix live.
  await expect(running.locator('[data-progress="prod-eu"]')).toHaveAttribute("data-has-fix", "true");
  await expect(running.locator('[data-progress="staging-us"]')).toHaveAttribute("data-has-fix", "false");
  await expect(running).toContainText(short(fix));

  await running.getByRole("button", { name: "Resolve: the fix is in production" }).click();
  await expect(running).toHaveAttribute("data-state", "resolved");

  // main's newer commits touch the same lines as the fix: the merge back stops and says how to go on.
  await running.getByRole("button", { name: "Merge back into main" }).click();
  const conflict = page.getByTestId("merge-conflict");
  await expect(conflict).toContainText("CHANGELOG.md");
  await expect(conflict).toContainText(`git rebase ${fix}`);
  expect(headOf("main"), "nothing moved").toBe(newest);
  await expectNoSeriousViolations(page, "a running incident with a merge conflict");

  rebaseByHand(branch, newest);
  await running.getByRole("button", { name: "Merge back into main" }).click();
  const past = page.locator(`li[data-past="${incident}"]`);
  await expect(past).toContainText("merged back by ivan-incident");
  await past.getByText("Steps").click();
  for (const step of ["hotfix_start", "hotfix_reset", "hotfix_resolved", "merge_back"]) await expect(past).toContainText(step);
  await expect(running).toHaveCount(0);
  await expect(page.getByTestId("hotfix-banner")).toHaveCount(0);

  // One straight line again: main contains the fix and every environment.
  const main = headOf("main");
  git(["merge-base", "--is-ancestor", fix, main]);
  for (const env of [...UPSTREAM, "prod-eu", "prod-us", "prod-asia"]) git(["merge-base", "--is-ancestor", headOf(env), main]);
  expect((await api("commander").hotfixes()).current).toBeNull();
  await openPage(page, "/");
  await expect(page.getByTestId("hotfix-banner")).toHaveCount(0);
});
