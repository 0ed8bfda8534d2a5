// @tastytrade-gateway/client: browser bundle built from clients/typescript by `npm run build`.
// Do not edit: `npm test` fails when it differs from a fresh build.

// src/wire.ts
function idText(value) {
  if (typeof value === "string") return value === "" ? void 0 : value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return void 0;
}
var DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
function isZeroQuantity(value) {
  if (typeof value === "number") return value === 0;
  if (typeof value === "string") return DECIMAL.test(value) && Number(value) === 0;
  return false;
}
function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b;
    return a.length === other.length && a.every((item, i) => jsonEqual(item, other[i]));
  }
  const left = a;
  const right = b;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  return keys.every((key) => Object.hasOwn(right, key) && jsonEqual(left[key], right[key]));
}
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// src/keys.ts
var U64_MAX = (1n << 64n) - 1n;
var UNSIGNED = /^\+?\d+$/;
function objectKey(value) {
  return idText(value["id"]);
}
function numericRank(key) {
  if (!UNSIGNED.test(key)) return U64_MAX;
  const n = BigInt(key);
  return n > U64_MAX ? U64_MAX : n;
}
function unitRank(unit) {
  if (unit >= 55296 && unit <= 57343) return unit + 8192;
  if (unit >= 57344) return unit - 2048;
  return unit;
}
function compareText(a, b) {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unitRank(x) < unitRank(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}
function compareObjectKeys(a, b) {
  const left = numericRank(a);
  const right = numericRank(b);
  if (left !== right) return left < right ? -1 : 1;
  return compareText(a, b);
}
function positionKey(value) {
  const symbol = value["symbol"];
  if (typeof symbol !== "string") return void 0;
  const instrument = value["instrument-type"];
  return JSON.stringify([symbol, typeof instrument === "string" ? instrument : ""]);
}
function comparePositionKeys(a, b) {
  const [symbolA, typeA] = JSON.parse(a);
  const [symbolB, typeB] = JSON.parse(b);
  return compareText(symbolA, symbolB) || compareText(typeA, typeB);
}

// src/time.ts
var I64_MIN = -(1n << 63n);
var I64_MAX = (1n << 63n) - 1n;
var WHITESPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
var TRIM = new RegExp(`^[${WHITESPACE}]+|[${WHITESPACE}]+$`, "g");
var SPACE = new RegExp(`^[${WHITESPACE}]*`);
var COLON_OR_SPACE = new RegExp(`^[:${WHITESPACE}]*`);
var I64_TEXT = /^[+-]?[0-9]+$/;
var RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:[Zz]|([+\-\u2212])([0-9]{2}):([0-9]{2}))$/;
var MIN_YEAR = -262143;
var MAX_YEAR = 262142;
function clampI64(value) {
  return value < I64_MIN ? I64_MIN : value > I64_MAX ? I64_MAX : value;
}
function nanosOf(digits) {
  return digits === void 0 ? 0 : Number(digits.slice(0, 9).padEnd(9, "0"));
}
function daysFromCivil(year, month, day) {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
function daysInMonth(year, month) {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
function millisOf(f) {
  if (f.year < MIN_YEAR || f.year > MAX_YEAR || f.month < 1 || f.month > 12) return void 0;
  if (f.day < 1 || f.day > daysInMonth(f.year, f.month)) return void 0;
  if (f.hour > 23 || f.minute > 59 || f.second > 60 || Math.abs(f.offset) >= 86400) return void 0;
  const second = f.second === 60 ? 59 : f.second;
  const nano = f.second === 60 ? f.nano + 1e9 : f.nano;
  const utc = daysFromCivil(f.year, f.month, f.day) * 86400 + f.hour * 3600 + f.minute * 60 + second - f.offset;
  const first = daysFromCivil(MIN_YEAR, 1, 1) * 86400;
  const last = daysFromCivil(MAX_YEAR, 12, 31) * 86400 + 86399;
  if (utc < first || utc > last) return void 0;
  return BigInt(utc) * 1000n + BigInt(Math.floor(nano / 1e6));
}
function rfc3339(text) {
  const m = RFC3339.exec(text);
  if (m === null) return void 0;
  const [, year, month, day, hour, minute, second, fraction, sign, offsetHours, offsetMinutes] = m;
  let offset = 0;
  if (sign !== void 0) {
    if (Number(offsetMinutes) > 59) return void 0;
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
    offset
  });
}
function strftimeForm(text) {
  let s = text;
  const space = () => s = s.slice(SPACE.exec(s)[0].length);
  const digits = (min, max) => {
    const m = /^[0-9]+/.exec(s);
    const run = m === null ? "" : m[0].slice(0, max);
    if (run.length < min) return void 0;
    s = s.slice(run.length);
    const value = BigInt(run);
    return value > I64_MAX ? void 0 : Number(value);
  };
  const number = (max) => (space(), digits(1, max));
  const literal = (c) => s.startsWith(c) ? (s = s.slice(c.length), true) : false;
  space();
  let year;
  if (literal("-")) year = -(digits(1, Infinity) ?? NaN);
  else if (literal("+")) year = digits(1, Infinity);
  else year = digits(1, 4);
  if (year === void 0 || Number.isNaN(year) || !literal("-")) return void 0;
  const month = number(2);
  if (month === void 0 || !literal("-")) return void 0;
  const day = number(2);
  if (day === void 0 || !literal("T")) return void 0;
  const hour = number(2);
  if (hour === void 0 || !literal(":")) return void 0;
  const minute = number(2);
  if (minute === void 0 || !literal(":")) return void 0;
  const second = number(2);
  if (second === void 0) return void 0;
  let nano = 0;
  if (literal(".")) {
    const m = /^[0-9]+/.exec(s);
    if (m === null) return void 0;
    nano = nanosOf(m[0]);
    s = s.slice(m[0].length);
  }
  space();
  const sign = s[0];
  if (sign !== "+" && sign !== "-" && sign !== "−") return void 0;
  s = s.slice(1);
  const hours = /^[0-9]{2}/.exec(s);
  if (hours === null) return void 0;
  s = s.slice(2);
  s = s.slice(COLON_OR_SPACE.exec(s)[0].length);
  const minutes = /^[0-5][0-9]/.exec(s);
  if (minutes === null || s.length !== 2) return void 0;
  const offset = (Number(hours[0]) * 3600 + Number(minutes[0]) * 60) * (sign === "+" ? 1 : -1);
  return millisOf({ year, month, day, hour, minute, second, nano, offset });
}
function epochMillis(value) {
  if (typeof value === "number") return Number.isFinite(value) ? clampI64(BigInt(Math.trunc(value))) : void 0;
  if (typeof value !== "string") return void 0;
  const text = value.replace(TRIM, "");
  if (I64_TEXT.test(text)) {
    const ms = BigInt(text);
    if (ms >= I64_MIN && ms <= I64_MAX) return ms;
  }
  return rfc3339(text) ?? strftimeForm(text);
}

// src/rules.ts
function updatedAt(value) {
  return epochMillis(value["updated-at"]);
}
function isStale(current, incoming) {
  const now = updatedAt(current);
  const next = updatedAt(incoming);
  return now !== void 0 && next !== void 0 && next < now;
}
function isClosedPosition(value) {
  return value["quantity-direction"] === "Zero" || isZeroQuantity(value["quantity"]);
}
function legsOf(order) {
  const legs = order["legs"];
  return Array.isArray(legs) ? legs.filter(isObject) : [];
}
function fillsOf(leg) {
  const fills = leg["fills"];
  return Array.isArray(fills) ? fills : void 0;
}
function fillId(fill) {
  return isObject(fill) ? idText(fill["fill-id"]) : void 0;
}
function fillIds(order) {
  return legsOf(order).flatMap((leg) => (fillsOf(leg) ?? []).map(fillId)).filter((id) => id !== void 0);
}
function losesFills(current, incoming) {
  if (updatedAt(current) !== updatedAt(incoming)) return false;
  const held = fillIds(current);
  const next = fillIds(incoming);
  return next.length < held.length && next.every((id) => held.includes(id));
}
function dedupeLegFills(fills) {
  const seen = /* @__PURE__ */ new Set();
  return fills.filter((fill) => {
    const id = fillId(fill);
    if (id === void 0) return true;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
function dedupeFills(order) {
  const legs = order["legs"];
  if (!Array.isArray(legs)) return order;
  const repeats = legs.some((leg) => {
    const fills = isObject(leg) ? fillsOf(leg) : void 0;
    return fills !== void 0 && dedupeLegFills(fills).length !== fills.length;
  });
  if (!repeats) return order;
  const cleaned = legs.map((leg) => {
    const fills = isObject(leg) ? fillsOf(leg) : void 0;
    return fills === void 0 ? leg : { ...leg, fills: dedupeLegFills(fills) };
  });
  return { ...order, legs: cleaned };
}

// src/account-state.ts
var STATE_TYPES = [
  "AccountBalance",
  "TradingStatus",
  "Order",
  "ComplexOrder",
  "OrderRemoved",
  "ComplexOrderRemoved",
  "CurrentPosition"
];
function upsert(map, key, data) {
  const current = map.get(key);
  if (current !== void 0 && jsonEqual(current, data)) return "unchanged";
  if (current !== void 0 && isStale(current, data)) return "stale";
  map.set(key, data);
  return "changed";
}
function removeById(map, data) {
  const key = objectKey(data);
  if (key === void 0) return "invalid";
  return map.delete(key) ? "changed" : "unchanged";
}
function sortedValues(map, compare) {
  return [...map.keys()].sort(compare).map((key) => map.get(key));
}
function keyed(items, key) {
  const map = /* @__PURE__ */ new Map();
  for (const item of items) {
    if (!isObject(item)) continue;
    const k = key(item);
    if (k !== void 0) map.set(k, item);
  }
  return map;
}
var AccountState = class {
  account;
  epoch;
  seq;
  asOf;
  /** The last balance: any JSON value (normally an object); undefined: none yet. */
  balance;
  /** The last trading status: any JSON value (normally an object); undefined: none yet. */
  tradingStatus;
  positions;
  orders;
  complexOrders;
  /** The state a snapshot (or a reset) shows. */
  constructor(snapshot) {
    this.account = snapshot.account;
    this.epoch = snapshot.epoch;
    this.seq = snapshot.seq;
    this.asOf = snapshot.as_of;
    this.balance = snapshot.balance ?? void 0;
    this.tradingStatus = snapshot.trading_status ?? void 0;
    this.positions = keyed(snapshot.positions, positionKey);
    this.orders = keyed(snapshot.orders, objectKey);
    this.complexOrders = keyed(snapshot.complex_orders, objectKey);
  }
  /** Applies one event's `data` of type `type`; says what it did, as the gateway would. */
  apply(type, data) {
    if (type === "AccountBalance") return this.replace("balance", data);
    if (type === "TradingStatus") return this.replace("tradingStatus", data);
    if (!isObject(data)) return STATE_TYPES.includes(type) ? "invalid" : "passthrough";
    switch (type) {
      case "Order":
        return this.applyOrder(data);
      case "ComplexOrder": {
        const key = objectKey(data);
        return key === void 0 ? "invalid" : upsert(this.complexOrders, key, data);
      }
      case "OrderRemoved":
        return removeById(this.orders, data);
      case "ComplexOrderRemoved":
        return removeById(this.complexOrders, data);
      case "CurrentPosition":
        return this.applyPosition(data);
      default:
        return "passthrough";
    }
  }
  /** The gateway's `replace`: any value, unless equal to the one held or older (an
   * `updated-at` on both, which only objects have). `null` is a value here, as there. */
  replace(slot, data) {
    const current = this[slot];
    if (current !== void 0 && jsonEqual(current, data)) return "unchanged";
    if (current !== void 0 && isObject(current) && isObject(data) && isStale(current, data)) return "stale";
    this[slot] = data;
    return "changed";
  }
  applyOrder(data) {
    const key = objectKey(data);
    if (key === void 0) return "invalid";
    const current = this.orders.get(key);
    if (current !== void 0 && losesFills(current, data)) return "stale";
    return upsert(this.orders, key, dedupeFills(data));
  }
  applyPosition(data) {
    const key = positionKey(data);
    if (key === void 0) return "invalid";
    if (!isClosedPosition(data)) return upsert(this.positions, key, data);
    const current = this.positions.get(key);
    if (current === void 0) return "unchanged";
    if (isStale(current, data)) return "stale";
    this.positions.delete(key);
    return "changed";
  }
  /** The state as a snapshot, lists in the gateway's order (positions by symbol, orders by id). */
  toSnapshot() {
    return {
      account: this.account,
      epoch: this.epoch,
      seq: this.seq,
      as_of: this.asOf,
      balance: this.balance ?? null,
      positions: sortedValues(this.positions, comparePositionKeys),
      orders: sortedValues(this.orders, compareObjectKeys),
      complex_orders: sortedValues(this.complexOrders, compareObjectKeys),
      trading_status: this.tradingStatus ?? null
    };
  }
};

// src/backoff.ts
var Backoff = class {
  attempt = 0;
  lastImmediate;
  initialMs;
  maxMs;
  constructor(options = {}) {
    this.initialMs = options.initialMs ?? 250;
    this.maxMs = options.maxMs ?? 5e3;
  }
  /** The delay before the next attempt (each call lengthens the next). */
  next() {
    const step = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return step / 2 + Math.random() * step / 2;
  }
  /** The delay before an attempt asked to be made at once: 0 once per `maxMs`, else `next()`. */
  soon(now = Date.now()) {
    if (this.lastImmediate !== void 0 && now - this.lastImmediate < this.maxMs) return this.next();
    this.lastImmediate = now;
    return 0;
  }
  /** Back to the first delay (a connection delivered data). */
  reset() {
    this.attempt = 0;
  }
};

// src/emitter.ts
var Emitter = class {
  listeners = /* @__PURE__ */ new Map();
  on(name, listener) {
    let set = this.listeners.get(name);
    if (set === void 0) this.listeners.set(name, set = /* @__PURE__ */ new Set());
    set.add(listener);
    return () => set.delete(listener);
  }
  emit(name, value, onError) {
    for (const listener of [...this.listeners.get(name) ?? []]) {
      try {
        listener(value);
      } catch (error) {
        onError(error);
      }
    }
  }
  clear() {
    this.listeners.clear();
  }
};

// src/queue.ts
var DEFAULT_QUEUE_LIMIT = 1e4;
var PushIterator = class {
  constructor(options) {
    this.options = options;
    this.limit = Math.max(1, options.limit ?? DEFAULT_QUEUE_LIMIT);
  }
  options;
  items = [];
  waiting = [];
  limit;
  ended = false;
  overflowing = false;
  drops = 0;
  /** How many items were dropped unread because the queue was full. */
  get dropped() {
    return this.drops;
  }
  push(item) {
    if (this.ended) return;
    const resolve = this.waiting.shift();
    if (resolve !== void 0) return resolve({ value: item, done: false });
    if (this.items.length >= this.limit) {
      this.items.shift();
      this.drops++;
      if (!this.overflowing) {
        this.overflowing = true;
        this.options.onOverflow?.(this.drops);
      }
    }
    this.items.push(item);
  }
  end() {
    this.ended = true;
    for (const resolve of this.waiting.splice(0)) resolve({ value: void 0, done: true });
  }
  next() {
    if (this.items.length > 0) {
      const item = this.items.shift();
      if (this.items.length === 0) this.overflowing = false;
      return Promise.resolve({ value: item, done: false });
    }
    if (this.ended) return Promise.resolve({ value: void 0, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  return() {
    this.items.length = 0;
    this.end();
    this.options.onReturn();
    return Promise.resolve({ value: void 0, done: true });
  }
  [Symbol.asyncIterator]() {
    return this;
  }
};

// src/transports/messages.ts
function dispatchSse(handlers, event, data, streamId) {
  let body;
  try {
    body = JSON.parse(data);
  } catch {
    handlers.onWarning(new Error(`unreadable ${event} event from the gateway`));
    return;
  }
  if (event === "snapshot" || event === "reset") {
    handlers.onSnapshot(body, event === "reset", streamId);
  } else {
    handlers.onEvent(body, streamId);
  }
}
var EVENT_NAMES = [
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
  "status"
];

// src/transports/transport.ts
var GatewayError = class extends Error {
  constructor(status, code, message) {
    super(`gateway answered ${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.name = "GatewayError";
  }
  status;
  code;
};
function isTokenRefusal(error) {
  return error instanceof GatewayError && error.status === 401 && error.code.startsWith("token_");
}
function retryableStatus(status) {
  return status >= 500 || status === 401 || status === 408 || status === 429;
}
function eventsUrl(request, query) {
  const path = request.account === void 0 ? "v1/events" : `v1/accounts/${encodeURIComponent(request.account)}/events`;
  return withQuery(new URL(path, withSlash(request.baseUrl)), query);
}
function withSlash(baseUrl) {
  return baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
}
function withQuery(url, query) {
  for (const [name, value] of Object.entries(query)) {
    if (value !== void 0) url.searchParams.set(name, value);
  }
  return url;
}

// src/transports/event-source.ts
function connectEventSource(request, handlers, EventSourceImpl) {
  const url = eventsUrl(request, { access_token: request.credential, last_event_id: request.lastEventId });
  const source = request.withCredentials ? new EventSourceImpl(url.toString(), { withCredentials: true }) : new EventSourceImpl(url.toString());
  let ended = false;
  const listener = (event) => {
    if (!ended) dispatchSse(handlers, event.type, event.data, event.lastEventId);
  };
  for (const name of ["snapshot", "reset", ...EVENT_NAMES]) source.addEventListener(name, listener);
  source.onopen = () => {
    if (!ended) handlers.onOpen();
  };
  source.onerror = () => {
    if (ended) return;
    ended = true;
    source.close();
    handlers.onClose({ retry: true, error: new Error("the event stream failed or ended") });
  };
  return {
    close() {
      ended = true;
      source.close();
    }
  };
}

// src/sse-parser.ts
var SseParser = class {
  constructor(onMessage, onComment = () => {
  }) {
    this.onMessage = onMessage;
    this.onComment = onComment;
  }
  onMessage;
  onComment;
  buffer = "";
  data = [];
  event = "";
  lastEventId = "";
  first = true;
  /** Feeds a decoded chunk; complete lines are parsed now, a partial one is kept. */
  push(chunk) {
    let text = this.buffer + chunk;
    if (this.first && text.length > 0) {
      if (text.charCodeAt(0) === 65279) text = text.slice(1);
      this.first = false;
    }
    let start = 0;
    for (; ; ) {
      const end = nextLineEnd(text, start);
      if (end === -1 || text[end] === "\r" && end + 1 === text.length) break;
      this.line(text.slice(start, end));
      start = end + (text[end] === "\r" && text[end + 1] === "\n" ? 2 : 1);
    }
    this.buffer = text.slice(start);
  }
  line(line) {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return this.onComment(line.slice(1).trimStart());
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
  }
  dispatch() {
    if (this.data.length === 0) {
      this.event = "";
      return;
    }
    const message = { event: this.event || "message", data: this.data.join("\n"), lastEventId: this.lastEventId };
    this.data = [];
    this.event = "";
    this.onMessage(message);
  }
};
function nextLineEnd(text, from) {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return -1;
}

// src/transports/fetch-sse.ts
function requestHeaders(request) {
  const headers = { accept: "text/event-stream" };
  if (request.credential !== void 0) headers["authorization"] = `Bearer ${request.credential}`;
  if (request.lastEventId !== void 0) headers["last-event-id"] = request.lastEventId;
  return headers;
}
async function errorOf(response) {
  try {
    const body = await response.json();
    return new GatewayError(response.status, body.error?.code ?? "error", body.error?.message ?? "");
  } catch {
    return new GatewayError(response.status, "error", response.statusText);
  }
}
var TOKEN_EXPIRED_COMMENT = "token expired";
async function readEvents(response, handlers) {
  let expired = false;
  const parser = new SseParser(
    (message) => dispatchSse(handlers, message.event, message.data, message.lastEventId),
    (comment) => expired ||= comment.startsWith(TOKEN_EXPIRED_COMMENT)
  );
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (; ; ) {
    const { done, value } = await reader.read();
    if (done) return expired;
    parser.push(decoder.decode(value, { stream: true }));
  }
}
function connectFetch(request, handlers, fetchImpl) {
  const abort = new AbortController();
  let ended = false;
  const end = (retry, error, immediate = false) => {
    if (ended || abort.signal.aborted) return;
    ended = true;
    handlers.onClose({ retry, immediate, error });
  };
  const run = async () => {
    const response = await fetchImpl(eventsUrl(request, {}), {
      headers: requestHeaders(request),
      signal: abort.signal,
      cache: "no-store",
      credentials: request.withCredentials ? "include" : "same-origin"
    });
    if (!response.ok || response.body === null) {
      end(retryableStatus(response.status), await errorOf(response));
      return;
    }
    handlers.onOpen();
    const expired = await readEvents(response, handlers);
    if (expired) end(true, new Error("the token expired: reconnecting with a fresh one"), true);
    else end(true, new Error("the gateway ended the stream"));
  };
  run().catch((error) => end(true, error instanceof Error ? error : new Error(String(error))));
  return {
    close() {
      abort.abort();
    }
  };
}

// src/token-expiry.ts
var MAX_DEFAULT_MARGIN_MS = 3e4;
var MIN_MARGIN_MS = 1e3;
function base64UrlDecode(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return void 0;
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  try {
    const binary = atob(base64);
    return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return void 0;
  }
}
function tokenExpiry(token) {
  if (token === void 0) return void 0;
  const parts = token.split(".");
  if (parts.length !== 3) return void 0;
  const payload = base64UrlDecode(parts[1]);
  if (payload === void 0) return void 0;
  try {
    const claims = JSON.parse(payload);
    if (typeof claims !== "object" || claims === null) return void 0;
    const exp = claims["exp"];
    return typeof exp === "number" && Number.isFinite(exp) ? exp : void 0;
  } catch {
    return void 0;
  }
}
function refreshDelay(exp, now, marginMs) {
  const left = exp * 1e3 - now;
  const margin = marginMs ?? Math.max(MIN_MARGIN_MS, Math.min(MAX_DEFAULT_MARGIN_MS, left / 10));
  const delay = left - margin;
  return delay > 0 ? delay : void 0;
}

// src/transports/websocket.ts
var CLOSE_SLOW_CONSUMER = 4008;
var CLOSE_TOKEN_EXPIRED = 4001;
function socketUrl(request) {
  const url = new URL("v1/ws", withSlash(request.baseUrl));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return withQuery(url, { access_token: request.credential }).toString();
}
function subscribeMessage(request) {
  const accounts = request.account === void 0 ? [] : [request.account];
  return JSON.stringify({ op: "subscribe", id: 1, accounts, resume: request.positions });
}
function handle(message, handlers, acked) {
  switch (message["type"]) {
    case "ack":
      if (message["op"] === "refresh") {
        if (typeof message["expires_at"] === "number") handlers.onTokenRefreshed(message["expires_at"]);
      } else if (!acked()) handlers.onOpen();
      return void 0;
    case "token_expiring":
      if (typeof message["expires_at"] === "number") handlers.onTokenExpiring(message["expires_at"]);
      return void 0;
    case "pong":
      return void 0;
    case "error": {
      const error = new Error(`gateway: ${String(message["code"])}: ${String(message["message"])}`);
      if (!acked()) return error;
      handlers.onWarning(error);
      return void 0;
    }
    case "snapshot":
    case "reset":
      handlers.onSnapshot(message["data"], message["type"] === "reset", String(message["id"]));
      return void 0;
    default:
      handlers.onEvent(message, String(message["id"]));
      return void 0;
  }
}
function connectWebSocket(request, handlers, WebSocketImpl) {
  const socket = new WebSocketImpl(socketUrl(request));
  let ended = false;
  let acked = false;
  const end = (retry, immediate, error) => {
    if (ended) return;
    ended = true;
    handlers.onClose({ retry, immediate, error });
  };
  socket.onopen = () => socket.send(subscribeMessage(request));
  socket.onmessage = (event) => {
    if (ended || typeof event.data !== "string") return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return handlers.onWarning(new Error("unreadable message from the gateway"));
    }
    if (!isObject(message)) return;
    const refused = handle(message, handlers, () => acked);
    if (message["type"] === "ack") acked = true;
    if (refused !== void 0) {
      socket.close(1e3);
      end(false, false, refused);
    }
  };
  socket.onclose = (event) => {
    const immediate = event.code === CLOSE_SLOW_CONSUMER || event.code === CLOSE_TOKEN_EXPIRED;
    end(true, immediate, new Error(`the WebSocket closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`));
  };
  socket.onerror = () => {
    if (ended) return;
    end(true, false, new Error("the WebSocket failed"));
    socket.close();
  };
  let refreshes = 0;
  return {
    close() {
      ended = true;
      socket.close(1e3);
    },
    refresh(token) {
      if (ended) return;
      try {
        socket.send(JSON.stringify({ op: "refresh", id: `refresh-${++refreshes}`, token }));
      } catch {
      }
    }
  };
}

// src/account-stream.ts
function defaultTransport() {
  return typeof globalThis.EventSource === "function" ? "sse" : "fetch";
}
function required(value, what) {
  if (value === void 0) throw new Error(`${what} is not available here: pass it in the options`);
  return value;
}
var AccountStream = class {
  options;
  transport;
  accounts = /* @__PURE__ */ new Map();
  views = /* @__PURE__ */ new Map();
  upstreams = /* @__PURE__ */ new Map();
  emitter = new Emitter();
  iterators = /* @__PURE__ */ new Set();
  backoff;
  connection;
  timer;
  refreshTimer;
  tokenExp;
  tokenRetried = false;
  streamId;
  current = "connecting";
  generation = 0;
  constructor(options) {
    this.options = options;
    this.transport = options.transport ?? defaultTransport();
    this.backoff = new Backoff(options.backoff);
    void this.connect();
  }
  /** The connection's state. */
  get connectionState() {
    return this.current;
  }
  /** The last stream id received. A one-account SSE reconnect resumes from it; over
   * `/v1/events` it does if it is a compact one, else the resume id is built from the
   * accounts held (see `resumeId`). */
  get lastEventId() {
    return this.streamId;
  }
  /** When the current connection's token (JWT) expires, in epoch seconds, as read from the
   * token or from the gateway's ack of a WebSocket refresh; undefined for keys and cookies. */
  get tokenExpiresAt() {
    return this.tokenExp;
  }
  /** The public ids of the accounts with a state so far. */
  get accountIds() {
    return [...this.accounts.keys()];
  }
  /** An account's state (default: the stream's account, or the only one). */
  state(account) {
    const id = account ?? this.options.account ?? (this.accounts.size === 1 ? this.accountIds[0] : void 0);
    if (id === void 0) return void 0;
    const held = this.accounts.get(id);
    if (held === void 0) return void 0;
    let view = this.views.get(id);
    if (view === void 0) this.views.set(id, view = held.toSnapshot());
    return view;
  }
  /** Every account's state, by public id. */
  states() {
    return new Map(this.accountIds.map((id) => [id, this.state(id)]));
  }
  /** The last upstream status the stream reported for an account (status events only). */
  upstream(account) {
    return this.upstreams.get(account);
  }
  /** Listens to `change`, `status`, `event`, `connection` or `error`; returns the remover. */
  on(name, listener) {
    return this.emitter.on(name, listener);
  }
  /** Shorthand for `on("change", listener)`. */
  onChange(listener) {
    return this.on("change", listener);
  }
  /** Every change from now on, until `close()` (or the loop breaks). */
  changes() {
    const limit = this.options.queueLimit;
    const iterator = new PushIterator({
      onReturn: () => this.iterators.delete(iterator),
      limit,
      onOverflow: (dropped) => this.emit("error", new Error(`a changes() reader fell ${limit ?? DEFAULT_QUEUE_LIMIT} changes behind: the oldest are dropped (${dropped} so far)`))
    });
    if (this.current === "closed") iterator.end();
    else this.iterators.add(iterator);
    return iterator;
  }
  [Symbol.asyncIterator]() {
    return this.changes();
  }
  /** Drops the connection and reconnects at once, resuming from the last position. */
  reconnect() {
    if (this.current === "closed") return;
    this.drop();
    this.setState("reconnecting");
    void this.connect();
  }
  /** Ends the stream for good: no more callbacks; iterators finish. */
  close() {
    if (this.current === "closed") return;
    this.drop();
    this.setState("closed");
    for (const iterator of this.iterators) iterator.end();
    this.iterators.clear();
    this.emitter.clear();
  }
  drop() {
    this.generation++;
    clearTimeout(this.timer);
    this.timer = void 0;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = void 0;
    this.connection?.close();
    this.connection = void 0;
  }
  setState(next) {
    if (this.current === next) return;
    this.current = next;
    this.emit("connection", next);
  }
  emit(name, value) {
    this.emitter.emit(name, value, (error) => {
      if (name !== "error") this.emit("error", error instanceof Error ? error : new Error(String(error)));
    });
  }
  async credential() {
    return this.options.token !== void 0 ? await this.options.token() : this.options.apiKey;
  }
  /** Each account's position (`<epoch>-<seq>`), for a WebSocket resume. */
  positions() {
    return Object.fromEntries([...this.accounts].map(([id, state]) => [id, `${state.epoch}-${state.seq}`]));
  }
  /** The SSE resume id: over one account, the last id received; over `/v1/events`, the last
   * id received if it is a compact one (`<epoch>-~<order>...`, written over many accounts, and
   * never while snapshots are still coming), else `<epoch>-<id>.<seq>...` of the accounts held,
   * never the last id received, which may name accounts whose snapshot has not arrived yet (an
   * account left out gets a snapshot). None when no account is held, or their epochs differ
   * (then every account starts afresh). */
  resumeId() {
    if (this.options.account !== void 0) return this.streamId;
    if (this.streamId !== void 0 && /^[^-]+-~/.test(this.streamId)) return this.streamId;
    if (this.streamId === void 0) return void 0;
    const held = [...this.accounts.values()];
    const epoch = held[0]?.epoch;
    if (epoch === void 0 || held.some((state) => state.epoch !== epoch)) return void 0;
    return `${epoch}-${held.map((state) => `${state.account}.${state.seq}`).join(".")}`;
  }
  /** Connects with a fresh credential (or `prefetched`, one just asked for). */
  async connect(prefetched) {
    const generation = ++this.generation;
    let credential;
    try {
      credential = prefetched !== void 0 ? prefetched.credential : await this.credential();
    } catch (error) {
      if (generation !== this.generation) return;
      return this.disconnected(generation, { retry: true, error });
    }
    if (generation !== this.generation || this.current === "closed") return;
    this.tokenExp = this.options.token !== void 0 ? tokenExpiry(credential) : void 0;
    this.scheduleRotation(generation);
    const request = {
      baseUrl: this.options.baseUrl,
      account: this.options.account,
      credential,
      lastEventId: this.resumeId(),
      positions: this.positions(),
      withCredentials: this.options.withCredentials ?? false
    };
    try {
      this.connection = this.open(request, this.handlers(generation));
    } catch (error) {
      this.disconnected(generation, { retry: false, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }
  /** SSE: reconnect with a fresh token a margin before this one's `exp` (a WebSocket is told
   * by the gateway instead). None for a token too short-lived to replace ahead, or one living
   * beyond what a timer can wait (2^31 ms): then the stream's end is the cue. */
  scheduleRotation(generation) {
    if (this.transport === "websocket" || this.tokenExp === void 0) return;
    const delay = refreshDelay(this.tokenExp, Date.now(), this.options.refreshMarginMs);
    if (delay === void 0 || delay > 2 ** 31 - 1) return;
    this.refreshTimer = setTimeout(() => void this.rotate(generation), delay);
  }
  /** Asks for a fresh token while the stream still runs, then reopens it from the resume id:
   * the events in between are replayed, none lost, none applied twice (seq). The connection
   * state stays `open`; a failing reconnect then reports `reconnecting` as usual. */
  async rotate(generation) {
    let credential;
    try {
      credential = await this.credential();
    } catch (error) {
      if (generation === this.generation) this.emit("error", error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (generation !== this.generation || this.current === "closed") return;
    this.drop();
    void this.connect({ credential });
  }
  /** WebSocket: the gateway says the token expires at `expiresAt`; hand it a fresh one. A
   * provider answering with a token no newer is not sent (the socket closes with 4001 at
   * `exp` and reconnects, asking again). */
  async refreshSocket(generation, expiresAt) {
    if (this.options.token === void 0) return;
    const connection = this.connection;
    let token;
    try {
      token = await this.options.token();
    } catch (error) {
      if (generation === this.generation) this.emit("error", error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (generation !== this.generation || this.connection !== connection) return;
    const exp = tokenExpiry(token);
    if (exp !== void 0 && exp <= expiresAt) {
      this.emit("error", new Error(`the token provider gave a token expiring at ${exp}, no later than the socket's (${expiresAt}): not refreshed`));
      return;
    }
    connection?.refresh?.(token);
  }
  open(request, handlers) {
    const g = globalThis;
    switch (this.transport) {
      case "sse":
        return connectEventSource(request, handlers, required(this.options.EventSource ?? g["EventSource"], "EventSource"));
      case "websocket":
        return connectWebSocket(request, handlers, required(this.options.WebSocket ?? g["WebSocket"], "WebSocket"));
      case "fetch":
        return connectFetch(request, handlers, required(this.options.fetch ?? g["fetch"]?.bind(globalThis), "fetch"));
    }
  }
  handlers(generation) {
    const live = () => generation === this.generation;
    let delivered = false;
    const data = () => {
      if (!live()) return false;
      if (!delivered) {
        this.backoff.reset();
        this.tokenRetried = false;
      }
      delivered = true;
      return true;
    };
    return {
      onOpen: () => live() && this.setState("open"),
      onSnapshot: (snapshot, reset, streamId) => data() && this.onSnapshot(snapshot, reset, streamId),
      onEvent: (envelope, streamId) => data() && this.onEvent(envelope, streamId),
      onWarning: (error) => live() && this.emit("error", error),
      onTokenExpiring: (expiresAt) => live() && void this.refreshSocket(generation, expiresAt),
      onTokenRefreshed: (expiresAt) => {
        if (live()) this.tokenExp = expiresAt;
      },
      onClose: (reason) => this.disconnected(generation, reason)
    };
  }
  disconnected(generation, reason) {
    if (generation !== this.generation || this.current === "closed") return;
    this.connection = void 0;
    if (reason.error !== void 0) this.emit("error", reason.error);
    if (!reason.retry) return this.close();
    this.setState("reconnecting");
    this.timer = setTimeout(() => void this.connect(), this.reconnectDelay(reason));
  }
  /** The wait before a reconnect: none for the first token refusal (401 `token_*`) since data
   * last came (the provider is asked again at once); at once (once per backoff window, see
   * `Backoff.soon`) when asked to, or when the stream ended with its token (SSE at `exp`,
   * EventSource's end is otherwise silent); else the backoff. */
  reconnectDelay(reason) {
    if (this.options.token !== void 0 && isTokenRefusal(reason.error) && !this.tokenRetried) {
      this.tokenRetried = true;
      return 0;
    }
    const expired = this.tokenExp !== void 0 && Date.now() >= this.tokenExp * 1e3 - 1e3;
    return reason.immediate || expired ? this.backoff.soon() : this.backoff.next();
  }
  onSnapshot(snapshot, reset, streamId) {
    if (streamId !== "") this.streamId = streamId;
    this.accounts.set(snapshot.account, new AccountState(snapshot));
    this.changed(snapshot.account, reset ? "reset" : "snapshot", void 0);
  }
  onEvent(envelope, streamId) {
    this.streamId = streamId;
    const held = this.accounts.get(envelope.account);
    if (held === void 0 || envelope.seq <= held.seq) return;
    held.seq = envelope.seq;
    const applied = held.apply(envelope.type, envelope.data);
    this.views.delete(envelope.account);
    this.emit("event", envelope);
    if (envelope.type === "status") {
      const status = envelope.data;
      this.upstreams.set(envelope.account, status);
      this.emit("status", { account: envelope.account, status, envelope });
    }
    if (applied === "changed") this.changed(envelope.account, "event", envelope);
  }
  changed(account, kind, envelope) {
    this.views.delete(account);
    const change = { account, kind, envelope, state: this.state(account) };
    for (const iterator of this.iterators) iterator.push(change);
    this.emit("change", change);
  }
};
export {
  AccountState,
  AccountStream,
  GatewayError,
  STATE_TYPES,
  tokenExpiry
};
