//! The ingest pipeline on one core: upstream frame bytes -> published shared bytes. Stages:
//! frame parse (`upstream::wire::parse`), the typed check (`AccountEvent::parse`), and
//! `Account::ingest` (mask, apply, sequence, serialise once, journal, broadcast); then all
//! of them together, as the streamer task runs them. Goal: >= 200 k frames/s.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tastytrade_gateway::account::{Account, AccountInfo};
use tastytrade_gateway::log::{RingLimits, RingLog};
use tastytrade_gateway::mask::Masker;
use tastytrade_gateway::model::events::AccountEvent;
use tastytrade_gateway::model::{EventKind, Source};
use tastytrade_gateway::upstream::wire::{self, Frame};

/// The gateway binary's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NUMBER: &str = "5WT31842";

/// An `Order` notification shaped like the simulator's (and tastytrade's). `updated-at` is
/// left out so that cycling through the fixtures never reads as a stale update.
fn order(id: u64, status: &str) -> Value {
    json!({"type": "Order", "timestamp": 1_795_469_642_193_i64, "data": {
        "id": id, "account-number": NUMBER, "time-in-force": "Day", "order-type": "Limit",
        "size": 2, "underlying-symbol": "SPY", "underlying-instrument-type": "Equity",
        "price": "512.25", "price-effect": "Debit", "status": status, "cancellable": true,
        "editable": true, "edited": false, "ext-client-order-id": format!("{:018x}", id * 7919),
        "global-request-id": format!("{:032x}", u128::from(id) * 104_729),
        "source": "tastytrade-sim", "received-at": "2026-11-23T21:34:02.193+00:00",
        "user-id": 99, "username": "demotrader", "leg-count": 1,
        "legs": [{"instrument-type": "Equity", "symbol": "SPY", "action": "Buy to Open",
            "quantity": 2, "remaining-quantity": 2, "fills": []}]}})
}

/// An `AccountBalance` notification (the largest common event, ~1.5 KB).
fn balance(cash: u64) -> Value {
    let mut data = serde_json::Map::new();
    data.insert("account-number".into(), json!(NUMBER));
    data.insert("currency".into(), json!("USD"));
    data.insert("cash-balance".into(), json!(format!("{cash}.25")));
    for field in [
        "long-equity-value",
        "short-equity-value",
        "long-derivative-value",
        "short-derivative-value",
        "long-futures-value",
        "short-futures-value",
        "long-margineable-value",
        "short-margineable-value",
        "margin-equity",
        "equity-buying-power",
        "derivative-buying-power",
        "day-trading-buying-power",
        "futures-margin-requirement",
        "available-trading-funds",
        "maintenance-requirement",
        "maintenance-call-value",
        "reg-t-call-value",
        "day-trading-call-value",
        "net-liquidating-value",
        "cash-available-to-withdraw",
        "day-trade-excess",
        "pending-cash",
        "long-cryptocurrency-value",
        "short-cryptocurrency-value",
        "closed-loop-available-balance",
        "long-bond-value",
        "used-derivative-buying-power",
        "reg-t-margin-requirement",
        "maintenance-excess",
        "pending-margin-interest",
    ] {
        data.insert(field.into(), json!("131039.16"));
    }
    data.insert("snapshot-date".into(), json!("2026-11-23"));
    data.insert("time-of-day".into(), json!("BOD"));
    json!({"type": "AccountBalance", "timestamp": 1_795_469_642_193_i64, "data": data})
}

/// Frames that each change the state they meet (so every one is published): 1,024 orders in
/// two versions, or 2,048 distinct balances.
fn fixtures(kind: &str) -> Vec<String> {
    match kind {
        "Order" => ["Received", "Live"]
            .iter()
            .flat_map(|status| (0..1024).map(move |i| order(300_000 + i, status).to_string()))
            .collect(),
        _ => (0..2048)
            .map(|i| balance(100_000 + i).to_string())
            .collect(),
    }
}

fn account() -> Account {
    let info = AccountInfo {
        public_id: "individual".into(),
        masked_number: "***1842".into(),
        nickname: None,
        account_type: None,
    };
    Account::new(
        info,
        Arc::new(Masker::new([NUMBER, "5WU09822"])),
        Arc::new(RingLog::new(RingLimits::default())),
    )
}

/// What the streamer task does with one frame.
fn pipeline(account: &Account, text: &str) {
    let (frames, _) = wire::parse(text);
    for frame in frames {
        if let Frame::Notification(n) = frame {
            black_box(AccountEvent::parse(&n.kind, &n.data).is_ok());
            let kind = EventKind::named(&n.kind);
            black_box(account.ingest(kind, n.data, n.timestamp, Source::Stream));
        }
    }
}

fn bench(c: &mut Criterion) {
    // The real gateway records metrics on every publish; so does the benchmark.
    let _ = tastytrade_gateway::metrics::install();
    for kind in ["Order", "AccountBalance"] {
        let frames = fixtures(kind);
        let bytes = frames.iter().map(String::len).sum::<usize>() / frames.len();
        let mut group = c.benchmark_group(format!("ingest/{kind} ({bytes} B)"));
        group.throughput(Throughput::Elements(1));
        group.measurement_time(Duration::from_secs(4));

        let mut i = 0;
        group.bench_function("wire::parse", |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                black_box(wire::parse(&frames[i]))
            })
        });

        let parsed: Vec<_> = frames
            .iter()
            .filter_map(|f| match wire::parse(f).0.pop() {
                Some(Frame::Notification(n)) => Some(n),
                _ => None,
            })
            .collect();
        group.bench_function("AccountEvent::parse", |b| {
            b.iter(|| {
                i = (i + 1) % parsed.len();
                black_box(AccountEvent::parse(&parsed[i].kind, &parsed[i].data).is_ok())
            })
        });

        let target = account();
        group.bench_function("Account::ingest", |b| {
            b.iter_batched(
                || {
                    i = (i + 1) % parsed.len();
                    parsed[i].clone()
                },
                |n| {
                    target.ingest(
                        EventKind::named(&n.kind),
                        n.data,
                        n.timestamp,
                        Source::Stream,
                    )
                },
                criterion::BatchSize::SmallInput,
            )
        });

        let target = account();
        group.bench_function("frame -> published (all)", |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                pipeline(&target, &frames[i])
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
