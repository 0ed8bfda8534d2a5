//! Property tests of the frame parser (`upstream::wire::parse`) and the typed event views
//! (`model::events::AccountEvent::parse`): any mix of valid notifications and replies with
//! drifted field types (number vs string, four time forms, nulls, absent fields), batches and
//! junk never panics, returns every valid frame exactly and in order, reports each piece of
//! junk, and reads the same values whatever form the wire used.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tastytrade_gateway::model::events::AccountEvent;
use tastytrade_gateway::upstream::wire::{self, Frame, FrameError, Notification, Reply};

// ---- drifting scalars: (what is on the wire, what it means) ----

/// An id or count, as a JSON number or a numeric string.
fn id_s() -> impl Strategy<Value = (Value, u64)> {
    (1u64..100_000_000_000, any::<bool>()).prop_map(|(n, text)| {
        let wire = if text { json!(n.to_string()) } else { json!(n) };
        (wire, n)
    })
}

/// A decimal with up to 9 places, as a string (`"4337.831401355"`) or a JSON number.
fn decimal_s() -> impl Strategy<Value = (Value, Decimal)> {
    (-10_000_000_000i64..10_000_000_000, 0u32..=9, any::<bool>()).prop_map(
        |(mantissa, scale, text)| {
            let d = Decimal::new(mantissa, scale);
            let wire = if text {
                json!(d.to_string())
            } else {
                serde_json::from_str(&d.to_string()).expect("a decimal is a JSON number")
            };
            (wire, d)
        },
    )
}

/// A time: epoch ms as number or string, or ISO with `Z`, `+00:00` or `+0000`.
fn time_s() -> impl Strategy<Value = (Value, i64)> {
    (946_684_800_000i64..4_102_444_800_000, 0u8..5).prop_map(|(ms, form)| {
        let t = chrono::DateTime::from_timestamp_millis(ms).expect("in range");
        let wire = match form {
            0 => json!(ms),
            1 => json!(ms.to_string()),
            2 => json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            3 => json!(t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()),
            _ => json!(t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()),
        };
        (wire, ms)
    })
}

/// A field that may be absent, `null`, or present; it means something only when present.
fn optional<T: Clone + std::fmt::Debug + 'static>(
    present: impl Strategy<Value = (Value, T)> + 'static,
) -> impl Strategy<Value = (Option<Value>, Option<T>)> {
    prop_oneof![
        1 => Just((None, None)),
        1 => Just((Some(Value::Null), None)),
        4 => present.prop_map(|(v, t)| (Some(v), Some(t))),
    ]
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_string(), value);
    }
}

/// Fields nobody knows yet; they must not disturb anything.
fn extra_s() -> impl Strategy<Value = Vec<(String, Value)>> {
    vec(
        (
            "x-[a-z]{1,8}",
            prop_oneof![
                Just(json!(null)),
                any::<i64>().prop_map(|n| json!(n)),
                "[ -~]{0,12}".prop_map(|s| json!(s)),
                Just(json!({"nested": [1, "two", {"three": null}]})),
            ],
        ),
        0..3,
    )
}

// ---- event objects and what their typed views must read ----

