// Headless Chromium (puppeteer-core, the system's browser: $CHROMIUM or /usr/bin/chromium):
// a page served by a small local server loads the bundle the gateway serves
// (src/api/dashboard/client.js) and follows every account over EventSource, with the key as
// `?access_token=`. Its state must equal GET /snapshot after $TTGW_CLIENT_SOAK_SECS (60) s of
// market script at 20 steps/s, after a forced reset, and after a gateway restart.
// Without Chromium: fails when $CI is set, else skipped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { accountSeqs, API_KEY, simControl, startGateway } from "../node/helpers/gateway.mjs";
import { assertInSync } from "../node/helpers/sync.mjs";
import { waitFor } from "../node/helpers/wait.mjs";
import { onCleanup, openPage, pageResets, pageServer, pageState, skip } from "./helpers.mjs";

const SECONDS = Number(process.env.TTGW_CLIENT_SOAK_SECS ?? 60);
const RING = 100;

test("Chromium: the bundle's state == GET /snapshot after the market script, a forced reset and a restart", { skip, timeout: (SECONDS + 240) * 1000 }, async () => {
  const origin = await pageServer();
  const flags = ["--cors-origins", origin, "--ring-events", String(RING)];
  let gateway = await startGateway({ rate: 20, args: flags });
  onCleanup(() => gateway.stop());
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
