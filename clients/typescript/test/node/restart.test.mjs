// A gateway restart: clients follow gateway A; A stops and gateway B starts on the same port
// with another market seed (a new epoch, other state). The clients reconnect with their old
// positions, get `reset`, and must then equal B's GET /snapshot exactly, while B's script runs.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { CLIENT_KINDS, idsOf, openClient, waitForStates } from "./helpers/clients.mjs";
import { accountSeqs, startGateway } from "./helpers/gateway.mjs";
import { assertInSync } from "./helpers/sync.mjs";
import { waitFor } from "./helpers/wait.mjs";

let gateway;
let clients = [];

after(async () => {
  for (const client of clients) client.stream.close();
  await gateway?.stop();
});

test("after a gateway restart client state == the new gateway's GET /snapshot", { timeout: 120_000 }, async () => {
  gateway = await startGateway({ rate: 20, seed: 42 });
  const ids = [...(await accountSeqs(gateway.url)).keys()];
  clients = CLIENT_KINDS.map((kind) => openClient(gateway, kind));
  for (const client of clients) await waitForStates(client, idsOf(client, ids));
  const before = await Promise.all(clients.map((client) => assertInSync(gateway, client.label, idsOf(client, ids), (id) => client.stream.state(id))));
  const oldEpoch = before[0].get(ids[0]).epoch;
  await gateway.stop();
  gateway = await startGateway({ port: gateway.port, rate: 20, seed: 7 });
  for (const client of clients) {
    await waitFor(`${client.label} to get a reset for every account`, 30_000, () => idsOf(client, ids).every((id) => client.resets.get(id) >= 1));
  }
  const start = await accountSeqs(gateway.url);
  await waitFor("the new gateway's script to move every account", 30_000, async () =>
    [...(await accountSeqs(gateway.url))].every(([id, seq]) => seq >= start.get(id) + 10),
  );
  for (const client of clients) {
    const after = await assertInSync(gateway, client.label, idsOf(client, ids), (id) => client.stream.state(id));
    assert.notEqual(after.get(idsOf(client, ids)[0]).epoch, oldEpoch, "the restarted gateway has a new epoch");
    assert.ok(client.states.includes("reconnecting"), `${client.label}: connection states ${client.states.join(" -> ")}`);
    assert.equal(client.stream.connectionState, "open");
  }
});
