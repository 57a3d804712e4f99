// Speed figures for the Line page on a 100,000-commit line (git fast-import,
// a file changed per commit, 12 environments along it), against the release
// build, in one run:
//  1. server render of `/line` (first page of 100) against GET
//     /api/v1/timeline?limit=100, both first (nothing computed yet) and kept;
//  2. `/line?position=50000`, the first time (its 100 commits diffed) and again.
// Run: `make bench` (or `node end2end/bench/line.mjs` after `make build`).
import { execFileSync } from "node:child_process";
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
stop();
process.exit(0);
