// The gateway's per-object merge rules (src/model/state.rs): when an incoming object is older
// than the one held (`updated-at`), when a position is closed, and fills kept once per leg.
import { epochMillis } from "./time.js";
import { idText, isObject, isZeroQuantity, type JsonObject } from "./wire.js";

function updatedAt(value: JsonObject): bigint | undefined {
  return epochMillis(value["updated-at"]);
}

/** Whether `incoming` is strictly older than `current` by `updated-at` (when both have one). */
export function isStale(current: JsonObject, incoming: JsonObject): boolean {
  const now = updatedAt(current);
  const next = updatedAt(incoming);
  return now !== undefined && next !== undefined && next < now;
}

/** A position that no longer exists: `quantity-direction: Zero`, or quantity 0. */
export function isClosedPosition(value: JsonObject): boolean {
  return value["quantity-direction"] === "Zero" || isZeroQuantity(value["quantity"]);
}

function legsOf(order: JsonObject): JsonObject[] {
  const legs = order["legs"];
  return Array.isArray(legs) ? legs.filter(isObject) : [];
}

function fillsOf(leg: JsonObject): unknown[] | undefined {
  const fills = leg["fills"];
  return Array.isArray(fills) ? fills : undefined;
}

function fillId(fill: unknown): string | undefined {
  return isObject(fill) ? idText(fill["fill-id"]) : undefined;
}

/** Every `fill-id` across an order's legs. */
export function fillIds(order: JsonObject): string[] {
  return legsOf(order).flatMap((leg) => (fillsOf(leg) ?? []).map(fillId)).filter((id) => id !== undefined);
}

/** A copy with the same `updated-at` and a strict subset of the fills held would lose fills. */
export function losesFills(current: JsonObject, incoming: JsonObject): boolean {
  if (updatedAt(current) !== updatedAt(incoming)) return false;
  const held = fillIds(current);
  const next = fillIds(incoming);
  return next.length < held.length && next.every((id) => held.includes(id));
}

/** Keeps each leg's fills once per `fill-id` (fills without an id all stay). */
function dedupeLegFills(fills: unknown[]): unknown[] {
  const seen = new Set<string>();
  return fills.filter((fill) => {
    const id = fillId(fill);
    if (id === undefined) return true;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** The order with repeated `fill-id`s in a leg kept once; the same object when none repeat. */
export function dedupeFills(order: JsonObject): JsonObject {
  const legs = order["legs"];
  if (!Array.isArray(legs)) return order;
  const repeats = legs.some((leg) => {
    const fills = isObject(leg) ? fillsOf(leg) : undefined;
    return fills !== undefined && dedupeLegFills(fills).length !== fills.length;
  });
  if (!repeats) return order;
  const cleaned = legs.map((leg) => {
    const fills = isObject(leg) ? fillsOf(leg) : undefined;
    return fills === undefined ? leg : { ...(leg as JsonObject), fills: dedupeLegFills(fills) };
  });
  return { ...order, legs: cleaned };
}