#[derive(Clone, Debug, PartialEq)]
struct OrderMeaning {
    id: String,
    size: Option<Decimal>,
    price: Option<Decimal>,
    updated_at: Option<i64>,
    user_id: Option<String>,
    fill_ids: Vec<String>,
    leg_quantities: Vec<Option<Decimal>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Meaning {
    Order(OrderMeaning),
    ComplexOrder {
        id: String,
        orders: Vec<String>,
        trigger: Option<String>,
    },
    CurrentPosition {
        symbol: String,
        quantity: Option<Decimal>,
        multiplier: Option<Decimal>,
        fixing_price: Option<Decimal>,
        expires_at: Option<i64>,
        updated_at: Option<i64>,
    },
    AccountBalance {
        cash_balance: Option<Decimal>,
        updated_at: Option<i64>,
    },
    TradingStatus {
        id: Option<String>,
        day_trade_count: Option<Decimal>,
        fraud_safeguards_at: Option<i64>,
    },
    ExternalTransaction {
        id: String,
        amount: Option<Decimal>,
    },
    UnderlyingYearGainSummary {
        year: Option<String>,
        gain: Option<Decimal>,
    },
    OrderChain {
        id: String,
        updated_at: Option<i64>,
    },
    QuoteAlert {
        threshold_numeric: Option<Decimal>,
        expires_at: Option<i64>,
    },
    PublicWatchlists {
        entries: usize,
    },
    Unknown,
}

fn fill_s() -> impl Strategy<Value = (Value, String)> {
    (id_s(), decimal_s(), decimal_s(), optional(time_s())).prop_map(
        |((fill_id, n), (quantity, _), (_, price), (filled_at, _))| {
            let mut map = Map::new();
            map.insert("fill-id".into(), fill_id);
            map.insert("quantity".into(), quantity);
            map.insert("fill-price".into(), json!(price.to_string()));
            put(&mut map, "filled-at", filled_at);
            (Value::Object(map), n.to_string())
        },
    )
}

fn leg_s() -> impl Strategy<Value = (Value, (Option<Decimal>, Vec<String>))> {
    (
        optional(decimal_s()),
        optional(decimal_s()),
        optional(vec(fill_s(), 0..3).prop_map(|fills| {
            let ids: Vec<String> = fills.iter().map(|(_, id)| id.clone()).collect();
            (
                Value::Array(fills.into_iter().map(|(v, _)| v).collect()),
                ids,
            )
        })),
    )
        .prop_map(|((quantity, q), (remaining, _), (fills, ids))| {
            let mut map = Map::new();
            map.insert("symbol".into(), json!("SPY   250620P00500000"));
            map.insert("instrument-type".into(), json!("Equity Option"));
            put(&mut map, "quantity", quantity);
            put(&mut map, "remaining-quantity", remaining);
            put(&mut map, "fills", fills);
            (Value::Object(map), (q, ids.unwrap_or_default()))
        })
}

fn order_s() -> impl Strategy<Value = (Value, OrderMeaning)> {
    (
        id_s(),
        optional(decimal_s()),
        optional(decimal_s()),
        optional(time_s()),
        optional(id_s()),
        optional(vec(leg_s(), 0..3).prop_map(|legs| {
            let meaning: Vec<(Option<Decimal>, Vec<String>)> =
                legs.iter().map(|(_, m)| m.clone()).collect();
            (
                Value::Array(legs.into_iter().map(|(v, _)| v).collect()),
                meaning,
            )
        })),
        extra_s(),
    )
        .prop_map(
            |(
                (id, n),
                (size, s),
                (price, p),
                (updated, u),
                (user, user_n),
                (legs, legs_meaning),
                extra,
            )| {
                let mut map = Map::new();
                map.insert("id".into(), id);
                map.insert("account-number".into(), json!("5WT31842"));
                map.insert("status".into(), json!("Filled"));
                put(&mut map, "size", size);
                put(&mut map, "price", price);
                put(&mut map, "updated-at", updated);
                put(&mut map, "user-id", user);
                put(&mut map, "legs", legs);
                for (key, value) in extra {
                    map.insert(key, value);
                }
                let legs_meaning = legs_meaning.unwrap_or_default();
                let meaning = OrderMeaning {
                    id: n.to_string(),
                    size: s,
                    price: p,
                    updated_at: u,
                    user_id: user_n.map(|n| n.to_string()),
                    fill_ids: legs_meaning.iter().flat_map(|(_, f)| f.clone()).collect(),
                    leg_quantities: legs_meaning.iter().map(|(q, _)| *q).collect(),
                };
                (Value::Object(map), meaning)
            },
        )
}

fn object(fields: Vec<(&str, Option<Value>)>, extra: Vec<(String, Value)>) -> Value {
    let mut map = Map::new();
    for (key, value) in fields {
        put(&mut map, key, value);
    }
    for (key, value) in extra {
        map.insert(key, value);
    }
    Value::Object(map)
}

/// One event of any type (unknown ones included): (type, data, meaning).
fn event_s() -> impl Strategy<Value = (String, Value, Meaning)> {
    let order = order_s().prop_map(|(v, m)| ("Order".to_string(), v, Meaning::Order(m)));
    let complex = (
        id_s(),
        optional(vec(order_s(), 0..3).prop_map(|orders| {
            let ids: Vec<String> = orders.iter().map(|(_, m)| m.id.clone()).collect();
            (
                Value::Array(orders.into_iter().map(|(v, _)| v).collect()),
                ids,
            )
        })),
        optional(order_s()),
        optional(time_s()),
        extra_s(),
    )
        .prop_map(
            |((id, n), (orders, ids), (trigger, t), (terminal, _), extra)| {
                let data = object(
                    vec![
                        ("id", Some(id)),
                        ("type", Some(json!("OTOCO"))),
                        ("orders", orders),
                        ("trigger-order", trigger),
                        ("terminal-at", terminal),
                    ],
                    extra,
                );
                let meaning = Meaning::ComplexOrder {
                    id: n.to_string(),
                    orders: ids.unwrap_or_default(),
                    trigger: t.map(|t| t.id),
                };
                ("ComplexOrder".to_string(), data, meaning)
            },
        );
    let position = (
        "[A-Z]{1,5}",
        optional(decimal_s()),
        optional(decimal_s()),
        prop_oneof![
            Just((Some(json!("NaN")), None)),
            optional(decimal_s().prop_map(|(_, d)| (json!(d.to_string()), d))),
        ],
        optional(time_s()),
        optional(time_s()),
        extra_s(),
    )
        .prop_map(
            |(
                symbol,
                (quantity, q),
                (multiplier, m),
                (fixing, f),
                (expires, e),
                (updated, u),
                extra,
            )| {
                let data = object(
                    vec![
                        ("symbol", Some(json!(symbol))),
                        ("instrument-type", Some(json!("Equity"))),
                        ("quantity", quantity),
                        ("quantity-direction", Some(json!("Long"))),
                        ("multiplier", multiplier),
                        ("fixing-price", fixing),
                        ("expires-at", expires),
                        ("updated-at", updated),
                    ],
                    extra,
                );
                let meaning = Meaning::CurrentPosition {
                    symbol,
                    quantity: q,
                    multiplier: m,
                    fixing_price: f,
                    expires_at: e,
                    updated_at: u,
                };
                ("CurrentPosition".to_string(), data, meaning)
            },
        );
    let balance = (optional(decimal_s()), optional(time_s()), extra_s()).prop_map(
        |((cash, c), (updated, u), extra)| {
            let data = object(
                vec![
                    ("cash-balance", cash),
                    ("cash-balance-effect", Some(json!("Debit"))),
                    ("updated-at", updated),
                ],
                extra,
            );
            let meaning = Meaning::AccountBalance {
                cash_balance: c,
                updated_at: u,
            };
            ("AccountBalance".to_string(), data, meaning)
        },
    );
    let trading = (
        optional(id_s()),
        optional(decimal_s()),
        optional(time_s()),
        extra_s(),
    )
        .prop_map(|((id, n), (count, c), (fraud, f), extra)| {
            let data = object(
                vec![
                    ("id", id),
                    ("day-trade-count", count),
                    ("enhanced-fraud-safeguards-enabled-at", fraud),
                    ("is-frozen", Some(json!(false))),
                ],
                extra,
            );
            let meaning = Meaning::TradingStatus {
                id: n.map(|n| n.to_string()),
                day_trade_count: c,
                fraud_safeguards_at: f,
            };
            ("TradingStatus".to_string(), data, meaning)
        });
    let transaction =
        (id_s(), optional(decimal_s()), extra_s()).prop_map(|((id, n), (amount, a), extra)| {
            let data = object(
                vec![
                    ("id", Some(id)),
                    ("amount", amount),
                    ("amount-effect", Some(json!("Credit"))),
                ],
                extra,
            );
            let meaning = Meaning::ExternalTransaction {
                id: n.to_string(),
                amount: a,
            };
            ("ExternalTransaction".to_string(), data, meaning)
        });
    let gain = (optional(id_s()), optional(decimal_s()), extra_s()).prop_map(
        |((year, y), (gain, g), extra)| {
            let data = object(vec![("year", year), ("yearly-realized-gain", gain)], extra);
            let meaning = Meaning::UnderlyingYearGainSummary {
                year: y.map(|y| y.to_string()),
                gain: g,
            };
            ("UnderlyingYearGainSummary".to_string(), data, meaning)
        },
    );
    let chain =
        (id_s(), optional(time_s()), extra_s()).prop_map(|((id, n), (updated, u), extra)| {
            let data = object(
                vec![
                    ("id", Some(id)),
                    ("updated-at", updated),
                    (
                        "computed-data",
                        Some(json!({"total-fees": "1.26", "total-fees-effect": "Debit"})),
                    ),
                ],
                extra,
            );
            let meaning = Meaning::OrderChain {
                id: n.to_string(),
                updated_at: u,
            };
            ("OrderChain".to_string(), data, meaning)
        });
    let alert = (optional(decimal_s()), optional(time_s()), extra_s()).prop_map(
        |((threshold, t), (expires, e), extra)| {
            let data = object(
                vec![
                    ("symbol", Some(json!("AAPL"))),
                    ("threshold-numeric", threshold),
                    ("expires-at", expires),
                ],
                extra,
            );
            let meaning = Meaning::QuoteAlert {
                threshold_numeric: t,
                expires_at: e,
            };
            ("QuoteAlert".to_string(), data, meaning)
        },
    );
    let watchlists = (optional((0usize..4).prop_map(|n| {
        let entries: Vec<Value> = (0..n)
            .map(|i| json!({"symbol": format!("S{i}"), "instrument-type": "Equity"}))
            .collect();
        (Value::Array(entries), n)
    })),)
        .prop_map(|((entries, n),)| {
            let data = object(
                vec![
                    ("name", Some(json!("High Options Volume"))),
                    ("watchlist-entries", entries),
                ],
                vec![],
            );
            let meaning = Meaning::PublicWatchlists {
                entries: n.unwrap_or(0),
            };
            ("PublicWatchlists".to_string(), data, meaning)
        });
    let unknown = (
        prop_oneof![
            Just("MarginRequirement"),
            Just("UserMessage"),
            Just("Future.Type-2"),
            Just("order"),
        ],
        extra_s(),
    )
        .prop_map(|(kind, extra)| {
            (
                kind.to_string(),
                object(vec![("id", Some(json!("u-1")))], extra),
                Meaning::Unknown,
            )
        });
    prop_oneof![
        4 => order,
        1 => complex,
        3 => position,
        2 => balance,
        1 => trading,
        1 => transaction,
        1 => gain,
        1 => chain,
        1 => alert,
        1 => watchlists,
        1 => unknown,
    ]
}

/// Asserts that the typed view of `data` reads what `meaning` says.
fn check_typed(kind: &str, data: &Value, meaning: &Meaning) -> Result<(), TestCaseError> {
    let parsed = AccountEvent::parse(kind, data)
        .map_err(|e| TestCaseError::fail(format!("{kind} did not parse ({e}): {data}")))?;
    let order_meaning = |o: &tastytrade_gateway::model::events::Order| OrderMeaning {
        id: o.id.clone().unwrap_or_default(),
        size: o.size,
        price: o.price,
        updated_at: o.updated_at,
        user_id: o.user_id.clone(),
        fill_ids: o.fill_ids().map(str::to_string).collect(),
        leg_quantities: o.legs.iter().map(|l| l.quantity).collect(),
    };
    let read = match parsed {
        AccountEvent::Order(o) => Meaning::Order(order_meaning(&o)),
        AccountEvent::ComplexOrder(c) => Meaning::ComplexOrder {
            id: c.id.unwrap_or_default(),
            orders: c
                .orders
                .iter()
                .map(|o| o.id.clone().unwrap_or_default())
                .collect(),
            trigger: c.trigger_order.map(|o| o.id.unwrap_or_default()),
        },
        AccountEvent::CurrentPosition(p) => Meaning::CurrentPosition {
            symbol: p.symbol.unwrap_or_default(),
            quantity: p.quantity,
            multiplier: p.multiplier,
            fixing_price: p.fixing_price,
            expires_at: p.expires_at,
            updated_at: p.updated_at,
        },
        AccountEvent::AccountBalance(b) => Meaning::AccountBalance {
            cash_balance: b.cash_balance,
            updated_at: b.updated_at,
        },
        AccountEvent::TradingStatus(t) => Meaning::TradingStatus {
            id: t.id,
            day_trade_count: t.day_trade_count,
            fraud_safeguards_at: t.enhanced_fraud_safeguards_enabled_at,
        },
        AccountEvent::ExternalTransaction(t) => Meaning::ExternalTransaction {
            id: t.id.unwrap_or_default(),
            amount: t.amount,
        },
        AccountEvent::UnderlyingYearGainSummary(g) => Meaning::UnderlyingYearGainSummary {
            year: g.year,
            gain: g.yearly_realized_gain,
        },
        AccountEvent::OrderChain(c) => Meaning::OrderChain {
            id: c.id.unwrap_or_default(),
            updated_at: c.updated_at,
        },
        AccountEvent::QuoteAlert(a) => Meaning::QuoteAlert {
            threshold_numeric: a.threshold_numeric,
            expires_at: a.expires_at,
        },
        AccountEvent::PublicWatchlists(w) => Meaning::PublicWatchlists {
            entries: w.watchlist_entries.len(),
        },
        AccountEvent::Unknown => Meaning::Unknown,
    };
    prop_assert_eq!(&read, meaning, "typed view of {} {}", kind, data);
    Ok(())
}

// ---- frames and messages ----

/// One element of a message, with what the parser must make of it.
#[derive(Debug)]
enum Piece {
    Event {
        wire: Value,
        frame: Frame,
        kind: String,
        meaning: Meaning,
    },
    Reply {
        wire: Value,
        frame: Frame,
    },
    /// Junk that is a JSON object (unrecognised) or not (not an object).
    Junk {
        wire: Value,
        error: FrameError,
    },
}

impl Piece {
    fn wire(&self) -> &Value {
        match self {
            Piece::Event { wire, .. } | Piece::Reply { wire, .. } | Piece::Junk { wire, .. } => {
                wire
            }
        }
    }
}

fn notification_s() -> impl Strategy<Value = Piece> {
    (event_s(), optional(time_s())).prop_map(|((kind, data, meaning), (timestamp, ms))| {
        let mut wire = json!({"type": kind, "data": data});
        if let Some(timestamp) = timestamp {
            wire["timestamp"] = timestamp;
        }
        let frame = Frame::Notification(Notification {
            kind: kind.clone(),
            data,
            timestamp: ms,
        });
        Piece::Event {
            wire,
            frame,
            kind,
            meaning,
        }
    })
}

fn reply_s() -> impl Strategy<Value = Piece> {
    (
        any::<bool>(),
        prop_oneof![
            Just("connect"),
            Just("heartbeat"),
            Just("quote-alerts-subscribe")
        ],
        optional(id_s()),
        prop_oneof![
            Just(None),
            Just(Some("failed")),
            Just(Some("not-implemented")),
            Just(Some("connect-not-completed")),
        ],
        prop_oneof![Just(None), Just(Some(json!(["5WT31842"])))],
    )
        .prop_map(|(ok, action, (request_id, id), message, value)| {
            let mut wire = json!({"status": if ok { "ok" } else { "error" }, "action": action,
                "web-socket-session-id": "c8531fa0"});
            if let Some(request_id) = request_id {
                wire["request-id"] = request_id;
            }
            if let Some(message) = message {
                wire["message"] = json!(message);
            }
            if let Some(value) = &value {
                wire["value"] = value.clone();
            }
            let frame = Frame::Reply(Reply {
                ok,
                action: action.to_string(),
                request_id: id,
                message: message.map(str::to_string),
                value,
            });
            Piece::Reply { wire, frame }
        })
}

/// Junk objects (neither a notification nor a reply).
fn junk_object_s() -> impl Strategy<Value = Piece> {
    prop_oneof![
        Just(json!({"hello": 1})),
        Just(json!({"type": 5, "data": {}})),
        Just(json!({"type": "Order"})),
        Just(json!({"status": 1, "action": "heartbeat"})),
        Just(json!({"data": {"id": 1}, "timestamp": 5})),
        Just(json!({})),
    ]
    .prop_map(|wire| Piece::Junk {
        wire,
        error: FrameError::Unrecognised,
    })
}

/// Junk that is not an object at all.
fn junk_value_s() -> impl Strategy<Value = Piece> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        "[ -~]{0,16}".prop_map(|s| json!(s)),
        Just(Value::Null),
        any::<bool>().prop_map(|b| json!(b)),
        Just(json!([1, {"type": "Order", "data": {"id": 1}}])),
    ]
    .prop_map(|wire| Piece::Junk {
        wire,
        error: FrameError::NotObject,
    })
}

