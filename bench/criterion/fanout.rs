//! Fan-out of one event to many in-process subscribers: `Account::ingest` publishes once,
//! then every subscriber takes it, either straight off its event-log subscription (the
//! ring's bus alone) or through `api::feed::Feed::next` (what each SSE/WebSocket connection
//! runs per event: position tracking, type filter, metrics, keep-alive timer).

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tastytrade_gateway::account::{Account, AccountInfo};
use tastytrade_gateway::api::feed::{Feed, Item, Resume};
use tastytrade_gateway::log::{EventLog, RingLimits, RingLog};
use tastytrade_gateway::mask::Masker;
use tastytrade_gateway::model::{EventKind, Source};

/// The gateway binary's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn account() -> (Arc<Account>, Arc<dyn EventLog>) {
    let info = AccountInfo {
        public_id: "individual".into(),
        masked_number: "***1842".into(),
        nickname: None,
        account_type: None,
    };
    let log: Arc<dyn EventLog> = Arc::new(RingLog::new(RingLimits::default()));
    let masker = Arc::new(Masker::new(["5WT31842"]));
    (Arc::new(Account::new(info, masker, log.clone())), log)
}

/// Publishes the `n`-th event (always a change, so always published).
fn publish(account: &Account, n: u64) {
    let data = json!({"account-number": "5WT31842", "bench-n": n, "cash-balance": "1000.25"});
    account.ingest(
        EventKind::AccountBalance,
        data,
        Some(1_795_469_642_193),
        Source::Stream,
    );
}

fn bench(c: &mut Criterion) {
    let _ = tastytrade_gateway::metrics::install();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("fanout");
    group.measurement_time(Duration::from_secs(4));
    for subscribers in [100usize, 1_000, 10_000] {
        // Each iteration is one event to every subscriber: throughput counts deliveries.
        group.throughput(Throughput::Elements(subscribers as u64));

        let (target, log) = account();
        let mut receivers: Vec<_> = (0..subscribers)
            .map(|_| log.subscribe("individual", None).events)
            .collect();
        let mut n = 0;
        group.bench_with_input(
            BenchmarkId::new("bus receivers", subscribers),
            &subscribers,
            |b, _| {
                b.iter(|| {
                    n += 1;
                    publish(&target, n);
                    for r in receivers.iter_mut() {
                        let event = r.try_next().expect("ready").expect("the event");
                        std::hint::black_box(&event.sse);
                    }
                })
            },
        );
        drop(receivers);

        let (target, log) = account();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let mut feeds: Vec<Feed> = (0..subscribers)
            .map(|_| {
                Feed::open(
                    "sse",
                    log.as_ref(),
                    &["individual"],
                    &Resume::new(),
                    None,
                    shutdown.clone(),
                )
            })
            .collect();
        let keep_alive = Duration::from_secs(15);
        runtime.block_on(async {
            for feed in feeds.iter_mut() {
                assert!(matches!(
                    feed.next(keep_alive).await,
                    Some(Item::Snapshot { .. })
                ));
            }
        });
        group.bench_with_input(
            BenchmarkId::new("Feed::next", subscribers),
            &subscribers,
            |b, _| {
                b.iter(|| {
                    n += 1;
                    publish(&target, n);
                    runtime.block_on(async {
                        for feed in feeds.iter_mut() {
                            match feed.next(keep_alive).await {
                                Some(Item::Event(event)) => {
                                    std::hint::black_box(&event.sse);
                                }
                                _ => panic!("an event"),
                            }
                        }
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
