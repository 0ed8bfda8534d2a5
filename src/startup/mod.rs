//! Startup: from a validated [`Config`] to a running gateway, in small steps (as
//! zero-to-production's `startup.rs`): the simulator (demo mode), the upstream clients, the
//! event log, the accounts (`accounts`), their streamer tasks (`links`), then the HTTP server
//! (`listen`). `main` and the tests start the very same thing, the tests on `127.0.0.1:0`.

mod accounts;
mod cluster;
mod links;
mod listen;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::account::Registry;
use crate::api::jwt::Verifier;
use crate::api::limits::StreamLimits;
use crate::api::{self, AppState};
use crate::config::{Config, Endpoints};
use crate::log::{EventLog, RingLimits, RingLog};
use crate::serve::ConnectionLimits;
use crate::sim::{self, SimConfig, SimHandle};
use crate::upstream::UpstreamError;
use crate::upstream::pace::Pacer;
use crate::upstream::rest::RestClient;
use crate::upstream::session::TokenSource;
use crate::upstream::streamer::StreamerSettings;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("could not start the embedded simulator: {0}")]
    Simulator(std::io::Error),
    #[error("could not list the customer's accounts: {0}")]
    Accounts(UpstreamError),
    #[error("account {0} is not one of the customer's accounts")]
    UnknownAccount(String),
    #[error("the customer has no open account to serve")]
    NoAccounts,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
    #[error("tokens: {0}")]
    Jwks(#[from] crate::api::jwks::JwksError),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    /// The separate metrics listener (`--metrics-listen`), if any.
    pub metrics_addr: Option<SocketAddr>,
    /// Serving HTTPS.
    pub tls: bool,
    /// The embedded simulator, in demo mode.
    pub sim: Option<SimHandle>,
    pub registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    links: Vec<JoinHandle<()>>,
}

impl Gateway {
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, ends every stream and upstream socket, within a bounded time.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        for link in self.links {
            let _ = tokio::time::timeout(Duration::from_secs(3), link).await;
        }
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }

    /// Waits until the server ends on its own (it does not, short of a failure).
    pub async fn wait(&mut self) {
        let _ = (&mut self.server).await;
    }
}

/// Starts the gateway as configured.
pub async fn start(config: Config) -> Result<Gateway, StartError> {
    // First, so that every series recorded from here on (each account's zeros) is kept.
    let metrics = crate::metrics::install();
    let sim = start_simulator(&config).await?;
    let (api_url, streamer_url) = endpoints(&config, sim.as_ref());
    let upstream = upstream_clients(&config, &api_url, streamer_url)?;
    let joined = match &config.cluster {
        Some(settings) => Some(cluster::join(settings, ring_limits(&config)).await?),
        None => None,
    };
    let log: Arc<dyn EventLog> = match &joined {
        Some(joined) => joined.log.clone(),
        None => Arc::new(RingLog::new(ring_limits(&config))),
    };
    let served = accounts::build(&config, &upstream.rest, &log).await?;
    let (shutdown, shutdown_rx) = crate::shutdown::channel();
    let jwt = match &config.jwt {
        Some(settings) => Some(Verifier::start(settings, shutdown_rx.clone()).await?),
        None => None,
    };
    let leading = joined.as_ref().map(|joined| links::Leading {
        leases: cluster::start(joined, &served, &shutdown_rx),
        log: joined.log.clone(),
    });
    let links = links::spawn(&served, &upstream, leading.as_ref(), &shutdown_rx);
    let (listener, addr) = listen::bind(config.listen).await?;
    warn_about_keys(&config, &served, addr);
    let registry = served.registry;
    let max_connections = listen::connection_budget(
        config.max_connections,
        registry.all().len(),
        config.upstream_rest_connections,
    );
    let connection_limits = ConnectionLimits {
        max_connections,
        header_read_timeout: config.header_read_timeout,
    };
    let state = AppState {
        keys: Arc::new(config.api_keys.clone()),
        jwt,
        keep_alive: config.sse_keepalive,
        max_lag: config.max_lag,
        compact_ids_above: config.compact_ids_above,
        cors_origins: Arc::new(config.cors_origins.clone()),
        metrics,
        registry: registry.clone(),
        log: log.clone(),
        shutdown: shutdown_rx.clone(),
        streams: StreamLimits::new(config.max_streams_per_client),
        metrics_need_key: config.metrics_require_key,
        ready_requires: config.ready_requires,
    };
    let metrics_addr = match config.metrics_listen {
        Some(addr) => Some(
            listen::serve_metrics(addr, state.clone(), shutdown_rx.clone(), connection_limits)
                .await?,
        ),
        None => None,
    };
    let app = api::router(state);
    let server = listen::serve_api(
        listener,
        app,
        shutdown_rx,
        config.tls.as_ref(),
        connection_limits,
    )
    .await?;
    tracing::info!(%addr, epoch = %log.epoch(), accounts = registry.all().len(), max_connections, "gateway listening");
    Ok(Gateway {
        addr,
        metrics_addr,
        tls: config.tls.is_some(),
        sim,
        registry,
        shutdown,
        server,
        links,
    })
}

