//! The simulator's made-up customer: two open accounts with realistic holdings (fractional
//! equity, equity options, a futures option, shorts and longs, live orders) and one closed
//! account, plus the builders the market script reuses for new orders and positions.
//! Account numbers have tastytrade's shape (digit, two capitals, five digits) so leak scans
//! can find them anywhere.

use rand::Rng;
use rand::rngs::StdRng;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::state::SimAccount;
use super::wire::{iso_now, money, quantity, today};

/// An instrument the market script trades.
#[derive(Clone, Debug)]
pub struct Instrument {
    pub symbol: &'static str,
    pub instrument_type: &'static str,
    pub underlying: &'static str,
    pub streamer_symbol: &'static str,
    /// Multiplier as the wire carries it: a string for equities and options, a number for futures options.
    pub multiplier: Value,
    pub price: &'static str,
}

impl Instrument {
    pub fn multiplier_value(&self) -> Decimal {
        super::wire::decimal(Some(&self.multiplier))
    }
    pub fn price_value(&self) -> Decimal {
        self.price.parse().unwrap_or(Decimal::ONE)
    }
    pub fn underlying_type(&self) -> &'static str {
        match self.instrument_type {
            "Future Option" | "Future" => "Future",
            _ => "Equity",
        }
    }
}

pub fn universe() -> Vec<Instrument> {
    let m = |s: &str| Value::String(s.into());
    vec![
        Instrument {
            symbol: "SPY",
            instrument_type: "Equity",
            underlying: "SPY",
            streamer_symbol: "SPY",
            multiplier: m("1"),
            price: "590.12",
        },
        Instrument {
            symbol: "AAPL",
            instrument_type: "Equity",
            underlying: "AAPL",
            streamer_symbol: "AAPL",
            multiplier: m("1"),
            price: "231.45",
        },
        Instrument {
            symbol: "MSFT",
            instrument_type: "Equity",
            underlying: "MSFT",
            streamer_symbol: "MSFT",
            multiplier: m("1"),
            price: "428.7",
        },
        Instrument {
            symbol: "VTI",
            instrument_type: "Equity",
            underlying: "VTI",
            streamer_symbol: "VTI",
            multiplier: m("1"),
            price: "301.22",
        },
        Instrument {
            symbol: "MCD   270115P00305000",
            instrument_type: "Equity Option",
            underlying: "MCD",
            streamer_symbol: ".MCD270115P305",
            multiplier: m("100"),
            price: "4.35",
        },
        Instrument {
            symbol: "SPY   270115C00600000",
            instrument_type: "Equity Option",
            underlying: "SPY",
            streamer_symbol: ".SPY270115C600",
            multiplier: m("100"),
            price: "38.1",
        },
        Instrument {
            symbol: "QQQ   270115P00450000",
            instrument_type: "Equity Option",
            underlying: "QQQ",
            streamer_symbol: ".QQQ270115P450",
            multiplier: m("100"),
            price: "9.85",
        },
        Instrument {
            symbol: "./ESZ6 EW4Z6 261218C6000",
            instrument_type: "Future Option",
            underlying: "/ESZ6",
            streamer_symbol: "./EW4Z26C6000:XCME",
            multiplier: json!(50),
            price: "112.25",
        },
    ]
}

pub fn instrument(symbol: &str) -> Option<Instrument> {
    universe().into_iter().find(|i| i.symbol == symbol)
}

