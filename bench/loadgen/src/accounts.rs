//! The many-accounts workload: N of the simulator's generated accounts, each with its own
//! upstream socket in the gateway, a few SSE subscribers per account plus one `/v1/events`
//! subscriber for all of them, and 1 event per second per account published through the
//! simulator (so every event crosses a real upstream frame). Measures the time until every
//! account is live, the gateway's memory and descriptors per account, its CPU per upstream
//! event and the latency simulator -> subscriber; fails on any gap, duplicate or error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep_until, timeout};

use crate::http::{self, Dechunker, Url};
use crate::report::{Latency, quantize};
use crate::subscriber::{self, Spec, Transport};
use crate::track::{self, Shared, Tracker};
use crate::{procfs, publish};

#[derive(clap::Args, Clone)]
pub struct AccountsArgs {
    /// Names the workload in the table.
    #[arg(long, default_value = "accounts")]
    label: String,
    /// The gateway, e.g. http://127.0.0.1:18080
    #[arg(long)]
    gateway: String,
    /// The simulator the gateway reads, e.g. http://127.0.0.1:18081
    #[arg(long)]
    sim: String,
    /// Generated accounts served (the simulator's `--accounts`).
    #[arg(long)]
    accounts: usize,
    /// SSE subscribers per account.
    #[arg(long, default_value_t = 2)]
    per_account: usize,
    /// Also one `/v1/events` subscriber for every account (`--firehose false` leaves it
    /// out, to see the per-account streams alone).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    firehose: bool,
    /// Events per second per account.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// The gateway's pid.
    #[arg(long)]
    pid: u32,
    /// When the gateway was started, in nanoseconds since the epoch (for the time until all
    /// accounts are live).
    #[arg(long)]
    started_ns: u64,
    /// Seconds to wait for every account to be live.
    #[arg(long, default_value_t = 900.0)]
    live_timeout: f64,
    #[arg(long, default_value_t = 8)]
    sources: usize,
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Seconds to wait for the last deliveries after publishing ends.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Publish connections to the simulator.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Bytes of padding in each event.
    #[arg(long, default_value_t = 200)]
    payload: usize,
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AccountsReport {
    pub label: String,
    pub accounts: usize,
    pub subscribers: usize,
    pub all_live_after_s: f64,
    pub rss_live_mb: f64,
    pub rss_per_account_kib: f64,
    pub descriptors_live: usize,
    pub rss_subscribed_mb: f64,
    pub rss_per_subscriber_kib: f64,
    pub descriptors_subscribed: usize,
    pub rss_after_events_mb: f64,
    pub events_sent: u64,
    pub events_per_s: f64,
    pub cpu_us_per_event: f64,
    pub deliveries: u64,
    pub gaps: u64,
    pub duplicates: u64,
    pub errors: u64,
    pub latency: Latency,
    pub passed: bool,
}

const MIB: f64 = 1024.0 * 1024.0;

/// The gateway's public id and the simulator's number of generated account `k` (1-based).
fn account(k: usize) -> (String, String) {
    (format!("generated-{k}"), format!("5GA{k:05}"))
}

pub async fn run(args: AccountsArgs) -> anyhow::Result<AccountsReport> {
    let gateway = Url::parse(&args.gateway)?;
    let sim = Url::parse(&args.sim)?;
    let limit = procfs::raise_fd_limit() as usize;
    let subscribers = args.accounts * args.per_account + usize::from(args.firehose);
    if limit < subscribers + 64 {
        bail!("{subscribers} subscribers need more descriptors than the limit {limit}");
    }
    let mut report = AccountsReport {
        label: args.label.clone(),
        accounts: args.accounts,
        subscribers,
        ..AccountsReport::default()
    };
    report.all_live_after_s = wait_all_live(&gateway, &args).await?;
    // Let the baseline reads' garbage settle before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let live = procfs::sample(&[args.pid]);
    report.rss_live_mb = live.rss_bytes as f64 / MIB;
    report.rss_per_account_kib = live.rss_bytes as f64 / 1024.0 / args.accounts as f64;
    report.descriptors_live = descriptors(args.pid);

    let base = track::now_ns() / 1_000;
    let (stop, stop_rx) = watch::channel(false);
    let fleet = open(&args, &gateway, base, &stop_rx).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let subscribed = procfs::sample(&[args.pid]);
    report.rss_subscribed_mb = subscribed.rss_bytes as f64 / MIB;
    report.rss_per_subscriber_kib =
        subscribed.rss_bytes.saturating_sub(live.rss_bytes) as f64 / 1024.0 / subscribers as f64;
    report.descriptors_subscribed = descriptors(args.pid);

    let before = procfs::sample(&[args.pid]);
    let started = Instant::now();
    let (sent, last_write) = publish_all(&args, &sim, base).await?;
    let published_for = last_write.duration_since(started).as_secs_f64();
    let after = procfs::sample(&[args.pid]);
    report.events_sent = sent * args.accounts as u64;
    report.events_per_s = report.events_sent as f64 / published_for;
    report.cpu_us_per_event =
        (after.cpu_secs - before.cpu_secs) * 1e6 / report.events_sent.max(1) as f64;
    fleet.drain(sent, args.accounts, args.drain).await;
    report.rss_after_events_mb = procfs::sample(&[args.pid]).rss_bytes as f64 / MIB;
    let _ = stop.send(true);
    fleet.finish(sent, &mut report).await?;
    report.passed = report.gaps == 0
        && report.duplicates == 0
        && report.errors == 0
        && report.deliveries
            == report.events_sent * (args.per_account as u64 + u64::from(args.firehose));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    println!("{}", table(&report));
    Ok(report)
}

/// Polls `GET /v1/accounts` until every account's upstream is live; seconds since start.
async fn wait_all_live(gateway: &Url, args: &AccountsArgs) -> anyhow::Result<f64> {
    let url = Url {
        path: "/v1/accounts".into(),
        ..gateway.clone()
    };
    let deadline = Instant::now() + Duration::from_secs_f64(args.live_timeout);
    let mut last = (0, 0);
    loop {
        if let Ok(list) = get_json(&url).await {
            let accounts = list["accounts"].as_array().cloned().unwrap_or_default();
            let live = accounts
                .iter()
                .filter(|a| a["upstream"]["state"] == "live")
                .count();
            last = (live, accounts.len());
            if accounts.len() >= args.accounts && live == accounts.len() {
                return Ok(track::now_ns().saturating_sub(args.started_ns) as f64 / 1e9);
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "{} of {} accounts live after {} s",
                last.0,
                last.1,
                args.live_timeout
            );
        }
        // Not faster: listing thousands of accounts costs the gateway CPU it needs for
        // starting them.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One GET whose body is JSON (content-length or chunked).
async fn get_json(url: &Url) -> anyhow::Result<serde_json::Value> {
    let mut stream = http::connect(http::source(0, 1), url.addr).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        url.path, url.host
    );
    stream.write_all(request.as_bytes()).await?;
    let mut pending = Vec::new();
    let head = http::read_head(&mut stream, &mut pending).await?;
    if head.status != 200 {
        bail!("GET {} answered {}", url.path, head.status);
    }
    let mut raw = head.rest;
    stream.read_to_end(&mut raw).await?;
    let body = if head.chunked {
        let mut out = Vec::new();
        Dechunker::default().feed(&raw, &mut out);
        out
    } else {
        raw
    };
    serde_json::from_slice(&body).context("a JSON body")
}

fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Every subscriber of the run: per account, `per_account` SSE streams (one tracker
/// each, one counter sequence per account); and the firehose over all accounts.
struct Fleet {
    per_account: Vec<Arc<Shared>>,
    tasks: Vec<tokio::task::JoinHandle<Tracker>>,
    firehose: tokio::task::JoinHandle<anyhow::Result<Firehose>>,
    firehose_delivered: Arc<std::sync::atomic::AtomicU64>,
    with_firehose: bool,
}

async fn open(
    args: &AccountsArgs,
    gateway: &Url,
    base: u64,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Fleet> {
    let connecting = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut per_account = Vec::with_capacity(args.accounts);
    let mut tasks = Vec::new();
    for k in 1..=args.accounts {
        let (id, _) = account(k);
        let spec = Arc::new(Spec {
            url: Url {
                path: format!("/v1/accounts/{id}/events"),
                ..gateway.clone()
            },
            transport: Transport::Sse,
            ws_subscribe: None,
        });
        let shared = Shared::new(base, args.per_account, 1);
        for i in 0..args.per_account {
            tasks.push(tokio::spawn(subscriber::run(
                http::source(k * args.per_account + i, args.sources),
                spec.clone(),
                shared.clone(),
                connecting.clone(),
                stop.clone(),
            )));
        }
        per_account.push(shared);
    }
    let firehose_delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = watch::channel(false);
    let firehose = if args.firehose {
        tokio::spawn(firehose(
            Url {
                path: "/v1/events".into(),
                ..gateway.clone()
            },
            base,
            firehose_delivered.clone(),
            ready_tx,
            stop.clone(),
        ))
    } else {
        let _ = ready_tx.send(true);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut stop = stop;
            let _ = stop.wait_for(|s| *s).await;
            Ok(Firehose {
                trackers: HashMap::new(),
                accounts_seen: usize::MAX,
                errors: 0,
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ready: usize = per_account
            .iter()
            .map(|s| s.ready.load(Ordering::Relaxed))
            .sum();
        let failed: u64 = per_account
            .iter()
            .map(|s| s.errors.load(Ordering::Relaxed))
            .sum();
        if ready >= args.accounts * args.per_account && *ready_rx.borrow_and_update() {
            break;
        }
        if failed > 0 {
            bail!("{failed} subscribers failed to connect ({ready} connected)");
        }
        if firehose.is_finished() {
            return match firehose.await {
                Ok(Err(error)) => Err(error.context("the /v1/events subscriber")),
                _ => Err(anyhow::anyhow!("the /v1/events subscriber ended early")),
            };
        }
        if Instant::now() >= deadline {
            bail!("subscribers not connected in time ({ready} of them)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Fleet {
        per_account,
        tasks,
        firehose,
        firehose_delivered,
        with_firehose: args.firehose,
    })
}

impl Fleet {
    /// Waits until every subscriber has the `sent` events of each account, an error, or
    /// the drain time.
    async fn drain(&self, sent: u64, accounts: usize, seconds: f64) {
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        let expected = sent * accounts as u64;
        loop {
            let delivered: u64 = self
                .per_account
                .iter()
                .map(|s| s.delivered.load(Ordering::Relaxed))
                .sum();
            let errors: u64 = self
                .per_account
                .iter()
                .map(|s| s.errors.load(Ordering::Relaxed))
                .sum();
            let complete = delivered >= expected * (self.per_account_subscribers() as u64)
                && (!self.with_firehose
                    || self.firehose_delivered.load(Ordering::Relaxed) >= expected);
            if complete || errors > 0 || Instant::now() >= until {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn per_account_subscribers(&self) -> usize {
        self.per_account.first().map_or(0, |s| s.subscribers)
    }

    /// Sums what every subscriber saw; events never seen count as gaps.
    async fn finish(self, sent: u64, report: &mut AccountsReport) -> anyhow::Result<()> {
        let mut histogram = std::collections::BTreeMap::new();
        let mut add = |tracker: &mut Tracker, report: &mut AccountsReport| {
            tracker.finish(sent);
            report.deliveries += tracker.received;
            report.gaps += tracker.gaps;
            report.duplicates += tracker.duplicates;
            for &us in &tracker.latencies_us {
                *histogram.entry(quantize(us)).or_insert(0u64) += 1;
            }
        };
        for task in self.tasks {
            let mut tracker = task.await.context("a subscriber task panicked")?;
            add(&mut tracker, report);
        }
        let firehose = self.firehose.await.context("the firehose panicked")??;
        for tracker in firehose.trackers.into_values() {
            let mut tracker = tracker;
            add(&mut tracker, report);
        }
        // An account the firehose never saw at all is a gap of every event (none without
        // a firehose: it reports every account seen).
        let seen = firehose.accounts_seen.min(report.accounts) as u64;
        report.gaps += (report.accounts as u64).saturating_sub(seen) * sent;
        report.errors = self
            .per_account
            .iter()
            .map(|s| s.errors.load(Ordering::Relaxed))
            .sum::<u64>()
            + firehose.errors;
        report.latency = Latency::of(&histogram);
        Ok(())
    }
}

/// What the `/v1/events` subscriber saw: one tracker per account.
struct Firehose {
    trackers: HashMap<u64, Tracker>,
    accounts_seen: usize,
    errors: u64,
}

/// The one subscriber to every account's events (`/v1/events`): events carry `bench-a`,
/// the account's index, and each account has its own counter sequence.
async fn firehose(
    url: Url,
    base: u64,
    delivered: Arc<std::sync::atomic::AtomicU64>,
    ready: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Firehose> {
    let mut stream = http::connect(http::source(0, 1), url.addr).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        url.path, url.host
    );
    stream.write_all(request.as_bytes()).await?;
    let mut pending = Vec::new();
    let head = http::read_head(&mut stream, &mut pending).await?;
    if head.status != 200 {
        bail!("/v1/events answered {}", head.status);
    }
    let _ = ready.send(true);
    // One account's Shared per index would cost N allocations: the trackers only need the
    // base, so they share one with a count of one subscriber.
    let shared = Shared::new(base, 1, 1);
    let mut out = Firehose {
        trackers: HashMap::new(),
        accounts_seen: 0,
        errors: 0,
    };
    let mut dechunker = head.chunked.then(Dechunker::default);
    let mut take = |bytes: &[u8], pending: &mut Vec<u8>, out: &mut Firehose| -> bool {
        let open = match dechunker.as_mut() {
            Some(d) => d.feed(bytes, pending),
            None => {
                pending.extend_from_slice(bytes);
                true
            }
        };
        let now = track::now_ns();
        track::sse_blocks(pending, |block| {
            let Some(index) = track::number_after(block, b"\"bench-a\":") else {
                return;
            };
            let tracker = out.trackers.entry(index).or_default();
            let before = tracker.received;
            tracker.on_message(block, now, &shared);
            if tracker.received > before {
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        });
        open
    };
    take(&head.rest, &mut pending, &mut out);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = tokio::select! {
            n = stream.read(&mut buf) => n?,
            _ = stop.changed() => break,
        };
        if n == 0 || !take(&buf[..n], &mut pending, &mut out) {
            if !*stop.borrow() {
                out.errors += 1;
                eprintln!("loadgen: the server ended /v1/events");
            }
            break;
        }
    }
    out.accounts_seen = out.trackers.len();
    Ok(out)
}

/// Publishes `rate` events per second to every account for the duration, spread evenly
/// over each second, through the simulator (one upstream frame per event); returns how many
/// each account got.
async fn publish_all(args: &AccountsArgs, sim: &Url, base: u64) -> anyhow::Result<(u64, Instant)> {
    let rounds = (args.duration * args.rate).round().max(1.0) as u64;
    let start = Instant::now() + Duration::from_millis(100);
    let errors = Shared::new(base, 1, 1);
    let pad = Arc::new("x".repeat(args.payload));
    let mut publishers = Vec::new();
    for p in 0..args.publishers.max(1) {
        let accounts: Vec<usize> = (1..=args.accounts)
            .filter(|k| k % args.publishers.max(1) == p)
            .collect();
        publishers.push(tokio::spawn(publisher(
            sim.clone(),
            accounts,
            args.accounts,
            args.rate,
            rounds,
            start,
            base,
            pad.clone(),
            errors.clone(),
        )));
    }
    let mut last_write = start;
    for publisher in publishers {
        last_write = last_write.max(publisher.await.context("a publisher panicked")??);
    }
    if errors.errors.load(Ordering::Relaxed) > 0 {
        bail!("the simulator refused events");
    }
    Ok((rounds, last_write))
}

/// One publish connection: the accounts `mine` (of `total`), event `j` of account `k` due
/// at `start + (j + k / total) / rate`; returns when it wrote its last event.
#[allow(clippy::too_many_arguments)]
async fn publisher(
    sim: Url,
    mine: Vec<usize>,
    total: usize,
    rate: f64,
    rounds: u64,
    start: Instant,
    base: u64,
    pad: Arc<String>,
    shared: Arc<Shared>,
) -> anyhow::Result<Instant> {
    const IN_FLIGHT: usize = 64;
    let stream = http::connect(http::source(1, 1), sim.addr).await?;
    let (read, mut write) = stream.into_split();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let reader = tokio::spawn(publish::responses(read, permits.clone(), shared.clone()));
    for j in 0..rounds {
        for &k in &mine {
            let due = start + Duration::from_secs_f64((j as f64 + k as f64 / total as f64) / rate);
            sleep_until(due).await;
            let (_, number) = account(k);
            let body = format!(
                r#"{{"events":[{{"type":"AccountBalance","data":{{"bench-n":{},"bench-ns":{},"bench-a":{k},"account-number":"{number}","pad":"{pad}"}}}}]}}"#,
                base + j + 1,
                track::now_ns()
            );
            let url = Url {
                path: format!("/sim/accounts/{number}/events"),
                ..sim.clone()
            };
            permits.acquire().await?.forget();
            http::write_post(&mut write, &url, "application/json", body.as_bytes()).await?;
        }
    }
    let last_write = Instant::now();
    let all = permits.acquire_many(IN_FLIGHT as u32);
    if timeout(Duration::from_secs(10), all).await.is_err() {
        bail!("the simulator stopped answering");
    }
    reader.abort();
    Ok(last_write)
}

fn table(r: &AccountsReport) -> String {
    format!(
        "{label}: {accounts} accounts, {subs} subscribers: all live after {live:.1} s; \
         gateway RSS {rss:.0} MiB live ({per:.1} KiB/account), {fds} descriptors; \
         with subscribers {rss_s:.0} MiB ({per_s:.1} KiB/subscriber), {fds_s} descriptors; \
         after events {rss_e:.0} MiB; {sent} events at {eps:.0}/s, {cpu:.1} us CPU/event; \
         latency p50 {p50:.2} ms p99 {p99:.2} ms max {max:.2} ms; deliveries {del}, gaps {gaps}, \
         duplicates {dups}, errors {errs}: {verdict}",
        label = r.label,
        accounts = r.accounts,
        subs = r.subscribers,
        live = r.all_live_after_s,
        rss = r.rss_live_mb,
        per = r.rss_per_account_kib,
        fds = r.descriptors_live,
        rss_s = r.rss_subscribed_mb,
        per_s = r.rss_per_subscriber_kib,
        fds_s = r.descriptors_subscribed,
        rss_e = r.rss_after_events_mb,
        sent = r.events_sent,
        eps = r.events_per_s,
        cpu = r.cpu_us_per_event,
        p50 = r.latency.p50_ms,
        p99 = r.latency.p99_ms,
        max = r.latency.max_ms,
        del = r.deliveries,
        gaps = r.gaps,
        dups = r.duplicates,
        errs = r.errors,
        verdict = if r.passed { "PASS" } else { "FAIL" },
    )
}

/// One line per workload from the rounds' JSON reports: each figure the median of the
/// rounds (and the rounds' spread, min-max, for the latency), passed only if every round
/// passed.
pub fn median_table(files: &[PathBuf]) -> anyhow::Result<String> {
    let mut rounds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
        rounds.push(serde_json::from_str::<AccountsReport>(&text)?);
    }
    let Some(first) = rounds.first() else {
        bail!("no reports");
    };
    let median = |f: &dyn Fn(&AccountsReport) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let spread = |f: &dyn Fn(&AccountsReport) -> f64| {
        let v: Vec<f64> = rounds.iter().map(f).collect();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{min:.2}-{max:.2}")
    };
    let m = AccountsReport {
        label: format!("{} (median of {})", first.label, rounds.len()),
        accounts: first.accounts,
        subscribers: first.subscribers,
        all_live_after_s: median(&|r| r.all_live_after_s),
        rss_live_mb: median(&|r| r.rss_live_mb),
        rss_per_account_kib: median(&|r| r.rss_per_account_kib),
        descriptors_live: median(&|r| r.descriptors_live as f64) as usize,
        rss_subscribed_mb: median(&|r| r.rss_subscribed_mb),
        rss_per_subscriber_kib: median(&|r| r.rss_per_subscriber_kib),
        descriptors_subscribed: median(&|r| r.descriptors_subscribed as f64) as usize,
        rss_after_events_mb: median(&|r| r.rss_after_events_mb),
        events_sent: median(&|r| r.events_sent as f64) as u64,
        events_per_s: median(&|r| r.events_per_s),
        cpu_us_per_event: median(&|r| r.cpu_us_per_event),
        deliveries: median(&|r| r.deliveries as f64) as u64,
        gaps: rounds.iter().map(|r| r.gaps).sum(),
        duplicates: rounds.iter().map(|r| r.duplicates).sum(),
        errors: rounds.iter().map(|r| r.errors).sum(),
        latency: Latency {
            p50_ms: median(&|r| r.latency.p50_ms),
            p90_ms: median(&|r| r.latency.p90_ms),
            p99_ms: median(&|r| r.latency.p99_ms),
            max_ms: median(&|r| r.latency.max_ms),
            samples: median(&|r| r.latency.samples as f64) as u64,
        },
        passed: rounds.iter().all(|r| r.passed),
    };
    Ok(format!(
        "{}\n  rounds' p50 {} ms, p99 {} ms, all live after {} s",
        table(&m),
        spread(&|r| r.latency.p50_ms),
        spread(&|r| r.latency.p99_ms),
        spread(&|r| r.all_live_after_s)
    ))
}
