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

/** A UTF-16 code unit's rank in code point order: surrogates (halves of code points above
 * U+FFFF) after U+E000-U+FFFF, as in UTF-8. */
function unitRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** Byte-wise comparison of strings, as Rust orders `String`s (UTF-8 bytes, i.e. code points;
 * JS `<` compares UTF-16 code units, which puts U+10000 and up before U+E000-U+FFFF). */
export function compareText(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unitRank(x) < unitRank(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
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
