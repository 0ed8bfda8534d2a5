// The merge rules, case by case, as the gateway's own unit tests state them
// (src/model/state.rs `mod tests`): newer wins, older is stale, ids compared as text, fills
// never lost or counted twice, closed positions removed, removals by id.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AccountState } from "../../dist/index.js";

const empty = () =>
  new AccountState({ account: "a", epoch: "e", seq: 0, as_of: "", balance: null, positions: [], orders: [], complex_orders: [], trading_status: null });
const order = (id, status, updated) => ({ id, status, "updated-at": updated });

test("a newer order wins, an older one is stale, the same one is unchanged", () => {
  const state = empty();
  assert.equal(state.apply("Order", order(1, "Live", 10)), "changed");
  assert.equal(state.apply("Order", order(1, "Routed", 5)), "stale");
  assert.equal(state.apply("Order", order(1, "Live", 10)), "unchanged");
  assert.equal(state.apply("Order", order(1, "Filled", 11)), "changed");
  assert.equal(state.orders.size, 1);
  assert.equal(state.apply("Order", { status: "Live" }), "invalid");
});

test("updated-at compares across forms (epoch ms, ISO text)", () => {
  const state = empty();
  assert.equal(state.apply("AccountBalance", { "cash-balance": "1", "updated-at": "2026-01-01T00:00:01Z" }), "changed");
  assert.equal(state.apply("AccountBalance", { "cash-balance": "2", "updated-at": Date.parse("2026-01-01T00:00:00Z") }), "stale");
  assert.equal(state.apply("AccountBalance", { "cash-balance": "3" }), "changed");
  assert.equal(state.toSnapshot().balance["cash-balance"], "3");
});

test("fills are never lost or counted twice", () => {
  const state = empty();
  const withFills = (ids) => ({ id: 5, status: "Filled", "updated-at": 10, legs: [{ fills: ids.map((id) => ({ "fill-id": id, quantity: 1 })) }] });
  assert.equal(state.apply("Order", withFills(["a", "b"])), "changed");
  assert.equal(state.apply("Order", withFills(["a"])), "stale", "a copy with fewer fills");
  assert.equal(state.apply("Order", withFills(["a", "b", "c", "c"])), "changed");
  const held = state.toSnapshot().orders[0];
  assert.deepEqual(held.legs[0].fills.map((f) => f["fill-id"]), ["a", "b", "c"]);
});

test("a zero position removes it; ids match as text (7 and \"7\")", () => {
  const state = empty();
  const long = { symbol: "SPY", "instrument-type": "Equity", quantity: "100.29", "quantity-direction": "Long" };
  const zero = { symbol: "SPY", "instrument-type": "Equity", quantity: "0", "quantity-direction": "Zero" };
  assert.equal(state.apply("CurrentPosition", long), "changed");
  assert.equal(state.apply("CurrentPosition", { ...long, "instrument-type": "Equity Option" }), "changed", "another instrument type is another position");
  assert.equal(state.apply("CurrentPosition", zero), "changed");
  assert.deepEqual(state.toSnapshot().positions.map((p) => p["instrument-type"]), ["Equity Option"]);
  assert.equal(state.apply("CurrentPosition", zero), "unchanged");
  assert.equal(state.apply("CurrentPosition", { ...long, "instrument-type": "Equity Option", quantity: "0.00", "quantity-direction": "Long" }), "changed", "quantity 0 closes too");
  assert.equal(state.positions.size, 0);
  assert.equal(state.apply("Order", { id: "7", "updated-at": 1 }), "changed");
  assert.equal(state.apply("Order", { id: 7, "updated-at": 1 }), "changed");
  assert.equal(state.orders.size, 1);
});

test("OrderRemoved and ComplexOrderRemoved remove by id", () => {
  const state = empty();
  state.apply("Order", order(301001, "Filled", 10));
  state.apply("ComplexOrder", { id: 9, type: "OTOCO" });
  assert.equal(state.apply("OrderRemoved", { id: "301001" }), "changed");
  assert.equal(state.apply("OrderRemoved", { id: 301001 }), "unchanged");
  assert.equal(state.apply("OrderRemoved", {}), "invalid");
  assert.equal(state.apply("ComplexOrderRemoved", { id: "9" }), "changed");
  assert.equal(state.apply("ExternalTransaction", { id: 1 }), "passthrough");
  assert.equal(state.orders.size + state.complexOrders.size, 0);
});

test("lists come in the gateway's order: numeric ids numerically, then text; positions by symbol, type", () => {
  const state = empty();
  for (const id of ["b", 10, "9", "a", 100]) state.apply("Order", { id });
  assert.deepEqual(state.toSnapshot().orders.map((o) => o.id), ["9", 10, 100, "a", "b"]);
  for (const [symbol, type] of [["SPY", "Equity Option"], ["AAPL", "Equity"], ["SPY", "Equity"]]) {
    state.apply("CurrentPosition", { symbol, "instrument-type": type, quantity: "1" });
  }
  assert.deepEqual(state.toSnapshot().positions.map((p) => `${p.symbol}/${p["instrument-type"]}`), ["AAPL/Equity", "SPY/Equity", "SPY/Equity Option"]);
});

test("text sorts by code point, as Rust sorts Strings: U+FF5E before U+1F600 (UTF-16 says otherwise)", () => {
  const state = empty();
  for (const id of ["\u{1F600}", "\uFF5E", "z", "\u{1F600}a"]) state.apply("Order", { id });
  assert.deepEqual(state.toSnapshot().orders.map((o) => o.id), ["z", "\uFF5E", "\u{1F600}", "\u{1F600}a"]);
  for (const symbol of ["\u{1F600}", "\uFF5E"]) state.apply("CurrentPosition", { symbol, "instrument-type": "Equity", quantity: "1" });
  assert.deepEqual(state.toSnapshot().positions.map((p) => p.symbol), ["\uFF5E", "\u{1F600}"]);
});

test("balance and trading status take any JSON value, as the gateway's replace does", () => {
  for (const type of ["AccountBalance", "TradingStatus"]) {
    const state = empty();
    const slot = () => (type === "AccountBalance" ? state.toSnapshot().balance : state.toSnapshot().trading_status);
    assert.equal(state.apply(type, { "updated-at": 10, v: 1 }), "changed");
    assert.equal(state.apply(type, [1, 2]), "changed", "an array has no updated-at: never stale");
    assert.deepEqual(slot(), [1, 2]);
    assert.equal(state.apply(type, [1, 2]), "unchanged");
    assert.equal(state.apply(type, "text"), "changed");
    assert.equal(state.apply(type, 7), "changed");
    assert.equal(state.apply(type, null), "changed");
    assert.equal(state.apply(type, null), "unchanged", "null is a value held");
    assert.equal(state.apply(type, { "updated-at": 5, v: 2 }), "changed", "older than nothing held as an object");
    assert.equal(state.apply(type, { "updated-at": 4, v: 3 }), "stale");
    assert.deepEqual(slot(), { "updated-at": 5, v: 2 });
  }
});

test("a time the gateway cannot read (no offset, a date alone) is no time: never stale", () => {
  const state = empty();
  assert.equal(state.apply("Order", order(1, "Live", "2026-01-02T00:00:00Z")), "changed");
  assert.equal(state.apply("Order", order(1, "Routed", "2026-01-01T00:00:00")), "changed");
  assert.equal(state.apply("Order", order(1, "Filled", "2026-01-02T00:00:00Z")), "changed");
  assert.equal(state.apply("Order", order(1, "Cancelled", "2026-01-01")), "changed");
});
