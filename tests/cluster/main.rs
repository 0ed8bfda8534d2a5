//! Scale-out on NATS JetStream, black-box: real nats-servers, gateway nodes and the
//! simulator as processes on loopback, SSE clients hopping between nodes with their last
//! id. A test binary of its own, so its processes never share the machine with the api
//! tests' (leases have seconds-long deadlines). Needs nats-server >= 2.11 (see
//! `tastytrade_gateway::cluster::testing`): missing, the tests fail with the install
//! command, or are skipped with TTGW_SKIP_NATS=1 outside CI.

mod clients;
mod harness;
mod journal;

use std::time::{Duration, Instant};

use harness::{Cluster, LEASE_TTL, signal, wait_until};
use tokio::sync::watch;

/// One cluster at a time: two would share 2 cores with seconds-long lease deadlines.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 3 demo accounts (one closed) and 28 generated ones: 30 served.
const EXTRA_ACCOUNTS: usize = 28;
const SERVED: usize = 30;

/// How many accounts each node holds, as node `i` sees it.
async fn spread(cluster: &Cluster, i: usize) -> Vec<usize> {
    let holders = cluster.holders(i).await;
    cluster
        .nodes
        .iter()
        .map(|n| {
            holders
                .iter()
                .filter(|(_, node, _)| *node == n.name)
                .count()
        })
        .collect()
}

/// The node holding `account`, as node `seen_by` sees it.
async fn holder_of(cluster: &Cluster, seen_by: usize, account: &str) -> Option<usize> {
    let holders = cluster.holders(seen_by).await;
    let (_, node, _) = holders.iter().find(|(id, _, _)| id == account)?;
    cluster.nodes.iter().position(|n| n.name == *node)
}

/// Waits until `account` is held by a running node other than `from`; how long it took
/// since `since`.
async fn moved(
    cluster: &Cluster,
    account: &str,
    from: usize,
    since: Instant,
    within: Duration,
) -> Duration {
    let watcher = (from + 1) % cluster.nodes.len();
    wait_until(
        &format!("{account} held by another node"),
        within,
        || async {
            holder_of(cluster, watcher, account)
                .await
                .is_some_and(|h| h != from && cluster.nodes[h].running())
        },
    )
    .await;
    since.elapsed()
}

