//! The market script: at a configurable rate it runs order lifecycles (Received -> Routed ->
//! Live -> partial and full fills, cancels, replaces), and on a fill emits `Order`, then
//! `CurrentPosition`, then `AccountBalance`, as tastytrade does; sometimes as one `results`
//! batch, sometimes with the "Filled with partial fills first" nuance; and now and then every
//! other event type. Seeded, so a run is reproducible.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::demo_data::{self, Instrument, OrderSpec};
use super::state::{Channel, Outbound, Sim, SimState, position_key, stopped};
use super::wire::{decimal, id_text, iso_now, money, notification};

/// An order the script is still moving along.
struct Working {
    account: String,
    id: u64,
    spec: OrderSpec,
}

/// The script's own memory: the orders it moves.
#[derive(Default)]
struct Market {
    working: Vec<Working>,
}

/// Runs the script until the simulator stops; sleeps while paused.
pub async fn run(sim: Arc<Sim>) {
    let mut settings = sim.script.subscribe();
    let mut market = Market::default();
    let mut stop = sim.stop.clone();
    loop {
        let current = *settings.borrow_and_update();
        if current.paused || current.rate <= 0.0 {
            tokio::select! {
                changed = settings.changed() => if changed.is_err() { return },
                _ = stopped(&mut stop) => return,
            }
            continue;
        }
        // Timers tick at most every millisecond: above 1000 steps/s, do several per tick.
        let period = Duration::from_secs_f64((1.0 / current.rate).max(0.001));
        let steps = (current.rate * period.as_secs_f64()).round().max(1.0) as usize;
        tokio::select! {
            _ = tokio::time::sleep(period) => {
                let mut state = sim.lock();
                for _ in 0..steps {
                    step(&sim, &mut state, &mut market);
                }
            }
            changed = settings.changed() => if changed.is_err() { return },
            _ = stopped(&mut stop) => return,
        }
    }
}

/// One step of the script, under the state lock.
fn step(sim: &Sim, state: &mut SimState, market: &mut Market) {
    let open: Vec<String> = state
        .accounts
        .iter()
        .filter(|a| !a.closed)
        .map(|a| a.number.clone())
        .collect();
    let Some(account) = open.choose(&mut state.rng).cloned() else {
        return;
    };
    forget_finished(state, market);
    let working_here = market
        .working
        .iter()
        .filter(|w| w.account == account)
        .count();
    let roll = state.rng.random_range(0..100);
    match roll {
        0..=29 if working_here < 6 => new_order(sim, state, market, &account),
        0..=79 => advance(sim, state, market, &account),
        80..=87 => cancel_or_replace(sim, state, market, &account),
        88..=92 => toggle_complex(sim, state, &account),
        _ => misc_event(sim, state, &account),
    }
}

fn order_in_truth(state: &SimState, account: &str, id: u64) -> Option<Value> {
    let id = id.to_string();
    state
        .account(account)?
        .orders
        .iter()
        .find(|o| id_text(o.get("id")).as_deref() == Some(id.as_str()))
        .cloned()
}

fn is_terminal(order: &Value) -> bool {
    matches!(
        order.get("status").and_then(Value::as_str),
        Some("Filled" | "Cancelled" | "Expired" | "Rejected" | "Removed")
    )
}

/// Drops orders that finished (or were changed by injected events) from the script's memory.
fn forget_finished(state: &SimState, market: &mut Market) {
    market
        .working
        .retain(|w| order_in_truth(state, &w.account, w.id).is_some_and(|o| !is_terminal(&o)));
}

fn signed_position(state: &SimState, account: &str, inst: &Instrument) -> (Decimal, Decimal) {
    let key = format!("{}|{}", inst.symbol, inst.instrument_type);
    state
        .account(account)
        .and_then(|a| a.positions.iter().find(|p| position_key(p) == key))
        .map(|p| {
            let qty = decimal(p.get("quantity"));
            let signed = if p.get("quantity-direction").and_then(Value::as_str) == Some("Short") {
                -qty
            } else {
                qty
            };
            (signed, decimal(p.get("average-open-price")))
        })
        .unwrap_or_default()
}

