//! loadgen: the benchmark's load generator. Opens N SSE or WebSocket subscribers to a server
//! (the gateway or a peer such as nchan), publishes numbered, time-stamped events at a rate
//! (or as fast as the server fans out), and reports deliveries/s, latency, gaps, duplicates,
//! errors and the server's memory and CPU, as JSON and as a table.

mod accounts;
mod http;
mod procfs;
mod publish;
mod report;
mod subscriber;
mod track;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};

use http::Url;
use report::{Latency, Report};
use subscriber::{Spec, Transport};

#[derive(Parser)]
#[command(about = "Load generator for tastytrade-gateway and its peers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One measured run.
    Run(Box<RunArgs>),
    /// A few seconds against a running gateway over SSE and WebSocket; fails on any gap,
    /// duplicate or error (for CI, so the benchmark never rots).
    Smoke(SmokeArgs),
    /// The side-by-side table of runs written with --json.
    Table { files: Vec<PathBuf> },
    /// The many-accounts workload against a running gateway and its simulator.
    Accounts(Box<accounts::AccountsArgs>),
    /// The many-accounts table (medians) of rounds written with `accounts --json`.
    AccountsTable { files: Vec<PathBuf> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Events flow to every subscriber; throughput and latency.
    Fanout,
    /// Subscribers connect and stay idle; memory per subscriber, then a few probe events
    /// check every connection still works.
    Idle,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Names the workload in the side-by-side table.
    #[arg(long, default_value = "run")]
    label: String,
    /// Names the server (`gateway`, `nchan`).
    #[arg(long, default_value = "gateway")]
    server: String,
    /// The subscribe URL (SSE: the event stream; WebSocket: the ws endpoint).
    #[arg(long)]
    sub: String,
    #[arg(long, value_enum, default_value = "sse")]
    transport: Transport,
    /// WebSocket only: the first message to send (the gateway's subscribe op).
    #[arg(long)]
    ws_subscribe: Option<String>,
    /// The publish URL.
    #[arg(long = "pub")]
    publish: String,
    #[arg(long, value_enum, default_value = "sim")]
    pub_kind: publish::Kind,
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    #[arg(long, value_enum, default_value = "fanout")]
    mode: Mode,
    /// Events per second; 0 = closed loop (as fast as every subscriber takes them).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Events per publish request (the simulator sends them as one upstream frame).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// At most this many events.
    #[arg(long, default_value_t = 10_000_000)]
    max_events: u64,
    /// Closed loop: events in flight past the slowest subscriber.
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Bytes of padding in each event.
    #[arg(long, default_value_t = 200)]
    payload: usize,
    /// The event type the simulator sends (a pass-through type also works).
    #[arg(long, default_value = "AccountBalance")]
    event_type: String,
    /// Pids of the server under test (repeat for several, e.g. nginx master and worker).
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// Idle mode: seconds to hold the connections before the probe events.
    #[arg(long, default_value_t = 3.0)]
    hold: f64,
    /// Loopback source addresses to spread connections over (127.0.0.2 ..).
    #[arg(long, default_value_t = 8)]
    sources: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Seconds to wait for the last deliveries after publishing ends.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Runtime threads (1: a single-threaded runtime, the cheapest per delivery).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Writes the report as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Spreads the subscribers over this many processes (this one and N-1 children), for
    /// more subscribers than one process may hold descriptors for. Not with --rate 0.
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// Internal: this process is child N of --procs, driven over stdio.
    #[arg(long, hide = true)]
    child: Option<usize>,
    /// Internal: the run's counter base, shared with the children.
    #[arg(long, hide = true)]
    base: Option<u64>,
}

