// The changes() queue is bounded: a reader that falls behind loses the oldest changes, which
// are counted (`dropped`) and reported once per overflow as an `error`, instead of the queue
// growing without end.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AccountStream } from "../../dist/index.js";
import { PushIterator } from "../../dist/queue.js";
import { fakeFetch, snapshotOf, sse } from "./helpers/fake-transports.mjs";
import { waitFor } from "./helpers/wait.mjs";

test("a full queue drops the oldest, counts them and tells once per overflow", async () => {
  const overflows = [];
  const queue = new PushIterator({ onReturn: () => {}, limit: 3, onOverflow: (n) => overflows.push(n) });
  for (const n of [1, 2, 3, 4, 5]) queue.push(n);
  assert.equal(queue.dropped, 2);
  assert.deepEqual(overflows, [1], "told once");
  const read = [];
  for (let i = 0; i < 3; i++) read.push((await queue.next()).value);
  assert.deepEqual(read, [3, 4, 5]);
  for (const n of [6, 7, 8, 9]) queue.push(n);
  assert.equal(queue.dropped, 3);
  assert.deepEqual(overflows, [1, 3], "told again after the reader caught up");
});

test("the queue limit defaults to 10,000", () => {
  const queue = new PushIterator({ onReturn: () => {} });
  for (let n = 0; n < 10_005; n++) queue.push(n);
  assert.equal(queue.dropped, 5);
});

test("AccountStream: an unread changes() iterator keeps the newest queueLimit changes", async () => {
  const body = ["a", "b", "c", "d", "e"].map((id) => sse("snapshot", snapshotOf(id, "ep", 1), `ep-${id}.1`)).join("");
  const { fetch } = fakeFetch((n) => (n === 0 ? { body, open: true } : { open: true }));
  const errors = [];
  const stream = new AccountStream({ baseUrl: "http://gateway.test", transport: "fetch", fetch, queueLimit: 3 });
  stream.on("error", (error) => errors.push(error.message));
  const changes = stream.changes();
  try {
    await waitFor("five accounts", 5000, () => stream.accountIds.length === 5);
    assert.equal(changes.dropped, 2);
    assert.equal(errors.filter((m) => m.includes("changes() reader")).length, 1, errors.join("; "));
    const read = [];
    for (let i = 0; i < 3; i++) read.push((await changes.next()).value.account);
    assert.deepEqual(read, ["c", "d", "e"]);
  } finally {
    stream.close();
  }
});
