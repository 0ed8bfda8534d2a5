// Epoch milliseconds of a tastytrade time, read exactly as the gateway reads one
// (src/model/wire_types.rs `epoch_millis`, chrono 0.4.45): a JSON number (integer ms, a
// float truncated, saturating at the i64 bounds), a string that is an i64 (ms), an RFC 3339
// string (`DateTime::parse_from_rfc3339`), or chrono's `%Y-%m-%dT%H:%M:%S%.f%z`. Anything
// else is no time (undefined), so an update carrying it is never stale. `Date.parse` accepts
// far more (no offset, a date alone, no seconds), so it is not used.

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** Rust's `char::is_whitespace` (Unicode White_Space): what `str::trim` removes. JS `\s` and
 * `String.prototype.trim` differ (they take U+FEFF and leave U+0085). */
const WHITESPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const TRIM = new RegExp(`^[${WHITESPACE}]+|[${WHITESPACE}]+$`, "g");
const SPACE = new RegExp(`^[${WHITESPACE}]*`);
const COLON_OR_SPACE = new RegExp(`^[:${WHITESPACE}]*`);

/** `str::parse::<i64>`: an optional sign and ASCII digits. */
const I64_TEXT = /^[+-]?[0-9]+$/;

/** `parse_from_rfc3339`: fixed widths, `T`/`t`/space, optional fraction (1+ digits, beyond 9
 * ignored), `Z`/`z` or an offset with a colon (`-` may be U+2212 MINUS SIGN). */
const RFC3339 =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:[Zz]|([+\-\u2212])([0-9]{2}):([0-9]{2}))$/;

/** chrono's NaiveDate range. */
const MIN_YEAR = -262143;
const MAX_YEAR = 262142;

interface Fields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** The fraction's first 9 digits, as nanoseconds. */
  nano: number;
  /** The offset east of UTC, in seconds. */
  offset: number;
}

function clampI64(value: bigint): bigint {
  return value < I64_MIN ? I64_MIN : value > I64_MAX ? I64_MAX : value;
}

function nanosOf(digits: string | undefined): number {
  return digits === undefined ? 0 : Number(digits.slice(0, 9).padEnd(9, "0"));
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Epoch ms of valid fields (chrono's checks: date, time, leap second 60, offset < 24 h,
 * the result inside NaiveDateTime's range), else undefined. */
function millisOf(f: Fields): bigint | undefined {
  if (f.year < MIN_YEAR || f.year > MAX_YEAR || f.month < 1 || f.month > 12) return undefined;
  if (f.day < 1 || f.day > daysInMonth(f.year, f.month)) return undefined;
  if (f.hour > 23 || f.minute > 59 || f.second > 60 || Math.abs(f.offset) >= 86_400) return undefined;
  // A leap second is second 59 plus one second of nanoseconds, as chrono keeps it.
  const second = f.second === 60 ? 59 : f.second;
  const nano = f.second === 60 ? f.nano + 1_000_000_000 : f.nano;
  const utc = daysFromCivil(f.year, f.month, f.day) * 86_400 + f.hour * 3600 + f.minute * 60 + second - f.offset;
  const first = daysFromCivil(MIN_YEAR, 1, 1) * 86_400;
  const last = daysFromCivil(MAX_YEAR, 12, 31) * 86_400 + 86_399;
  if (utc < first || utc > last) return undefined;
  return BigInt(utc) * 1000n + BigInt(Math.floor(nano / 1_000_000));
}

function rfc3339(text: string): bigint | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [, year, month, day, hour, minute, second, fraction, sign, offsetHours, offsetMinutes] = m as unknown as string[];
  let offset = 0;
  if (sign !== undefined) {
    if (Number(offsetMinutes) > 59) return undefined;
    offset = (Number(offsetHours) * 3600 + Number(offsetMinutes) * 60) * (sign === "+" ? 1 : -1);
  }
  return millisOf({
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hour: Number(hour),
    minute: Number(minute),
    second: Number(second),
    nano: nanosOf(fraction),
    offset,
  });
}

/** chrono's `parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")`, item by item: numbers take leading
 * white space and 1..2 digits (the year 1..4, or any count after a sign), `%.f` an optional
 * fraction, `%z` white space, a sign, 2 hour digits, any colons or white space, 2 minute
 * digits; then nothing may follow. */
function strftimeForm(text: string): bigint | undefined {
  let s = text;
  const space = () => (s = s.slice((SPACE.exec(s) as RegExpExecArray)[0].length));
  const digits = (min: number, max: number): number | undefined => {
    const m = /^[0-9]+/.exec(s);
    const run = m === null ? "" : m[0].slice(0, max);
    if (run.length < min) return undefined;
    s = s.slice(run.length);
    const value = BigInt(run);
    return value > I64_MAX ? undefined : Number(value);
  };
  const number = (max: number) => (space(), digits(1, max));
  const literal = (c: string) => (s.startsWith(c) ? ((s = s.slice(c.length)), true) : false);

  space();
  let year: number | undefined;
  if (literal("-")) year = -(digits(1, Infinity) ?? NaN);
  else if (literal("+")) year = digits(1, Infinity);
  else year = digits(1, 4);
  if (year === undefined || Number.isNaN(year) || !literal("-")) return undefined;
  const month = number(2);
  if (month === undefined || !literal("-")) return undefined;
  const day = number(2);
  if (day === undefined || !literal("T")) return undefined;
  const hour = number(2);
  if (hour === undefined || !literal(":")) return undefined;
  const minute = number(2);
  if (minute === undefined || !literal(":")) return undefined;
  const second = number(2);
  if (second === undefined) return undefined;
  let nano = 0;
  if (literal(".")) {
    const m = /^[0-9]+/.exec(s);
    if (m === null) return undefined;
    nano = nanosOf(m[0]);
    s = s.slice(m[0].length);
  }
  space();
  const sign = s[0];
  if (sign !== "+" && sign !== "-" && sign !== "\u2212") return undefined;
  s = s.slice(1);
  const hours = /^[0-9]{2}/.exec(s);
  if (hours === null) return undefined;
  s = s.slice(2);
  s = s.slice((COLON_OR_SPACE.exec(s) as RegExpExecArray)[0].length);
  const minutes = /^[0-5][0-9]/.exec(s);
  if (minutes === null || s.length !== 2) return undefined;
  const offset = (Number(hours[0]) * 3600 + Number(minutes[0]) * 60) * (sign === "+" ? 1 : -1);
  return millisOf({ year, month, day, hour, minute, second, nano, offset });
}

/** Epoch milliseconds as the gateway reads a time, or undefined when it reads none. */
export function epochMillis(value: unknown): bigint | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? clampI64(BigInt(Math.trunc(value))) : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.replace(TRIM, "");
  if (I64_TEXT.test(text)) {
    const ms = BigInt(text);
    if (ms >= I64_MIN && ms <= I64_MAX) return ms;
  }
  return rfc3339(text) ?? strftimeForm(text);
}
