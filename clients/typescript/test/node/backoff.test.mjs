// Reconnect delays, unit-level (a scripted fetch and a fake WebSocket stand in for the
// gateway): the backoff starts over only once a connection delivered data, so a stream that
// is accepted (200) and ends at once is retried with growing delays; a WebSocket close 4008
// (slow consumer) reconnects at once at most once per backoff window. Only lower bounds on
// delays are asserted (timers are never early), so a loaded machine cannot fail them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AccountStream } from "../../dist/index.js";
import { fakeFetch, fakeWebSocket, snapshotOf, sse } from "./helpers/fake-transports.mjs";
import { waitFor } from "./helpers/wait.mjs";

const gaps = (times) => times.slice(1).map((t, i) => t - times[i]);

test("an SSE 200 that ends at once is retried with growing delays", async () => {
  const initialMs = 20;
  const { fetch, calls } = fakeFetch(() => ({ status: 200, body: "" }));
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "fetch", fetch, backoff: { initialMs, maxMs: 10_000 } });
  try {
    await waitFor("six connections", 10_000, () => calls.length >= 6);
    const delays = gaps(calls.map((c) => c.at));
    // The k-th delay is half to all of initialMs * 2^k (1 ms of clock rounding allowed).
    delays.forEach((delay, k) => assert.ok(delay >= (initialMs * 2 ** k) / 2 - 1, `delay ${k} was ${delay} ms: ${delays.join(", ")}`));
  } finally {
    stream.close();
  }
});

test("a connection that delivered data starts the backoff over", async () => {
  const initialMs = 20;
  // Five empty streams (the backoff grows to 320-640 ms), one with a snapshot, empty again.
  const { fetch, calls } = fakeFetch((n) => (n === 5 ? { body: sse("snapshot", snapshotOf("a", "ep", 1), "ep-a.1") } : {}));
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "fetch", fetch, backoff: { initialMs, maxMs: 10_000 } });
  try {
    await waitFor("eight connections", 10_000, () => calls.length >= 8);
    const delays = gaps(calls.map((c) => c.at));
    assert.ok(delays[4] >= (initialMs * 2 ** 4) / 2 - 1, `grown before data: ${delays.join(", ")}`);
    assert.ok(delays[5] < (initialMs * 2 ** 5) / 2 - 1, `started over after data: ${delays.join(", ")}`);
    assert.ok(delays[6] >= initialMs - 1, `grows again after an empty stream: ${delays.join(", ")}`);
  } finally {
    stream.close();
  }
});

test("WebSocket close 4008 reconnects at once at most once per backoff window", async () => {
  const initialMs = 300;
  // Every socket acks, sends a snapshot, then is closed as a slow consumer.
  const { WebSocket, opened } = fakeWebSocket((socket) => {
    socket.message({ type: "ack", id: 1 });
    socket.message({ type: "snapshot", id: "ep-1", data: snapshotOf("a", "ep", 1) });
    socket.closeWith(4008);
  });
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "websocket", WebSocket, backoff: { initialMs, maxMs: 60_000 } });
  try {
    await waitFor("four connections", 10_000, () => opened.length >= 4);
    const delays = gaps(opened);
    assert.ok(delays[0] < initialMs / 2, `the first 4008 reconnects at once: ${delays.join(", ")}`);
    assert.ok(delays[1] >= initialMs / 2 - 1 && delays[2] >= initialMs / 2 - 1, `later ones back off: ${delays.join(", ")}`);
  } finally {
    stream.close();
  }
});
