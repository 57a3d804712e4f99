// Speed figures for the pages, measured in one run against the release build:
//  1. server render of `/` (the pipeline page) against GET /api/v1/environments;
//  2. from a promotion's commit to the change shown in a second browser (median of 20);
//  3. what a browser downloads for `/` (gzipped, split chunks included when
//     fetched), and the whole built site.
// By default on a fresh demo; with BENCH_REPO=/path/to/a/repository.git on a
// copy of that repository (its `main` or `master`), with 11 environments placed
// along its first-parent line, as a team adopting Envline would have them.
// Run: `make bench` (or `node end2end/bench/pages.mjs` after `make build`).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { bin, git, launchChromium, median, p90, root, startServer, timeGet } from "./lib.mjs";

const dir = mkdtempSync(path.join(tmpdir(), "envline-bench-"));

const ENVIRONMENTS = [
  ["qa", "main", 2], ["integration-gpu", "qa", 4], ["integration-non-gpu", "qa", 4],
  ["load-gpu", "qa", 6], ["load-non-gpu", "qa", 6], ["staging-eu", "integration-gpu", 10],
  ["staging-us", "integration-gpu", 10], ["staging-asia", "integration-gpu", 12],
  ["prod-eu", "staging-eu", 20], ["prod-us", "staging-us", 20], ["prod-asia", "staging-asia", 30],
];

let config;
let remote;
if (process.env.BENCH_REPO) {
  remote = path.join(dir, "remote.git");
  execFileSync("git", ["clone", "--bare", "--quiet", process.env.BENCH_REPO, remote]);
  const tip = (() => { try { return git(remote, "rev-parse", "refs/heads/main"); } catch { return git(remote, "rev-parse", "refs/heads/master"); } })();
  git(remote, "update-ref", "refs/heads/main", tip);
  for (const [name, , behind] of ENVIRONMENTS) {
    git(remote, "update-ref", `refs/heads/${name}`, git(remote, "rev-parse", `main~${behind}`));
  }
  let text = `[repository]\nurl = "${remote}"\nroot = "main"\nrefresh_seconds = 3600\n\n[server]\ndata_dir = "data"\n\n[auth]\nanonymous_read = true\n`;
  for (const [name, from] of ENVIRONMENTS) text += `\n[[environment]]\nname = "${name}"\nfrom = "${from}"\n`;
  config = path.join(dir, "envline.toml");
  writeFileSync(config, text);
  console.log(`repository: ${process.env.BENCH_REPO} (${git(remote, "rev-list", "--first-parent", "--count", "main")} first-parent commits, ${git(remote, "rev-list", "--first-parent", "--merges", "--count", "main")} merges), 12 environments`);
} else {
  config = execFileSync(bin, ["demo", "--no-serve", "--dir", dir], { encoding: "utf8" }).trim();
  remote = path.join(dir, "remote.git");
  console.log("repository: the demo (10 environments)");
}

// qa promotes itself in the demo; here only the measured promotions move it.
const { base, token, stop } = await startServer(config, dir, { ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE: "false" });

// 1. Render of `/` against the API's environments, interleaved in one run.
await timeGet(`${base}/`, {}, 20);
await timeGet(`${base}/api/v1/environments`, {}, 20);
const page = await timeGet(`${base}/`, {}, 200);
const api = await timeGet(`${base}/api/v1/environments`, { Authorization: `Bearer ${token}` }, 200);
console.log(`GET / (server render):        median ${page.median.toFixed(2)} ms, p90 ${page.p90.toFixed(2)} ms, ${page.size} bytes of HTML`);
console.log(`GET /api/v1/environments:     median ${api.median.toFixed(2)} ms, p90 ${api.p90.toFixed(2)} ms, ${api.size} bytes of JSON`);
console.log(`render / API:                 ${(page.median / api.median).toFixed(2)}x`);

// 3. What a browser downloads: every file under /pkg/ that loading `/` and
// hydrating it fetches (the main wasm, js and css; the pages' split chunks
// only when their page is visited), each gzipped; and the whole built site.
const pkg = path.join(root, "target/site/pkg");
const site = readdirSync(pkg).filter((f) => /\.(wasm|js|css)$/.test(f));
const gz = (f) => gzipSync(readFileSync(path.join(pkg, f)), { level: 9 }).length;
{
  const browser = await launchChromium();
  const first = await browser.newPage();
  const fetched = new Set();
  first.on("request", (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith("/pkg/")) fetched.add(u.pathname.slice("/pkg/".length));
  });
  await first.goto(`${base}/`);
  await first.waitForSelector("body[data-live=true]");
  await first.waitForLoadState("networkidle");
  let loaded = 0;
  for (const f of [...fetched].sort()) {
    const size = gz(f);
    loaded += size;
    console.log(`  ${f.padEnd(40)} gzipped ${(size / 1024).toFixed(1)} KB`);
  }
  console.log(`first load of / (pipeline):   ${(loaded / 1024).toFixed(1)} KB gzipped, ${fetched.size} files (goal < 300 KB)`);
  const whole = site.reduce((sum, f) => sum + gz(f), 0);
  console.log(`the whole site (${site.length} files):     ${(whole / 1024).toFixed(1)} KB gzipped (goal < 400 KB)`);
  await browser.close();
}

// 2. A promotion's commit shown in a second browser: a watcher page on `/`,
// a new commit on main, qa promoted over the API; time until the watcher's
// qa card shows the new head.
const browser = await launchChromium();
const watcher = await browser.newPage();
await watcher.goto(`${base}/`);
await watcher.waitForSelector("body[data-live=true]");
const latencies = [];
for (let i = 0; i < 20; i++) {
  const main = git(remote, "rev-parse", "refs/heads/main");
  const tree = git(remote, "rev-parse", `${main}^{tree}`);
  const commit = execFileSync("git", ["--git-dir", remote, "commit-tree", tree, "-p", main, "-m", `bench ${i}`], {
    encoding: "utf8",
    env: { ...process.env, GIT_AUTHOR_NAME: "bench", GIT_AUTHOR_EMAIL: "b@example.com", GIT_COMMITTER_NAME: "bench", GIT_COMMITTER_EMAIL: "b@example.com" },
  }).trim();
  git(remote, "update-ref", "refs/heads/main", commit, main);
  await fetch(`${base}/api/v1/refresh`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  const seen = watcher.waitForFunction(
    (id) => document.querySelector('article[data-env="qa"]')?.getAttribute("data-head") === id ? Date.now() : false,
    commit, { polling: "raf", timeout: 10_000 });
  const started = Date.now();
  const r = await fetch(`${base}/api/v1/promotions`, {
    method: "POST", headers: { Authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ environment: "qa", reason: "bench" }),
  });
  if (r.status !== 201) throw new Error(`promotion: ${r.status} ${await r.text()}`);
  const shown = await (await seen).jsonValue();
  latencies.push(shown - started);
}
console.log(`promotion -> second browser:  median ${median(latencies)} ms, p90 ${p90(latencies)} ms (n=20, includes the promotion itself)`);
await browser.close();
stop();
process.exit(0);
