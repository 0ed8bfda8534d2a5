// The clients the Node tests run side by side against one gateway: SSE over fetch for one
// account and for all, and WebSocket for all. Each authenticates with a token provider that
// can be held closed (a "gate"), so a test can keep a client disconnected while the gateway
// moves on.
import { AccountStream } from "../../../dist/index.js";
import { API_KEY } from "./gateway.mjs";
import { waitFor } from "./wait.mjs";

export const CLIENT_KINDS = [
  { label: "fetch-SSE /v1/accounts/individual/events", transport: "fetch", account: "individual" },
  { label: "fetch-SSE /v1/events", transport: "fetch" },
  { label: "WebSocket /v1/ws", transport: "websocket" },
];

/** A client of `kind` on `gateway`, recording its changes, resets and connection states. */
export function openClient(gateway, kind) {
  const client = { kind, label: kind.label, resets: new Map(), states: [], gate: null };
  client.stream = new AccountStream({
    baseUrl: gateway.url,
    transport: kind.transport,
    account: kind.account,
    token: async () => {
      if (client.gate) await client.gate.promise;
      return API_KEY;
    },
    backoff: { initialMs: 50, maxMs: 500 },
  });
  client.stream.on("change", (change) => {
    if (change.kind === "reset") client.resets.set(change.account, (client.resets.get(change.account) ?? 0) + 1);
  });
  client.stream.on("connection", (state) => client.states.push(state));
  return client;
}

/** The account ids a client follows, given every id the gateway serves. */
export function idsOf(client, allIds) {
  return client.kind.account ? [client.kind.account] : allIds;
}

/** Holds the client's next (re)connect until `release()`. */
export function closeGate(client) {
  let release;
  const promise = new Promise((resolve) => (release = resolve));
  client.gate = { promise, release: () => { client.gate = null; release(); } };
  return client.gate;
}

export async function waitForStates(client, ids, deadlineMs = 20_000) {
  await waitFor(`${client.label} to hold every account`, deadlineMs, () => ids.every((id) => client.stream.state(id)));
}