fn new_order(sim: &Sim, state: &mut SimState, market: &mut Market, account: &str) {
    let universe = demo_data::universe();
    let Some(inst) = universe.choose(&mut state.rng).cloned() else {
        return;
    };
    let (held, _) = signed_position(state, account, &inst);
    let is_option = inst.instrument_type.contains("Option");
    let close = !held.is_zero() && state.rng.random_bool(0.4);
    let (action, size) = if close {
        let action = if held.is_sign_positive() {
            "Sell to Close"
        } else {
            "Buy to Close"
        };
        let whole = held.abs().floor();
        let size = if whole >= Decimal::ONE {
            Decimal::from(
                state
                    .rng
                    .random_range(1..=whole.to_string().parse::<u32>().unwrap_or(1).min(20)),
            )
        } else {
            held.abs()
        };
        (action, size)
    } else {
        let action = if is_option && state.rng.random_bool(0.3) {
            "Sell to Open"
        } else {
            "Buy to Open"
        };
        let size = if is_option {
            state.rng.random_range(1..=3)
        } else {
            state.rng.random_range(1..=20)
        };
        (action, Decimal::from(size))
    };
    let drift = Decimal::new(state.rng.random_range(-150..=150), 4);
    let price = (inst.price_value() * (Decimal::ONE + drift)).round_dp(2);
    let id = state.next_order_id;
    state.next_order_id += 1;
    let time_in_force = if state.rng.random_bool(0.7) {
        "Day"
    } else {
        "GTC"
    };
    // Drawn either way, so the seeded script is the same with or without numeric user ids.
    let numeric_user_id = state.rng.random_bool(0.25);
    let spec = OrderSpec {
        id,
        account: account.to_string(),
        instrument: inst,
        action,
        size,
        price,
        order_type: "Limit",
        time_in_force,
        user_id_as_number: numeric_user_id && sim.config.numeric_user_ids,
    };
    let order = demo_data::order(&spec, state.next_updated_ms());
    sim.emit_account(state, account, vec![("Order".into(), order)], false);
    market.working.push(Working {
        account: account.to_string(),
        id,
        spec,
    });
}

fn touch(state: &mut SimState, order: &mut Value, status: &str) {
    order["status"] = json!(status);
    order["updated-at"] = json!(state.next_updated_ms());
}

fn advance(sim: &Sim, state: &mut SimState, market: &mut Market, account: &str) {
    let candidates: Vec<usize> = (0..market.working.len())
        .filter(|&i| market.working[i].account == account)
        .collect();
    let Some(&index) = candidates.choose(&mut state.rng) else {
        return;
    };
    let (id, spec) = (market.working[index].id, market.working[index].spec.clone());
    let Some(mut order) = order_in_truth(state, account, id) else {
        return;
    };
    match order.get("status").and_then(Value::as_str) {
        Some("Received") => {
            touch(state, &mut order, "Routed");
            sim.emit_account(state, account, vec![("Order".into(), order)], false);
        }
        Some("Routed") => {
            touch(state, &mut order, "Live");
            order["live-at"] = json!(iso_now());
            sim.emit_account(state, account, vec![("Order".into(), order)], false);
        }
        Some("Live") => fill(sim, state, account, &spec, order),
        _ => {}
    }
}