/// A `CurrentPosition` for `signed_quantity` (negative = short).
pub fn position(
    account: &str,
    inst: &Instrument,
    signed_quantity: Decimal,
    average_open: Decimal,
    updated_at: &str,
) -> Value {
    let direction = if signed_quantity.is_zero() {
        "Zero"
    } else if signed_quantity.is_sign_negative() {
        "Short"
    } else {
        "Long"
    };
    let mut p = json!({
        "account-number": account,
        "symbol": inst.symbol,
        "instrument-type": inst.instrument_type,
        "underlying-symbol": inst.underlying,
        "streamer-symbol": inst.streamer_symbol,
        "quantity": quantity(signed_quantity.abs()),
        "quantity-direction": direction,
        "close-price": inst.price,
        "average-open-price": money(average_open),
        "average-yearly-market-close-price": money(average_open),
        "average-daily-market-close-price": inst.price,
        "multiplier": inst.multiplier,
        "cost-effect": if signed_quantity.is_sign_negative() { "Credit" } else { "Debit" },
        "is-suppressed": false,
        "is-frozen": false,
        "restricted-quantity": "0",
        "realized-day-gain": "0.0",
        "realized-day-gain-effect": "None",
        "realized-day-gain-date": today(),
        "realized-today": "0.0",
        "realized-today-effect": "None",
        "realized-today-date": today(),
        "created-at": "2026-10-01T14:30:00.000+00:00",
        "updated-at": updated_at,
    });
    if inst.instrument_type.contains("Option") {
        p["expires-at"] = json!("2027-01-15T21:15:00.000+00:00");
    }
    p
}

/// What an order is about; the market script turns it into `Order` objects as it moves.
#[derive(Clone, Debug)]
pub struct OrderSpec {
    pub id: u64,
    pub account: String,
    pub instrument: Instrument,
    pub action: &'static str,
    pub size: Decimal,
    pub price: Decimal,
    pub order_type: &'static str,
    pub time_in_force: &'static str,
    /// tastyware reads `user-id` as a string; captured frames carry a number. Both occur; the
    /// simulator writes strings unless `SimConfig::numeric_user_ids` is on.
    pub user_id_as_number: bool,
}

impl OrderSpec {
    pub fn is_buy(&self) -> bool {
        self.action.starts_with("Buy")
    }
}

/// A fresh `Order` in status `Received`.
pub fn order(spec: &OrderSpec, updated_ms: i64) -> Value {
    let now = iso_now();
    let size = spec.size.normalize();
    let size_json = match u64::try_from(size) {
        Ok(whole) if Decimal::from(whole) == size => json!(whole),
        _ => json!(size.to_string()),
    };
    json!({
        "id": spec.id,
        "account-number": spec.account,
        "time-in-force": spec.time_in_force,
        "order-type": spec.order_type,
        "size": size_json,
        "underlying-symbol": spec.instrument.underlying,
        "underlying-instrument-type": spec.instrument.underlying_type(),
        "price": money(spec.price),
        "price-effect": if spec.is_buy() { "Debit" } else { "Credit" },
        "status": "Received",
        "cancellable": true,
        "editable": true,
        "edited": false,
        "ext-client-order-id": format!("{:018x}", spec.id * 7919),
        "global-request-id": format!("{:032x}", u128::from(spec.id) * 104_729),
        "source": "tastytrade-sim",
        "received-at": now,
        "updated-at": updated_ms,
        "user-id": if spec.user_id_as_number { json!(99) } else { json!("99") },
        "username": "demotrader",
        "leg-count": 1,
        "legs": [{
            "instrument-type": spec.instrument.instrument_type,
            "symbol": spec.instrument.symbol,
            "action": spec.action,
            "quantity": size_json,
            "remaining-quantity": size_json,
            "fills": [],
        }],
    })
}

