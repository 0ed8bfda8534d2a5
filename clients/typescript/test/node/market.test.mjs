// The market script runs for $TTGW_CLIENT_SOAK_SECS (default 60, the issue's) at 20 steps/s
// while three clients follow it (fetch-SSE one account, fetch-SSE all, WebSocket all); then
// each client's state must equal GET /snapshot exactly, account by account.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CLIENT_KINDS, idsOf, openClient, waitForStates } from "./helpers/clients.mjs";
import { accountSeqs, startGateway } from "./helpers/gateway.mjs";
import { assertInSync } from "./helpers/sync.mjs";
import { waitFor } from "./helpers/wait.mjs";

const SECONDS = Number(process.env.TTGW_CLIENT_SOAK_SECS ?? 60);
const RATE = 20;

let gateway;
let clients = [];

before(async () => {
  gateway = await startGateway({ rate: RATE });
});

after(async () => {
  for (const client of clients) client.stream.close();
  await gateway?.stop();
});

test(`client state == GET /snapshot after ${SECONDS} s of market script at ${RATE} steps/s`, { timeout: (SECONDS + 90) * 1000 }, async () => {
  const ids = [...(await accountSeqs(gateway.url)).keys()];
  clients = CLIENT_KINDS.map((kind) => openClient(gateway, kind));
  for (const client of clients) await waitForStates(client, idsOf(client, ids));
  const start = await accountSeqs(gateway.url);
  const end = Date.now() + SECONDS * 1000;
  // The scenario's length, not a wait for a condition: the script plays while clients follow.
  await waitFor(`${SECONDS} s of market script`, (SECONDS + 5) * 1000, () => Date.now() >= end);
  const moved = [...(await accountSeqs(gateway.url))].reduce((sum, [id, seq]) => sum + seq - start.get(id), 0);
  assert.ok(moved >= SECONDS * 5, `the script published only ${moved} events in ${SECONDS} s`);
  for (const client of clients) {
    await assertInSync(gateway, client.label, idsOf(client, ids), (id) => client.stream.state(id));
    assert.equal(client.stream.connectionState, "open", `${client.label} is ${client.stream.connectionState}`);
  }
});
