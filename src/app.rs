//! Wiring: from a validated [`Config`] to a running gateway (simulator in demo mode, upstream
//! tasks, accounts, HTTP server), so `main` and the tests start the very same thing, the
//! tests on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::account::registry::{USER_STREAM_ID, public_ids};
use crate::account::{Account, AccountInfo, JournalLimits, Registry};
use crate::api::limits::StreamLimits;
use crate::api::{self, AppState};
use crate::config::{Config, Endpoints, TlsFiles};
use crate::mask::{Masker, mask_number};
use crate::serve::{ConnectionLimits, serve};
use crate::sim::{self, SimConfig, SimHandle};
use crate::upstream::UpstreamError;
use crate::upstream::pace::Pacer;
use crate::upstream::rest::{CustomerAccount, RestClient};
use crate::upstream::session::TokenSource;
use crate::upstream::streamer::{self, AccountLink, StreamerSettings, UserSubscriptions};

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

/// A new epoch for this start: base-36 milliseconds, so it sorts and never holds a `-`.
fn new_epoch() -> String {
    let mut n = chrono::Utc::now().timestamp_millis().unsigned_abs();
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_else(|_| "0".into())
}

/// Lists the customer's accounts, retrying a few times with backoff (tastytrade may be briefly away).
async fn list_accounts(
    rest: &RestClient,
    backoff_cap: Duration,
) -> Result<Vec<CustomerAccount>, UpstreamError> {
    let mut attempt = 0;
    loop {
        match rest.accounts().await {
            Ok(accounts) => return Ok(accounts),
            Err(error @ UpstreamError::Auth(_)) => return Err(error),
            Err(error) if attempt >= 4 => return Err(error),
            Err(error) => {
                let delay = error
                    .retry_after()
                    .map(|asked| asked.min(backoff_cap.max(Duration::from_secs(60))))
                    .unwrap_or_else(|| {
                        streamer::backoff(attempt, streamer::QUICK_RETRIES_FOR, backoff_cap)
                    });
                let error = crate::mask::diagnostic(&error.to_string());
                tracing::warn!(%error, "listing accounts failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// Descriptors kept back from consumers: per account its streamer socket and a share of the
/// REST pool, plus a margin for the REST pool, the metrics listener, log files and DNS.
fn reserved_descriptors(accounts: usize) -> u64 {
    2 * accounts as u64 + 256
}

/// How many consumer connections may be open at once: the configured number, but never so
/// many that upstream sockets and REST calls could find no descriptor. The process's soft
/// descriptor limit is first raised to its hard limit.
fn connection_budget(configured: Option<usize>, accounts: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let reserved = reserved_descriptors(accounts);
    let available = usize::try_from(limit.saturating_sub(reserved))
        .unwrap_or(usize::MAX)
        .max(16);
    match configured {
        Some(wanted) if wanted > available => {
            tracing::warn!(
                wanted,
                available,
                descriptor_limit = limit,
                reserved,
                "--max-connections lowered: the rest of the descriptors are kept for upstream sockets and REST calls"
            );
            available
        }
        Some(wanted) => wanted,
        None => available,
    }
}

/// HTTPS with HTTP/2 and HTTP/1.1 (ALPN), with the limits of plain HTTP, until the
/// shutdown signal.
async fn serve_tls(
    listener: TcpListener,
    app: axum::Router,
    stop: watch::Receiver<bool>,
    tls: &TlsFiles,
    limits: ConnectionLimits,
) -> Result<JoinHandle<()>, StartError> {
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| StartError::Tls(e.to_string()))?;
    // axum-server reads the PEM files and sets ALPN (h2, http/1.1); serve.rs does the rest,
    // so TLS consumers have the same limits as plain ones.
    let acceptor = tokio_rustls::TlsAcceptor::from(rustls.get_inner());
    Ok(serve(listener, app, stop, limits, Some(acceptor)))
}

/// Serves only `/metrics`, without a key, on its own listener (`--metrics-listen`).
async fn serve_metrics(
    addr: SocketAddr,
    state: AppState,
    stop: watch::Receiver<bool>,
    limits: ConnectionLimits,
) -> Result<SocketAddr, StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    let router = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(app): axum::extract::State<AppState>| async move {
                    api::metrics::render(&app)
                },
            ),
        )
        .with_state(state);
    let limits = ConnectionLimits {
        max_connections: 64,
        ..limits
    };
    serve(listener, router, stop, limits, None);
    Ok(bound)
}

/// The account-independent stream and its subscriptions, when any is enabled.
async fn user_subscriptions(
    config: &Config,
    rest: &RestClient,
    epoch: &Arc<str>,
    masker: &Arc<Masker>,
    limits: JournalLimits,
) -> Option<UserSubscriptions> {
    let mut actions = Vec::new();
    if config.quote_alerts {
        actions.push(("quote-alerts-subscribe", None));
    }
    if config.public_watchlists {
        actions.push(("public-watchlists-subscribe", None));
    }
    if config.user_messages {
        match rest.user_external_id().await {
            Ok(external_id) => actions.push((
                "user-message-subscribe",
                Some(serde_json::json!(external_id)),
            )),
            Err(error) => {
                let error = crate::mask::diagnostic(&error.to_string());
                tracing::warn!(%error, "user messages are off: the user's external id could not be read")
            }
        }
    }
    if actions.is_empty() {
        return None;
    }
    let info = AccountInfo {
        public_id: USER_STREAM_ID.to_string(),
        masked_number: String::new(),
        nickname: Some("quote alerts, public watchlists, user messages".into()),
        account_type: None,
    };
    let stream = Arc::new(Account::new(info, epoch.clone(), masker.clone(), limits));
    stream.update_status(|s| s.state = crate::model::LinkState::Live);
    Some(UserSubscriptions { actions, stream })
}

/// Starts the gateway as configured.
pub async fn start(config: Config) -> Result<Gateway, StartError> {
    // First, so that every series recorded from here on (each account's zeros) is kept.
    let metrics = crate::metrics::install();
    let sim = match config.endpoints {
        Endpoints::EmbeddedSimulator => {
            let sim_config = SimConfig {
                extra_accounts: config.sim_accounts,
                seed: config.sim_seed,
                rate: config.sim_rate,
                token_ttl: config.sim_token_ttl,
                ..SimConfig::default()
            };
            Some(
                sim::start(sim_config)
                    .await
                    .map_err(StartError::Simulator)?,
            )
        }
        Endpoints::Remote { .. } => None,
    };
    let (api_url, streamer_url) = match (&config.endpoints, &sim) {
        (
            Endpoints::Remote {
                api_url,
                streamer_url,
            },
            _,
        ) => (api_url.clone(), streamer_url.clone()),
        (Endpoints::EmbeddedSimulator, Some(sim)) => (sim.api_url(), sim.streamer_url()),
        (Endpoints::EmbeddedSimulator, None) => unreachable!("the simulator was started above"),
    };

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| StartError::HttpClient(e.without_url().to_string()))?;
    let tokens = Arc::new(TokenSource::new(
        http.clone(),
        &api_url,
        config.credentials.clone(),
        config.token_refresh_margin,
    ));
    let rest = Arc::new(RestClient::new(http, &api_url, tokens.clone()));

    let customer_accounts = list_accounts(&rest, config.backoff_cap)
        .await
        .map_err(StartError::Accounts)?;
    let masker = Arc::new(Masker::new(
        customer_accounts
            .iter()
            .map(|a| a.number.as_str())
            .chain(config.accounts.iter().map(|c| c.number.as_str())),
    ));
    crate::mask::register(
        customer_accounts
            .iter()
            .map(|a| a.number.as_str())
            .chain(config.accounts.iter().map(|c| c.number.as_str())),
    );
    let chosen: Vec<(Option<String>, CustomerAccount)> = if config.accounts.is_empty() {
        customer_accounts
            .iter()
            .filter(|a| !a.closed)
            .map(|a| (None, a.clone()))
            .collect()
    } else {
        let mut chosen = Vec::new();
        for choice in &config.accounts {
            let found = customer_accounts
                .iter()
                .find(|a| a.number == choice.number)
                .ok_or_else(|| StartError::UnknownAccount(mask_number(&choice.number)))?;
            chosen.push((choice.alias.clone(), found.clone()));
        }
        chosen
    };
    if chosen.is_empty() {
        return Err(StartError::NoAccounts);
    }

    let epoch: Arc<str> = new_epoch().into();
    let naming: Vec<(Option<String>, Option<String>)> = chosen
        .iter()
        .map(|(alias, a)| (alias.clone(), a.nickname.clone()))
        .collect();
    let ids = public_ids(&naming, &masker);
    let limits = JournalLimits {
        ring_events: config.ring_events,
        ring_max_age: config.ring_max_age,
        ring_max_bytes: config.ring_max_bytes,
        bus_capacity: config.subscriber_queue,
    };
    let mut accounts = Vec::new();
    let mut numbers = Vec::new();
    for ((_, customer_account), public_id) in chosen.into_iter().zip(ids) {
        let info = AccountInfo {
            public_id,
            masked_number: mask_number(&customer_account.number),
            nickname: customer_account
                .nickname
                .as_deref()
                .map(|n| masker.mask_text(n)),
            account_type: customer_account.account_type.clone(),
        };
        accounts.push(Arc::new(Account::new(
            info,
            epoch.clone(),
            masker.clone(),
            limits,
        )));
        numbers.push(customer_account.number);
    }
    let user = user_subscriptions(&config, &rest, &epoch, &masker, limits).await;
    let registry = Arc::new(Registry::new(
        accounts,
        user.as_ref().map(|u| u.stream.clone()),
    ));

    let (shutdown, shutdown_rx) = watch::channel(false);
    let settings = StreamerSettings {
        url: streamer_url,
        heartbeat: config.heartbeat,
        backoff_cap: config.backoff_cap,
        retry_after_cap: config.retry_after_cap,
        reconcile: config.reconcile,
        request_timeout: Duration::from_secs(10),
    };
    let pacer = Arc::new(Pacer::new(config.upstream_attempts_per_sec));
    let links = registry
        .all()
        .iter()
        .zip(numbers)
        .enumerate()
        .map(|(index, (account, number))| {
            let link = AccountLink {
                account: account.clone(),
                number,
                rest: rest.clone(),
                tokens: tokens.clone(),
                settings: settings.clone(),
                pacer: pacer.clone(),
                // One socket carries the account-independent subscriptions: the first one.
                user: if index == 0 { user.clone() } else { None },
            };
            tokio::spawn(streamer::run(link, shutdown_rx.clone()))
        })
        .collect();

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    for key in config.api_keys.keys() {
        if let crate::api::auth::Scope::Ids(ids) = &key.scope {
            for id in ids.iter().filter(|id| registry.get(id).is_none()) {
                tracing::warn!(key = %key.name, id = %masker.mask_text(id), "an API key names an account id the gateway does not serve");
            }
        }
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
    let max_connections = connection_budget(config.max_connections, registry.all().len());
    let connection_limits = ConnectionLimits {
        max_connections,
        header_read_timeout: config.header_read_timeout,
    };
    let state = AppState {
        keys: Arc::new(config.api_keys.clone()),
        keep_alive: config.sse_keepalive,
        cors_origins: Arc::new(config.cors_origins.clone()),
        metrics,
        registry: registry.clone(),
        shutdown: shutdown_rx.clone(),
        streams: StreamLimits::new(config.max_streams_per_client),
        metrics_need_key: config.metrics_require_key,
        ready_requires: config.ready_requires,
    };
    let metrics_addr = match config.metrics_listen {
        Some(addr) => {
            Some(serve_metrics(addr, state.clone(), shutdown_rx.clone(), connection_limits).await?)
        }
        None => None,
    };
    let app = api::router(state);
    let server = match &config.tls {
        None => serve(listener, app, shutdown_rx, connection_limits, None),
        Some(tls) => serve_tls(listener, app, shutdown_rx, tls, connection_limits).await?,
    };
    tracing::info!(%addr, epoch = %epoch, accounts = registry.all().len(), max_connections, "gateway listening");
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
