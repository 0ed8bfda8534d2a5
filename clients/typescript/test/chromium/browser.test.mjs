// Headless Chromium (puppeteer-core, the system's browser: $CHROMIUM or /usr/bin/chromium):
// a page served by a small local server loads the bundle the gateway serves
// (src/api/dashboard/client.js) and follows every account over EventSource, with the key as
// `?access_token=`. Its state must equal GET /snapshot after $TTGW_CLIENT_SOAK_SECS (60) s of
// market script at 20 steps/s, after a forced reset, and after a gateway restart.
// Without Chromium: fails when $CI is set, else skipped.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { accountSeqs, API_KEY, simControl, startGateway } from "../node/helpers/gateway.mjs";
import { assertInSync } from "../node/helpers/sync.mjs";
import { waitFor } from "../node/helpers/wait.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const BUNDLE = path.resolve(here, "..", "..", "..", "..", "src", "api", "dashboard", "client.js");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SECONDS = Number(process.env.TTGW_CLIENT_SOAK_SECS ?? 60);
const RING = 100;

const missing = !existsSync(CHROMIUM);
if (missing && process.env.CI) throw new Error(`no Chromium at ${CHROMIUM} (CI is set): apt-get install chromium, or set CHROMIUM`);
const skip = missing ? `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM) to run this test` : false;

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Serves the test page and the bundle on a loopback port. */
async function pageServer() {
  const files = { "/": ["text/html", path.join(here, "page.html")], "/client.js": ["text/javascript", BUNDLE] };
  const server = createServer((request, response) => {
    const file = files[request.url];
    if (!file) return response.writeHead(404).end();
    response.writeHead(200, { "content-type": file[0] }).end(readFileSync(file[1]));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

async function openPage(origin) {
  const { default: puppeteer } = await import("puppeteer-core");
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--headless=new"] });
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const failures = [];
  page.on("pageerror", (error) => failures.push(error.message));
  await page.goto(origin);
  await page.waitForFunction(() => document.title === "ready", { timeout: 20_000 });
  return { page, failures };
}

const pageState = (page) => (id) => page.evaluate((id) => window.testClient.stream.state(id) ?? null, id);
const pageResets = (page) => page.evaluate(() => window.testClient.resets);

test("Chromium: the bundle's state == GET /snapshot after the market script, a forced reset and a restart", { skip, timeout: (SECONDS + 240) * 1000 }, async () => {
  const origin = await pageServer();
  const flags = ["--cors-origins", origin, "--ring-events", String(RING)];
  let gateway = await startGateway({ rate: 20, args: flags });
  cleanups.push(() => gateway.stop());
  const ids = [...(await accountSeqs(gateway.url)).keys()];
  const { page, failures } = await openPage(origin);
  await page.evaluate((url, key) => window.testClient.start(url, key), gateway.url, API_KEY);
  await waitFor("the page to hold every account", 20_000, async () => (await Promise.all(ids.map(pageState(page)))).every(Boolean));

  // 1. The market script.
  const end = Date.now() + SECONDS * 1000;
  await waitFor(`${SECONDS} s of market script`, (SECONDS + 5) * 1000, () => Date.now() >= end);
  await assertInSync(gateway, "Chromium, after the market script", ids, pageState(page));

  // 2. A forced reset: held disconnected while more than the ring's events are published.
  await simControl(gateway.sim, "/sim/script", { paused: false, rate: 200 });
  const held = await accountSeqs(gateway.url);
  await page.evaluate(() => window.testClient.holdReconnects());
  await waitFor(`more than ${RING} events on every account`, 60_000, async () =>
    [...(await accountSeqs(gateway.url))].every(([id, seq]) => seq > held.get(id) + RING + 4),
  );
  await simControl(gateway.sim, "/sim/script", { rate: 20 });
  await page.evaluate(() => window.testClient.releaseReconnects());
  await waitFor("a reset of every account in the page", 20_000, async () => {
    const resets = await pageResets(page);
    return ids.every((id) => resets[id] >= 1);
  });
  await assertInSync(gateway, "Chromium, after a forced reset", ids, pageState(page));

  // 3. A restart: a new gateway on the same port, another seed, a new epoch.
  const resetsBefore = await pageResets(page);
  await gateway.stop();
  gateway = await startGateway({ port: gateway.port, rate: 20, seed: 7, args: flags });
  await waitFor("a reset of every account after the restart", 30_000, async () => {
    const resets = await pageResets(page);
    return ids.every((id) => resets[id] > resetsBefore[id]);
  });
  const start = await accountSeqs(gateway.url);
  await waitFor("the new gateway's script to move every account", 30_000, async () =>
    [...(await accountSeqs(gateway.url))].every(([id, seq]) => seq >= start.get(id) + 10),
  );
  await assertInSync(gateway, "Chromium, after a gateway restart", ids, pageState(page));
  assert.deepEqual(failures, [], "errors in the page");
});
