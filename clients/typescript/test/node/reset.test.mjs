// A forced reset: each client (fetch-SSE one account, fetch-SSE all, WebSocket all) is held
// disconnected (its token provider waits) while the gateway, keeping only 100 events per
// account for resuming (--ring-events 100, the least), publishes more than that (the script
// runs 10 times faster meanwhile). Its resume position is
// then gone, so the gateway answers with `reset`; the client's state must equal GET /snapshot.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CLIENT_KINDS, closeGate, idsOf, openClient, waitForStates } from "./helpers/clients.mjs";
import { accountSeqs, simControl, startGateway } from "./helpers/gateway.mjs";
import { assertInSync, resumeScript } from "./helpers/sync.mjs";
import { waitFor } from "./helpers/wait.mjs";

const RING = 100;
let gateway;
let clients = [];

before(async () => {
  gateway = await startGateway({ rate: 20, args: ["--ring-events", String(RING)] });
});

after(async () => {
  for (const client of clients) client.stream.close();
  await gateway?.stop();
});

test("after a forced reset (resume position out of the ring) client state == GET /snapshot", { timeout: 120_000 }, async () => {
  const ids = [...(await accountSeqs(gateway.url)).keys()];
  clients = CLIENT_KINDS.map((kind) => openClient(gateway, kind));
  for (const client of clients) await waitForStates(client, idsOf(client, ids));
  const gates = clients.map(closeGate);
  for (const client of clients) client.stream.reconnect();
  const held = await accountSeqs(gateway.url);
  await simControl(gateway.sim, "/sim/script", { rate: 200 });
  await waitFor(`more than ${RING} events on every account`, 60_000, async () =>
    [...(await accountSeqs(gateway.url))].every(([id, seq]) => seq > held.get(id) + RING + 4),
  );
  await simControl(gateway.sim, "/sim/script", { rate: 20 });
  for (const gate of gates) gate.release();
  for (const client of clients) {
    await waitFor(`${client.label} to get a reset for every account`, 20_000, () => idsOf(client, ids).every((id) => client.resets.get(id) >= 1));
  }
  for (const client of clients) {
    await assertInSync(gateway, client.label, idsOf(client, ids), (id) => client.stream.state(id));
    assert.deepEqual(client.states.slice(-2), ["reconnecting", "open"], `${client.label}: connection states ${client.states.join(" -> ")}`);
  }
  await resumeScript(gateway);
});
