// Compares a client's account state with the gateway's `GET /snapshot`: epoch, seq, every
// balance and trading-status field, and positions / orders / complex orders as maps keyed as
// the gateway keys them (list order aside). Returns a short diff (empty when equal).
import { isDeepStrictEqual } from "node:util";

const idOf = (o) => (typeof o.id === "number" ? String(o.id) : o.id);
const positionOf = (p) => `${p.symbol}|${p["instrument-type"] ?? ""}`;

function keyed(list, key) {
  return new Map(list.map((item) => [key(item), item]));
}

function short(value) {
  const text = JSON.stringify(value);
  return text === undefined ? "absent" : text.length > 90 ? `${text.slice(0, 87)}...` : text;
}

function diffFields(name, ours, theirs, out) {
  if (ours === null || theirs === null || ours === undefined || theirs === undefined) {
    if ((ours ?? null) !== (theirs ?? null)) out.push(`${name}: client ${short(ours)} gateway ${short(theirs)}`);
    return;
  }
  for (const field of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
    if (!isDeepStrictEqual(ours[field], theirs[field])) {
      out.push(`${name}.${field}: client ${short(ours[field])} gateway ${short(theirs[field])}`);
    }
  }
}

function diffMaps(name, ours, theirs, out) {
  for (const key of new Set([...ours.keys(), ...theirs.keys()])) {
    if (!ours.has(key)) out.push(`${name}[${key}]: missing in the client`);
    else if (!theirs.has(key)) out.push(`${name}[${key}]: only in the client`);
    else diffFields(`${name}[${key}]`, ours.get(key), theirs.get(key), out);
  }
}

/** The differences between a client's state and the gateway's snapshot (at most `limit`). */
export function stateDiff(client, gateway, limit = 12) {
  const out = [];
  if (!client) return ["the client holds no state for this account"];
  for (const field of ["account", "epoch", "seq"]) {
    if (client[field] !== gateway[field]) out.push(`${field}: client ${short(client[field])} gateway ${short(gateway[field])}`);
  }
  diffFields("balance", client.balance, gateway.balance, out);
  diffFields("trading_status", client.trading_status, gateway.trading_status, out);
  diffMaps("positions", keyed(client.positions, positionOf), keyed(gateway.positions, positionOf), out);
  diffMaps("orders", keyed(client.orders, idOf), keyed(gateway.orders, idOf), out);
  diffMaps("complex_orders", keyed(client.complex_orders, idOf), keyed(gateway.complex_orders, idOf), out);
  return out.length > limit ? [...out.slice(0, limit), `... and ${out.length - limit} more`] : out;
}
