// The gateway's WebSocket protocol (`/v1/ws`, see src/api/ws.rs): subscribe with each
// account's last position as `resume`, then `ack`, `snapshot` / `reset` per account and one
// envelope per event. Close 4008 (the client fell behind) asks for an immediate resubscribe
// (AccountStream grants one per backoff window). The key goes as `?access_token=` (browsers
// cannot set headers on a WebSocket). A token's socket gets `token_expiring` before `exp`
// (AccountStream answers with `refresh`, acked with the new `expires_at`); without a refresh
// it is closed with 4001, which asks for an immediate reconnect with a fresh token.
import type { Envelope, Snapshot } from "../types.js";
import { isObject } from "../wire.js";
import { withQuery, withSlash, type Connection, type ConnectRequest, type TransportHandlers } from "./transport.js";

/** The part of the WebSocket constructor this transport uses. */
export type WebSocketLike = new (url: string) => {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
};

/** Close code of a client that fell too far behind. */
export const CLOSE_SLOW_CONSUMER = 4008;
/** Close code of a socket whose token expired. */
export const CLOSE_TOKEN_EXPIRED = 4001;

function socketUrl(request: ConnectRequest): string {
  const url = new URL("v1/ws", withSlash(request.baseUrl));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return withQuery(url, { access_token: request.credential }).toString();
}

function subscribeMessage(request: ConnectRequest): string {
  const accounts = request.account === undefined ? [] : [request.account];
  return JSON.stringify({ op: "subscribe", id: 1, accounts, resume: request.positions });
}

type Message = Record<string, unknown>;

function handle(message: Message, handlers: TransportHandlers, acked: () => boolean): Error | undefined {
  switch (message["type"]) {
    case "ack":
      if (message["op"] === "refresh") {
        if (typeof message["expires_at"] === "number") handlers.onTokenRefreshed(message["expires_at"]);
      } else if (!acked()) handlers.onOpen();
      return undefined;
    case "token_expiring":
      if (typeof message["expires_at"] === "number") handlers.onTokenExpiring(message["expires_at"]);
      return undefined;
    case "pong":
      return undefined;
    case "error": {
      const error = new Error(`gateway: ${String(message["code"])}: ${String(message["message"])}`);
      if (!acked()) return error;
      handlers.onWarning(error);
      return undefined;
    }
    case "snapshot":
    case "reset":
      handlers.onSnapshot(message["data"] as Snapshot, message["type"] === "reset", String(message["id"]));
      return undefined;
    default:
      handlers.onEvent(message as unknown as Envelope, String(message["id"]));
      return undefined;
  }
}

export function connectWebSocket(request: ConnectRequest, handlers: TransportHandlers, WebSocketImpl: WebSocketLike): Connection {
  const socket = new WebSocketImpl(socketUrl(request));
  let ended = false;
  let acked = false;
  const end = (retry: boolean, immediate: boolean, error?: Error) => {
    if (ended) return;
    ended = true;
    handlers.onClose({ retry, immediate, error });
  };
  socket.onopen = () => socket.send(subscribeMessage(request));
  socket.onmessage = (event) => {
    if (ended || typeof event.data !== "string") return;
    let message: unknown;
    try {
      message = JSON.parse(event.data);
    } catch {
      return handlers.onWarning(new Error("unreadable message from the gateway"));
    }
    if (!isObject(message)) return;
    const refused = handle(message, handlers, () => acked);
    if (message["type"] === "ack") acked = true;
    if (refused !== undefined) {
      socket.close(1000);
      end(false, false, refused);
    }
  };
  socket.onclose = (event) => {
    const immediate = event.code === CLOSE_SLOW_CONSUMER || event.code === CLOSE_TOKEN_EXPIRED;
    end(true, immediate, new Error(`the WebSocket closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`));
  };
  // Some WebSocket implementations (Node 20's) fire no close after a failed handshake.
  socket.onerror = () => {
    if (ended) return;
    end(true, false, new Error("the WebSocket failed"));
    socket.close();
  };
  let refreshes = 0;
  return {
    close() {
      ended = true;
      socket.close(1000);
    },
    refresh(token: string) {
      if (ended) return;
      try {
        socket.send(JSON.stringify({ op: "refresh", id: `refresh-${++refreshes}`, token }));
      } catch {
        // Closing already: its close reconnects with a fresh token.
      }
    },
  };
}
