// One account's state kept from a snapshot and the events after it, with exactly the gateway's
// merge rules (src/model/state.rs `AccountState::apply`): balance and trading status replaced
// (by any JSON value, as the gateway stores whatever `data` is), orders and complex orders
// upserted by id (removed by `OrderRemoved` / `ComplexOrderRemoved`), positions keyed by
// symbol + instrument type and removed when closed, fills kept once, older objects
// (`updated-at`) ignored. `snapshot` and `reset` replace everything.
import { compareObjectKeys, comparePositionKeys, objectKey, positionKey } from "./keys.js";
import { dedupeFills, isClosedPosition, isStale, losesFills } from "./rules.js";
import type { Balance, ComplexOrder, Order, Position, Snapshot, TradingStatus } from "./types.js";
import { isObject, jsonEqual, type JsonObject } from "./wire.js";

/** What applying one event did (the gateway's `Applied`). */
export type Applied = "changed" | "unchanged" | "stale" | "invalid" | "passthrough";

/** The event types that change an account's state. */
export const STATE_TYPES = [
  "AccountBalance",
  "TradingStatus",
  "Order",
  "ComplexOrder",
  "OrderRemoved",
  "ComplexOrderRemoved",
  "CurrentPosition",
] as const;

function upsert(map: Map<string, JsonObject>, key: string, data: JsonObject): Applied {
  const current = map.get(key);
  if (current !== undefined && jsonEqual(current, data)) return "unchanged";
  if (current !== undefined && isStale(current, data)) return "stale";
  map.set(key, data);
  return "changed";
}

function removeById(map: Map<string, JsonObject>, data: JsonObject): Applied {
  const key = objectKey(data);
  if (key === undefined) return "invalid";
  return map.delete(key) ? "changed" : "unchanged";
}

function sortedValues(map: Map<string, JsonObject>, compare: (a: string, b: string) => number): JsonObject[] {
  return [...map.keys()].sort(compare).map((key) => map.get(key) as JsonObject);
}

function keyed(items: unknown[], key: (item: JsonObject) => string | undefined): Map<string, JsonObject> {
  const map = new Map<string, JsonObject>();
  for (const item of items) {
    if (!isObject(item)) continue;
    const k = key(item);
    if (k !== undefined) map.set(k, item);
  }
  return map;
}

export class AccountState {
  readonly account: string;
  epoch: string;
  seq: number;
  asOf: string;
  /** The last balance: any JSON value (normally an object); undefined: none yet. */
  balance: unknown;
  /** The last trading status: any JSON value (normally an object); undefined: none yet. */
  tradingStatus: unknown;
  readonly positions: Map<string, JsonObject>;
  readonly orders: Map<string, JsonObject>;
  readonly complexOrders: Map<string, JsonObject>;

  /** The state a snapshot (or a reset) shows. */
  constructor(snapshot: Snapshot) {
    this.account = snapshot.account;
    this.epoch = snapshot.epoch;
    this.seq = snapshot.seq;
    this.asOf = snapshot.as_of;
    this.balance = snapshot.balance ?? undefined;
    this.tradingStatus = snapshot.trading_status ?? undefined;
    this.positions = keyed(snapshot.positions, positionKey);
    this.orders = keyed(snapshot.orders, objectKey);
    this.complexOrders = keyed(snapshot.complex_orders, objectKey);
  }

  /** Applies one event's `data` of type `type`; says what it did, as the gateway would. */
  apply(type: string, data: unknown): Applied {
    if (type === "AccountBalance") return this.replace("balance", data);
    if (type === "TradingStatus") return this.replace("tradingStatus", data);
    if (!isObject(data)) return STATE_TYPES.includes(type as never) ? "invalid" : "passthrough";
    switch (type) {
      case "Order":
        return this.applyOrder(data);
      case "ComplexOrder": {
        const key = objectKey(data);
        return key === undefined ? "invalid" : upsert(this.complexOrders, key, data);
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
  private replace(slot: "balance" | "tradingStatus", data: unknown): Applied {
    const current = this[slot];
    if (current !== undefined && jsonEqual(current, data)) return "unchanged";
    if (current !== undefined && isObject(current) && isObject(data) && isStale(current, data)) return "stale";
    this[slot] = data;
    return "changed";
  }

  private applyOrder(data: JsonObject): Applied {
    const key = objectKey(data);
    if (key === undefined) return "invalid";
    const current = this.orders.get(key);
    if (current !== undefined && losesFills(current, data)) return "stale";
    return upsert(this.orders, key, dedupeFills(data));
  }

  private applyPosition(data: JsonObject): Applied {
    const key = positionKey(data);
    if (key === undefined) return "invalid";
    if (!isClosedPosition(data)) return upsert(this.positions, key, data);
    const current = this.positions.get(key);
    if (current === undefined) return "unchanged";
    if (isStale(current, data)) return "stale";
    this.positions.delete(key);
    return "changed";
  }

  /** The state as a snapshot, lists in the gateway's order (positions by symbol, orders by id). */
  toSnapshot(): Snapshot {
    return {
      account: this.account,
      epoch: this.epoch,
      seq: this.seq,
      as_of: this.asOf,
      balance: (this.balance ?? null) as Balance | null,
      positions: sortedValues(this.positions, comparePositionKeys) as Position[],
      orders: sortedValues(this.orders, compareObjectKeys) as Order[],
      complex_orders: sortedValues(this.complexOrders, compareObjectKeys) as ComplexOrder[],
      trading_status: (this.tradingStatus ?? null) as TradingStatus | null,
    };
  }
}
