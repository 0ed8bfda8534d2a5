//! One account's current state: balance, positions, today's orders, complex orders and
//! trading status, each the full (masked) object tastytrade last sent. Updates are full-object
//! upserts: orders keyed by `id` with the newer `updated-at` winning, positions by symbol +
//! instrument type (`quantity-direction: Zero` removes one). A REST baseline is diffed against
//! the state into ordinary events, so "snapshot + events = state" survives every resync.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::kind::EventKind;
use super::wire_types::{epoch_millis, id_text};

/// Orders sort by numeric id when ids are numeric, then by text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey(u64, String);

impl ObjectKey {
    fn of(value: &Value) -> Option<Self> {
        let text = id_text(value.get("id"))?;
        Some(Self(text.parse().unwrap_or(u64::MAX), text))
    }
}

/// Objects with an `id` (orders, complex orders) keyed by it; objects without one are dropped.
pub fn keyed_by_id(items: impl IntoIterator<Item = Value>) -> BTreeMap<ObjectKey, Value> {
    items
        .into_iter()
        .filter_map(|item| Some((ObjectKey::of(&item)?, item)))
        .collect()
}

/// Positions are keyed by (symbol, instrument type).
pub type PositionKey = (String, String);

pub fn position_key(value: &Value) -> Option<PositionKey> {
    let symbol = value.get("symbol")?.as_str()?.to_string();
    let instrument = value
        .get("instrument-type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some((symbol, instrument))
}

/// A position that no longer exists: `quantity-direction: Zero`, or quantity 0. The fold asks
/// here; a REST baseline leaves out only the `Zero` rows (see `from_rest`).
pub fn is_closed_position(value: &Value) -> bool {
    if value.get("quantity-direction").and_then(Value::as_str) == Some("Zero") {
        return true;
    }
    match value.get("quantity") {
        Some(Value::String(s)) => s
            .parse::<rust_decimal::Decimal>()
            .is_ok_and(|q| q.is_zero()),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Whether `incoming` is strictly older than `current` by `updated-at` (when both have one).
fn is_stale(current: &Value, incoming: &Value) -> bool {
    let time = |v: &Value| v.get("updated-at").and_then(epoch_millis);
    match (time(current), time(incoming)) {
        (Some(now), Some(new)) => new.cmp(&now) == Ordering::Less,
        _ => false,
    }
}

fn fill_ids(order: &Value) -> Vec<String> {
    order
        .get("legs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|leg| leg.get("fills").and_then(Value::as_array))
        .flatten()
        .filter_map(|fill| id_text(fill.get("fill-id")))
        .collect()
}

/// tastytrade publishes fills as processed: the same order may come again, same `updated-at`,
/// with fewer fills than we hold. That copy would lose fills, so it is stale.
fn loses_fills(current: &Value, incoming: &Value) -> bool {
    let time = |v: &Value| v.get("updated-at").and_then(epoch_millis);
    if time(current) != time(incoming) {
        return false;
    }
    let held = fill_ids(current);
    let new = fill_ids(incoming);
    new.len() < held.len() && new.iter().all(|id| held.contains(id))
}

/// The order with repeated `fill-id`s in a leg kept once (a fill is never counted twice).
/// Borrowed as it is when no leg repeats a fill (the usual case): no copy of the order.
fn dedupe_fills(order: &Value) -> Cow<'_, Value> {
    let repeats = |fills: &Vec<Value>| {
        let mut seen = std::collections::HashSet::new();
        !fills
            .iter()
            .all(|fill| id_text(fill.get("fill-id")).is_none_or(|id| seen.insert(id)))
    };
    let legs = order.get("legs").and_then(Value::as_array);
    let any_repeat = legs.into_iter().flatten().any(|leg| {
        leg.get("fills")
            .and_then(Value::as_array)
            .is_some_and(repeats)
    });
    if !any_repeat {
        return Cow::Borrowed(order);
    }
    let mut order = order.clone();
    normalize(&EventKind::Order, &mut order);
    Cow::Owned(order)
}

/// Brings an object to the form the state holds, so that what is published is exactly what
/// is held: an order's repeated `fill-id`s in a leg are kept once. Call before `apply` on
/// anything that will be published.
pub fn normalize(kind: &EventKind, data: &mut Value) {
    if *kind != EventKind::Order {
        return;
    }
    if let Some(legs) = data.get_mut("legs").and_then(Value::as_array_mut) {
        for leg in legs {
            if let Some(fills) = leg.get_mut("fills").and_then(Value::as_array_mut) {
                let mut seen = std::collections::HashSet::new();
                fills.retain(|fill| id_text(fill.get("fill-id")).is_none_or(|id| seen.insert(id)));
            }
        }
    }
}

/// What applying one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The state changed: publish the event.
    Changed,
    /// Same object as held: nothing to publish.
    Unchanged,
    /// Older than what is held (`updated-at`): ignored.
    Stale,
    /// Lacks its key fields: skipped and counted.
    Invalid,
    /// Not a state type: publish it, the state is untouched.
    PassThrough,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountState {
    pub balance: Option<Value>,
    pub positions: BTreeMap<PositionKey, Value>,
    pub orders: BTreeMap<ObjectKey, Value>,
    pub complex_orders: BTreeMap<ObjectKey, Value>,
    pub trading_status: Option<Value>,
}

/// Stores `data` under `key` unless it is the same or older; copies it only to store it.
fn upsert<K: Ord>(map: &mut BTreeMap<K, Value>, key: K, data: Cow<'_, Value>) -> Applied {
    match map.get(&key) {
        Some(current) if *current == *data => Applied::Unchanged,
        Some(current) if is_stale(current, &data) => Applied::Stale,
        _ => {
            map.insert(key, data.into_owned());
            Applied::Changed
        }
    }
}

/// Gateway event types that take a terminal order (or complex order) out of the state when
/// tastytrade's `/orders/live` no longer lists it (the trading day rolled), so a snapshot
/// cannot grow for ever. Data: `{"id": <the order's id>}`.
/// Order statuses after which an order never changes again.
const TERMINAL_STATUSES: [&str; 6] = [
    "Filled",
    "Cancelled",
    "Expired",
    "Rejected",
    "Removed",
    "Partially Removed",
];

/// An order's `status` (the orders route filters by it).
pub fn order_status(order: &Value) -> Option<&str> {
    order.get("status")?.as_str()
}

/// A position's `underlying-symbol` (the positions route filters by it).
pub fn position_underlying(position: &Value) -> Option<&Value> {
    position.get("underlying-symbol")
}

/// A position's `instrument-type` (the positions route filters by it).
pub fn position_instrument(position: &Value) -> Option<&Value> {
    position.get("instrument-type")
}

fn is_terminal(order: &Value) -> bool {
    order
        .get("status")
        .and_then(Value::as_str)
        .is_some_and(|status| TERMINAL_STATUSES.contains(&status))
}

fn remove(map: &mut BTreeMap<ObjectKey, Value>, data: &Value) -> Applied {
    match ObjectKey::of(data) {
        Some(key) if map.remove(&key).is_some() => Applied::Changed,
        Some(_) => Applied::Unchanged,
        None => Applied::Invalid,
    }
}

fn replace(slot: &mut Option<Value>, data: &Value) -> Applied {
    match slot {
        Some(current) if current == data => Applied::Unchanged,
        Some(current) if is_stale(current, data) => Applied::Stale,
        _ => {
            *slot = Some(data.clone());
            Applied::Changed
        }
    }
}

impl AccountState {
    /// The state tastytrade's REST API describes: the baseline a (re)connect diffs against.
    /// Closed positions (tastytrade lists them when asked) and objects without a key are
    /// no holdings and are left out.
    pub fn from_rest(
        balance: Option<Value>,
        positions: impl IntoIterator<Item = Value>,
        orders: impl IntoIterator<Item = Value>,
        complex_orders: impl IntoIterator<Item = Value>,
        trading_status: Option<Value>,
    ) -> Self {
        // Only rows tastytrade marks `Zero` are left out. A row with quantity 0 but another
        // direction stays, so the diff applies it only if it is not older than ours (leaving
        // it out would close our position unchecked).
        let positions = positions
            .into_iter()
            .filter(|p| p.get("quantity-direction").and_then(Value::as_str) != Some("Zero"))
            .filter_map(|p| Some((position_key(&p)?, p)))
            .collect();
        Self {
            balance,
            positions,
            orders: keyed_by_id(orders),
            complex_orders: keyed_by_id(complex_orders),
            trading_status,
        }
    }

    /// The state a snapshot shows, keyed again (the diff of a resync starts from it).
    pub fn from_snapshot(snapshot: super::Snapshot) -> Self {
        Self {
            balance: snapshot.balance,
            positions: snapshot
                .positions
                .into_iter()
                .filter_map(|p| Some((position_key(&p)?, p)))
                .collect(),
            orders: keyed_by_id(snapshot.orders),
            complex_orders: keyed_by_id(snapshot.complex_orders),
            trading_status: snapshot.trading_status,
        }
    }

    /// Applies one full-object event; says whether it changed the state (only then is it
    /// published).
    pub fn apply(&mut self, kind: &EventKind, data: &Value) -> Applied {
        match kind {
            EventKind::AccountBalance => replace(&mut self.balance, data),
            EventKind::TradingStatus => replace(&mut self.trading_status, data),
            EventKind::Order => match ObjectKey::of(data) {
                Some(key) => {
                    if self
                        .orders
                        .get(&key)
                        .is_some_and(|current| loses_fills(current, data))
                    {
                        return Applied::Stale;
                    }
                    upsert(&mut self.orders, key, dedupe_fills(data))
                }
                None => Applied::Invalid,
            },
            EventKind::ComplexOrder => match ObjectKey::of(data) {
                Some(key) => upsert(&mut self.complex_orders, key, Cow::Borrowed(data)),
                None => Applied::Invalid,
            },
            EventKind::OrderRemoved => remove(&mut self.orders, data),
            EventKind::ComplexOrderRemoved => remove(&mut self.complex_orders, data),
            EventKind::CurrentPosition => {
                let Some(key) = position_key(data) else {
                    return Applied::Invalid;
                };
                if is_closed_position(data) {
                    match self.positions.get(&key) {
                        Some(current) if is_stale(current, data) => Applied::Stale,
                        Some(_) => {
                            self.positions.remove(&key);
                            Applied::Changed
                        }
                        None => Applied::Unchanged,
                    }
                } else {
                    upsert(&mut self.positions, key, Cow::Borrowed(data))
                }
            }
            _ => Applied::PassThrough,
        }
    }

    /// The events that turn this state into `baseline` (a REST re-read): changed objects as
    /// upserts, vanished positions as a zero-quantity `CurrentPosition`. Objects the baseline
    /// holds in an older version than ours are left alone (a lagging REST replica must not
    /// roll the state back). Orders missing from the baseline stay: `/orders/live` is the
    /// trading day's list and only shrinks at day roll.
    ///
    /// One function on purpose: the five parts are diffed side by side so the rule each
    /// follows (replace, upsert, close what vanished, remove terminal orders) reads as a table.
    pub fn diff(&self, baseline: &AccountState) -> Vec<(EventKind, Value)> {
        let mut events = Vec::new();
        for (kind, ours, theirs) in [
            (EventKind::AccountBalance, &self.balance, &baseline.balance),
            (
                EventKind::TradingStatus,
                &self.trading_status,
                &baseline.trading_status,
            ),
        ] {
            if let Some(theirs) = theirs
                && ours
                    .as_ref()
                    .is_none_or(|o| o != theirs && !is_stale(o, theirs))
            {
                events.push((kind.clone(), theirs.clone()));
            }
        }
        for (key, theirs) in &baseline.positions {
            if self
                .positions
                .get(key)
                .is_none_or(|o| o != theirs && !is_stale(o, theirs))
            {
                events.push((EventKind::CurrentPosition, theirs.clone()));
            }
        }
        for (key, ours) in &self.positions {
            if !baseline.positions.contains_key(key) {
                events.push((EventKind::CurrentPosition, closed_position(ours)));
            }
        }
        for (kind, removed, ours, theirs) in [
            (
                EventKind::Order,
                EventKind::OrderRemoved,
                &self.orders,
                &baseline.orders,
            ),
            (
                EventKind::ComplexOrder,
                EventKind::ComplexOrderRemoved,
                &self.complex_orders,
                &baseline.complex_orders,
            ),
        ] {
            for (key, theirs) in theirs {
                if ours
                    .get(key)
                    .is_none_or(|o| o != theirs && !is_stale(o, theirs))
                {
                    events.push((kind.clone(), theirs.clone()));
                }
            }
            // A terminal order /orders/live no longer lists: the trading day rolled. A
            // working one that vanished is kept (it may be a later day's GTC order that a
            // partial answer missed; tastytrade will tell us when it changes).
            for (key, ours) in ours {
                if !theirs.contains_key(key) && is_terminal(ours) {
                    events.push((removed.clone(), json!({"id": ours["id"]})));
                }
            }
        }
        events
    }
}

/// A position that vanished from REST, as the zero-quantity event tastytrade would have sent.
fn closed_position(last: &Value) -> Value {
    let mut closed = last.clone();
    closed["quantity"] = json!("0");
    closed["quantity-direction"] = json!("Zero");
    if let Some(map) = closed.as_object_mut() {
        map.remove("updated-at");
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: u64, status: &str, updated: i64) -> Value {
        json!({"id": id, "status": status, "updated-at": updated})
    }

    #[test]
    fn newer_order_wins_and_older_is_stale() {
        let mut state = AccountState::default();
        assert_eq!(
            state.apply(&EventKind::Order, &order(1, "Live", 10)),
            Applied::Changed
        );
        assert_eq!(
            state.apply(&EventKind::Order, &order(1, "Routed", 5)),
            Applied::Stale
        );
        assert_eq!(
            state.apply(&EventKind::Order, &order(1, "Live", 10)),
            Applied::Unchanged
        );
        assert_eq!(
            state.apply(&EventKind::Order, &order(1, "Filled", 11)),
            Applied::Changed
        );
        assert_eq!(state.orders.len(), 1);
        assert_eq!(
            state.apply(&EventKind::Order, &json!({"status": "Live"})),
            Applied::Invalid
        );
    }

    #[test]
    fn fills_are_never_lost_or_counted_twice() {
        let mut state = AccountState::default();
        let with = |fills: &[&str]| {
            let fills: Vec<Value> = fills
                .iter()
                .map(|id| json!({"fill-id": id, "quantity": 1}))
                .collect();
            json!({"id": 5, "status": "Filled", "updated-at": 10, "legs": [{"fills": fills}]})
        };
        assert_eq!(
            state.apply(&EventKind::Order, &with(&["a", "b"])),
            Applied::Changed
        );
        assert_eq!(
            state.apply(&EventKind::Order, &with(&["a"])),
            Applied::Stale,
            "a copy with fewer fills"
        );
        assert_eq!(
            state.apply(&EventKind::Order, &with(&["a", "b", "c", "c"])),
            Applied::Changed
        );
        let held = state.orders.values().next().unwrap();
        assert_eq!(fill_ids(held), vec!["a", "b", "c"]);
    }

    #[test]
    fn zero_position_removes_and_string_ids_match_numbers_by_text() {
        let mut state = AccountState::default();
        let long = json!({"symbol": "SPY", "instrument-type": "Equity", "quantity": "100.29", "quantity-direction": "Long"});
        assert_eq!(
            state.apply(&EventKind::CurrentPosition, &long),
            Applied::Changed
        );
        let zero = json!({"symbol": "SPY", "instrument-type": "Equity", "quantity": "0", "quantity-direction": "Zero"});
        assert_eq!(
            state.apply(&EventKind::CurrentPosition, &zero),
            Applied::Changed
        );
        assert!(state.positions.is_empty());
        assert_eq!(
            state.apply(&EventKind::CurrentPosition, &zero),
            Applied::Unchanged
        );
        assert_eq!(
            state.apply(&EventKind::Order, &json!({"id": "7", "updated-at": 1})),
            Applied::Changed
        );
        assert_eq!(
            state.apply(&EventKind::Order, &json!({"id": 7, "updated-at": 1})),
            Applied::Changed
        );
        assert_eq!(state.orders.len(), 1);
    }

    #[test]
    fn diff_emits_changes_and_closes_vanished_positions() {
        let mut ours = AccountState::default();
        ours.apply(
            &EventKind::CurrentPosition,
            &json!({"symbol": "AAPL", "instrument-type": "Equity", "quantity": "5"}),
        );
        ours.apply(&EventKind::Order, &order(1, "Live", 10));
        let mut theirs = AccountState::default();
        theirs.apply(&EventKind::Order, &order(1, "Filled", 12));
        theirs.apply(&EventKind::AccountBalance, &json!({"cash-balance": "1.0"}));
        let events = ours.diff(&theirs);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, vec!["AccountBalance", "CurrentPosition", "Order"]);
        assert_eq!(events[1].1["quantity-direction"], json!("Zero"));
        for (kind, data) in &events {
            ours.apply(kind, data);
        }
        assert_eq!(ours.orders, theirs.orders);
        assert_eq!(ours.positions, theirs.positions);
        assert!(ours.diff(&theirs).is_empty());
    }

    #[test]
    fn terminal_orders_leave_at_the_day_roll_and_working_ones_stay() {
        let mut ours = AccountState::default();
        ours.apply(&EventKind::Order, &order(1, "Filled", 10));
        ours.apply(&EventKind::Order, &order(2, "Live", 10));
        ours.apply(&EventKind::Order, &order(3, "Cancelled", 10));
        let mut theirs = AccountState::default();
        theirs.apply(&EventKind::Order, &order(3, "Cancelled", 10));
        let events = ours.diff(&theirs);
        assert_eq!(events, vec![(EventKind::OrderRemoved, json!({"id": 1}))]);
        for (kind, data) in &events {
            assert_eq!(ours.apply(kind, data), Applied::Changed);
        }
        assert_eq!(
            ours.orders.len(),
            2,
            "the live order stays, the cancelled one is listed"
        );
        assert_eq!(
            ours.apply(&EventKind::OrderRemoved, &json!({"id": 1})),
            Applied::Unchanged
        );
        assert_eq!(
            ours.apply(&EventKind::OrderRemoved, &json!({})),
            Applied::Invalid
        );
    }
}
