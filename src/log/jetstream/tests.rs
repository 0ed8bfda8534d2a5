//! The JetStream log against a real nats-server: the event log's contract, and fencing (a
//! former leader's appends are refused once another node leads the account).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use super::JetStreamLog;
use crate::cluster::lease::{LeaseEnd, Leases};
use crate::cluster::{Cluster, ClusterSettings, testing};
use crate::log::contract::{self, ACCOUNT, Factory};
use crate::log::{Draft, EventLog, RingLimits};
use crate::model::{EventKind, Source};

fn settings(url: &str, prefix: &str, node: &str) -> ClusterSettings {
    ClusterSettings {
        urls: vec![url.to_string()],
        user: None,
        password: None,
        token: None,
        tls_ca: None,
        prefix: prefix.into(),
        replicas: 1,
        lease_ttl: Duration::from_secs(5),
        node_id: node.into(),
        history_events: 10_000,
        history_age: Duration::from_secs(3600),
    }
}

fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A node over `prefix` with `ACCOUNT` opened and its replica running (until `stop`).
async fn node(
    url: &str,
    prefix: &str,
    name: &str,
    limits: RingLimits,
    stop: &watch::Receiver<bool>,
) -> (Arc<JetStreamLog>, Arc<Leases>) {
    let cluster = Cluster::connect(settings(url, prefix, name), Duration::from_secs(10))
        .await
        .expect("connected");
    let log = Arc::new(
        JetStreamLog::new(cluster.clone(), limits)
            .await
            .expect("a log"),
    );
    log.open(ACCOUNT);
    log.start(stop.clone());
    let leases = Leases::start(cluster, vec![ACCOUNT.to_string()], stop.clone());
    log.set_leases(leases.clone());
    (log, leases)
}

fn order(n: u64) -> Draft {
    Draft {
        kind: EventKind::Order,
        data: json!({"id": n, "status": "Live", "updated-at": n}),
        timestamp: None,
        source: Source::Stream,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jetstream_log_keeps_the_contract() {
    let Some(server) = testing::single() else {
        return;
    };
    let url = server.url();
    let (_stop, stop) = watch::channel(false);
    let jetstream: &Factory = &move |limits| {
        let (url, stop) = (url.clone(), stop.clone());
        Box::pin(async move {
            let (log, leases) = node(&url, &unique_prefix(), "contract", limits, &stop).await;
            let guard = leases.acquire(ACCOUNT).await;
            log.lead(&[ACCOUNT], &guard).await.expect("leads");
            // Held for the test's life.
            std::mem::forget(guard);
            log as Arc<dyn EventLog>
        })
    };
    if let Err(failure) = contract::check(jetstream).await {
        panic!("the JetStream log breaks the contract: {failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_leader_cannot_append_after_another_node_took_over() {
    let Some(server) = testing::single() else {
        return;
    };
    let (_stop, stop) = watch::channel(false);
    let prefix = unique_prefix();
    let limits = RingLimits::default();
    let (a, a_leases) = node(&server.url(), &prefix, "a", limits, &stop).await;
    let (b, b_leases) = node(&server.url(), &prefix, "b", limits, &stop).await;
    let a_guard = a_leases.acquire(ACCOUNT).await;
    a.lead(&[ACCOUNT], &a_guard).await.expect("a leads");
    a.append(ACCOUNT, order(1));
    wait_for_orders(b.as_ref(), 1).await;

    // As if `a` paused past its lease: the key goes, `b` takes the account and appends.
    let cluster = Cluster::connect(
        settings(&server.url(), &prefix, "x"),
        Duration::from_secs(5),
    )
    .await
    .expect("connected");
    cluster
        .leases
        .purge(ACCOUNT)
        .await
        .expect("the lease key purged");
    let b_guard = tokio::time::timeout(Duration::from_secs(10), b_leases.acquire(ACCOUNT))
        .await
        .expect("b takes the lease");
    b.lead(&[ACCOUNT], &b_guard).await.expect("b leads");
    b.append(ACCOUNT, order(2));
    wait_for_orders(a.as_ref(), 2).await;

    // `a` wakes and appends: the journal refuses it, and `a` is deposed.
    a.append(ACCOUNT, order(3));
    let mut ended = a_guard.ended();
    let why = tokio::time::timeout(Duration::from_secs(10), ended.wait_for(Option::is_some))
        .await
        .expect("a's lease ends")
        .map(|end| *end)
        .expect("the lease's watch");
    assert_eq!(why, Some(LeaseEnd::Deposed));
    b.append(ACCOUNT, order(4));
    wait_for_orders(b.as_ref(), 3).await;
    let ids: Vec<u64> = b
        .snapshot(ACCOUNT)
        .orders
        .iter()
        .filter_map(|o| o["id"].as_u64())
        .collect();
    assert_eq!(
        ids,
        vec![1, 2, 4],
        "a's append after the takeover never landed"
    );
    assert!(b_guard.holds());
}

async fn wait_for_orders(log: &dyn EventLog, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while log.snapshot(ACCOUNT).orders.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} orders did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
