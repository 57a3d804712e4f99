// Speed figure for webhooks: the time from a push's webhook to the pipeline
// showing the push (GET /api/v1/environments, and the pipeline page in a
// live browser), median of 20, against the
// release build on a fresh demo. Beside it the baseline without webhooks: the
// timed refresh, which shows a push up to `refresh_seconds` later.
// Each round: a new commit on the remote's main (as a push by someone else),
// then a GitHub push delivery signed with the secret, then GETs every 5 ms
// until main's head is the new commit. The timed refresh is set to an hour
// here so only the webhook can show the push.
// Run: `make bench` (or `node end2end/bench/webhook.mjs` after `make build`).
import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { bin, git, launchChromium, median, p90, startServer } from "./lib.mjs";

const ROUNDS = 20;
const dir = mkdtempSync(path.join(tmpdir(), "envline-bench-"));
const config = execFileSync(bin, ["demo", "--no-serve", "--dir", dir], { encoding: "utf8" }).trim();
const remote = path.join(dir, "remote.git");
const period = Number(/^refresh_seconds\s*=\s*(\d+)/m.exec(readFileSync(config, "utf8"))?.[1] ?? 30);

const secret = randomBytes(32).toString("hex");
const { base, token, stop } = await startServer(config, dir, {
  ENVLINE_WEBHOOKS_SECRET: secret,
  ENVLINE_REPOSITORY_REFRESH_SECONDS: "3600",
  ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE: "false",
});

/** main's head as the API shows it. */
async function shownMain() {
  const r = await fetch(`${base}/api/v1/environments`, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`GET /api/v1/environments: ${r.status} ${await r.text()}`);
  const view = await r.json();
  return view.environments.find((e) => e.name === "main")?.head?.id;
}

/** A new commit on the remote's main, as someone's push; returns its id. */
function pushToMain(i) {
  const main = git(remote, "rev-parse", "refs/heads/main");
  const tree = git(remote, "rev-parse", `${main}^{tree}`);
  const commit = execFileSync("git", ["--git-dir", remote, "commit-tree", tree, "-p", main, "-m", `webhook bench ${i}`], {
    encoding: "utf8",
    env: { ...process.env, GIT_AUTHOR_NAME: "bench", GIT_AUTHOR_EMAIL: "b@example.com", GIT_COMMITTER_NAME: "bench", GIT_COMMITTER_EMAIL: "b@example.com" },
  }).trim();
  git(remote, "update-ref", "refs/heads/main", commit, main);
  return commit;
}

/** Sends GitHub's push delivery for `commit`; returns when it was sent. */
async function deliver(commit) {
  const body = JSON.stringify({ ref: "refs/heads/main", after: commit, pusher: { name: "bench" } });
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  const started = Date.now();
  const r = await fetch(`${base}/api/v1/webhooks/github`, {
    method: "POST",
    headers: { "content-type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": signature },
    body,
  });
  if (r.status !== 202) throw new Error(`webhook: ${r.status} ${await r.text()}`);
  return started;
}

/** Sends GitHub's push delivery for `commit`; the time until the API shows it, in ms. */
async function webhookToShown(commit) {
  const body = JSON.stringify({ ref: "refs/heads/main", after: commit, pusher: { name: "bench" } });
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  const started = performance.now();
  const r = await fetch(`${base}/api/v1/webhooks/github`, {
    method: "POST",
    headers: { "content-type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": signature },
    body,
  });
  const answer = await r.json();
  if (r.status !== 202 || answer.refresh === "ignored") throw new Error(`webhook: ${r.status} ${JSON.stringify(answer)}`);
  while ((await shownMain()) !== commit) {
    if (performance.now() - started > 30_000) throw new Error(`the push ${commit} was not shown within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - started;
}

// Two rounds to warm up, then the measured ones.
for (let i = 0; i < 2; i++) await webhookToShown(pushToMain(`warm-up ${i}`));
const times = [];
for (let i = 0; i < ROUNDS; i++) times.push(await webhookToShown(pushToMain(i)));

console.log(`webhook -> push shown (API):  median ${median(times).toFixed(0)} ms, p90 ${p90(times).toFixed(0)} ms (n=${ROUNDS}; goal < 1 s)`);

// The pipeline page itself: a browser on `/`, live; the time from the
// webhook until main's card there shows the pushed commit.
const browser = await launchChromium();
const watcher = await browser.newPage();
await watcher.goto(`${base}/`);
await watcher.waitForSelector("body[data-live=true]");
const onPage = [];
for (let i = 0; i < ROUNDS + 2; i++) {
  const commit = pushToMain(`page ${i}`);
  const seen = watcher.waitForFunction(
    (id) => document.querySelector('article[data-env="main"]')?.getAttribute("data-head") === id ? Date.now() : false,
    commit, { polling: "raf", timeout: 30_000 });
  const started = await deliver(commit);
  const shown = await (await seen).jsonValue();
  if (i >= 2) onPage.push(shown - started);
}
await browser.close();
console.log(`webhook -> push shown (page): median ${median(onPage)} ms, p90 ${p90(onPage)} ms (n=${ROUNDS}, a live browser on /)`);
console.log(`without webhooks (timed):     up to ${period} s, ${(period / 2).toFixed(0)} s on average (refresh_seconds = ${period} in the demo)`);
stop();
process.exit(0);
