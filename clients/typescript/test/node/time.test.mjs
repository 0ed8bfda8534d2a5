// Times read exactly as the gateway reads them (src/model/wire_types.rs `epoch_millis`,
// chrono 0.4.45): every accepted form with its value, and forms Date.parse would take but the
// gateway refuses (no time at all, so never stale).
import assert from "node:assert/strict";
import { test } from "node:test";
import { epochMillis } from "../../dist/time.js";

const NEW_YEAR = BigInt(Date.UTC(2026, 0, 1));
const I64_MAX = (1n << 63n) - 1n;

const ACCEPTED = [
  [1767225600000, 1767225600000n, "a number is ms"],
  [1.9, 1n, "a float is truncated"],
  [-1.9, -1n, "toward zero"],
  [1e300, I64_MAX, "saturating, as Rust's `as i64`"],
  ["1767225600000", 1767225600000n, "an integer string is ms"],
  [" +5 ", 5n, "i64 parse takes a plus sign, after trim"],
  ["-5", -5n, "and a minus sign"],
  ["9007199254740993", 9007199254740993n, "exactly, beyond 2^53"],
  ["9223372036854775807", I64_MAX, "up to i64::MAX"],
  ["\u00855", 5n, "Rust's trim removes U+0085"],
  ["2026-01-01T00:00:00Z", NEW_YEAR, "RFC 3339"],
  ["2026-01-01t00:00:00z", NEW_YEAR, "lower-case t and z"],
  ["2026-01-01 00:00:00Z", NEW_YEAR, "a space for T"],
  ["2026-01-01T01:30:00+01:30", NEW_YEAR, "an offset with a colon"],
  ["2025-12-31T23:00:00\u221201:00", NEW_YEAR, "U+2212 MINUS SIGN"],
  ["2026-01-01T00:00:00.123456789Z", NEW_YEAR + 123n, "a fraction, truncated to ms"],
  ["2026-01-01T00:00:00.12399999999999Z", NEW_YEAR + 123n, "digits past 9 ignored"],
  ["2025-12-31T23:59:60.5Z", NEW_YEAR + 500n, "a leap second"],
  ["\t2026-01-01T00:00:00Z\n", NEW_YEAR, "trimmed"],
  ["0000-01-01T00:00:00Z", -62167219200000n, "year 0"],
  ["1969-12-31T23:59:59.9995Z", -1n, "before 1970, the ms floor"],
  ["2026-01-01T00:00:00+0000", NEW_YEAR, "%z without colon"],
  ["2026-01-01T00:00:00.5-0130", NEW_YEAR + 5_400_500n, "%z with a fraction"],
  ["2026-1-1T0:0:0+0000", NEW_YEAR, "%Y-%m-%d... takes 1-digit fields"],
  ["2026-01-01T00:00:00 +00:00", NEW_YEAR, "%z after white space, with a colon"],
  ["+2026-01-01T00:00:00+0000", NEW_YEAR, "%Y takes a sign"],
];

const REFUSED = [
  ["2026-01-01T00:00:00", "no offset"],
  ["2026-01-01", "a date alone"],
  ["2026-01-01T00:00Z", "no seconds"],
  ["2026-01-01T00:00:00.Z", "a point without digits"],
  ["2026-02-29T00:00:00Z", "no such day"],
  ["2026-01-01T24:00:00Z", "hour 24"],
  ["2026-01-01T00:00:00+24:00", "an offset of a day"],
  ["2026-01-01T00:00:00+01:60", "offset minutes 60"],
  ["2026-01-01T00:00:00+01", "offset without minutes"],
  ["2026-01-01T00:00:00Z junk", "anything after"],
  ["2026-01-01t00:00:00+0000", "%Y-%m-%dT... wants a capital T"],
  ["20260101T000000Z", "basic ISO 8601"],
  ["Thu, 01 Jan 2026 00:00:00 GMT", "RFC 2822"],
  ["99999999999999999999", "beyond i64"],
  ["\uFEFF5", "U+FEFF is no white space to Rust"],
  ["", "empty"],
  [null, "null"],
  [true, "a boolean"],
  [{}, "an object"],
];

test("every form the gateway reads gives its epoch ms", () => {
  for (const [input, expected, why] of ACCEPTED) assert.equal(epochMillis(input), expected, `${JSON.stringify(input)}: ${why}`);
});

test("forms the gateway does not read are no time", () => {
  for (const [input, why] of REFUSED) assert.equal(epochMillis(input), undefined, `${JSON.stringify(input)}: ${why}`);
});