fn balance(
    account: &str,
    cash: Decimal,
    long_equity: Decimal,
    long_derivative: Decimal,
    short_derivative: Decimal,
) -> Value {
    let net_liq = cash + long_equity + long_derivative - short_derivative;
    json!({
        "account-number": account,
        "currency": "USD",
        "cash-balance": money(cash),
        "long-equity-value": money(long_equity),
        "short-equity-value": "0.0",
        "long-derivative-value": money(long_derivative),
        "short-derivative-value": money(short_derivative),
        "long-futures-value": "0.0",
        "short-futures-value": "0.0",
        "long-futures-derivative-value": "0.0",
        "short-futures-derivative-value": "0.0",
        "long-margineable-value": money(long_equity),
        "short-margineable-value": "0.0",
        "margin-equity": money(net_liq),
        "equity-buying-power": money(cash * Decimal::TWO),
        "derivative-buying-power": money(cash),
        "day-trading-buying-power": "0.0",
        "futures-margin-requirement": "0.0",
        "available-trading-funds": "0.0",
        "maintenance-requirement": "45210.45",
        "maintenance-call-value": "0.0",
        "reg-t-call-value": "0.0",
        "day-trading-call-value": "0.0",
        "day-equity-call-value": "0.0",
        "net-liquidating-value": money(net_liq),
        "cash-available-to-withdraw": money(cash),
        "day-trade-excess": money(cash),
        "pending-cash": "0.0",
        "pending-cash-effect": "None",
        "long-cryptocurrency-value": "0.0",
        "short-cryptocurrency-value": "0.0",
        "cryptocurrency-margin-requirement": "0.0",
        "unsettled-cryptocurrency-fiat-amount": "0.0",
        "unsettled-cryptocurrency-fiat-effect": "None",
        "previous-day-cryptocurrency-fiat-amount": "0.0",
        "previous-day-cryptocurrency-fiat-effect": "None",
        "closed-loop-available-balance": money(cash),
        "equity-offering-margin-requirement": "0.0",
        "long-bond-value": "0.0",
        "bond-margin-requirement": "0.0",
        "used-derivative-buying-power": "1020.0",
        "snapshot-date": today(),
        "reg-t-margin-requirement": "45210.45",
        "futures-overnight-margin-requirement": "0.0",
        "futures-intraday-margin-requirement": "0.0",
        "maintenance-excess": "131039.16",
        "pending-margin-interest": "0.0",
        "effective-cryptocurrency-buying-power": money(cash),
        "buying-power-adjustment": "0.0",
        "buying-power-adjustment-effect": "None",
        "time-of-day": "BOD",
        "updated-at": iso_now(),
    })
}

fn trading_status(id: u64, account: &str, options_level: &str) -> Value {
    json!({
        "id": id,
        "account-number": account,
        "day-trade-count": 0,
        "equities-margin-calculation-type": "Reg T",
        "fee-schedule-name": "default",
        "futures-margin-rate-multiplier": "0.0",
        "has-intraday-equities-margin": false,
        "is-aggregated-at-clearing": false,
        "is-closed": false,
        "is-closing-only": false,
        "is-cryptocurrency-closing-only": false,
        "is-cryptocurrency-enabled": true,
        "is-frozen": false,
        "is-full-equity-margin-required": false,
        "is-futures-closing-only": false,
        "is-futures-intra-day-enabled": false,
        "is-futures-enabled": true,
        "is-in-day-trade-equity-maintenance-call": false,
        "is-in-margin-call": false,
        "is-pattern-day-trader": false,
        "is-portfolio-margin-enabled": false,
        "is-risk-reducing-only": false,
        "is-small-notional-futures-intra-day-enabled": false,
        "is-roll-the-day-forward-enabled": true,
        "are-far-otm-net-options-restricted": true,
        "options-level": options_level,
        "short-calls-enabled": true,
        "small-notional-futures-margin-rate-multiplier": "0.0",
        "is-equity-offering-enabled": false,
        "is-equity-offering-closing-only": false,
        "enhanced-fraud-safeguards-enabled-at": "2016-12-29T22:51:13.729+00:00",
        "pdt-reset-on": today(),
        "updated-at": iso_now(),
    })
}

fn account_object(
    number: &str,
    nickname: &str,
    type_name: &str,
    margin_or_cash: &str,
    closed: bool,
    rng: &mut StdRng,
) -> Value {
    json!({
        "account-number": number,
        "external-id": format!("A{:08x}-{:04x}", rng.random::<u32>(), rng.random::<u16>()),
        "opened-at": "2024-12-10T00:00:00.000+00:00",
        "nickname": nickname,
        "account-type-name": type_name,
        "day-trader-status": false,
        "is-closed": closed,
        "is-firm-error": false,
        "is-firm-proprietary": false,
        "is-futures-approved": margin_or_cash == "Margin",
        "is-test-drive": false,
        "margin-or-cash": margin_or_cash,
        "is-foreign": false,
        "funding-date": "2024-12-10",
        "investment-objective": "SPECULATION",
        "suitable-options-level": "No Restrictions",
        "futures-account-purpose": "SPECULATING",
        "regulatory-domain": "USA",
        "created-at": "2024-12-10T00:00:00.000+00:00",
    })
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap_or_default()
}

