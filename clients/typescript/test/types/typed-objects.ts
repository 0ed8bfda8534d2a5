// Compile-time check (`npm run check:src`) that the generated types give the five tastytrade
// object types real fields, not `unknown` / `any`: each line fails to compile otherwise.
import type { Balance, ComplexOrder, Order, OrderFill, OrderLeg, Position, Snapshot, TradingStatus } from "../../src/types.js";

/** True unless T is `unknown` or `any`. */
type Typed<T> = unknown extends T ? false : true;
type Assert<T extends true> = T;

export type Checks = [
  Assert<Typed<Balance["net-liquidating-value"]>>,
  Assert<Typed<Balance["cash-balance"]>>,
  Assert<Typed<Position["symbol"]>>,
  Assert<Typed<Position["quantity"]>>,
  Assert<Typed<Position["quantity-direction"]>>,
  Assert<Typed<Order["id"]>>,
  Assert<Typed<Order["status"]>>,
  Assert<Typed<Order["legs"]>>,
  Assert<Typed<OrderLeg["fills"]>>,
  Assert<Typed<OrderFill["fill-id"]>>,
  Assert<Typed<ComplexOrder["id"]>>,
  Assert<Typed<TradingStatus["is-frozen"]>>,
  Assert<Typed<Snapshot["balance"]>>,
  Assert<Typed<Snapshot["orders"][number]["legs"]>>,
];
