// The one place that names the generated OpenAPI types (src/generated/openapi.ts): every
// other file imports its types from here, so a change of the spec's schema names is a change
// of this file only.
import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];

/** One account's state, exact at `seq` (what `GET /v1/accounts/{id}/snapshot` returns). */
export type Snapshot = Schemas["Snapshot"];
/** tastytrade `AccountBalance`, masked, unknown fields kept. */
export type Balance = Schemas["Balance"];
/** tastytrade `CurrentPosition`. */
export type Position = Schemas["Position"];
/** tastytrade `Order` (with its legs and fills). */
export type Order = Schemas["Order"];
/** One leg of an order. */
export type OrderLeg = Schemas["OrderLeg"];
/** One fill of an order leg. */
export type OrderFill = Schemas["OrderFill"];
/** tastytrade `ComplexOrder`. */
export type ComplexOrder = Schemas["ComplexOrder"];
/** tastytrade `TradingStatus`. */
export type TradingStatus = Schemas["TradingStatus"];
/** Every published event: SSE `data:`, WebSocket message, event log entry. */
export type Envelope = Schemas["Envelope"];
/** A published event typed by its `type` (one schema per event type). */
export type StreamEvent = Schemas["StreamEvent"];
/** A `status` event: an account's upstream link changed state. */
export type StatusEvent = Schemas["StatusEvent"];
/** Where an event came from: `stream`, `resync` or `gateway`. */
export type EventSourceKind = Schemas["Source"];
/** How one account's upstream link is doing (the `data` of a `status` event). */
export type UpstreamStatus = Schemas["UpstreamStatus"];
/** One entry of `GET /v1/accounts`. */
export type AccountSummary = Schemas["AccountSummary"];
/** Every error body: `{"error":{"code","message"}}`. */
export type ErrorBody = Schemas["ErrorBody"];
