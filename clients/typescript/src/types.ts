// The one place that names the generated OpenAPI types (src/generated/openapi.ts): every
// other file imports its types from here, so a change of the spec's schema names is a change
// of this file only.
import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];

/** One account's state, exact at `seq` (what `GET /v1/accounts/{id}/snapshot` returns). */
export type Snapshot = Schemas["Snapshot"];
/** tastytrade `AccountBalance`, masked, unknown fields kept. */
export type Balance = NonNullable<Snapshot["balance"]>;
/** tastytrade `CurrentPosition`. */
export type Position = Snapshot["positions"][number];
/** tastytrade `Order` (with its legs and fills). */
export type Order = Snapshot["orders"][number];
/** tastytrade `ComplexOrder`. */
export type ComplexOrder = Snapshot["complex_orders"][number];
/** tastytrade `TradingStatus`. */
export type TradingStatus = NonNullable<Snapshot["trading_status"]>;
/** Every published event: SSE `data:`, WebSocket message, event log entry. */
export type Envelope = Schemas["Envelope"];
/** Where an event came from: `stream`, `resync` or `gateway`. */
export type EventSourceKind = Schemas["Source"];
/** How one account's upstream link is doing (the `data` of a `status` event). */
export type UpstreamStatus = Schemas["UpstreamStatus"];
/** One entry of `GET /v1/accounts`. */
export type AccountSummary = Schemas["AccountSummary"];
/** Every error body: `{"error":{"code","message"}}`. */
export type ErrorBody = Schemas["ErrorBody"];
