// The merge rules against the Rust state on random market scripts: for each seed (random ones,
// printed, or $TTGW_CLIENT_SEEDS="1,2,3"), a gateway runs its script at 100 steps/s until
// every account published $TTGW_CLIENT_SEED_EVENTS (300) events, while fetch-SSE and WebSocket
// clients follow all accounts; then each client's state must equal GET /snapshot exactly.
import { after, test } from "node:test";
import { CLIENT_KINDS, idsOf, openClient, waitForStates } from "./helpers/clients.mjs";
import { accountSeqs, startGateway } from "./helpers/gateway.mjs";
import { assertInSync } from "./helpers/sync.mjs";
import { waitFor } from "./helpers/wait.mjs";

const EVENTS = Number(process.env.TTGW_CLIENT_SEED_EVENTS ?? 300);
const SEEDS = process.env.TTGW_CLIENT_SEEDS
  ? process.env.TTGW_CLIENT_SEEDS.split(",").map(Number)
  : Array.from({ length: 3 }, () => Math.floor(Math.random() * 2 ** 32));

const running = [];

after(async () => {
  for (const { clients, gateway } of running) {
    for (const client of clients) client.stream.close();
    await gateway.stop();
  }
});

async function runSeed(seed) {
  const gateway = await startGateway({ rate: 100, seed });
  const run = { gateway, clients: [] };
  running.push(run);
  const ids = [...(await accountSeqs(gateway.url)).keys()];
  run.clients = CLIENT_KINDS.map((kind) => openClient(gateway, kind));
  for (const client of run.clients) await waitForStates(client, idsOf(client, ids));
  const start = await accountSeqs(gateway.url);
  await waitFor(`${EVENTS} events per account (seed ${seed})`, 120_000, async () =>
    [...(await accountSeqs(gateway.url))].every(([id, seq]) => seq >= start.get(id) + EVENTS),
  );
  for (const client of run.clients) {
    await assertInSync(gateway, `seed ${seed}, ${client.label}`, idsOf(client, ids), (id) => client.stream.state(id));
  }
}

test(`client state == GET /snapshot on random market scripts (seeds ${SEEDS.join(", ")}; reproduce with TTGW_CLIENT_SEEDS)`, { timeout: 240_000 }, async () => {
  await Promise.all(SEEDS.map(runSeed));
});
