// Speed figures for the history pages, against the release build, in one run:
//  1. the Line page on a 100,000-commit line (git fast-import, a file changed
//     per commit, 12 environments along it): server render of `/line` (first
//     page of 100) against GET /api/v1/timeline?limit=100, first (nothing
//     computed yet) and kept;
//  2. `/line?position=50000`, the first time (its 100 commits diffed) and again;
//  3. the Audit page with 100,000 events (written into the log's table with
//     sqlite3): the first page filtered by environment, and by actor and time.
// Run: `make bench` (or `node end2end/bench/history.mjs` after `make build`).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { git, startServer, timeGet } from "./lib.mjs";

const COMMITS = Number(process.env.BENCH_LINE_COMMITS || 100_000);
const dir = mkdtempSync(path.join(tmpdir(), "envline-bench-line-"));
const remote = path.join(dir, "remote.git");
execFileSync("git", ["init", "-q", "--bare", "-b", "main", remote]);
const chunks = [];
for (let i = 0; i < COMMITS; i++) {
  const msg = `build-bot: shop-api 1.0.${i}`;
  const content = `image: ghcr.io/acme/shop-api:1.0.${i}\n`;
  const file = i % 10 === 0 ? `envs/env${String(i % 12).padStart(2, "0")}/version.yml` : "base/version.yml";
  chunks.push(`commit refs/heads/main\nmark :${i + 1}\ncommitter Bot <bot@example.com> ${1_600_000_000 + i * 60} +0000\n`
    + `data ${Buffer.byteLength(msg)}\n${msg}\n${i > 0 ? `from :${i}\n` : ""}`
    + `M 100644 inline ${file}\ndata ${Buffer.byteLength(content)}\n${content}\n`);
}
execFileSync("git", ["--git-dir", remote, "fast-import", "--quiet"], { input: chunks.join(""), maxBuffer: 1 << 30 });
let text = `[repository]\nurl = "${remote}"\nroot = "main"\nrefresh_seconds = 3600\n\n[server]\ndata_dir = "data"\n\n[auth]\nanonymous_read = true\n`;
for (let i = 0; i < 12; i++) {
  const name = `env${String(i).padStart(2, "0")}`;
  git(remote, "update-ref", `refs/heads/${name}`, git(remote, "rev-parse", `main~${(i + 1) * 30}`));
  text += `\n[[environment]]\nname = "${name}"\nfrom = "${i === 0 ? "main" : `env${String(i - 1).padStart(2, "0")}`}"\n`;
}
const config = path.join(dir, "envline.toml");
writeFileSync(config, text);
const { base, token, stop } = await startServer(config, dir);
const auth = { Authorization: `Bearer ${token}` };

console.log(`the Line page on a ${COMMITS}-commit line, 12 environments:`);
const firstApi = await timeGet(`${base}/api/v1/timeline?limit=100`, auth, 1);
const firstPage = await timeGet(`${base}/line`, {}, 1);
console.log(`GET /api/v1/timeline?limit=100, first:   ${firstApi.median.toFixed(2)} ms`);
console.log(`GET /line (server render), then:          ${firstPage.median.toFixed(2)} ms, ${firstPage.size} bytes of HTML`);
await timeGet(`${base}/line`, {}, 10);
const page = await timeGet(`${base}/line`, {}, 100);
const api = await timeGet(`${base}/api/v1/timeline?limit=100`, auth, 100);
console.log(`GET /line (server render), kept:          median ${page.median.toFixed(2)} ms, p90 ${page.p90.toFixed(2)} ms`);
console.log(`GET /api/v1/timeline?limit=100, kept:     median ${api.median.toFixed(2)} ms, p90 ${api.p90.toFixed(2)} ms, ${api.size} bytes of JSON`);
console.log(`render / API:                             ${(page.median / api.median).toFixed(2)}x`);
const middle = Math.floor(COMMITS / 2);
const deepFirst = await timeGet(`${base}/line?position=${middle}`, {}, 1);
const deep = await timeGet(`${base}/line?position=${middle}`, {}, 50);
console.log(`GET /line?position=${middle}, first time:   ${deepFirst.median.toFixed(2)} ms`);
console.log(`GET /line?position=${middle}, again:        median ${deep.median.toFixed(2)} ms`);

// 3. The Audit page on 100,000 events.
const EVENTS = 100_000;
const database = path.join(dir, "data", "envline.sqlite");
if (!existsSync(database)) throw new Error(`no database at ${database}`);
execFileSync("sqlite3", [database, `INSERT INTO audit_events (at, actor, action, environment, old_commit, new_commit, reason, details, prev_hash, hash)
  SELECT strftime('%Y-%m-%dT%H:%M:%S.000Z', 1600000000 + value * 60, 'unixepoch'),
         'person' || (value % 40), CASE value % 3 WHEN 0 THEN 'promote' WHEN 1 THEN 'verify' ELSE 'approve' END,
         'env' || printf('%02d', value % 12), NULL, NULL, 'bench event ' || value, '{}', '', ''
  FROM generate_series(1, ${EVENTS})`]);
console.log(`the Audit page with ${EVENTS} more events in the log:`);
for (const [what, query] of [
  ["environment=env03", "environment=env03"],
  ["actor=person7&since=2022", "actor=person7&since=2022-01-01"],
]) {
  const first = await timeGet(`${base}/audit?${query}`, {}, 1);
  const again = await timeGet(`${base}/audit?${query}`, {}, 50);
  const api = await timeGet(`${base}/api/v1/audit?${query}&limit=50`, auth, 50);
  console.log(`GET /audit?${what}: first ${first.median.toFixed(2)} ms, median ${again.median.toFixed(2)} ms (API page of 50: ${api.median.toFixed(2)} ms)`);
}
stop();
process.exit(0);
