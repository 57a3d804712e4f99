// Notification delivery latency when the receiver is up (goal < 500 ms,
// median of 20): from the moment a hold is asked for over the API until a
// receiver on 127.0.0.1 has its `held` notification, against the API's own
// answer to that request, measured in the same run.
// Run: `make bench` (or `node end2end/bench/notify.mjs` after `make build`).
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { bin, median, p90, startServer } from "./lib.mjs";

const waiting = new Map();
const receiver = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    const event = JSON.parse(body);
    res.writeHead(204).end();
    const done = waiting.get("next");
    if (done && event.event === "held") done(performance.now());
  });
});
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
const hook = `http://127.0.0.1:${receiver.address().port}/hook`;

const dir = mkdtempSync(path.join(tmpdir(), "envline-bench-notify-"));
const config = execFileSync(bin, ["demo", "--no-serve", "--dir", dir], { encoding: "utf8" }).trim();
appendFileSync(config, `\n[[notify]]\nurl = "${hook}"\nevents = ["held"]\n`);
const { base, token, stop } = await startServer(config, dir, { ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE: "false" });
const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };

const delivered = [];
const answered = [];
for (let i = 0; i < 25; i++) {
  const arrived = new Promise((r) => waiting.set("next", r));
  const t = performance.now();
  const r = await fetch(`${base}/api/v1/holds`, {
    method: "POST", headers, body: JSON.stringify({ environments: ["qa"], reason: `bench ${i}` }),
  });
  const answer = performance.now();
  const { holds } = await r.json();
  if (r.status !== 201) throw new Error(`hold: ${r.status}`);
  const at = await arrived;
  waiting.delete("next");
  // The first few warm up the connection pools.
  if (i >= 5) {
    delivered.push(at - t);
    answered.push(answer - t);
  }
  await fetch(`${base}/api/v1/holds/${holds[0].id}`, { method: "DELETE", headers });
}
const d = median(delivered);
const a = median(answered);
console.log(`notification delivered (hold → receiver): median ${d.toFixed(2)} ms, p90 ${p90(delivered).toFixed(2)} ms (goal < 500 ms: ${(d / 500).toFixed(3)}x of it)`);
console.log(`the API's own answer (POST /api/v1/holds): median ${a.toFixed(2)} ms; delivery / answer ${(d / a).toFixed(2)}x`);
stop();
receiver.close();
process.exit(0);
