// Upstream status per account: the simulator drops the gateway's streamer socket; each client
// (fetch-SSE all, WebSocket all) must report the status events the gateway publishes (a state
// other than `live`, then `live` again), and end with the upstream state and its `since`
// that GET /v1/accounts shows.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CLIENT_KINDS, idsOf, openClient, waitForStates } from "./helpers/clients.mjs";
import { getJson, simControl, startGateway } from "./helpers/gateway.mjs";
import { waitFor } from "./helpers/wait.mjs";

let gateway;
let clients = [];

before(async () => {
  gateway = await startGateway({ rate: 2 });
});

after(async () => {
  for (const client of clients) client.stream.close();
  await gateway?.stop();
});

test("upstream status events per account reach every client", { timeout: 60_000 }, async () => {
  const { accounts } = await getJson(gateway.url, "/v1/accounts");
  const ids = accounts.map((a) => a.id);
  clients = CLIENT_KINDS.filter((kind) => !kind.account).map((kind) => openClient(gateway, kind));
  const seen = clients.map(() => new Map(ids.map((id) => [id, []])));
  clients.forEach((client, i) => client.stream.on("status", ({ account, status }) => seen[i].get(account).push(status.state)));
  for (const client of clients) await waitForStates(client, idsOf(client, ids));
  await simControl(gateway.sim, "/sim/faults/drop");
  let upstream;
  await waitFor("every client to see every account leave and regain `live`", 30_000, async () => {
    upstream = new Map((await getJson(gateway.url, "/v1/accounts")).accounts.map((a) => [a.id, a.upstream]));
    return clients.every((client, i) =>
      ids.every((id) => {
        const states = seen[i].get(id);
        return states.some((s) => s !== "live") && client.stream.upstream(id)?.state === "live" && upstream.get(id).state === "live";
      }),
    );
  });
  for (const client of clients) {
    for (const id of ids) {
      const ours = client.stream.upstream(id);
      assert.equal(ours.since, upstream.get(id).since, `${client.label}, ${id}: upstream 'since' differs from GET /v1/accounts`);
      assert.ok(ours.reconnects >= 1, `${client.label}, ${id}: the status event counts the reconnect`);
    }
  }
});