async fn account_ids(cluster: &Cluster) -> Vec<String> {
    cluster
        .holders(0)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

async fn all_live_everywhere(cluster: &Cluster, within: Duration) {
    for i in 0..cluster.nodes.len() {
        if cluster.nodes[i].running() {
            let deadline = Instant::now() + within;
            while !cluster.all_live(i).await {
                if Instant::now() >= deadline {
                    let not_live: Vec<_> = cluster
                        .holders(i)
                        .await
                        .into_iter()
                        .filter(|(_, node, state)| {
                            state != "live"
                                || !cluster.nodes.iter().any(|n| n.running() && n.name == *node)
                        })
                        .collect();
                    panic!(
                        "timed out after {within:?} waiting for every account live, seen by {}; not live (account, holder, state): {not_live:?}",
                        cluster.nodes[i].name
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Every running node's snapshot of every account equals the simulator's truth (account
/// numbers masked), with the market script paused.
async fn snapshots_match_truth(cluster: &Cluster, within: Duration) {
    cluster.sim.script(&cluster.http, true).await;
    let truth = cluster.sim.get(&cluster.http, "/sim/truth").await;
    let truth = journal::masked_truth(&truth);
    for i in (0..cluster.nodes.len()).filter(|&i| cluster.nodes[i].running()) {
        let deadline = Instant::now() + within;
        while let Err(difference) =
            journal::snapshots_match(&cluster.http, &cluster.nodes[i].url(), &truth).await
        {
            assert!(
                Instant::now() < deadline,
                "{}'s snapshots differ from the simulator's truth after {within:?}: {difference}",
                cluster.nodes[i].name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    cluster.sim.script(&cluster.http, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hopping_clients_see_every_event_once_through_node_faults() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(mut cluster) = Cluster::start(3, 3, EXTRA_ACCOUNTS, 10.0).await else {
        return;
    };
    all_live_everywhere(&cluster, Duration::from_secs(90)).await;
    let accounts = account_ids(&cluster).await;
    assert_eq!(accounts.len(), SERVED);
    wait_until(
        "the accounts spread 7-13 per node",
        Duration::from_secs(60),
        || async {
            let counts = spread(&cluster, 0).await;
            counts.iter().sum::<usize>() == SERVED && counts.iter().all(|c| (7..=13).contains(c))
        },
    )
    .await;
    eprintln!("spread over 3 nodes: {:?}", spread(&cluster, 0).await);
    all_live_everywhere(&cluster, Duration::from_secs(30)).await;
    let overlaps_at_start = cluster.sim.overlaps(&cluster.http).await;

    let (stop_clients, stop) = watch::channel(false);
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url()).collect();
    let clients = clients::start(100, &accounts, &urls, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // kill -9 of a holder: another node holds its accounts within TTL + 2 s, and every
    // node's snapshots equal the truth within TTL + 5 s.
    let victim = holder_of(&cluster, 0, &accounts[0])
        .await
        .expect("a holder");
    let killed = Instant::now();
    cluster.nodes[victim].kill().await;
    let took = moved(
        &cluster,
        &accounts[0],
        victim,
        killed,
        LEASE_TTL + Duration::from_secs(2),
    )
    .await;
    eprintln!("kill -9: {} held elsewhere after {took:?}", accounts[0]);
    snapshots_match_truth(&cluster, LEASE_TTL + Duration::from_secs(5)).await;
    cluster.nodes[victim].start(&cluster.http).await;
    all_live_everywhere(&cluster, Duration::from_secs(30)).await;

    // SIGTERM of a holder: hand-over within 1 s.
    let leaving = holder_of(&cluster, 0, &accounts[1])
        .await
        .expect("a holder");
    let asked = Instant::now();
    signal(cluster.nodes[leaving].pid(), "TERM");
    let took = moved(
        &cluster,
        &accounts[1],
        leaving,
        asked,
        Duration::from_secs(1),
    )
    .await;
    eprintln!("SIGTERM: {} held elsewhere after {took:?}", accounts[1]);
    cluster.nodes[leaving].terminate().await;
    cluster.nodes[leaving].start(&cluster.http).await;
    all_live_everywhere(&cluster, Duration::from_secs(30)).await;
    assert_eq!(
        cluster.sim.overlaps(&cluster.http).await,
        overlaps_at_start,
        "two upstream sockets for one account at once, outside any pause"
    );

    // SIGSTOP of a holder for 2 x TTL: another node takes over; on SIGCONT the paused
    // node appends nothing and drops its upstream sockets.
    let paused = holder_of(&cluster, 0, &accounts[2])
        .await
        .expect("a holder");
    let pid = cluster.nodes[paused].pid();
    signal(pid, "STOP");
    let stopped = Instant::now();
    moved(
        &cluster,
        &accounts[2],
        paused,
        stopped,
        LEASE_TTL + Duration::from_secs(3),
    )
    .await;
    let rest = (LEASE_TTL * 2).saturating_sub(stopped.elapsed());
    tokio::time::sleep(rest).await;
    signal(pid, "CONT");
    let resumed = Instant::now();
    wait_until(
        "one upstream socket per account again",
        Duration::from_secs(3),
        || async {
            cluster
                .sim
                .sockets(&cluster.http)
                .await
                .values()
                .all(|&open| open <= 1)
        },
    )
    .await;
    eprintln!(
        "SIGCONT: the paused node dropped its sockets within {:?}",
        resumed.elapsed()
    );
    let nats_urls: Vec<String> = cluster.nats.iter().map(|n| n.url()).collect();
    journal::assert_terms_never_go_back(&nats_urls, &accounts).await;
    all_live_everywhere(&cluster, Duration::from_secs(30)).await;
    let overlaps_after_pause = cluster.sim.overlaps(&cluster.http).await;

    // A rolling restart of every node, one by one.
    for i in 0..cluster.nodes.len() {
        cluster.nodes[i].terminate().await;
        cluster.nodes[i].start(&cluster.http).await;
        all_live_everywhere(&cluster, Duration::from_secs(30)).await;
    }
    let overlaps = cluster.sim.overlaps(&cluster.http).await;
    assert_eq!(
        overlaps, overlaps_after_pause,
        "two upstream sockets for one account at once during the rolling restart"
    );

    let _ = stop_clients.send(true);
    let mut records = Vec::new();
    for client in clients {
        records.push(client.await.expect("a client"));
    }
    let (checked, events) = clients::check(
        &cluster.http,
        &cluster.nodes[cluster.running()].url(),
        &records,
    )
    .await;
    eprintln!(
        "{checked} clients, {events} events checked: each exactly once, in order, no reset; socket overlaps (all during the pause): {}",
        overlaps - overlaps_at_start
    );
    journal::assert_no_numbers(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_server_leading_the_journal_crashes_and_nothing_is_lost() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(mut cluster) = Cluster::start(3, 2, EXTRA_ACCOUNTS, 10.0).await else {
        return;
    };
    all_live_everywhere(&cluster, Duration::from_secs(90)).await;
    let accounts = account_ids(&cluster).await;
    let (stop_clients, stop) = watch::channel(false);
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url()).collect();
    let clients = clients::start(30, &accounts, &urls, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let nats_urls: Vec<String> = cluster.nats.iter().map(|n| n.url()).collect();
    let leader = journal::stream_leader(&nats_urls).await;
    let index = cluster
        .nats
        .iter()
        .position(|n| n.name == leader)
        .expect("the leader is ours");
    let head_before = journal::last_seq(&nats_urls).await;
    let killed = Instant::now();
    cluster.nats[index].kill();
    // While the journal has no leader, the nodes say they are not ready.
    let not_ready = std::sync::Mutex::new(Vec::new());
    wait_until(
        "the journal takes appends again",
        Duration::from_secs(45),
        || async {
            for node in &cluster.nodes {
                let readyz = cluster
                    .http
                    .get(format!("{}/readyz", node.url()))
                    .send()
                    .await;
                if let Ok(response) = readyz
                    && response.status() == 503
                {
                    let text = response.text().await.unwrap_or_default();
                    not_ready.lock().unwrap().push(text);
                }
            }
            journal::last_seq(&nats_urls).await > head_before
        },
    )
    .await;
    let not_ready = not_ready.into_inner().unwrap();
    eprintln!(
        "journal appending again {:?} after the kill; /readyz answered 503 {} times, first {:?}",
        killed.elapsed(),
        not_ready.len(),
        not_ready.first()
    );
    assert!(
        !not_ready.is_empty(),
        "no node said it was not ready while the journal had no leader"
    );
    cluster.nats[index].restart();
    all_live_everywhere(&cluster, Duration::from_secs(60)).await;
    snapshots_match_truth(&cluster, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let _ = stop_clients.send(true);
    let mut records = Vec::new();
    for client in clients {
        records.push(client.await.expect("a client"));
    }
    let (checked, events) = clients::check(&cluster.http, &cluster.nodes[0].url(), &records).await;
    eprintln!(
        "{checked} clients, {events} events checked across the NATS crash: 0 gaps, 0 duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_a_node_says_it_is_not_ready_and_its_streams_stay_open() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(mut cluster) = Cluster::start(1, 1, 0, 5.0).await else {
        return;
    };
    all_live_everywhere(&cluster, Duration::from_secs(60)).await;
    let node = cluster.nodes[0].url();
    let http = cluster.http.clone();

    let metrics = http
        .get(format!("{node}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for family in [
        "ttgw_cluster_leases_held 2",
        "ttgw_cluster_takeovers_total",
        "ttgw_cluster_lease_ends_total",
        "ttgw_cluster_fenced_appends_total",
        "ttgw_cluster_journal_publish_seconds",
    ] {
        assert!(metrics.contains(family), "/metrics lacks {family}");
    }

    let account = account_ids(&cluster).await.remove(0);
    let mut stream = clients::Follower::open(&http, &node, &account).await;
    let before = stream.next_seq().await;
    cluster.nats[0].kill();
    let readyz = format!("{node}/readyz");
    wait_until(
        "/readyz says NATS is unreachable",
        Duration::from_secs(10),
        || async {
            let Ok(response) = http.get(&readyz).send().await else {
                return false;
            };
            response.status() == 503 && response.text().await.unwrap_or_default().contains("NATS")
        },
    )
    .await;
    cluster.nats[0].restart();
    wait_until("/readyz is 200 again", Duration::from_secs(40), || async {
        http.get(&readyz)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    // The stream opened before the outage goes on, gap-free, past what the node held when
    // NATS was back.
    let held_when_back = cluster
        .accounts(0)
        .await
        .iter()
        .find(|a| a["id"] == account.as_str())
        .and_then(|a| a["seq"].as_u64())
        .expect("the account's seq");
    let mut after = before;
    while after <= held_when_back {
        after = stream.next_seq().await;
    }
    let from_journal = clients::journal(&http, &node, &account, &stream.epoch, before, after).await;
    let seen = stream.seen_through(after).await;
    assert_eq!(
        seen, from_journal,
        "the open stream missed or repeated events across the outage"
    );
}
