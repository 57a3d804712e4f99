// Shared helpers for the end-to-end tests: the people (accounts, passwords,
// API tokens), the demo's bare remote (read and pushed with git), a typed
// client for the HTTP API, set-ups that bring the pipeline into a known
// shape, and signing in through the page.
//
// Every test runs against the one server Playwright starts (see
// playwright.config.ts), one after another. So no test assumes where a branch
// is: each reads the heads it needs from the remote, or makes a fresh commit on
// main and promotes it as far as it needs.

import { test as base, expect, type Browser, type BrowserContext, type Locator, type Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DEMO, PORT } from "../playwright.config";

// ---------------------------------------------------------------- places

export const REPO_ROOT = path.resolve(__dirname, "../..");
export const DEMO_DIR = path.resolve(__dirname, "..", DEMO);
export const REMOTE = path.join(DEMO_DIR, "remote.git");
export const CONFIG_FILE = path.join(DEMO_DIR, "envline.toml");
export const ENVLINE = path.join(REPO_ROOT, "target/release/envline");
export const BASE_URL = `http://127.0.0.1:${PORT}`;
const PEOPLE_FILE = path.join(DEMO_DIR, "e2e-people.json");

export const PASSWORD = "secret";

export const STAGING = ["staging-eu", "staging-us", "staging-asia"] as const;
export const PROD = ["prod-eu", "prod-us", "prod-asia"] as const;

// ---------------------------------------------------------------- people

interface PersonSpec {
  readonly name: string;
  /** `role` or `role:glob`. */
  readonly roles: readonly string[];
}

/**
 * Everyone the tests act as. Each test that signs in through the page uses
 * its own account where it can: sign-in is limited to 20 attempts a minute
 * per address (wrong passwords also slow down that account from that
 * address), and the suite runs in about a minute.
 */
export const PEOPLE = {
  promoter: { name: "pia-promoter", roles: ["promoter"] },
  stagePromoter: { name: "sven-promoter", roles: ["promoter"] },
  tester: { name: "tess-tester", roles: ["tester"] },
  /** Asks for production promotions and may approve others' (never their own). */
  requester: { name: "rita-release", roles: ["promoter", "approver"] },
  approverOne: { name: "alex-approver", roles: ["approver:prod-*"] },
  approverTwo: { name: "bea-approver", roles: ["approver:prod-*"] },
  commander: { name: "ivan-incident", roles: ["incident-commander"] },
  liveUpdater: { name: "lou-promoter", roles: ["promoter"] },
  keyboardUser: { name: "kai-keyboard", roles: ["promoter"] },
  reviewer: { name: "ada-reviewer", roles: ["promoter", "approver"] },
  refused: { name: "rex-promoter", roles: ["promoter"] },
  admin: { name: "abe-admin", roles: ["admin"] },
} as const satisfies Record<string, PersonSpec>;

export type PersonKey = keyof typeof PEOPLE;

export interface Person {
  readonly key: PersonKey;
  readonly name: string;
  readonly roles: readonly string[];
  readonly token: string;
}

