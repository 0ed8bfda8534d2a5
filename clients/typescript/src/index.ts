// The package's public API: AccountStream (a live, merged view of accounts), the merge rules
// as AccountState, and the gateway's types generated from its OpenAPI document.
export {
  AccountStream,
  type AccountStreamEvents,
  type AccountStreamOptions,
  type Change,
  type ChangeIterator,
  type ConnectionState,
  type StatusChange,
  type TransportName,
} from "./account-stream.js";
export { AccountState, STATE_TYPES, type Applied } from "./account-state.js";
export { type BackoffOptions } from "./backoff.js";
export { GatewayError } from "./transports/transport.js";
export { tokenExpiry } from "./token-expiry.js";
export { type EventSourceLike } from "./transports/event-source.js";
export { type FetchLike } from "./transports/fetch-sse.js";
export { type WebSocketLike } from "./transports/websocket.js";
export type * from "./types.js";
