#![recursion_limit = "256"]
//! The embedded tastytrade simulator: a second, independent producer of tastytrade's REST and
//! Account Streamer protocol over real HTTP and WebSocket. It is demo mode's upstream, every
//! test's upstream and the benchmark's event source (see ARCHITECTURE.md, "Data flow").
//!
//! One axum server carries all of it on one port:
//! - tastytrade REST (`/oauth/token`, `/sessions`, `/customers/me/accounts`, `/accounts/...`),
//! - the Account Streamer WebSocket at `/streamer`,
//! - the control API under `/sim/` (inject events, read the truth, pause the script, faults).

mod control;
mod demo_data;
mod market;
mod rate_limit;
mod rest;
mod router;
mod state;
mod streamer;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use state::{Sim, SimStats};

/// The credentials the simulator accepts. Demo mode uses the defaults, which are not secrets:
/// they only open the simulator's own made-up accounts.
#[derive(Clone, Debug)]
pub struct SimCredentials {
    pub client_secret: String,
    pub refresh_token: String,
    pub login: String,
    pub password: String,
}

impl Default for SimCredentials {
    fn default() -> Self {
        Self {
            client_secret: "demo-client-secret".into(),
            refresh_token: "demo-refresh-token".into(),
            login: "demo".into(),
            password: "demo-password".into(),
        }
    }
}

/// Everything that shapes a simulator run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Seed of the market script and of every other random choice.
    pub seed: u64,
    /// Market script steps per second; 0 pauses it.
    pub rate: f64,
    /// Start with the market script paused.
    pub paused: bool,
    /// `expires_in` of OAuth access tokens, in seconds.
    pub token_ttl: Duration,
    /// A streamer socket that sends nothing for this long is closed (`1000 Bye`).
    pub heartbeat_window: Duration,
    /// Whether WebSocket pings count as activity (tastyware 12+ sends no `heartbeat` action).
    pub pings_count_as_heartbeat: bool,
    /// Whether some orders carry `user-id` as a number, as captured frames do. Off by default:
    /// tastyware parses `user-id` as a string and fails on a number (shared/protocol §8).
    pub numeric_user_ids: bool,
    /// Generated accounts served beside the three demo accounts (`5GA00001`, ...).
    pub extra_accounts: usize,
    /// Account REST calls per second answered, as a broker's rate limit; beyond it 429 with
    /// `Retry-After`. 0: no limit.
    pub rest_rate: f64,
    pub credentials: SimCredentials,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 42,
            rate: 2.0,
            paused: false,
            token_ttl: Duration::from_secs(900),
            heartbeat_window: Duration::from_secs(60),
            pings_count_as_heartbeat: true,
            numeric_user_ids: false,
            extra_accounts: 0,
            rest_rate: 0.0,
            credentials: SimCredentials::default(),
        }
    }
}

/// A running simulator. Dropping it does not stop it; call [`SimHandle::shutdown`].
pub struct SimHandle {
    pub addr: SocketAddr,
    pub sim: Arc<Sim>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    script: JoinHandle<()>,
}

impl SimHandle {
    /// Base URL of the REST API and of the control API (`/sim/...`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// URL of the Account Streamer WebSocket.
    pub fn streamer_url(&self) -> String {
        format!("ws://{}/streamer", self.addr)
    }

    /// Stops the HTTP server, closes every streamer socket and ends the market script.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.script.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }

    /// Waits until the server ends (used by `tastytrade-gateway simulate`).
    pub async fn wait(self) {
        let _ = self.server.await;
        self.script.abort();
    }
}

/// Builds the simulator's router (REST + streamer + control API) around shared state.
pub fn router(sim: Arc<Sim>) -> Router {
    rest::router(sim.clone())
        .merge(streamer::router(sim.clone()))
        .merge(control::router(sim))
}

/// Starts the simulator on `config.listen` and its market script.
pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let sim = Arc::new(Sim::new(config, stop_rx.clone()));
    let app = router(sim.clone());
    let mut server_stop = stop_rx;
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_stop.wait_for(|stopped| *stopped).await;
        };
        // Streamer frames leave at once, as tastytrade's do: Nagle would hold a small one
        // back until the gateway's delayed ACK (up to 40 ms).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "simulator server failed");
        }
    });
    let script = tokio::spawn(market::run(sim.clone()));
    tracing::info!(%addr, "tastytrade simulator listening");
    Ok(SimHandle {
        addr,
        sim,
        stop,
        server,
        script,
    })
}
