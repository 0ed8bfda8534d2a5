// Server-Sent Events read over fetch's streaming body: can send `Authorization: Bearer` and
// `Last-Event-ID` as headers; works in Node >= 20 and current browsers.
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

async function readEvents(response: Response, handlers: TransportHandlers): Promise<void> {
  const parser = new SseParser((message) => dispatchSse(handlers, message.event, message.data, message.lastEventId));
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    parser.push(decoder.decode(value, { stream: true }));
  }
}

export function connectFetch(request: ConnectRequest, handlers: TransportHandlers, fetchImpl: FetchLike): Connection {
  const abort = new AbortController();
  let ended = false;
  const end = (retry: boolean, error?: Error) => {
    if (ended || abort.signal.aborted) return;
    ended = true;
    handlers.onClose({ retry, error });
  };
  const run = async () => {
    const response = await fetchImpl(eventsUrl(request, {}), {
      headers: requestHeaders(request),
      signal: abort.signal,
      cache: "no-store",
    });
    if (!response.ok || response.body === null) {
      end(retryableStatus(response.status), await errorOf(response));
      return;
    }
    handlers.onOpen();
    await readEvents(response, handlers);
    end(true, new Error("the gateway ended the stream"));
  };
  run().catch((error: unknown) => end(true, error instanceof Error ? error : new Error(String(error))));
  return {
    close() {
      abort.abort();
    },
  };
}