fn held(account: &str, symbol: &str, signed: &str, average: &str) -> Value {
    let inst = instrument(symbol).expect("symbol is in the universe");
    position(account, &inst, d(signed), d(average), &iso_now())
}

// Demo data reads best as one call per order with every attribute spelled out.
#[allow(clippy::too_many_arguments)]
fn working_order(
    account: &str,
    id: u64,
    symbol: &str,
    action: &'static str,
    size: &str,
    price: &str,
    status: &str,
    user_id_as_number: bool,
) -> Value {
    let spec = OrderSpec {
        id,
        account: account.to_string(),
        instrument: instrument(symbol).expect("symbol is in the universe"),
        action,
        size: d(size),
        price: d(price),
        order_type: "Limit",
        time_in_force: if status == "Live" { "GTC" } else { "Day" },
        user_id_as_number,
    };
    let mut o = order(&spec, chrono::Utc::now().timestamp_millis() - 60_000);
    o["status"] = json!(status);
    match status {
        "Live" => {
            o["live-at"] = json!(iso_now());
        }
        "Cancelled" => {
            o["cancellable"] = json!(false);
            o["editable"] = json!(false);
            o["cancelled-at"] = json!(iso_now());
            o["terminal-at"] = json!(iso_now());
        }
        _ => {}
    }
    o
}

/// The demo customer's accounts, as tastytrade would hold them at the start of a day.
/// `numeric_user_ids` makes one working order carry `user-id` as a number (see `SimConfig`).
pub fn accounts(rng: &mut StdRng, numeric_user_ids: bool) -> Vec<SimAccount> {
    let individual = "5WT31842";
    let roth = "5WU09822";
    let closed = "5WV55120";
    vec![
        SimAccount {
            account: account_object(individual, "Individual", "Individual", "Margin", false, rng),
            number: individual.into(),
            closed: false,
            balance: balance(
                individual,
                d("40506.72"),
                d("82743.17"),
                d("1250.0"),
                d("435.0"),
            ),
            positions: vec![
                held(individual, "SPY", "100.29", "512.4"),
                held(individual, "AAPL", "50", "187.3"),
                held(individual, "MCD   270115P00305000", "-1", "5.1"),
                held(individual, "SPY   270115C00600000", "2", "31.75"),
                held(individual, "./ESZ6 EW4Z6 261218C6000", "1", "98.5"),
            ],
            orders: vec![
                working_order(
                    individual,
                    300_101,
                    "AAPL",
                    "Buy to Open",
                    "10",
                    "220.0",
                    "Live",
                    numeric_user_ids,
                ),
                working_order(
                    individual,
                    300_102,
                    "MSFT",
                    "Buy to Open",
                    "5",
                    "400.0",
                    "Cancelled",
                    false,
                ),
            ],
            complex_orders: vec![],
            trading_status: trading_status(15, individual, "No Restrictions"),
        },
        SimAccount {
            account: account_object(roth, "Roth IRA", "Roth IRA", "Cash", false, rng),
            number: roth.into(),
            closed: false,
            balance: balance(roth, d("18250.4"), d("75305.0"), d("0.0"), d("985.0")),
            positions: vec![
                held(roth, "VTI", "250", "244.18"),
                held(roth, "MSFT", "12.5", "389.02"),
                held(roth, "QQQ   270115P00450000", "-1", "11.2"),
            ],
            orders: vec![working_order(
                roth,
                300_201,
                "VTI",
                "Sell to Close",
                "25",
                "320.0",
                "Live",
                false,
            )],
            complex_orders: vec![],
            trading_status: trading_status(16, roth, "Covered And Cash Secured"),
        },
        SimAccount {
            account: account_object(closed, "Old Margin", "Individual", "Margin", true, rng),
            number: closed.into(),
            closed: true,
            balance: balance(closed, d("0.0"), d("0.0"), d("0.0"), d("0.0")),
            positions: vec![],
            orders: vec![],
            complex_orders: vec![],
            trading_status: trading_status(17, closed, "No Restrictions"),
        },
    ]
}

