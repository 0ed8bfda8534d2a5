// The SSE parser of the fetch transport: events split across chunks at any byte, CRLF and CR
// line ends, comments (reported apart), multi-line data, ids carried over, `retry:` ignored.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SseParser } from "../../dist/sse-parser.js";

const STREAM =
  "retry: 2000\r\nid: e-1\r\nevent: snapshot\r\ndata: {\"a\":1}\r\n\r\n" +
  ": keep-alive\n\n" +
  "event: Order\ndata: line one\ndata: line two\n\n" +
  "id: e-2\revent: status\rdata: x\r\r: a CR at the very end waits for the next chunk\n";

function parse(chunks) {
  const seen = [];
  const parser = new SseParser((m) => seen.push(m));
  for (const chunk of chunks) parser.push(chunk);
  return seen;
}

const EXPECTED = [
  { event: "snapshot", data: '{"a":1}', lastEventId: "e-1" },
  { event: "Order", data: "line one\nline two", lastEventId: "e-1" },
  { event: "status", data: "x", lastEventId: "e-2" },
];

test("a whole stream parses into its events", () => {
  assert.deepEqual(parse([STREAM]), EXPECTED);
});

test("the same stream split at every position parses the same", () => {
  for (let i = 0; i <= STREAM.length; i++) {
    assert.deepEqual(parse([STREAM.slice(0, i), STREAM.slice(i)]), EXPECTED, `split at ${i}`);
  }
});

test("comment lines are reported, without the colon and leading spaces", () => {
  const comments = [];
  const parser = new SseParser(() => {}, (text) => comments.push(text));
  parser.push(STREAM);
  parser.push(": token expired; reconnect with a fresh token and Last-Event-ID\n\n");
  assert.deepEqual(comments, ["keep-alive", "a CR at the very end waits for the next chunk", "token expired; reconnect with a fresh token and Last-Event-ID"]);
});