/** Runs the envline CLI against the demo's configuration (and database). */
export function envline(args: string[]): string {
  return execFileSync(ENVLINE, ["--config", CONFIG_FILE, ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, ENVLINE_PASSWORD: PASSWORD },
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

/** Creates every account with its roles and one token each; run once per run (global setup). */
export function createPeople(): void {
  const tokens: Record<string, string> = {};
  for (const [key, spec] of Object.entries(PEOPLE) as [PersonKey, PersonSpec][]) {
    envline(["user", "add", spec.name, ...spec.roles.flatMap((r) => ["--role", r])]);
    tokens[key] = envline(["token", "create", "--user", spec.name, "--label", "e2e"]);
  }
  fs.writeFileSync(PEOPLE_FILE, JSON.stringify(tokens, null, 2));
}

let tokens: Record<string, string> | undefined;

export function person(key: PersonKey): Person {
  tokens ??= JSON.parse(fs.readFileSync(PEOPLE_FILE, "utf8")) as Record<string, string>;
  const token = tokens[key];
  if (!token) throw new Error(`no token for ${key}; did the global setup run?`);
  return { key, name: PEOPLE[key].name, roles: PEOPLE[key].roles, token };
}

// ---------------------------------------------------------------- the remote

const IDENTITY = {
  GIT_AUTHOR_NAME: "E2E Build Bot",
  GIT_AUTHOR_EMAIL: "e2e-bot@acme.example",
  GIT_COMMITTER_NAME: "E2E Build Bot",
  GIT_COMMITTER_EMAIL: "e2e-bot@acme.example",
};

/** Runs git on the demo's bare remote. */
export function git(args: string[], options: { input?: string; env?: Record<string, string> } = {}): string {
  return execFileSync("git", ["--git-dir", REMOTE, ...args], {
    encoding: "utf8",
    input: options.input,
    env: { ...process.env, ...IDENTITY, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  }).trim();
}

/** The commit a branch of the remote points at, as the remote has it. */
export function headOf(branch: string): string {
  return git(["rev-parse", `refs/heads/${branch}`]);
}

/** The remote's heads of several branches, by name. */
export function headsOf(branches: readonly string[]): Record<string, string> {
  return Object.fromEntries(branches.map((b) => [b, headOf(b)]));
}

let pushes = 0;

/**
 * Pushes a commit onto `main` of the remote directly (as a build pipeline
 * would), with git plumbing on the bare repository. By default it appends a
 * line to `CHANGELOG.md`, so the commit has a file change and a diff; pass
 * `change: null` for a commit with main's tree unchanged.
 */
export function pushToMain(
  subject: string,
  change: { path: string; content: string } | null = { path: "CHANGELOG.md", content: "" },
): string {
  return pushTo("main", subject, change);
}

/** As {@link pushToMain}, onto any branch of the remote (a hotfix branch, say). */
export function pushTo(
  branch: string,
  subject: string,
  change: { path: string; content: string } | null = { path: "CHANGELOG.md", content: "" },
): string {
  const parent = headOf(branch);
  let tree = git(["rev-parse", `${parent}^{tree}`]);
  if (change) {
    pushes += 1;
    let content = change.content;
    if (change.path === "CHANGELOG.md" && content === "") {
      let before = "";
      try {
        before = git(["show", `${parent}:CHANGELOG.md`]) + "\n";
      } catch {
        before = "# Changelog\n";
      }
      content = `${before}- ${subject} (e2e ${process.pid}.${pushes})\n`;
    }
    const index = path.join(os.tmpdir(), `envline-e2e-index-${process.pid}-${pushes}`);
    const env = { GIT_INDEX_FILE: index };
    try {
      git(["read-tree", parent], { env });
      const blob = git(["hash-object", "-w", "--stdin"], { input: content });
      git(["update-index", "--add", "--cacheinfo", `100644,${blob},${change.path}`], { env });
      tree = git(["write-tree"], { env });
    } finally {
      fs.rmSync(index, { force: true });
    }
  }
  const commit = git(["commit-tree", tree, "-p", parent, "-m", subject]);
  git(["update-ref", `refs/heads/${branch}`, commit, parent]);
  return commit;
}

// ---------------------------------------------------------------- the API

export type VerificationStatus = "passed" | "failed" | "pending";
export type RequestState = "awaiting_approval" | "done" | "rejected" | "failed" | "cancelled";
export type HoldKind = "promotion" | "auto_promotion";

export interface Commit {
  id: string;
  short: string;
  subject: string;
  author: string;
  time: number;
}

export interface Verification {
  id: number;
  environment: string;
  commit: string;
  status: VerificationStatus;
  url: string | null;
  summary: string | null;
  recorded_by: string;
  at: string;
}

export interface Hold {
  id: number;
  environment: string;
  kind: HoldKind;
  reason: string;
  created_by: string;
  created_at: string;
  starts_at: string | null;
  ends_at: string | null;
}

export interface Approval {
  approver: string;
  decision: "approve" | "reject";
  comment: string;
  at: string;
}

export interface Promotion {
  id: number;
  kind: "promote" | "reset" | "cherry_pick";
  environment: string;
  source: string;
  from_commit: string | null;
  to_commit: string;
  requested_by: string;
  reason: string;
  required_approvals: number;
  state: RequestState;
  state_reason: string | null;
  result_commit: string | null;
  approvals: Approval[];
  counted_approvers: string[];
}

export interface Environment {
  name: string;
  branch: string;
  from: string | null;
  requires: string[];
  approvals: number;
  protected: boolean;
  is_root: boolean;
  head: Commit | null;
  /** Position of the head on the root's line (0 = the oldest commit). */
  position: number | null;
  on_line: boolean;
  behind_from: number | null;
  verification: Verification | null;
  holds: Hold[];
  open_request: Promotion | null;
}

/** An error answer of the API: `{"error": {code, message, details}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

/** The HTTP API v1 as one person, with their token. */
export class Api {
  constructor(readonly who: Person) {}

  private async call<T>(method: "GET" | "POST" | "DELETE", route: string, body?: unknown): Promise<T> {
    const response = await fetch(`${BASE_URL}/api/v1/${route}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.who.token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      let error = { code: "unknown", message: text, details: null as unknown };
      try {
        error = (JSON.parse(text) as { error: typeof error }).error;
      } catch {
        // not JSON: keep the text
      }
      throw new ApiError(response.status, error.code, `${method} /api/v1/${route} as ${this.who.name}: ${error.message}`, error.details);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Rolls environments back to where they were before their last move (S3). */
  rollback(environments: readonly string[], reason: string): Promise<unknown> {
    return this.call("POST", "rollbacks", { environments, reason });
  }

  /** Brings an environment off the line back to its source. */
  realign(environment: string, reason: string): Promise<Promotion> {
    return this.call("POST", "realignments", { environment, reason });
  }

  async environments(): Promise<Environment[]> {
    return (await this.call<{ environments: Environment[] }>("GET", "environments")).environments;
  }

  async environment(name: string): Promise<Environment> {
    const found = (await this.environments()).find((e) => e.name === name);
    if (!found) throw new Error(`no environment ${name} in GET /api/v1/environments`);
    return found;
  }

  /** Delivery figures of one environment since a span back from now (`7d`). */
  insights(environment: string, since: string): Promise<{ deployments: number }> {
    return this.call("GET", `insights?environment=${environment}&since=${since}`);
  }

  /** Fetches the remote now. */
  async refresh(): Promise<void> {
    await this.call("POST", "refresh");
  }

  /** Promotes one environment to the tip of its `from`. */
  promote(environment: string, reason = "e2e set-up"): Promise<Promotion> {
    return this.call<Promotion>("POST", "promotions", { environment, reason });
  }

  /** Promotes several environments together. */
  async promoteAll(environments: readonly string[], reason = "e2e set-up"): Promise<Promotion[]> {
    return (await this.call<{ promotions: Promotion[] }>("POST", "promotions", { environments, reason })).promotions;
  }

  promotion(id: number): Promise<Promotion> {
    return this.call<Promotion>("GET", `promotions/${id}`);
  }

  decide(id: number, decision: "approve" | "reject", comment = "e2e"): Promise<Promotion> {
    return this.call<Promotion>("POST", `promotions/${id}/approvals`, { decision, comment });
  }

  verify(environment: string, commit: string, status: VerificationStatus = "passed", url?: string): Promise<Verification> {
    return this.call<Verification>("POST", "verifications", { environment, commit, status, url });
  }

  async hold(environments: readonly string[], reason: string, kind: HoldKind = "promotion"): Promise<Hold[]> {
    return (await this.call<{ holds: Hold[] }>("POST", "holds", { environments, reason, kind })).holds;
  }

  async release(id: number): Promise<void> {
    await this.call("DELETE", `holds/${id}`);
  }

  /** Hotfix mode as it stands: the running incident (or null) and every incident. */
  hotfixes(): Promise<{ current: { incident: { incident: string; state: string } } | null; incidents: { incident: string; state: string }[] }> {
    return this.call("GET", "hotfixes");
  }
}

export function api(key: PersonKey): Api {
  return new Api(person(key));
}

// ---------------------------------------------------------------- set-ups

/** Pushes a commit to main and waits until the server has fetched it. */
export async function newCommitOnMain(
  subject: string,
  change?: { path: string; content: string } | null,
): Promise<string> {
  const sha = pushToMain(subject, change);
  const promoter = api("promoter");
  await promoter.refresh();
  await expect
    .poll(async () => (await promoter.environment("main")).head?.id, { message: `the server sees main at ${sha}` })
    .toBe(sha);
  return sha;
}

/** A new commit on main, promoted to qa (unverified there). */
export async function freshQaHead(label: string): Promise<string> {
  const sha = await newCommitOnMain(`${label}: shop-api build`);
  const qa = await api("promoter").promote("qa", `${label}: set-up`);
  expect(qa.state).toBe("done");
  return sha;
}

/**
 * A new commit on main, promoted through qa into integration and loadtest
 * and verified in all three: what staging-* may take next.
 */
export async function readyForStaging(label: string): Promise<string> {
  const promoter = api("promoter");
  const tester = api("tester");
  const sha = await freshQaHead(label);
  await tester.verify("qa", sha);
  const moved = await promoter.promoteAll(["integration", "loadtest"], `${label}: set-up`);
  expect(moved.map((p) => p.state)).toEqual(["done", "done"]);
  await tester.verify("integration", sha);
  await tester.verify("loadtest", sha);
  return sha;
}

/**
 * As {@link readyForStaging}, then promoted into the given staging
 * environments and verified there: what their prod-* may take next.
 */
export async function readyForProd(label: string, stagings: readonly string[]): Promise<string> {
  const sha = await readyForStaging(label);
  const moved = await api("promoter").promoteAll(stagings, `${label}: set-up`);
  expect(moved.every((p) => p.state === "done")).toBe(true);
  for (const env of stagings) await api("tester").verify(env, sha);
  return sha;
}

// ---------------------------------------------------------------- pages

/** Uncaught errors in the current test's pages (a hydration panic, say). */
let pageErrors: string[] = [];

function watchErrors(context: BrowserContext): void {
  const watch = (page: Page) =>
    page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  context.pages().forEach(watch);
  context.on("page", watch);
}

/**
 * Playwright's `test`, failing any test whose pages threw an uncaught error
 * (the wasm panicking while hydrating, for one), in its own page or in
 * contexts made with {@link newContext}.
 */
export const test = base.extend<{ failOnPageErrors: void }>({
  failOnPageErrors: [
    async ({ context }, use) => {
      pageErrors = [];
      watchErrors(context);
      await use();
      expect(pageErrors, "uncaught errors in the pages").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** A new browser context whose page errors fail the test. */
export async function newContext(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext();
  watchErrors(context);
  return context;
}

/** Opens a page and waits until the wasm has hydrated it (buttons work). */
export async function openPage(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** Reloads `page` and waits until its buttons work again. */
export async function reloadPage(page: Page): Promise<void> {
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** Signs in through the sign-in page, which then goes on to `next`. */
export async function signIn(page: Page, key: PersonKey, next = "/"): Promise<void> {
  const who = person(key);
  await openPage(page, `/login?next=${encodeURIComponent(next)}`);
  await page.locator("input[name=user]").fill(who.name);
  await page.locator("input[name=password]").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByTestId("signed-in")).toHaveAttribute("data-user", who.name);
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  await expect(page).toHaveURL(new URL(next, BASE_URL).href);
}

/** A new browser context with `key` signed in, on `next`. */
export async function signedInPage(
  browser: Browser,
  key: PersonKey,
  next = "/",
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await newContext(browser);
  const page = await context.newPage();
  await signIn(page, key, next);
  return { context, page };
}

/** An environment's card on the pipeline page. */
export function card(page: Page, env: string): Locator {
  return page.locator(`article[data-env="${env}"]`);
}

/** The open modal dialog. */
export function dialog(page: Page): Locator {
  return page.locator("dialog[open]");
}

/** The first 10 characters of a commit id, as the pages show it. */
export function short(sha: string): string {
  return sha.slice(0, 10);
}

/** Runs axe on the page as it is; fails listing every serious or critical violation. */
export async function expectNoSeriousViolations(page: Page, what: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const report = serious
    .map(
      (v) =>
        `[${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n` +
        v.nodes.map((n) => `    ${n.target.join(" ")}\n      ${n.failureSummary?.replace(/\n/g, "\n      ")}`).join("\n"),
    )
    .join("\n");
  if (serious.length > 0) console.log(`axe on ${what}:\n${report}`);
  expect(serious, `axe on ${what}:\n${report}`).toEqual([]);
}