/// One WebSocket text message.
#[derive(Debug)]
enum Message {
    /// One object on its own.
    Single(Piece),
    /// `{"results":[...]}`.
    Batch(Vec<Piece>),
    /// A top-level value that is not an object.
    NotObject(Piece),
    /// Text that is not JSON (a valid message cut short).
    Cut(Piece),
}

impl Message {
    fn text(&self) -> String {
        match self {
            Message::Single(piece) | Message::NotObject(piece) => piece.wire().to_string(),
            Message::Batch(pieces) => {
                let items: Vec<Value> = pieces.iter().map(|p| p.wire().clone()).collect();
                json!({ "results": items }).to_string()
            }
            Message::Cut(piece) => {
                let text = piece.wire().to_string();
                text[..text.len() - 1].to_string()
            }
        }
    }

    /// The frames and errors the parser must return.
    fn expected(&self) -> (Vec<&Piece>, Vec<FrameError>) {
        let pieces: Vec<&Piece> = match self {
            Message::Single(piece) | Message::NotObject(piece) => vec![piece],
            Message::Batch(pieces) => pieces.iter().collect(),
            Message::Cut(_) => return (vec![], vec![FrameError::NotJson]),
        };
        let mut valid = Vec::new();
        let mut errors = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Junk { error, .. } => errors.push(same_error(error)),
                other => valid.push(other),
            }
        }
        (valid, errors)
    }
}