/// Fills part or all of an order and emits Order, CurrentPosition, AccountBalance.
fn fill(sim: &Sim, state: &mut SimState, account: &str, spec: &OrderSpec, mut order: Value) {
    let remaining = decimal(order.pointer("/legs/0/remaining-quantity"));
    if remaining <= Decimal::ZERO {
        return;
    }
    let partial = remaining > Decimal::ONE && state.rng.random_bool(0.5);
    let quantity_now = if partial {
        (remaining / Decimal::TWO).floor().max(Decimal::ONE)
    } else {
        remaining
    };
    let left = remaining - quantity_now;
    let fill_id = state.next_fill_id;
    state.next_fill_id += 1;
    let fill_price = spec.price;
    let fill = json!({
        "fill-id": format!("2_TW::SIM_A1::{}.{fill_id}-SIM_FILL", chrono::Utc::now().format("%Y%m%d")),
        "ext-group-fill-id": "0",
        "ext-exec-id": fill_id.to_string(),
        "quantity": number_or_string(quantity_now),
        "fill-price": money(fill_price),
        "filled-at": iso_now(),
        "destination-venue": "SIM_A",
    });
    if let Some(fills) = order
        .pointer_mut("/legs/0/fills")
        .and_then(Value::as_array_mut)
    {
        fills.push(fill);
    }
    order["legs"][0]["remaining-quantity"] = number_or_string(left);
    let filled = left.is_zero();
    touch(state, &mut order, if filled { "Filled" } else { "Live" });
    let mut events = Vec::with_capacity(4);
    if filled {
        order["terminal-at"] = json!(iso_now());
        order["cancellable"] = json!(false);
        order["editable"] = json!(false);
        let fill_count = order
            .pointer("/legs/0/fills")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if fill_count >= 2 && state.rng.random_bool(0.3) {
            // tastytrade publishes fills as processed: `Filled` may come first with fewer fills.
            let mut early = order.clone();
            if let Some(fills) = early
                .pointer_mut("/legs/0/fills")
                .and_then(Value::as_array_mut)
            {
                fills.pop();
            }
            early["updated-at"] = json!(order["updated-at"].as_i64().unwrap_or_default() - 1);
            events.push(("Order".to_string(), early));
        }
    }
    events.push(("Order".to_string(), order));

    let signed_change = if spec.is_buy() {
        quantity_now
    } else {
        -quantity_now
    };
    let (held, average) = signed_position(state, account, &spec.instrument);
    let now_held = held + signed_change;
    let new_average = if held.is_zero() || (held.is_sign_positive() != now_held.is_sign_positive())
    {
        fill_price
    } else if now_held.abs() > held.abs() {
        ((average * held.abs() + fill_price * quantity_now) / now_held.abs()).round_dp(4)
    } else {
        average
    };
    let updated = state.next_updated_iso();
    let position = demo_data::position(account, &spec.instrument, now_held, new_average, &updated);
    events.push(("CurrentPosition".to_string(), position));

    let notional = signed_change * fill_price * spec.instrument.multiplier_value();
    let updated = state.next_updated_iso();
    if let Some(mut balance) = state.account(account).map(|a| a.balance.clone()) {
        adjust(&mut balance, "cash-balance", -notional);
        if spec.instrument.instrument_type == "Equity" {
            adjust(&mut balance, "long-equity-value", notional);
        } else {
            adjust(&mut balance, "long-derivative-value", notional);
        }
        let fees = Decimal::new(state.rng.random_range(0..250), 2);
        adjust(&mut balance, "net-liquidating-value", -fees);
        balance["updated-at"] = json!(updated);
        events.push(("AccountBalance".to_string(), balance));
    }
    let batch = state.rng.random_bool(0.2);
    sim.emit_account(state, account, events, batch);
}

fn number_or_string(value: Decimal) -> Value {
    let value = value.normalize();
    match u64::try_from(value) {
        Ok(whole) if Decimal::from(whole) == value => json!(whole),
        _ => json!(value.to_string()),
    }
}

fn adjust(object: &mut Value, field: &str, by: Decimal) {
    let now = decimal(object.get(field));
    object[field] = money(now + by);
}

fn cancel_or_replace(sim: &Sim, state: &mut SimState, market: &mut Market, account: &str) {
    let live: Vec<(u64, OrderSpec)> = market
        .working
        .iter()
        .filter(|w| w.account == account)
        .filter(|w| order_in_truth(state, account, w.id).is_some_and(|o| o["status"] == "Live"))
        .map(|w| (w.id, w.spec.clone()))
        .collect();
    let Some((id, spec)) = live.choose(&mut state.rng).cloned() else {
        return;
    };
    let Some(mut old) = order_in_truth(state, account, id) else {
        return;
    };
    touch(state, &mut old, "Cancelled");
    old["cancelled-at"] = json!(iso_now());
    old["terminal-at"] = json!(iso_now());
    old["cancellable"] = json!(false);
    old["editable"] = json!(false);
    if state.rng.random_bool(0.5) {
        sim.emit_account(state, account, vec![("Order".into(), old)], false);
        return;
    }
    // Replace never edits in place: the old id is cancelled, a new id replaces it.
    let new_id = state.next_order_id;
    state.next_order_id += 1;
    old["replacing-order-id"] = json!(new_id);
    let step = Decimal::new(if spec.is_buy() { 5 } else { -5 }, 2);
    let new_spec = OrderSpec {
        id: new_id,
        price: spec.price + step,
        ..spec
    };
    let mut replacement = demo_data::order(&new_spec, state.next_updated_ms());
    replacement["replaces-order-id"] = json!(id);
    sim.emit_account(
        state,
        account,
        vec![("Order".into(), old), ("Order".into(), replacement)],
        false,
    );
    market.working.push(Working {
        account: account.to_string(),
        id: new_id,
        spec: new_spec,
    });
}

