// Starts the real gateway binary on the embedded simulator as a child process (loopback,
// port 0 or a given one), waits for its startup lines and /readyz with deadlines, and stops
// it. The binary: $TTGW_BIN, else ../../target/debug/tastytrade-gateway (scripts/ensure-gateway.mjs
// builds it when missing).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "./wait.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, "..", "..", "..", "..", "..");
export const API_KEY = "client-tests-key";

export function gatewayBinary() {
  const bin = process.env.TTGW_BIN ?? path.join(REPO_ROOT, "target", "debug", "tastytrade-gateway");
  if (!existsSync(bin)) throw new Error(`no gateway binary at ${bin}: run scripts/ensure-gateway.mjs or set TTGW_BIN`);
  return bin;
}

const SERVING = /tastytrade-gateway is serving .* on (http:\/\/\S+)/;
const SIMULATOR = /demo mode: embedded tastytrade simulator at (http:\/\/\S+)/;

/** Reads the child's stdout until both startup lines came (or the deadline passed). */
function startupLines(child, deadlineMs) {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error("the gateway printed no startup lines in time")), deadlineMs);
    child.stdout.on("data", (chunk) => {
      text += chunk;
      const url = SERVING.exec(text)?.[1];
      const sim = SIMULATOR.exec(text)?.[1];
      if (url && sim) {
        clearTimeout(timer);
        resolve({ url, sim });
      }
    });
    child.once("exit", (code) => reject(new Error(`the gateway exited at startup (${code})`)));
  });
}

/**
 * Starts a gateway. Options: `port` (0), `rate` (script steps/s), `seed`, `args` (more flags).
 * Returns { url, sim, port, stop() } and an `api` helper for JSON requests with the test key.
 */
export async function startGateway({ port = 0, rate = 20, seed = 42, args = [] } = {}) {
  const child = spawn(
    gatewayBinary(),
    ["--listen", `127.0.0.1:${port}`, "--sim-rate", String(rate), "--sim-seed", String(seed), "--api-key", `tests:${API_KEY}:*`, ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } },
  );
  child.stdout.setEncoding("utf8");
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-2000)));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    const { url, sim } = await startupLines(child, 30_000);
    await waitFor("the gateway's /readyz", 30_000, async () => (await fetch(`${url}/readyz`)).ok);
    return { url, sim, port: Number(new URL(url).port), stop: () => stop(child, exited) };
  } catch (error) {
    await stop(child, exited);
    throw new Error(`${error.message}; its stderr ends: ${stderr.slice(-500)}`);
  }
}

async function stop(child, exited) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** GET a gateway JSON route with the test key. */
export async function getJson(base, route) {
  const response = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${API_KEY}` } });
  if (!response.ok) throw new Error(`GET ${route}: ${response.status}`);
  return response.json();
}

/** POST to the simulator's control API. */
export async function simControl(sim, route, body = {}) {
  const response = await fetch(`${sim}${route}`, { method: "POST", body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`POST ${route}: ${response.status}`);
  return response.json();
}

/** The public ids and seqs of every account (`GET /v1/accounts`). */
export async function accountSeqs(base) {
  const { accounts } = await getJson(base, "/v1/accounts");
  return new Map(accounts.map((a) => [a.id, a.seq]));
}