/// `FrameError` is not `Clone`; its variants carry nothing.
fn same_error(error: &FrameError) -> FrameError {
    match error {
        FrameError::NotJson => FrameError::NotJson,
        FrameError::NotObject => FrameError::NotObject,
        FrameError::Unrecognised => FrameError::Unrecognised,
    }
}

fn valid_piece_s() -> impl Strategy<Value = Piece> {
    prop_oneof![4 => notification_s(), 1 => reply_s()]
}

fn message_s() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => prop_oneof![4 => valid_piece_s(), 1 => junk_object_s()].prop_map(Message::Single),
        3 => vec(
            prop_oneof![6 => valid_piece_s(), 1 => junk_object_s(), 1 => junk_value_s()],
            0..6
        )
        .prop_map(Message::Batch),
        1 => junk_value_s().prop_map(Message::NotObject),
        1 => valid_piece_s().prop_map(Message::Cut),
    ]
}

/// Any JSON value, nested a few levels.
fn any_json_s() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,10}".prop_map(Value::from),
        Just(json!("NaN")),
        Just(json!("2025-12-23T15:42:36.753+0000")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(
                (
                    prop_oneof![
                        Just("id".to_string()),
                        Just("legs".to_string()),
                        Just("fills".to_string()),
                        Just("orders".to_string()),
                        Just("trigger-order".to_string()),
                        Just("updated-at".to_string()),
                        Just("quantity".to_string()),
                        Just("type".to_string()),
                        Just("data".to_string()),
                        Just("results".to_string()),
                        Just("status".to_string()),
                        "[a-z-]{1,10}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

const KINDS: [&str; 12] = [
    "Order",
    "ComplexOrder",
    "CurrentPosition",
    "AccountBalance",
    "TradingStatus",
    "ExternalTransaction",
    "UnderlyingYearGainSummary",
    "OrderChain",
    "QuoteAlert",
    "PublicWatchlists",
    "MarginRequirement",
    "",
];

proptest! {
    // Past failures are replayed from `parser_props.proptest-regressions` beside this file:
    // proptest's default would look in `tests/proptest-regressions/`, as this file now sits
    // next to a `main.rs`.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    /// Every valid notification and reply comes out exactly and in order; every piece of
    /// junk is reported in order; nothing valid is lost to a junk neighbour.
    #[test]
    fn every_valid_frame_is_returned_in_order(messages in vec(message_s(), 1..8)) {
        let mut frames = Vec::new();
        let mut errors = Vec::new();
        let mut expected_frames = Vec::new();
        let mut expected_errors = Vec::new();
        for message in &messages {
            let (got, skipped) = wire::parse(&message.text());
            frames.extend(got);
            errors.extend(skipped);
            let (valid, junk) = message.expected();
            expected_frames.extend(valid.into_iter().map(|piece| match piece {
                Piece::Event { frame, .. } | Piece::Reply { frame, .. } => frame.clone(),
                Piece::Junk { .. } => unreachable!("junk is not valid"),
            }));
            expected_errors.extend(junk);
        }
        prop_assert_eq!(frames, expected_frames);
        prop_assert_eq!(errors, expected_errors);
    }

    /// The typed view of every valid event reads the meaning, whatever form each field took
    /// (number or string, four time forms, `"NaN"`, null or absent optional fields).
    #[test]
    fn typed_views_read_drifted_fields_alike(piece in notification_s()) {
        let Piece::Event { frame: Frame::Notification(n), kind, meaning, .. } = &piece else {
            unreachable!("notification_s makes events")
        };
        prop_assert_eq!(&n.kind, kind);
        check_typed(kind, &n.data, meaning)?;
    }

    /// The same object written with numbers and written with strings reads the same.
    #[test]
    fn numbers_and_numeric_strings_read_the_same(
        id in 1u64..100_000_000_000,
        size in 0u64..1_000_000,
        updated in 946_684_800_000i64..4_102_444_800_000,
        price in (-10_000_000_000i64..10_000_000_000, 0u32..=9),
    ) {
        let price = Decimal::new(price.0, price.1);
        let price_number: Value = serde_json::from_str(&price.to_string()).unwrap();
        let as_numbers = json!({"id": id, "size": size, "updated-at": updated, "user-id": id, "price": price_number,
            "legs": [{"quantity": size, "fills": [{"fill-id": id, "quantity": size}]}]});
        let as_strings = json!({"id": id.to_string(), "size": size.to_string(), "updated-at": updated.to_string(),
            "user-id": id.to_string(), "price": price.to_string(),
            "legs": [{"quantity": size.to_string(), "fills": [{"fill-id": id.to_string(), "quantity": size.to_string()}]}]});
        let a = AccountEvent::parse("Order", &as_numbers).unwrap();
        let b = AccountEvent::parse("Order", &as_strings).unwrap();
        prop_assert_eq!(&a, &b);
        let AccountEvent::Order(order) = a else { unreachable!("an order") };
        prop_assert_eq!(order.id, Some(id.to_string()));
        prop_assert_eq!(order.price, Some(price));
        prop_assert_eq!(order.updated_at, Some(updated));
        let chain_number = AccountEvent::parse("OrderChain", &json!({"id": id})).unwrap();
        let chain_string = AccountEvent::parse("OrderChain", &json!({"id": id.to_string()})).unwrap();
        prop_assert_eq!(chain_number, chain_string);
    }

    /// Any JSON at all, as a message or as any type's data, never panics; data that is not
    /// an object is an error for every type.
    #[test]
    fn any_json_never_panics(value in any_json_s(), kind in 0usize..KINDS.len()) {
        let text = value.to_string();
        let _ = wire::parse(&text);
        let _ = wire::parse(&json!({"results": [value.clone(), value.clone()]}).to_string());
        let result = AccountEvent::parse(KINDS[kind], &value);
        if !value.is_object() {
            prop_assert!(result.is_err());
        }
        let _ = wire::parse(&json!({"type": KINDS[kind], "data": value}).to_string());
    }

    /// Any text never panics; what is not JSON is one `NotJson` error and no frame.
    #[test]
    fn any_text_never_panics(text in "\\PC{0,64}") {
        let (frames, errors) = wire::parse(&text);
        if serde_json::from_str::<Value>(&text).is_err() {
            prop_assert!(frames.is_empty());
            prop_assert_eq!(errors, vec![FrameError::NotJson]);
        }
    }
}
