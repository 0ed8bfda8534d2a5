// Tolerant readers of tastytrade values, the same as the gateway's (src/model/wire_types.rs):
// ids as text (301001 and "301001" are one id), decimal strings, and JSON equality (times:
// time.ts).

/** A JSON object as tastytrade sends it. */
export type JsonObject = Record<string, unknown>;

/** An id as text: a non-empty string as it is, a number written out; otherwise none. */
export function idText(value: unknown): string | undefined {
  if (typeof value === "string") return value === "" ? undefined : value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

/** Whether a quantity (decimal string or number) is zero. */
export function isZeroQuantity(value: unknown): boolean {
  if (typeof value === "number") return value === 0;
  if (typeof value === "string") return DECIMAL.test(value) && Number(value) === 0;
  return false;
}

/** Deep equality of two JSON values (object key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, i) => jsonEqual(item, other[i]));
  }
  const left = a as JsonObject;
  const right = b as JsonObject;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  return keys.every((key) => Object.hasOwn(right, key) && jsonEqual(left[key], right[key]));
}

/** Whether a value is a JSON object (not an array, not null). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
