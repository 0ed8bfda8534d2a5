// Compile-time check (`npm run check:src`) that the generated types give the five tastytrade
// object types real fields, not `unknown` / `any`: each line fails to compile otherwise.
import type { Balance, ComplexOrder, Order, OrderFill, OrderLeg, Position, Snapshot, TradingStatus } from "../../src/types.js";

type IsAnyOrUnknown<T> = unknown extends T ? true : false;
type Typed<T> = IsAnyOrUnknown<T> extends true ? never : true;

export const checks: Array<true> = [
  true as Typed<Balance["net-liquidating-value"]>,
  true as Typed<Balance["cash-balance"]>,
  true as Typed<Position["symbol"]>,
  true as Typed<Position["quantity"]>,
  true as Typed<Position["quantity-direction"]>,
  true as Typed<Order["id"]>,
  true as Typed<Order["status"]>,
  true as Typed<Order["legs"]>,
  true as Typed<OrderLeg["fills"]>,
  true as Typed<OrderFill["fill-id"]>,
  true as Typed<ComplexOrder["id"]>,
  true as Typed<TradingStatus["is-frozen"]>,
  true as Typed<Snapshot["balance"]>,
  true as Typed<Snapshot["orders"][number]["legs"]>,
];