/// The embedded simulator, in demo mode.
async fn start_simulator(config: &Config) -> Result<Option<SimHandle>, StartError> {
    let Endpoints::EmbeddedSimulator = config.endpoints else {
        return Ok(None);
    };
    let sim_config = SimConfig {
        extra_accounts: config.sim_accounts,
        rest_rate: config.sim_rest_rate,
        seed: config.sim_seed,
        rate: config.sim_rate,
        token_ttl: config.sim_token_ttl,
        ..SimConfig::default()
    };
    let handle = sim::start(sim_config)
        .await
        .map_err(StartError::Simulator)?;
    Ok(Some(handle))
}

/// tastytrade's REST and streamer URLs: configured, or the embedded simulator's.
fn endpoints(config: &Config, sim: Option<&SimHandle>) -> (String, String) {
    match (&config.endpoints, sim) {
        (
            Endpoints::Remote {
                api_url,
                streamer_url,
            },
            _,
        ) => (api_url.clone(), streamer_url.clone()),
        (Endpoints::EmbeddedSimulator, Some(sim)) => (sim.api_url(), sim.streamer_url()),
        (Endpoints::EmbeddedSimulator, None) => unreachable!("the simulator was started first"),
    }
}

/// The HTTP client, the token source and the REST client every link shares.
fn upstream_clients(
    config: &Config,
    api_url: &str,
    streamer_url: String,
) -> Result<links::Upstream, StartError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(config.upstream_rest_connections)
        .build()
        .map_err(|e| StartError::HttpClient(e.without_url().to_string()))?;
    let tokens = Arc::new(TokenSource::new(
        http.clone(),
        api_url,
        config.credentials.clone(),
        config.token_refresh_margin,
    ));
    let rest = Arc::new(RestClient::new(
        http,
        api_url,
        tokens.clone(),
        config.upstream_rest_connections,
    ));
    let settings = StreamerSettings {
        url: streamer_url,
        heartbeat: config.heartbeat,
        backoff_cap: config.backoff_cap,
        retry_after_cap: config.retry_after_cap,
        reconcile: config.reconcile,
        request_timeout: Duration::from_secs(10),
    };
    Ok(links::Upstream {
        rest,
        tokens,
        settings,
        pacer: Arc::new(Pacer::new(config.upstream_attempts_per_sec)),
    })
}

fn ring_limits(config: &Config) -> RingLimits {
    RingLimits {
        ring_events: config.ring_events,
        ring_max_age: config.ring_max_age,
        ring_max_bytes: config.ring_max_bytes,
        ring_budget_bytes: config.ring_budget_bytes,
        bus_capacity: config.subscriber_queue,
    }
}

/// Says what an operator should know about the keys: ids no account has, or no keys at all.
fn warn_about_keys(config: &Config, served: &accounts::Served, addr: SocketAddr) {
    for key in config.api_keys.keys() {
        if let crate::api::auth::Scope::Ids(ids) = &key.scope {
            for id in ids.iter().filter(|id| served.registry.get(id).is_none()) {
                tracing::warn!(key = %key.name, id = %served.masker.mask_text(id), "an API key names an account id the gateway does not serve");
            }
        }
    }
    if let Some(jwt) = &config.jwt {
        tracing::info!(algorithms = ?jwt.algorithms, cookie = %jwt.cookie, jwks = jwt.jwks.is_some(), "tokens (JWT) accepted");
        return;
    }
    if config.api_keys.is_empty() && config.insecure_open_api {
        tracing::error!(
            "--insecure-open-api: NO API KEYS in front of a real upstream; anyone who reaches {addr} sees these accounts. Use it only for benchmarks against a local simulator."
        );
    } else if config.api_keys.is_empty() {
        tracing::warn!(
            "no API keys configured: the API is open to loopback host names only (demo mode)"
        );
    }
}