#[derive(Args)]
struct SmokeArgs {
    /// The gateway, e.g. http://127.0.0.1:8080
    #[arg(long)]
    gateway: String,
    /// The simulator the gateway reads, e.g. http://127.0.0.1:43121
    #[arg(long)]
    sim: String,
    #[arg(long, default_value = "individual")]
    account: String,
    #[arg(long, default_value = "5WT31842")]
    number: String,
    #[arg(long)]
    pid: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => match args.child {
            Some(index) => runtime(args.threads)
                .and_then(|rt| rt.block_on(run_child(*args, index)))
                .map(|()| true),
            None => runtime(args.threads)
                .and_then(|rt| rt.block_on(run(*args)))
                .map(|r| r.passed),
        },
        Command::Smoke(args) => runtime(1).and_then(|rt| rt.block_on(smoke(args))),
        Command::Table { files } => table(&files).map(|()| true),
        Command::AccountsTable { files } => accounts::median_table(&files).map(|t| {
            println!("{t}");
            true
        }),
        Command::Accounts(args) => {
            runtime(1).and_then(|rt| rt.block_on(accounts::run(*args)).map(|r| r.passed))
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    Ok(runtime)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

const MIB: f64 = 1024.0 * 1024.0;

/// The subscribers of one process, running.
struct Fleet {
    shared: Arc<track::Shared>,
    tasks: Vec<tokio::task::JoinHandle<track::Tracker>>,
    stop: watch::Sender<bool>,
}

/// Which of the run's subscribers process `index` of `procs` holds: `(first, count)`.
fn share(subscribers: usize, procs: usize, index: usize) -> (usize, usize) {
    let (each, extra) = (subscribers / procs, subscribers % procs);
    (
        index * each + index.min(extra),
        each + usize::from(index < extra),
    )
}

/// Opens this process's subscribers and waits until each is connected or failed.
async fn open_fleet(
    args: &RunArgs,
    base: u64,
    first: usize,
    count: usize,
) -> anyhow::Result<Fleet> {
    let limit = procfs::raise_fd_limit();
    if (limit as usize) < count + 64 {
        bail!("{count} subscribers need more descriptors than the limit {limit}: use --procs");
    }
    let shared = track::Shared::new(base, count, args.window as usize);
    let spec = Arc::new(Spec {
        url: Url::parse(&args.sub)?,
        transport: args.transport,
        ws_subscribe: args.ws_subscribe.clone(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let connecting = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let tasks = (first..first + count)
        .map(|i| {
            tokio::spawn(subscriber::run(
                http::source(i, args.sources),
                spec.clone(),
                shared.clone(),
                connecting.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while shared.ready.load(Ordering::Relaxed) + (shared.errors.load(Ordering::Relaxed) as usize)
        < count
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Fleet {
        shared,
        tasks,
        stop,
    })
}

impl Fleet {
    /// Waits until every subscriber has the `sent` events (or an error, or the drain time).
    async fn drain(&self, sent: u64, seconds: f64) {
        let expected = sent * self.shared.subscribers as u64;
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        while self.shared.delivered.load(Ordering::Relaxed) < expected
            && self.shared.errors.load(Ordering::Relaxed) == 0
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the subscribers and sums what they saw; events never seen count as gaps.
    async fn finish(self, sent: u64) -> anyhow::Result<track::Tally> {
        let _ = self.stop.send(true);
        let mut tally = track::Tally {
            connected: self.shared.ready.load(Ordering::Relaxed),
            ..track::Tally::default()
        };
        for task in self.tasks {
            let mut tracker = task.await.context("a subscriber task panicked")?;
            tracker.finish(sent);
            tally.add(&tracker);
        }
        tally.errors = self.shared.errors.load(Ordering::Relaxed);
        tally.resumes = self.shared.resumes.load(Ordering::Relaxed);
        Ok(tally)
    }
}

/// Another loadgen process holding a share of the subscribers; it says `READY` once they
/// are connected, is told `SENT <n>` after publishing, and answers `RESULT <tally json>`.
struct Child {
    process: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Child {
    fn spawn(index: usize, base: u64) -> anyhow::Result<Self> {
        let mut process = tokio::process::Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .args(["--child", &index.to_string(), "--base", &base.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a loadgen child")?;
        let stdin = process.stdin.take().context("child stdin")?;
        let stdout = process.stdout.take().context("child stdout")?;
        Ok(Self {
            process,
            stdin,
            lines: tokio::io::BufReader::new(stdout).lines(),
        })
    }

    /// The payload of the next line starting with `tag`.
    async fn expect(&mut self, tag: &str) -> anyhow::Result<String> {
        let line = tokio::time::timeout(Duration::from_secs(180), self.lines.next_line())
            .await
            .with_context(|| format!("a child did not say {tag} in time"))??
            .with_context(|| format!("a child ended before {tag}"))?;
        line.strip_prefix(tag)
            .map(|rest| rest.trim().to_string())
            .with_context(|| format!("a child said {line:?}, not {tag}"))
    }
}

/// A child process: its share of the subscribers, driven by the parent over stdio.
async fn run_child(args: RunArgs, index: usize) -> anyhow::Result<()> {
    let base = args.base.context("--child needs --base")?;
    let (first, count) = share(args.subscribers, args.procs, index);
    let fleet = open_fleet(&args, base, first, count).await?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("READY {}\n", fleet.shared.ready.load(Ordering::Relaxed)).as_bytes())
        .await?;
    out.flush().await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let line = lines.next_line().await?.context("the parent went away")?;
    let sent: u64 = line
        .strip_prefix("SENT ")
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("expected SENT <n>, got {line:?}"))?;
    fleet.drain(sent, args.drain).await;
    let mut tally = fleet.finish(sent).await?;
    tally.cpu_secs = procfs::own_cpu_secs();
    out.write_all(format!("RESULT {}\n", serde_json::to_string(&tally)?).as_bytes())
        .await?;
    out.flush().await?;
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let procs = args.procs.max(1);
    if procs > 1 && args.mode == Mode::Fanout && args.rate <= 0.0 {
        bail!("the closed loop needs every subscriber in one process: --procs 1 with --rate 0");
    }
    let pub_url = Url::parse(&args.publish)?;
    let load_before = load_average();
    let before = procfs::sample(&args.pids);

    // Counters above any earlier run's: microseconds since the epoch.
    let base = track::now_ns() / 1_000;
    let mut children = (1..procs)
        .map(|i| Child::spawn(i, base))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (first, count) = share(args.subscribers, procs, 0);
    let fleet = open_fleet(&args, base, first, count).await?;
    let mut connected = fleet.shared.ready.load(Ordering::Relaxed);
    for child in &mut children {
        connected += child.expect("READY").await?.parse::<usize>().unwrap_or(0);
    }
    // Let the server's allocations settle before reading its memory.
    tokio::time::sleep(Duration::from_secs(if args.mode == Mode::Idle {
        2
    } else {
        1
    }))
    .await;
    let with_subscribers = procfs::sample(&args.pids);
    if args.mode == Mode::Idle {
        tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    }

    let plan = match args.mode {
        Mode::Fanout => publish::Plan {
            url: pub_url,
            kind: args.pub_kind,
            rate: args.rate,
            batch: args.batch,
            duration: Duration::from_secs_f64(args.duration),
            max_events: args.max_events,
            window: args.window,
            payload: args.payload,
            event_type: args.event_type.clone(),
        },
        // A few probe events check that every idle connection still works.
        Mode::Idle => publish::Plan {
            url: pub_url,
            kind: args.pub_kind,
            rate: 5.0,
            batch: 1,
            duration: Duration::from_secs(5),
            max_events: 5,
            window: args.window,
            payload: args.payload,
            event_type: args.event_type.clone(),
        },
    };
    let cpu_before = procfs::sample(&args.pids);
    let own_before = procfs::own_cpu_secs();
    let outcome = publish::run(&plan, fleet.shared.clone()).await?;
    for child in &mut children {
        child
            .stdin
            .write_all(format!("SENT {}\n", outcome.sent).as_bytes())
            .await?;
        child.stdin.flush().await?;
    }
    fleet.drain(outcome.sent, args.drain).await;
    let mut tally = fleet.finish(outcome.sent).await?;
    for mut child in children {
        let result = child.expect("RESULT").await?;
        tally.merge(serde_json::from_str(&result).context("a child's RESULT")?);
        let _ = child.process.wait().await;
    }
    let cpu_after = procfs::sample(&args.pids);
    let own_after = procfs::own_cpu_secs();

    let expected = outcome.sent * args.subscribers as u64;
    let seconds = (tally
        .last_at_ns
        .max(outcome.ended_ns)
        .saturating_sub(outcome.started_ns)) as f64
        / 1e9;
    let server_cpu = cpu_after.cpu_secs - cpu_before.cpu_secs;
    let delivered = tally.delivered;
    let mut report = Report {
        label: args.label.clone(),
        server: args.server.clone(),
        transport: format!("{:?}", args.transport).to_lowercase(),
        mode: format!("{:?}", args.mode).to_lowercase(),
        subscribers: args.subscribers,
        connected,
        rate: if args.mode == Mode::Fanout {
            args.rate
        } else {
            plan.rate
        },
        batch: plan.batch,
        payload_bytes: args.payload,
        sent: outcome.sent,
        expected_deliveries: expected,
        delivered,
        deliveries_per_sec: if seconds > 0.0 {
            delivered as f64 / seconds
        } else {
            0.0
        },
        latency: Latency::of(&tally.latency_us),
        gaps: tally.gaps,
        duplicates: tally.duplicates,
        errors: tally.errors + u64::from(outcome.stalled),
        resumes: tally.resumes,
        server_rss_mib_before: before.rss_bytes as f64 / MIB,
        server_rss_mib_connected: with_subscribers.rss_bytes as f64 / MIB,
        server_rss_mib_end: cpu_after.rss_bytes as f64 / MIB,
        server_kib_per_subscriber: (with_subscribers.rss_bytes as f64 - before.rss_bytes as f64)
            / 1024.0
            / args.subscribers.max(1) as f64,
        server_cpu_secs: server_cpu,
        server_cpu_us_per_delivery: if delivered > 0 {
            server_cpu * 1e6 / delivered as f64
        } else {
            0.0
        },
        // Children's CPU is their whole life (connecting included); the parent's is the
        // publishing and draining only.
        loadgen_cpu_secs: own_after - own_before + tally.cpu_secs,
        seconds,
        load_before,
        passed: false,
        failures: Vec::new(),
    };
    if args.pids.is_empty() {
        report.server_kib_per_subscriber = 0.0;
    }
    report.judge();
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

async fn smoke(args: SmokeArgs) -> anyhow::Result<bool> {
    let gateway = args.gateway.trim_end_matches('/');
    let sim = args.sim.trim_end_matches('/');
    let (mut passed, mut failed) = (0, 0);
    for transport in [Transport::Sse, Transport::Ws] {
        let (sub, ws_subscribe) = match transport {
            Transport::Sse => (
                format!("{gateway}/v1/accounts/{}/events", args.account),
                None,
            ),
            Transport::Ws => (
                format!("{gateway}/v1/ws"),
                Some(format!(
                    r#"{{"op":"subscribe","accounts":["{}"]}}"#,
                    args.account
                )),
            ),
        };
        let run_args = RunArgs {
            label: "smoke".into(),
            server: "gateway".into(),
            sub,
            transport,
            ws_subscribe,
            publish: format!("{sim}/sim/accounts/{}/events", args.number),
            pub_kind: publish::Kind::Sim,
            subscribers: 20,
            mode: Mode::Fanout,
            rate: 200.0,
            batch: 4,
            duration: 2.0,
            max_events: 10_000,
            window: 256,
            payload: 64,
            event_type: "AccountBalance".into(),
            pids: args.pid.into_iter().collect(),
            hold: 0.0,
            sources: 4,
            connect_concurrency: 20,
            drain: 10.0,
            threads: 1,
            json: None,
            procs: 1,
            child: None,
            base: None,
        };
        let report = run(run_args).await?;
        if report.passed && report.delivered > 0 {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    // The plain closing line CI reads: one run per transport.
    println!("smoke: {passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn table(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        reports.push(
            serde_json::from_str::<Report>(&text)
                .with_context(|| format!("parsing {}", file.display()))?,
        );
    }
    print!("{}", report::side_by_side(&reports));
    Ok(())
}
