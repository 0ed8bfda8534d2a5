// How the gateway keys and orders the objects of an account (src/model/state.rs): orders and
// complex orders by id as text (numeric ids sort numerically, the rest after them by text),
// positions by symbol + instrument type.
import { idText, type JsonObject } from "./wire.js";

const U64_MAX = (1n << 64n) - 1n;
const UNSIGNED = /^\+?\d+$/;

/** An order's or complex order's key: its id as text. */
export function objectKey(value: JsonObject): string | undefined {
  return idText(value["id"]);
}

/** The number a key sorts by: the id as an unsigned 64-bit integer, or the largest one. */
function numericRank(key: string): bigint {
  if (!UNSIGNED.test(key)) return U64_MAX;
  const n = BigInt(key);
  return n > U64_MAX ? U64_MAX : n;
}

/** Byte-wise comparison of strings, as Rust orders `String`s. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The gateway's order of object keys. */
export function compareObjectKeys(a: string, b: string): number {
  const left = numericRank(a);
  const right = numericRank(b);
  if (left !== right) return left < right ? -1 : 1;
  return compareText(a, b);
}

/** A position's key: symbol and instrument type (missing type: empty), or none without a symbol. */
export function positionKey(value: JsonObject): string | undefined {
  const symbol = value["symbol"];
  if (typeof symbol !== "string") return undefined;
  const instrument = value["instrument-type"];
  return JSON.stringify([symbol, typeof instrument === "string" ? instrument : ""]);
}

/** The gateway's order of position keys: by symbol, then instrument type. */
export function comparePositionKeys(a: string, b: string): number {
  const [symbolA, typeA] = JSON.parse(a) as [string, string];
  const [symbolB, typeB] = JSON.parse(b) as [string, string];
  return compareText(symbolA, symbolB) || compareText(typeA, typeB);
}
