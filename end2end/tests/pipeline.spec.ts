import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { DEMO } from "../playwright.config";
import { freshQaHead } from "./fixtures";

const remote = path.resolve(__dirname, "..", DEMO, "remote.git");
const git = (...args: string[]) =>
  execFileSync("git", ["--git-dir", remote, ...args], { encoding: "utf8" }).trim();

const ENVIRONMENTS = [
  "main", "qa", "integration", "loadtest",
  "staging-eu", "staging-us", "staging-asia",
  "prod-eu", "prod-us", "prod-asia",
];

test("every card shows the head the remote has", async ({ page }) => {
  await page.goto("/");
  await expect(page.locator("article[data-env]")).toHaveCount(ENVIRONMENTS.length);
  for (const env of ENVIRONMENTS) {
    const card = page.locator(`article[data-env="${env}"]`);
    const head = git("rev-parse", `refs/heads/${env}`);
    await expect(card).toHaveAttribute("data-head", head);
    await expect(card.getByTestId("head")).toHaveText(head.slice(0, 10));
    await expect(card).toHaveAttribute("data-on-line", "true");
  }
  // Other tests move qa: count how far behind main it is now.
  const behind = Number(git("rev-list", "--count", "--first-parent", "refs/heads/qa..refs/heads/main"));
  await expect(page.locator('article[data-env="qa"]')).toContainText(
    behind === 0 ? "up to date with main" : `${behind} behind main`,
  );
  await expect(page.locator('article[data-env="prod-eu"]')).toContainText("2 approvals");
});

test("the page follows the remote by itself after a direct push", async ({ page }) => {
  // qa holds a new commit, ahead of loadtest whatever other tests did.
  await freshQaHead("direct push");
  await page.goto("/");
  await expect(page.locator("body")).toHaveAttribute("data-live", "true");
  const card = page.locator('article[data-env="loadtest"]');
  const before = git("rev-parse", "refs/heads/loadtest");
  await expect(card).toHaveAttribute("data-head", before);
  // Someone pushes loadtest forward outside Envline; the server fetches every
  // second and tells the page, which updates without a reload.
  const target = git("rev-parse", "refs/heads/qa");
  git("update-ref", "refs/heads/loadtest", target, before);
  await expect(card).toHaveAttribute("data-head", target, { timeout: 5000 });
  await expect(card.getByTestId("head")).toHaveText(target.slice(0, 10));
});
