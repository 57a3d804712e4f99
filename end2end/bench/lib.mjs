// What the page benchmarks share: the release binary, git on a bare
// repository, a server started on a configuration, and timed GETs.
import { execFileSync, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import * as path from "node:path";
import { chromium } from "@playwright/test";

export const root = path.resolve(import.meta.dirname, "../..");
export const bin = path.join(root, "target/release/envline");

/** Runs git on a bare repository and returns its output, trimmed. */
export const git = (gitDir, ...args) =>
  execFileSync("git", ["--git-dir", gitDir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];

/**
 * Serves `config` on a free port with an admin token (`extra`: more
 * environment variables); returns the base URL, the token and a `stop` that
 * also removes `dir`.
 */
export async function startServer(config, dir, extra = {}) {
  const port = 3190 + Math.floor(Math.random() * 500);
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, ENVLINE_CONFIG: config, ENVLINE_SERVER_LISTEN: `127.0.0.1:${port}`, ENVLINE_LOG: "warn",
    ENVLINE_SERVER_SITE_ROOT: path.join(root, "target/site"), ...extra };
  execFileSync(bin, ["user", "add", "bench", "--role", "admin"], { env });
  const token = execFileSync(bin, ["token", "create", "--user", "bench"], { env, encoding: "utf8" }).trim();
  const server = spawn(bin, ["serve"], { env, stdio: "inherit" });
  const stop = () => { server.kill(); rmSync(dir, { recursive: true, force: true }); };
  process.on("exit", stop);
  for (let i = 0; i < 600; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, token, stop };
}

/** GETs `url` `n` times; the median and p90 in ms, and the body's size. */
export async function timeGet(url, headers, n) {
  const times = [];
  let size = 0;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = await fetch(url, { headers });
    const body = await r.arrayBuffer();
    times.push(performance.now() - t);
    size = body.byteLength;
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
  }
  return { median: median(times), p90: p90(times), size };
}

/** The machine's Chromium, headless, without the background traffic a closed network refuses. */
export function launchChromium() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
