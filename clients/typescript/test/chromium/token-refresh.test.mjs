// Headless Chromium, EventSource with short-lived tokens: the page's provider POSTs to its
// own server, which mints HS256 tokens living 4 s (node:crypto) for a gateway started with
// `--jwt-secret` (leeway 0). Through 12 s of market script the bundle must reconnect ahead of
// every `exp` (no stream ended by the gateway, no error), then equal GET /snapshot exactly,
// with no reset, having asked for a token again and again.
// Without Chromium: fails when $CI is set, else skipped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { accountSeqs, startGateway } from "../node/helpers/gateway.mjs";
import { jwtSecret, tokenFor } from "../node/helpers/jwt.mjs";
import { assertInSync } from "../node/helpers/sync.mjs";
import { waitFor } from "../node/helpers/wait.mjs";
import { onCleanup, openPage, pageResets, pageServer, pageState, skip } from "./helpers.mjs";

const LIFETIME_SECS = 4;
const RUN_SECS = 12;

test("Chromium: EventSource with 4 s tokens reconnects ahead of each exp, state == GET /snapshot", { skip, timeout: 120_000 }, async () => {
  const secret = jwtSecret();
  let issued = 0;
  const origin = await pageServer({
    "/token": (request, response) => {
      issued++;
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: tokenFor(secret, LIFETIME_SECS) }));
    },
  });
  const gateway = await startGateway({ rate: 20, args: ["--cors-origins", origin, "--jwt-secret", secret, "--jwt-leeway-secs", "0"] });
  onCleanup(() => gateway.stop());
  const ids = [...(await accountSeqs(gateway.url)).keys()];
  const { page, failures } = await openPage(origin);
  await page.evaluate((url) => window.testClient.startWithTokens(url, "/token"), gateway.url);
  await waitFor("the page to hold every account", 20_000, async () => (await Promise.all(ids.map(pageState(page)))).every(Boolean));
  const end = Date.now() + RUN_SECS * 1000;
  // The scenario's length, not a wait for a condition: tokens expire while the script plays.
  await waitFor(`${RUN_SECS} s of market script`, (RUN_SECS + 5) * 1000, () => Date.now() >= end);
  await assertInSync(gateway, "Chromium EventSource with tokens", ids, pageState(page));
  assert.ok(issued >= RUN_SECS / LIFETIME_SECS, `the page asked for only ${issued} tokens`);
  assert.deepEqual(Object.values(await pageResets(page)), [], "a reset came: a resume failed");
  assert.deepEqual(await page.evaluate(() => window.testClient.errors), [], "a stream ended (at exp?) or failed");
  assert.deepEqual(failures, [], "errors in the page");
});