/// `count` more open accounts, generated (numbers `5GA00001`, `5GA00002`, ...; nicknames
/// `Generated 1`, ...), each with cash, one or two stock positions and no orders: for tests
/// and benchmarks of many accounts.
pub fn generated_accounts(rng: &mut StdRng, count: usize) -> Vec<SimAccount> {
    const STOCKS: [(&str, &str); 4] = [
        ("SPY", "512.4"),
        ("AAPL", "187.3"),
        ("VTI", "244.18"),
        ("MSFT", "389.02"),
    ];
    (1..=count)
        .map(|n| {
            let number = format!(
                "5G{}{:05}",
                char::from(b'A' + ((n / 100_000) % 26) as u8),
                n % 100_000
            );
            let nickname = format!("Generated {n}");
            let (first, second) = (STOCKS[n % 4], STOCKS[(n + 1) % 4]);
            let mut positions = vec![held(&number, first.0, "10", first.1)];
            if n % 2 == 0 {
                positions.push(held(&number, second.0, "5", second.1));
            }
            SimAccount {
                account: account_object(&number, &nickname, "Individual", "Margin", false, rng),
                balance: balance(&number, d("10000.0"), d("5000.0"), d("0.0"), d("0.0")),
                positions,
                orders: vec![],
                complex_orders: vec![],
                trading_status: trading_status(100 + n as u64, &number, "No Restrictions"),
                number,
                closed: false,
            }
        })
        .collect()
}

/// The customer object `/customers/me` returns (tastyware needs the full shape).
pub fn customer() -> Value {
    json!({
        "id": "me",
        "external-id": "U0001234567",
        "first-name": "Demo",
        "last-name": "Trader",
        "first-surname": "Trader",
        "email": "demo@example.invalid",
        "username": "demotrader",
        "mobile-phone-number": "+15555550100",
        "tax-number-type": "SSN",
        "usa-citizenship-type": "Citizen",
        "is-foreign": false,
        "regulatory-domain": "USA",
        "birth-date": "1985-03-14",
        "citizenship-country": "USA",
        "subject-to-tax-withholding": false,
        "agreed-to-margining": true,
        "agreed-to-terms": true,
        "has-industry-affiliation": false,
        "has-political-affiliation": false,
        "has-listed-affiliation": false,
        "has-institutional-assets": false,
        "is-investment-adviser": false,
        "is-professional": false,
        "has-delayed-quotes": false,
        "has-pending-or-approved-application": false,
        "identifiable-type": "Person",
        "created-at": "2024-12-09T15:04:11.000+00:00",
        "permitted-account-types": [
            {"name": "Individual", "description": "Individual Account", "is-tax-advantaged": false, "has-multiple-owners": false, "is-publicly-available": true, "margin-types": [{"name": "Cash", "is-margin": false}, {"name": "Reg T", "is-margin": true}]},
            {"name": "Roth IRA", "description": "Roth IRA", "is-tax-advantaged": true, "has-multiple-owners": false, "is-publicly-available": true, "margin-types": [{"name": "Cash", "is-margin": false}]},
        ],
        "address": {"street-one": "1 Demo Way", "city": "Chicago", "state-region": "IL", "postal-code": "60606", "country": "USA", "is-foreign": false, "is-domestic": true},
        "mailing-address": {"street-one": "1 Demo Way", "city": "Chicago", "state-region": "IL", "postal-code": "60606", "country": "USA", "is-foreign": false, "is-domestic": true},
        "customer-suitability": {"id": 1, "annual-net-income": 100_000, "covered-options-trading-experience": "Extensive", "employment-status": "Employed", "futures-trading-experience": "Limited", "liquid-net-worth": 250_000, "marital-status": "Single", "net-worth": 500_000, "number-of-dependents": 0, "stock-trading-experience": "Extensive", "tax-bracket": "24", "uncovered-options-trading-experience": "Limited"},
        "person": {"external-id": "P0001234567", "first-name": "Demo", "last-name": "Trader", "birth-date": "1985-03-14", "citizenship-country": "USA", "usa-citizenship-type": "Citizen", "employment-status": "Employed", "occupation": "Trader", "marital-status": "Single", "number-of-dependents": 0},
        "family-member-names": "",
        "user-id": "99",
    })
}