/// Places an OCO bracket when the account has none working, else cancels it.
fn toggle_complex(sim: &Sim, state: &mut SimState, account: &str) {
    let working = state.account(account).and_then(|a| {
        a.complex_orders
            .iter()
            .find(|c| c.get("terminal-at").is_none_or(Value::is_null))
            .cloned()
    });
    match working {
        Some(mut complex) => {
            let mut events = Vec::new();
            let mut children = Vec::new();
            for child in complex["orders"].as_array().cloned().unwrap_or_default() {
                let Some(id) = child.get("id").and_then(Value::as_u64) else {
                    continue;
                };
                let Some(mut order) = order_in_truth(state, account, id) else {
                    continue;
                };
                touch(state, &mut order, "Cancelled");
                order["cancelled-at"] = json!(iso_now());
                order["terminal-at"] = json!(iso_now());
                order["cancellable"] = json!(false);
                order["editable"] = json!(false);
                children.push(order.clone());
                events.push(("Order".to_string(), order));
            }
            complex["orders"] = json!(children);
            complex["terminal-at"] = json!(iso_now());
            events.push(("ComplexOrder".to_string(), complex));
            sim.emit_account(state, account, events, false);
        }
        None => {
            let Some(inst) = demo_data::instrument("SPY") else {
                return;
            };
            let complex_id = state.next_misc_id;
            state.next_misc_id += 1;
            let mut children = Vec::new();
            for (tag, price, order_type) in [
                ("OCO::oco-1-order", "640.0", "Limit"),
                ("OCO::oco-2-order", "560.0", "Stop"),
            ] {
                let id = state.next_order_id;
                state.next_order_id += 1;
                let spec = OrderSpec {
                    id,
                    account: account.to_string(),
                    instrument: inst.clone(),
                    action: "Sell to Close",
                    size: Decimal::ONE,
                    price: price.parse().unwrap_or_default(),
                    order_type,
                    time_in_force: "GTC",
                    user_id_as_number: false,
                };
                let mut order = demo_data::order(&spec, state.next_updated_ms());
                touch(state, &mut order, "Live");
                order["live-at"] = json!(iso_now());
                order["complex-order-id"] = json!(complex_id);
                order["complex-order-tag"] = json!(tag);
                if order_type == "Stop" {
                    order["stop-trigger"] = json!(price);
                    if let Some(o) = order.as_object_mut() {
                        o.remove("price");
                        o.remove("price-effect");
                    }
                }
                children.push(order);
            }
            let related: Vec<Value> = children
                .iter()
                // Strings: tastyware (`list[dict[str, str]]`) and swagger-derived clients type them so.
                .map(|c| json!({"id": id_text(c.get("id")), "complex-order-id": complex_id.to_string(), "complex-order-tag": c["complex-order-tag"], "status": "Live"}))
                .collect();
            let complex = json!({
                "id": complex_id,
                "account-number": account,
                "type": "OCO",
                "terminal-at": null,
                "orders": children,
                "related-orders": related,
            });
            let mut events: Vec<(String, Value)> = children
                .iter()
                .map(|c| ("Order".to_string(), c.clone()))
                .collect();
            events.push(("ComplexOrder".to_string(), complex));
            sim.emit_account(state, account, events, false);
        }
    }
}

