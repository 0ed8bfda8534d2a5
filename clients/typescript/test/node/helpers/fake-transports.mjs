// Stand-ins for the gateway at the transport level, for tests of AccountStream's own logic
// (resume ids, backoff, queue limit): a `fetch` that answers each call from a script, and a
// WebSocket class whose sockets a test drives. Each records when it was called and with what.

/** An SSE message as the gateway writes one. */
export function sse(event, data, id) {
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A snapshot of `account` at `seq` in `epoch`, empty. */
export function snapshotOf(account, epoch, seq) {
  return { account, epoch, seq, as_of: "", balance: null, positions: [], orders: [], complex_orders: [], trading_status: null };
}

/**
 * A `fetch` whose n-th call is answered by `answer(n, call)` with `{ status, body, open }`:
 * `body` (SSE text) is sent, then the stream ends unless `open` (then it stays until aborted).
 * `calls` records `{ at, url, headers }`.
 */
export function fakeFetch(answer) {
  const calls = [];
  const fetch = async (url, init) => {
    const call = { at: Date.now(), url: String(url), headers: init?.headers ?? {} };
    calls.push(call);
    const { status = 200, body = "", open = false } = answer(calls.length - 1, call);
    const stream = new ReadableStream({
      start(controller) {
        if (body) controller.enqueue(new TextEncoder().encode(body));
        if (!open) return controller.close();
        init?.signal?.addEventListener("abort", () => controller.error(new Error("aborted")));
      },
    });
    return new Response(stream, { status, headers: { "content-type": "text/event-stream" } });
  };
  return { fetch, calls };
}

/**
 * A WebSocket class: each new socket is handed to `onSocket(socket, n)` once open and
 * subscribed; `socket.message(obj)` delivers a message, `socket.closeWith(code)` closes it,
 * `socket.sent` holds every message the client sent (parsed). `opened` records the time of
 * each connection, `sockets` the sockets.
 */
export function fakeWebSocket(onSocket) {
  const opened = [];
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.closed = false;
      this.sent = [];
      const n = opened.push(Date.now()) - 1;
      sockets.push(this);
      queueMicrotask(() => this.onopen?.({}));
      this.send = (text) => {
        const message = JSON.parse(text);
        this.sent.push(message);
        if (message.op !== "subscribe") return;
        this.subscribe = message;
        queueMicrotask(() => onSocket(this, n));
      };
    }
    message(obj) {
      if (!this.closed) this.onmessage?.({ data: JSON.stringify(obj) });
    }
    closeWith(code) {
      if (this.closed) return;
      this.closed = true;
      this.onclose?.({ code, reason: "" });
    }
    close() {
      this.closed = true;
    }
  }
  return { WebSocket: FakeWebSocket, opened, sockets };
}
