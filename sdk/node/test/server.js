// Starts a real `stripemeter serve` over a temporary landing, warehouse,
// snapshot and Dagster instance, with bearer keys made at run time.
import { spawn, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const PYTHON = process.env.STRIPEMETER_PYTHON ?? join(REPO, ".venv/bin/python");

function freePort() {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => done(port));
    });
    srv.on("error", fail);
  });
}

export async function startServer() {
  const root = mkdtempSync(join(tmpdir(), "stripemeter-node-"));
  const keys = { acme: "smk_" + randomBytes(16).toString("hex"), globex: "smk_" + randomBytes(16).toString("hex") };
  const sha = (k) => createHash("sha256").update(k).digest("hex");
  const config = [
    "metrics: {api_calls: {aggregation: sum}, storage_gb: {aggregation: max}}",
    "prices: {api_calls: {model: flat, currency: USD, unitPrice: '0.01'}}",
    "api:",
    "  rate_limit_per_second: 1000",
    "  rate_limit_burst: 2000",
    "  keys:",
    ...Object.entries(keys).map(([tenant, key]) => `    - {sha256: "${sha(key)}", tenants: [${tenant}]}`),
  ].join("\n");
  writeFileSync(join(root, "stripemeter.yaml"), config + "\n");
  mkdirSync(join(root, "landing"));
  mkdirSync(join(root, "dagster_home"));
  copyFileSync(join(REPO, "data/config/dagster.yaml"), join(root, "dagster_home/dagster.yaml"));
  const env = {
    ...process.env,
    STRIPEMETER_LANDING: join(root, "landing"),
    STRIPEMETER_WAREHOUSE: join(root, "warehouse.duckdb"),
    STRIPEMETER_ANALYTICS: join(root, "analytics.duckdb"),
    STRIPEMETER_CONFIG: join(root, "stripemeter.yaml"),
    STRIPEMETER_SETTLE_SECONDS: "0",
    STRIPEMETER_NOW: "2025-03-20T12:00:00Z",
    DAGSTER_HOME: join(root, "dagster_home"),
  };
  for (const name of ["STRIPE_API_KEY", "STRIPE_TEST_API_KEY", "STRIPE_API_BASE"]) delete env[name];
  const port = await freePort();
  const child = spawn(PYTHON, ["-m", "stripemeter_assets.cli", "serve", "--port", String(port)], {
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(url + "/health/live")).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("server did not start in 60 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    keys,
    landingFiles: () => readdirSync(join(root, "landing")).filter((n) => n.endsWith(".jsonl")),
    // The headless catch-up (ingest, counters, projection, snapshot) the batch side runs.
    catchUp: () => execFileSync(PYTHON, ["-m", "stripemeter_assets.cli", "catch-up"], { env, stdio: "pipe" }),
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
