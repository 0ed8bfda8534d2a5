// Reads an SSE event (name + data text) of the gateway into a snapshot or an envelope.
import type { Envelope, Snapshot } from "../types.js";
import type { TransportHandlers } from "./transport.js";

/** Hands one SSE event to the handlers; a body that is not JSON is reported, not thrown. */
export function dispatchSse(handlers: TransportHandlers, event: string, data: string, streamId: string): void {
  let body: unknown;
  try {
    body = JSON.parse(data);
  } catch {
    handlers.onWarning(new Error(`unreadable ${event} event from the gateway`));
    return;
  }
  if (event === "snapshot" || event === "reset") {
    handlers.onSnapshot(body as Snapshot, event === "reset", streamId);
  } else {
    handlers.onEvent(body as Envelope, streamId);
  }
}

/** SSE event names the gateway sends besides `snapshot` and `reset` (EventSource needs each). */
export const EVENT_NAMES = [
  "AccountBalance",
  "CurrentPosition",
  "Order",
  "ComplexOrder",
  "TradingStatus",
  "ExternalTransaction",
  "UnderlyingYearGainSummary",
  "OrderChain",
  "QuoteAlert",
  "PublicWatchlists",
  "UserMessage",
  "OrderRemoved",
  "ComplexOrderRemoved",
  "status",
] as const;
