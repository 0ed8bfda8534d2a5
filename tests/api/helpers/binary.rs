//! The gateway binary as a newcomer runs it: spawned with flags and environment, its
//! start-up banner read for the gateway's URL (and, in demo mode, the simulator's).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A running gateway process.
pub struct Spawned {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or whatever the banner names).
    pub url: String,
    /// The embedded simulator's URL, in demo mode.
    pub sim: Option<String>,
    /// The banner lines read so far.
    pub banner: Vec<String>,
    /// The rest of stdout.
    pub stdout: Lines<BufReader<ChildStdout>>,
}

/// Runs `command` (the gateway binary, or `sh -c` around it) until its pretty banner names
/// the URL; stderr goes to `stderr`.
pub async fn spawn_command(mut command: Command, stderr: Stdio) -> Spawned {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway binary runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let (mut url, mut sim) = (None, None);
    let read = async {
        while let Ok(Some(line)) = stdout.next_line().await {
            if let Some(rest) = line.strip_prefix("tastytrade-gateway is serving ") {
                url = rest.rsplit(' ').next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("  demo mode: embedded tastytrade simulator at ")
            {
                sim = rest.split(' ').next().map(str::to_string);
            }
            let done = line.starts_with("  dashboard:");
            banner.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the banner within 20 s");
    let url = url.unwrap_or_else(|| panic!("no URL in the banner: {banner:?}"));
    Spawned {
        child,
        url,
        sim,
        banner,
        stdout,
    }
}

/// Spawns the gateway binary with `args` and `envs` (RUST_LOG defaults to warn).
pub async fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Spawned {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"));
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied());
    spawn_command(command, Stdio::null()).await
}

/// Whether every account of the gateway at `url` is live (false while it does not answer).
pub async fn all_live(http: &reqwest::Client, url: &str) -> bool {
    let body: serde_json::Value = match http.get(format!("{url}/v1/accounts")).send().await {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => return false,
    };
    body["accounts"]
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(|a| a["upstream"]["state"] == "live"))
}