/// Every other event type, now and then.
fn misc_event(sim: &Sim, state: &mut SimState, account: &str) {
    let id = state.next_misc_id;
    state.next_misc_id += 1;
    match state.rng.random_range(0..6) {
        0 => {
            let Some(mut status) = state.account(account).map(|a| a.trading_status.clone()) else {
                return;
            };
            let count = status["day-trade-count"].as_u64().unwrap_or(0);
            status["day-trade-count"] = json!((count + 1) % 4);
            status["updated-at"] = json!(state.next_updated_iso());
            sim.emit_account(
                state,
                account,
                vec![("TradingStatus".into(), status)],
                false,
            );
        }
        1 => {
            let amount = Decimal::from(state.rng.random_range(5..=50) * 100);
            let transfer = json!({
                "id": id, "account-number": account, "amount": money(amount), "amount-effect": "Credit",
                "bank-account-type": "CHECKING", "banking-date": super::wire::today(), "created-at": iso_now(),
                "direction": "Deposit", "disbursement-type": "ACH", "ext-transfer-id": format!("ACH-{id}"),
                "funds-available-date": super::wire::today(), "is-cancelable": true, "is-clearing-accepted": false,
                "state": "Pending", "transfer-method": "ACH", "updated-at": iso_now(),
            });
            let mut events = vec![("ExternalTransaction".to_string(), transfer)];
            let updated = state.next_updated_iso();
            if let Some(mut balance) = state.account(account).map(|a| a.balance.clone()) {
                adjust(&mut balance, "pending-cash", amount);
                balance["pending-cash-effect"] = json!("Credit");
                balance["updated-at"] = json!(updated);
                events.push(("AccountBalance".to_string(), balance));
            }
            sim.emit_account(state, account, events, false);
        }
        2 => {
            let gain = Decimal::new(state.rng.random_range(-50_000..50_000), 2);
            let summary = json!({
                "year": 2026, "account-number": account, "symbol": "SPY", "instrument-type": "Equity Option",
                "fees": "1.26", "fees-effect": "Debit", "commissions": "2.0", "commissions-effect": "Debit",
                "yearly-realized-gain": money(gain.abs()), "yearly-realized-gain-effect": if gain.is_sign_negative() { "Debit" } else { "Credit" },
                "realized-lot-gain": money(gain.abs()), "realized-lot-gain-effect": if gain.is_sign_negative() { "Debit" } else { "Credit" },
            });
            sim.emit_account(
                state,
                account,
                vec![("UnderlyingYearGainSummary".into(), summary)],
                false,
            );
        }
        3 => {
            let chain = json!({
                "id": id.to_string(), "account-number": account, "description": "Vertical", "underlying-symbol": "SPY",
                "created-at": iso_now(), "updated-at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
                "computed-data": {"open": true, "total-fees": "1.26", "total-fees-effect": "Debit", "realized-gain": "0.0", "realized-gain-effect": "None", "roll-count": 0,
                    "open-entries": [{"symbol": "SPY   270115C00600000", "instrument-type": "Equity Option", "quantity": "1", "quantity-type": "Long", "quantity-numeric": "1"}]},
                "lite-nodes-sizes": 0, "lite-nodes": [],
            });
            sim.emit_account(state, account, vec![("OrderChain".into(), chain)], false);
        }
        4 => {
            let alert = json!({
                "alert-external-id": format!("A-{id:x}"), "user-external-id": "U0001234567", "symbol": "AAPL", "dx-symbol": "AAPL",
                "instrument-type": "Equity", "field": "Last", "operator": ">", "threshold": "240.00", "threshold-numeric": "240.0",
                "created-at": iso_now(), "triggered-at": iso_now(), "completed-at": iso_now(),
                "expires-at": chrono::Utc::now().timestamp_millis() + 86_400_000,
            });
            let text = notification("QuoteAlert", &alert).to_string();
            sim.publish(Outbound::Notify {
                channel: Channel::QuoteAlerts,
                text: text.into(),
            });
        }
        _ => {
            let watchlist = json!({"name": "High Options Volume", "group-name": "tastytrade", "order-index": 3,
                "watchlist-entries": [{"symbol": "AAPL", "instrument-type": "Equity"}, {"symbol": "TSLA", "instrument-type": "Equity"}, {"symbol": "/ES", "instrument-type": "Future"}]});
            let text = notification("PublicWatchlists", &watchlist).to_string();
            sim.publish(Outbound::Notify {
                channel: Channel::PublicWatchlists,
                text: text.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::quantity;

    #[test]
    fn quantities_are_numbers_when_whole() {
        assert_eq!(number_or_string(Decimal::from(3)), json!(3));
        assert_eq!(number_or_string("0.5".parse().unwrap()), json!("0.5"));
        assert_eq!(quantity(Decimal::from(3)), json!("3"));
    }
}
