// Short-lived tokens (JWT, HS256 minted here) over the real gateway (`--jwt-secret`, leeway 0,
// WebSocket notice 2 s before exp): each client's token provider hands out tokens living
// ~4 s while the market script runs ~12 s, so every client outlives several tokens. Then the
// state must equal GET /snapshot exactly, with no reset (every resume worked, no gap), the
// provider asked again and again; fetch-SSE must have reconnected ahead of each exp (never cut
// by the gateway's "token expired"), the WebSocket must have refreshed in place (its first
// socket outlived its first token).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AccountStream } from "../../dist/index.js";
import { accountSeqs, startGateway } from "./helpers/gateway.mjs";
import { jwtSecret, tokenFor } from "./helpers/jwt.mjs";
import { assertInSync, resumeScript } from "./helpers/sync.mjs";
import { waitFor } from "./helpers/wait.mjs";

const LIFETIME_SECS = 4;
const RUN_SECS = 12;
const secret = jwtSecret();
let gateway;
const streams = [];

before(async () => {
  gateway = await startGateway({ rate: 20, args: ["--jwt-secret", secret, "--jwt-leeway-secs", "0", "--jwt-expiry-notice-secs", "2"] });
});

after(async () => {
  for (const stream of streams) stream.close();
  await gateway?.stop();
});

/** A client with a counting token provider; `wrap` counts its connections. */
function tokenClient(options) {
  const client = { tokens: [], resets: 0, errors: [] };
  client.stream = new AccountStream({
    baseUrl: gateway.url,
    backoff: { initialMs: 50, maxMs: 500 },
    token: () => {
      const token = tokenFor(secret, LIFETIME_SECS);
      client.tokens.push(token);
      return token;
    },
    ...options,
  });
  client.stream.on("change", (change) => change.kind === "reset" && client.resets++);
  client.stream.on("error", (error) => client.errors.push(error.message));
  streams.push(client.stream);
  return client;
}

/** Runs the script for RUN_SECS (the scenario's length: tokens expire meanwhile), then
 * requires `client` to equal GET /snapshot for `ids`, without a reset, having used new tokens. */
async function followThroughExpiries(label, client, ids) {
  await waitFor(`${label} to hold every account`, 20_000, () => ids.every((id) => client.stream.state(id)));
  const end = Date.now() + RUN_SECS * 1000;
  await waitFor(`${RUN_SECS} s of market script`, (RUN_SECS + 5) * 1000, () => Date.now() >= end);
  await assertInSync(gateway, label, ids, (id) => client.stream.state(id));
  await resumeScript(gateway);
  assert.equal(client.resets, 0, `${label}: a reset came, so a resume failed`);
  assert.ok(client.tokens.length >= RUN_SECS / LIFETIME_SECS, `${label}: the provider was asked only ${client.tokens.length} times`);
  assert.equal(client.stream.connectionState, "open");
}

const exp = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url")).exp;

for (const account of ["individual", undefined]) {
  const label = `fetch-SSE ${account ? `/v1/accounts/${account}/events` : "/v1/events"}`;
  test(`${label}: reconnects with a fresh token before each exp, no gap`, { timeout: 60_000 }, async () => {
    const ids = account ? [account] : [...(await accountSeqs(gateway.url)).keys()];
    const requests = [];
    const fetchCounting = (url, init) => {
      if (String(url).includes("/events")) requests.push(init.headers["last-event-id"]);
      return fetch(url, init);
    };
    const client = tokenClient({ transport: "fetch", account, fetch: fetchCounting });
    await followThroughExpiries(label, client, ids);
    assert.ok(requests.length >= RUN_SECS / LIFETIME_SECS, `${label}: only ${requests.length} connections in ${RUN_SECS} s of ${LIFETIME_SECS} s tokens`);
    assert.ok(requests.slice(1).every((id) => id !== undefined), `${label}: a reconnect without a resume id`);
    const cut = client.errors.filter((message) => message.includes("token expired"));
    assert.deepEqual(cut, [], `${label}: the gateway ended a stream at exp: the client did not reconnect ahead`);
  });
}

test("WebSocket /v1/ws: refreshes its token in place before each exp, no gap", { timeout: 60_000 }, async () => {
  const ids = [...(await accountSeqs(gateway.url)).keys()];
  const sockets = [];
  const refreshes = [];
  class CountingWebSocket extends WebSocket {
    constructor(url) {
      super(url);
      this.token = new URL(url).searchParams.get("access_token");
      this.closedAt = undefined;
      sockets.push(this);
      this.addEventListener("close", () => (this.closedAt = Date.now()));
    }
    send(text) {
      if (JSON.parse(text).op === "refresh") refreshes.push(Date.now());
      super.send(text);
    }
  }
  const client = tokenClient({ transport: "websocket", WebSocket: CountingWebSocket });
  await followThroughExpiries("WebSocket /v1/ws", client, ids);
  assert.ok(refreshes.length >= 2, `only ${refreshes.length} refresh messages sent`);
  const first = sockets[0];
  const firstExpMs = exp(first.token) * 1000;
  assert.ok((first.closedAt ?? Date.now()) > firstExpMs + 1000, `the first socket closed at ${first.closedAt}, by its token's exp ${firstExpMs}: no refresh took`);
  assert.ok(client.stream.tokenExpiresAt > exp(first.token), "the gateway's refresh ack moved the token's expiry on");
});
