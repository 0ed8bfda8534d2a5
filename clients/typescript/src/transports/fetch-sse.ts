// Server-Sent Events read over fetch's streaming body: can send `Authorization: Bearer` and
// `Last-Event-ID` as headers; works in Node >= 20 and current browsers. A stream the gateway
// ends because its token expired (the comment `: token expired; ...`) asks for an immediate
// reconnect (with a fresh token), not a backoff.
import { SseParser } from "../sse-parser.js";
import { dispatchSse } from "./messages.js";
import {
  eventsUrl,
  GatewayError,
  retryableStatus,
  type Connection,
  type ConnectRequest,
  type TransportHandlers,
} from "./transport.js";

export type FetchLike = typeof globalThis.fetch;

function requestHeaders(request: ConnectRequest): Record<string, string> {
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (request.credential !== undefined) headers["authorization"] = `Bearer ${request.credential}`;
  if (request.lastEventId !== undefined) headers["last-event-id"] = request.lastEventId;
  return headers;
}

/** The gateway's error body as an error (its message is safe to show: the gateway masks it). */
async function errorOf(response: Response): Promise<GatewayError> {
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    return new GatewayError(response.status, body.error?.code ?? "error", body.error?.message ?? "");
  } catch {
    return new GatewayError(response.status, "error", response.statusText);
  }
}

/** The comment the gateway ends a stream with when its token expired. */
export const TOKEN_EXPIRED_COMMENT = "token expired";

/** Reads the stream to its end; true when the gateway said the token expired. */
async function readEvents(response: Response, handlers: TransportHandlers): Promise<boolean> {
  let expired = false;
  const parser = new SseParser(
    (message) => dispatchSse(handlers, message.event, message.data, message.lastEventId),
    (comment) => (expired ||= comment.startsWith(TOKEN_EXPIRED_COMMENT)),
  );
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return expired;
    parser.push(decoder.decode(value, { stream: true }));
  }
}

export function connectFetch(request: ConnectRequest, handlers: TransportHandlers, fetchImpl: FetchLike): Connection {
  const abort = new AbortController();
  let ended = false;
  const end = (retry: boolean, error?: Error, immediate = false) => {
    if (ended || abort.signal.aborted) return;
    ended = true;
    handlers.onClose({ retry, immediate, error });
  };
  const run = async () => {
    const response = await fetchImpl(eventsUrl(request, {}), {
      headers: requestHeaders(request),
      signal: abort.signal,
      cache: "no-store",
      credentials: request.withCredentials ? "include" : "same-origin",
    });
    if (!response.ok || response.body === null) {
      end(retryableStatus(response.status), await errorOf(response));
      return;
    }
    handlers.onOpen();
    const expired = await readEvents(response, handlers);
    if (expired) end(true, new Error("the token expired: reconnecting with a fresh one"), true);
    else end(true, new Error("the gateway ended the stream"));
  };
  run().catch((error: unknown) => end(true, error instanceof Error ? error : new Error(String(error))));
  return {
    close() {
      abort.abort();
    },
  };
}
