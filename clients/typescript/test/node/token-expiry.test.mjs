// Token handling at the unit level (a scripted fetch and a fake WebSocket stand in for the
// gateway): reading `exp` from a JWT without verifying it, the refresh margin, one immediate
// retry with a fresh token after a 401 `token_*` (then the backoff), and over WebSocket a
// `refresh` answering `token_expiring`, its ack, a refusal reported as an error, and close
// 4001 reconnecting at once with a fresh token and the resume positions.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AccountStream, tokenExpiry } from "../../dist/index.js";
import { refreshDelay } from "../../dist/token-expiry.js";
import { fakeFetch, fakeWebSocket, snapshotOf, sse } from "./helpers/fake-transports.mjs";
import { signJwt } from "./helpers/jwt.mjs";
import { waitFor } from "./helpers/wait.mjs";

const SECRET = "x".repeat(32);

test("tokenExpiry reads a JWT's exp without verifying, and nothing else", () => {
  assert.equal(tokenExpiry(signJwt(SECRET, { exp: 1700000000, accounts: ["*"] })), 1700000000);
  // base64url payloads with - and _ (a "?>" and "~~" in the JSON text) decode too.
  assert.equal(tokenExpiry(signJwt(SECRET, { exp: 5, note: "?>?>~~~" })), 5);
  assert.equal(tokenExpiry(signJwt(SECRET, { accounts: ["*"] })), undefined, "no exp");
  assert.equal(tokenExpiry(signJwt(SECRET, { exp: "5" })), undefined, "exp not a number");
  assert.equal(tokenExpiry("client-tests-key"), undefined, "an API key");
  assert.equal(tokenExpiry("a.b.c"), undefined, "not JSON");
  assert.equal(tokenExpiry("a.!!.c"), undefined, "not base64url");
  assert.equal(tokenExpiry(undefined), undefined);
});

test("refreshDelay: min(30 s, 10% of the remaining life), at least 1 s, or the margin given", () => {
  const now = 1_000_000_000;
  const at = (secs) => now / 1000 + secs;
  assert.equal(refreshDelay(at(3600), now), 3600_000 - 30_000, "an hour: 30 s ahead");
  assert.equal(refreshDelay(at(100), now), 90_000, "100 s: 10 s ahead");
  assert.equal(refreshDelay(at(4), now), 3_000, "4 s: 1 s ahead");
  assert.equal(refreshDelay(at(100), now, 5_000), 95_000, "a margin given");
  assert.equal(refreshDelay(at(1), now), undefined, "too short-lived to refresh ahead");
  assert.equal(refreshDelay(at(-5), now), undefined, "expired");
});

test("a 401 token_* asks the provider again at once, once; then the backoff", async () => {
  // A long first backoff step (1.5-3 s), so "at once" has a wide margin on a loaded machine.
  const initialMs = 3_000;
  const refused = { status: 401, body: JSON.stringify({ error: { code: "token_expired", message: "the token expired" } }) };
  const { fetch, calls } = fakeFetch(() => refused);
  let asked = 0;
  const stream = new AccountStream({
    baseUrl: "http://gateway.test",
    transport: "fetch",
    fetch,
    token: () => `token-${++asked}`,
    backoff: { initialMs, maxMs: 10_000 },
  });
  try {
    await waitFor("three connections", 15_000, () => calls.length >= 3);
    const [first, second, third] = calls;
    assert.ok(second.at - first.at < initialMs / 2, `the retry after the first 401 waited ${second.at - first.at} ms`);
    assert.ok(third.at - second.at >= initialMs / 2 - 1, `the second 401 was retried after only ${third.at - second.at} ms`);
    assert.deepEqual(calls.map((c) => c.headers.authorization), ["Bearer token-1", "Bearer token-2", "Bearer token-3"]);
  } finally {
    stream.close();
  }
});

test("WebSocket: token_expiring -> refresh with a fresh token; ack notes the new exp; a refusal is an error", async () => {
  const exp = Math.floor(Date.now() / 1000) + 60;
  let issued = 0;
  const { WebSocket, sockets } = fakeWebSocket((socket) => {
    socket.message({ type: "ack", id: 1, op: "subscribe" });
    socket.message({ type: "snapshot", id: "ep-1", data: snapshotOf("a", "ep", 1) });
    socket.message({ type: "token_expiring", expires_at: exp });
  });
  const errors = [];
  const stream = new AccountStream({
    baseUrl: "http://gateway.test",
    transport: "websocket",
    WebSocket,
    token: () => signJwt(SECRET, { exp: exp + 60 * issued++, accounts: ["*"] }),
  });
  stream.on("error", (error) => errors.push(error.message));
  try {
    const socket = await waitFor("a refresh", 5_000, () => sockets[0]?.sent.find((m) => m.op === "refresh") && sockets[0]);
    const refresh = socket.sent.find((m) => m.op === "refresh");
    assert.equal(tokenExpiry(refresh.token), exp + 60, "the refresh carries the provider's next token");
    assert.equal(stream.tokenExpiresAt, exp);
    socket.message({ type: "ack", id: refresh.id, op: "refresh", expires_at: exp + 60 });
    assert.equal(stream.tokenExpiresAt, exp + 60);
    socket.message({ type: "error", id: refresh.id, code: "token_scope_too_narrow", message: "narrower" });
    assert.ok(errors.some((m) => m.includes("token_scope_too_narrow")), `errors: ${errors.join("; ")}`);
    assert.equal(sockets.length, 1, "the socket stays");
    assert.equal(stream.connectionState, "open");
  } finally {
    stream.close();
  }
});

test("WebSocket: a token no newer than the expiring one is not sent", async () => {
  const exp = Math.floor(Date.now() / 1000) + 60;
  const { WebSocket, sockets } = fakeWebSocket((socket) => {
    socket.message({ type: "ack", id: 1, op: "subscribe" });
    socket.message({ type: "token_expiring", expires_at: exp });
  });
  const errors = [];
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "websocket", WebSocket, token: () => signJwt(SECRET, { exp, accounts: ["*"] }) });
  stream.on("error", (error) => errors.push(error.message));
  try {
    await waitFor("the error", 5_000, () => errors.some((m) => m.includes("no later")));
    assert.deepEqual(sockets[0].sent.map((m) => m.op), ["subscribe"]);
  } finally {
    stream.close();
  }
});

test("WebSocket close 4001 reconnects at once with a fresh token and the resume positions", async () => {
  const initialMs = 2_000;
  let issued = 0;
  const { WebSocket, sockets, opened } = fakeWebSocket((socket, n) => {
    socket.message({ type: "ack", id: 1, op: "subscribe" });
    if (n === 0) {
      socket.message({ type: "snapshot", id: "ep-4", data: snapshotOf("a", "ep", 4) });
      socket.closeWith(4001);
    }
  });
  const stream = new AccountStream({
    baseUrl: "http://gateway.test",
    transport: "websocket",
    WebSocket,
    token: () => `token-${++issued}`,
    backoff: { initialMs, maxMs: 10_000 },
  });
  try {
    await waitFor("a second socket, subscribed", 5_000, () => sockets[1]?.subscribe);
    assert.ok(opened[1] - opened[0] < initialMs / 2, `waited ${opened[1] - opened[0]} ms`);
    assert.equal(new URL(sockets[1].url).searchParams.get("access_token"), "token-2");
    assert.deepEqual(sockets[1].subscribe.resume, { a: "ep-4" });
  } finally {
    stream.close();
  }
});
