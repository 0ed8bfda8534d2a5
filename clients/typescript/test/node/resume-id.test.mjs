// The id an SSE reconnect resumes from. Over /v1/events it is built from the accounts the
// client holds, never the last id received: that id may name an account whose snapshot never
// arrived, and resuming it would skip that account's snapshot for good. Over one account the
// last id received is right. Unit-level: a scripted fetch stands in for the gateway.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AccountStream } from "../../dist/index.js";
import { fakeFetch, snapshotOf, sse } from "./helpers/fake-transports.mjs";
import { waitFor } from "./helpers/wait.mjs";

const event = (account, seq) => ({ account, seq, type: "Order", data: { id: seq, "updated-at": seq } });

test("/v1/events resumes from the accounts held, leaving out one whose snapshot never came", async () => {
  const { fetch, calls } = fakeFetch((n) => {
    // 0: a's snapshot, under an id that already names b; then the stream drops.
    if (n === 0) return { body: sse("snapshot", snapshotOf("a", "ep", 3), "ep-a.3.b.5") };
    // 1: b's snapshot and an event of a, then a drop again.
    if (n === 1) return { body: sse("snapshot", snapshotOf("b", "ep", 5), "ep-a.3.b.5") + sse("Order", event("a", 4), "ep-a.4.b.5") };
    return { open: true };
  });
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "fetch", fetch, backoff: { initialMs: 1, maxMs: 5 } });
  try {
    await waitFor("three connections", 5000, () => calls.length >= 3);
    assert.equal(calls[0].headers["last-event-id"], undefined, "nothing held: no resume");
    assert.equal(calls[1].headers["last-event-id"], "ep-a.3", "b is not held: left out, so the gateway sends its snapshot");
    assert.equal(calls[2].headers["last-event-id"], "ep-a.4.b.5");
    assert.deepEqual(stream.accountIds.sort(), ["a", "b"]);
  } finally {
    stream.close();
  }
});

test("/v1/events over compact ids resumes from the last one received", async () => {
  const { fetch, calls } = fakeFetch((n) => {
    // 0: snapshots without ids (as over many accounts), then the last one and an event with
    // compact ids; 1: a snapshot without an id, then a drop.
    if (n === 0) return { body: sse("snapshot", snapshotOf("a", "ep", 3)) + sse("snapshot", snapshotOf("b", "ep", 5), "ep-~9~ab") + sse("Order", event("a", 4), "ep-~11~ab") };
    if (n === 1) return { body: sse("reset", snapshotOf("b", "ep", 8)) };
    return { open: true };
  });
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "fetch", fetch, backoff: { initialMs: 1, maxMs: 5 } });
  try {
    await waitFor("three connections", 5000, () => calls.length >= 3);
    assert.equal(calls[1].headers["last-event-id"], "ep-~11~ab", "the compact id, not a position per account");
    assert.equal(calls[2].headers["last-event-id"], "ep-~11~ab", "a reset without an id leaves the compact id standing");
  } finally {
    stream.close();
  }
});

test("/v1/events cut among its first snapshots, which come without ids, starts afresh", async () => {
  const { fetch, calls } = fakeFetch((n) => {
    if (n === 0) return { body: sse("snapshot", snapshotOf("a", "ep", 3)) };
    return { open: true };
  });
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "fetch", fetch, backoff: { initialMs: 1, maxMs: 5 } });
  try {
    await waitFor("two connections", 5000, () => calls.length >= 2);
    assert.deepEqual(stream.accountIds, ["a"]);
    assert.equal(calls[1].headers["last-event-id"], undefined, "no id yet: afresh, not a position per account");
  } finally {
    stream.close();
  }
});

test("/v1/events with held accounts of different epochs resumes from nothing", async () => {
  const { fetch, calls } = fakeFetch((n) => {
    if (n === 0) return { body: sse("snapshot", snapshotOf("a", "old", 3), "old-a.3") + sse("reset", snapshotOf("b", "new", 1), "new-b.1") };
    return { open: true };
  });
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "fetch", fetch, backoff: { initialMs: 1, maxMs: 5 } });
  try {
    await waitFor("two connections", 5000, () => calls.length >= 2);
    assert.equal(calls[1].headers["last-event-id"], undefined);
  } finally {
    stream.close();
  }
});

test("one account resumes from the last id received", async () => {
  const { fetch, calls } = fakeFetch((n) => {
    if (n === 0) return { body: sse("snapshot", snapshotOf("a", "ep", 3), "ep-3") + sse("Order", event("a", 4), "ep-4") };
    return { open: true };
  });
  const stream = new AccountStream({ baseUrl: "http://gateway.test", account: "a", transport: "fetch", fetch, backoff: { initialMs: 1, maxMs: 5 } });
  try {
    await waitFor("two connections", 5000, () => calls.length >= 2);
    assert.match(calls[1].url, /\/v1\/accounts\/a\/events$/);
    assert.equal(calls[1].headers["last-event-id"], "ep-4");
  } finally {
    stream.close();
  }
});
