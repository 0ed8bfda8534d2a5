// What every transport (EventSource, fetch-streamed SSE, WebSocket) reports to AccountStream,
// and what it is asked to connect with. Transports connect once; AccountStream reconnects.
import type { Envelope, Snapshot } from "../types.js";

/** Where to connect and from which position. */
export interface ConnectRequest {
  /** The gateway's base URL (`http://127.0.0.1:8080`). */
  baseUrl: string;
  /** One account's public id, or undefined for every account the key may see. */
  account: string | undefined;
  /** The API key or token for this connection, if any. */
  credential: string | undefined;
  /** SSE: the last stream id seen (`Last-Event-ID`). */
  lastEventId: string | undefined;
  /** WebSocket: each account's last position (`<epoch>-<seq>`). */
  positions: Record<string, string>;
  /** Send cookies (the gateway's `ttgw_token`) cross-origin: EventSource `withCredentials`,
   * fetch `credentials: "include"`. */
  withCredentials: boolean;
}

/** Why a connection ended. */
export interface Disconnect {
  /** Reconnect (after a backoff; `immediate`: at once, if none was in this backoff window).
   * False: the error is final. */
  retry: boolean;
  immediate?: boolean;
  error?: Error;
}

export interface TransportHandlers {
  /** The gateway accepted the connection. */
  onOpen(): void;
  /** A `snapshot` (or, when `reset`, a `reset`): the account's whole state. */
  onSnapshot(snapshot: Snapshot, reset: boolean, streamId: string): void;
  /** One published event. */
  onEvent(envelope: Envelope, streamId: string): void;
  /** A message the gateway sent that is not state (a WebSocket `error`), the connection stays. */
  onWarning(error: Error): void;
  /** WebSocket: the gateway says the token expires at `expiresAt` (epoch s); answer with
   * `Connection.refresh`. */
  onTokenExpiring(expiresAt: number): void;
  /** WebSocket: the gateway accepted a refreshed token, which expires at `expiresAt`. */
  onTokenRefreshed(expiresAt: number): void;
  /** The connection ended (called once, never after `close()`). */
  onClose(reason: Disconnect): void;
}

/** An open connection. */
export interface Connection {
  /** Ends the connection; no more handler calls follow. */
  close(): void;
  /** WebSocket only: hands the gateway a fresh token for the open connection. */
  refresh?(token: string): void;
}

/** An HTTP error answer of the gateway (`{"error":{"code","message"}}`). */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`gateway answered ${status} ${code}: ${message}`);
    this.name = "GatewayError";
  }
}

/** Whether an error is the gateway refusing a token (401 `token_expired`, `token_invalid`, ...):
 * worth asking the token provider again at once. */
export function isTokenRefusal(error: Error | undefined): boolean {
  return error instanceof GatewayError && error.status === 401 && error.code.startsWith("token_");
}

/** Whether an HTTP status is worth retrying (server trouble, limits, an expired token). */
export function retryableStatus(status: number): boolean {
  return status >= 500 || status === 401 || status === 408 || status === 429;
}

/** `/v1/accounts/{id}/events` or `/v1/events`, on the base URL, with query parameters. */
export function eventsUrl(request: ConnectRequest, query: Record<string, string | undefined>): URL {
  const path = request.account === undefined ? "v1/events" : `v1/accounts/${encodeURIComponent(request.account)}/events`;
  return withQuery(new URL(path, withSlash(request.baseUrl)), query);
}

/** The base URL with exactly one trailing slash, so relative paths resolve under it. */
export function withSlash(baseUrl: string): string {
  return baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
}

/** The URL with each defined query parameter set. */
export function withQuery(url: URL, query: Record<string, string | undefined>): URL {
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(name, value);
  }
  return url;
}
