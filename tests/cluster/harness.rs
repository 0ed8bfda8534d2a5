//! The cluster under test, as real processes on loopback: nats-server(s) with JetStream
//! (one, or three clustered for R3), the simulator (`tastytrade-gateway simulate`) and
//! gateway nodes (`--nats-url`), each on a fixed port so a restarted node answers where it
//! did. Nodes log to files under the test's directory; signals go through `kill`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tastytrade_gateway::cluster::testing::{self, NatsServer};
use tokio::process::{Child, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_tastytrade-gateway");
/// The lease every test cluster runs with (the default).
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// Polls `check` every 50 ms until it is true; fails the test after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// The simulator, alone in its process.
pub struct Sim {
    /// Killed when the test ends.
    _child: Child,
    pub url: String,
}

impl Sim {
    pub async fn start(http: &reqwest::Client, accounts: usize, rate: f64) -> Self {
        let port = testing::free_port();
        let child = Command::new(BINARY)
            .args(["simulate", "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--accounts",
                &accounts.to_string(),
                "--rate",
                &rate.to_string(),
            ])
            .args(["--seed", "7"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the simulator runs");
        let url = format!("http://127.0.0.1:{port}");
        let stats = format!("{url}/sim/stats");
        wait_until("the simulator answers", Duration::from_secs(20), || async {
            http.get(&stats).send().await.is_ok()
        })
        .await;
        Self { _child: child, url }
    }

    pub async fn get(&self, http: &reqwest::Client, path: &str) -> Value {
        http.get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the simulator answers")
            .json()
            .await
            .expect("JSON")
    }

    /// Streamer sockets open per account number.
    pub async fn sockets(&self, http: &reqwest::Client) -> BTreeMap<String, u64> {
        serde_json::from_value(self.get(http, "/sim/sockets").await).expect("a map")
    }

    pub async fn overlaps(&self, http: &reqwest::Client) -> u64 {
        self.get(http, "/sim/stats").await["account_socket_overlaps"]
            .as_u64()
            .expect("a count")
    }

    /// Pauses or resumes the market script.
    pub async fn script(&self, http: &reqwest::Client, paused: bool) {
        http.post(format!("{}/sim/script", self.url))
            .json(&serde_json::json!({ "paused": paused }))
            .send()
            .await
            .expect("the script is set");
    }
}

/// One gateway node.
pub struct Node {
    pub name: String,
    pub port: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).expect("running")
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub async fn start(&mut self, http: &reqwest::Client) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a log file");
        let child = Command::new(BINARY)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the gateway runs");
        self.child = Some(child);
        let livez = format!("{}/livez", self.url());
        wait_until(
            &format!("{} answers", self.name),
            Duration::from_secs(40),
            || async { http.get(&livez).send().await.is_ok() },
        )
        .await;
    }

    /// `kill -9`: no hand-over, the lease must expire.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id().expect("running"), "KILL");
            let _ = child.wait().await;
        }
    }

    /// SIGTERM, then waits for the process to end.
    pub async fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id().expect("running"), "TERM");
            let waited = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
            assert!(
                waited.is_ok(),
                "{} did not end within 15 s of SIGTERM",
                self.name
            );
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// NATS, the simulator and the nodes.
pub struct Cluster {
    pub http: reqwest::Client,
    pub nats: Vec<NatsServer>,
    pub sim: Sim,
    pub nodes: Vec<Node>,
    dir: PathBuf,
}

impl Cluster {
    /// `servers` nats-servers (1, or 3 clustered with R3), the simulator with its demo
    /// accounts and `extra` generated ones, and `nodes` gateway nodes; `None` when
    /// nats-server is missing and the test is to be skipped.
    pub async fn start(servers: usize, nodes: usize, extra: usize, rate: f64) -> Option<Self> {
        let nats = if servers == 1 {
            vec![testing::single()?]
        } else {
            testing::cluster_of_three()?
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client");
        let sim = Sim::start(&http, extra, rate).await;
        let dir = std::env::temp_dir().join(format!(
            "ttgw-cluster-{}-{}",
            std::process::id(),
            testing::free_port()
        ));
        std::fs::create_dir_all(&dir).expect("a log directory");
        let urls: Vec<String> = nats.iter().map(NatsServer::url).collect();
        let replicas = if servers == 1 { "1" } else { "3" };
        let mut cluster = Self {
            http,
            nats,
            sim,
            nodes: Vec::new(),
            dir,
        };
        for i in 0..nodes {
            let name = format!("node-{}", i + 1);
            let port = testing::free_port();
            let args: Vec<String> = [
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--api-url",
                &cluster.sim.url,
                "--streamer-url",
                &format!("{}/streamer", cluster.sim.url.replace("http", "ws")),
                "--nats-url",
                &urls.join(","),
                "--nats-replicas",
                replicas,
                "--node-id",
                &name,
                "--insecure-open-api",
                "--heartbeat-secs",
                "2",
                "--backoff-cap-secs",
                "1",
                "--lease-ttl-secs",
                &LEASE_TTL.as_secs().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let log = cluster.dir.join(format!("{name}.log"));
            let mut node = Node {
                name,
                port,
                args,
                log,
                child: None,
            };
            node.start(&cluster.http).await;
            cluster.nodes.push(node);
        }
        Some(cluster)
    }

    /// `GET /v1/accounts` of node `i` (empty while it does not answer).
    pub async fn accounts(&self, i: usize) -> Vec<Value> {
        let url = format!("{}/v1/accounts", self.nodes[i].url());
        match self.http.get(url).send().await {
            Ok(response) => response.json::<Value>().await.unwrap_or_default()["accounts"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Each account's holder as node `i` sees it: `(public id, node, state)`.
    pub async fn holders(&self, i: usize) -> Vec<(String, String, String)> {
        self.accounts(i)
            .await
            .iter()
            .map(|a| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (
                    text(&a["id"]),
                    text(&a["upstream"]["node"]),
                    text(&a["upstream"]["state"]),
                )
            })
            .collect()
    }

    /// Whether node `i` sees every account live, held by a running node.
    pub async fn all_live(&self, i: usize) -> bool {
        let running: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| n.name.as_str())
            .collect();
        let holders = self.holders(i).await;
        !holders.is_empty()
            && holders
                .iter()
                .all(|(_, node, state)| state == "live" && running.contains(&node.as_str()))
    }

    /// Index of the first running node.
    pub fn running(&self) -> usize {
        self.nodes
            .iter()
            .position(Node::running)
            .expect("a running node")
    }

    /// Every node's log (for the leak scan and for diagnosis).
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(Node::log_text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("--- {}: its last lease and leader lines", node.name);
                for line in lease_lines(&node.log_text()) {
                    eprintln!("{line}");
                }
            }
            eprintln!("node logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The last lease-related lines of a node's log, colour codes removed: what a failed
/// test prints, so that a CI failure carries its own evidence.
fn lease_lines(log: &str) -> Vec<String> {
    const MARKS: [&str; 7] = [
        "live nodes",
        "lease",
        "leading the account",
        "handing the account",
        "take the account",
        "journal",
        "shutting down",
    ];
    let plain = |line: &str| {
        let mut out = String::with_capacity(line.len());
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|c| c.is_ascii_alphabetic());
            } else {
                out.push(c);
            }
        }
        out
    };
    let lines: Vec<String> = log
        .lines()
        .map(plain)
        .filter(|l| MARKS.iter().any(|m| l.contains(m)))
        .collect();
    lines[lines.len().saturating_sub(40)..].to_vec()
}
