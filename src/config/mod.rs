//! Settings: command-line flags, each also an environment variable (`TTGW_*`) and a key of
//! the config file, merged in layers (`layers`) and validated at start-up into a [`Config`]. Error messages name the setting and never echo an account
//! number or a secret.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::SecretString;
use serde::Deserialize;

mod cluster;
mod jwt;
mod layers;
pub use layers::Layered;

use crate::account::registry::valid_alias;
use crate::api::auth::ApiKeys;
use crate::api::health::ReadyRequires;
use crate::api::jwt::JwtSettings;
use crate::mask::mask_number;
use crate::upstream::session::Credentials;

/// Which tastytrade to talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamKind {
    /// The embedded simulator (no credentials needed).
    Demo,
    /// tastytrade's sandbox (cert) environment.
    Sandbox,
    /// tastytrade production.
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

fn secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text.to_string()))
}

/// `tastytrade-gateway serve`. clap reads flags and `TTGW_*` variables; serde reads the
/// merged layers (keys are the long flag names), so every setting has one type everywhere.
#[derive(Args, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeArgs {
    /// A TOML file with any of these settings (keys are the flag names); flags and
    /// environment variables win over it.
    #[arg(long, env = "TTGW_CONFIG")]
    #[serde(skip)]
    pub config: Option<std::path::PathBuf>,
    /// Address to serve HTTP on.
    #[arg(long, env = "TTGW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// demo (embedded simulator), sandbox or production.
    #[arg(long, env = "TTGW_UPSTREAM", value_enum, default_value_t = UpstreamKind::Demo)]
    pub upstream: UpstreamKind,
    /// tastytrade REST base URL; with --streamer-url, overrides --upstream and starts no simulator.
    #[arg(long, env = "TTGW_API_URL")]
    pub api_url: Option<String>,
    /// Account Streamer WebSocket URL (see --api-url).
    #[arg(long, env = "TTGW_STREAMER_URL")]
    pub streamer_url: Option<String>,
    /// OAuth client secret (with --refresh-token).
    #[arg(long, env = "TTGW_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub client_secret: Option<SecretString>,
    /// OAuth refresh token (with --client-secret).
    #[arg(long, env = "TTGW_REFRESH_TOKEN", hide_env_values = true, value_parser = secret)]
    pub refresh_token: Option<SecretString>,
    /// Legacy session login (with --password).
    #[arg(long, env = "TTGW_LOGIN")]
    pub login: Option<String>,
    /// Legacy session password (with --login).
    #[arg(long, env = "TTGW_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub password: Option<SecretString>,
    /// Accounts to serve, comma-separated, `alias=ACCOUNTNUMBER` allowed; default: every open account.
    #[arg(
        long,
        env = "TTGW_ACCOUNTS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Subscribe to the user's quote alerts (published on the `user` stream).
    #[arg(long, env = "TTGW_QUOTE_ALERTS")]
    #[serde(default)]
    pub quote_alerts: bool,
    /// Subscribe to tastytrade's public watchlists (published on the `user` stream).
    #[arg(long, env = "TTGW_PUBLIC_WATCHLISTS")]
    #[serde(default)]
    pub public_watchlists: bool,
    /// Subscribe to the user's messages (published on the `user` stream).
    #[arg(long, env = "TTGW_USER_MESSAGES")]
    #[serde(default)]
    pub user_messages: bool,
    /// Seconds between streamer heartbeats (tastytrade accepts 2-60).
    #[arg(long, env = "TTGW_HEARTBEAT_SECS", default_value_t = 20)]
    pub heartbeat_secs: u64,
    /// Refresh the access token this many seconds before it expires.
    #[arg(long, env = "TTGW_TOKEN_REFRESH_MARGIN_SECS", default_value_t = 60)]
    pub token_refresh_margin_secs: u64,
    /// Seconds between REST reconciles while live (a watchdog against silent streams).
    #[arg(long, env = "TTGW_RECONCILE_SECS", default_value_t = 300)]
    pub reconcile_secs: u64,
    /// Upper bound of the reconnect backoff once an outage is long (after the first 90 s of
    /// quick retries), in seconds; 4 keeps an account within 5 s of tastytrade's return.
    #[arg(long, env = "TTGW_BACKOFF_CAP_SECS", default_value_t = 4)]
    pub backoff_cap_secs: u64,
    /// Upstream requests per second, all accounts together: a streamer connection attempt
    /// counts one, a REST baseline read its five calls. After an outage, accounts wait in
    /// line instead of stampeding tastytrade; set it to the broker's REST limit or below.
    #[arg(long, env = "TTGW_UPSTREAM_ATTEMPTS_PER_SEC", default_value_t = 150)]
    pub upstream_attempts_per_sec: u32,
    /// REST calls to tastytrade in flight at once, all accounts together: the REST
    /// connection pool holds at most this many connections (descriptors).
    #[arg(long, env = "TTGW_UPSTREAM_REST_CONNECTIONS", default_value_t = 32)]
    pub upstream_rest_connections: u32,
    /// The longest `Retry-After` of tastytrade that is honoured, in seconds.
    #[arg(long, env = "TTGW_RETRY_AFTER_CAP_SECS", default_value_t = 60)]
    pub retry_after_cap_secs: u64,
    /// Seconds a consumer connection has to send its request headers.
    #[arg(long, env = "TTGW_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Consumer connections open at once; default: the descriptors the process may open,
    /// less those reserved for upstream sockets and REST calls (2 per account + 256).
    #[arg(long, env = "TTGW_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// SSE streams and WebSockets one API key (or, with an open API, one client IP) may hold.
    #[arg(long, env = "TTGW_MAX_STREAMS_PER_CLIENT", default_value_t = 10_000)]
    pub max_streams_per_client: usize,
    /// What /readyz needs: `any` (at least one account live) or `all` (every account live).
    #[arg(long, env = "TTGW_READY_REQUIRES", value_enum, default_value_t = ReadyRequires::Any)]
    pub ready_requires: ReadyRequires,
    /// Serve /metrics only to a valid API key (when keys are configured).
    #[arg(long, env = "TTGW_METRICS_REQUIRE_KEY")]
    #[serde(default)]
    pub metrics_require_key: bool,
    /// Also serve /metrics (without a key) on this address, e.g. 127.0.0.1:9100, for a
    /// scraper on a private network.
    #[arg(long, env = "TTGW_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Run without consumer API keys although a real upstream (--api-url, sandbox,
    /// production) is configured: anyone who reaches the listener sees the accounts. For
    /// benchmarks against a local simulator only; logged loudly.
    #[arg(long, env = "TTGW_INSECURE_OPEN_API")]
    #[serde(default)]
    pub insecure_open_api: bool,
    /// Consumer API keys, `NAME:SECRET:IDS` (IDS: comma-separated public ids, or `*`);
    /// repeat the flag, or separate keys with `;` in the env var.
    #[arg(long = "api-key", env = "TTGW_API_KEYS", hide_env_values = true, value_delimiter = ';', value_parser = secret)]
    #[serde(default, rename = "api-key")]
    pub api_keys: Vec<SecretString>,
    /// Browser origins allowed to call the API (CORS) and open WebSockets, comma-separated
    /// (`https://app.example.com`); none by default.
    #[arg(long, env = "TTGW_CORS_ORIGINS", value_delimiter = ',')]
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Accept tokens (JWT, HS256) signed with this secret, at least 32 bytes: your web
    /// backend mints short-lived ones for browsers (see README, "Tokens for browsers").
    #[arg(long, env = "TTGW_JWT_SECRET", hide_env_values = true, value_parser = secret)]
    pub jwt_secret: Option<SecretString>,
    /// Accept tokens (JWT, RS256/ES256) signed by the keys of this JSON Web Key Set: a file
    /// path or an https URL (plain http only from a loopback host; redirects not followed).
    #[arg(long, env = "TTGW_JWT_JWKS")]
    pub jwt_jwks: Option<String>,
    /// Token algorithms accepted, comma-separated (default: HS256 with --jwt-secret, RS256
    /// and ES256 with --jwt-jwks); never taken from the token.
    #[arg(long, env = "TTGW_JWT_ALGORITHMS", value_delimiter = ',')]
    #[serde(default)]
    pub jwt_algorithms: Vec<String>,
    /// Seconds of clock skew allowed on a token's `exp`, `nbf` and `iat` when it is
    /// presented; streams opened with a token still end at `exp`.
    #[arg(long, env = "TTGW_JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,
    /// The `aud` a token must name (not checked when unset).
    #[arg(long, env = "TTGW_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The `iss` a token must name (not checked when unset).
    #[arg(long, env = "TTGW_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The cookie a browser's token may come in (HttpOnly, set by your backend), for
    /// EventSource with `withCredentials`.
    #[arg(long, env = "TTGW_JWT_COOKIE", default_value = "ttgw_token")]
    pub jwt_cookie: String,
    /// Seconds between re-reads of --jwt-jwks.
    #[arg(long, env = "TTGW_JWT_JWKS_REFRESH_SECS", default_value_t = 300)]
    pub jwt_jwks_refresh_secs: u64,
    /// A token with a key id the key set lacks re-reads --jwt-jwks at most this often, in
    /// seconds (1-3600); tokens arriving during a re-read share it.
    #[arg(long, env = "TTGW_JWT_JWKS_MIN_REFETCH_SECS", default_value_t = 30)]
    pub jwt_jwks_min_refetch_secs: u64,
    /// A WebSocket opened with a token gets `token_expiring` this many seconds before it
    /// expires (and is closed at expiry unless it sends `refresh`).
    #[arg(long, env = "TTGW_JWT_EXPIRY_NOTICE_SECS", default_value_t = 30)]
    pub jwt_expiry_notice_secs: u64,
    /// Scale out on NATS JetStream: its `nats://` (or `tls://`) URLs, comma-separated. Every
    /// node with the same --nats-prefix serves every account; one holds each upstream socket.
    #[arg(long, env = "TTGW_NATS_URL", value_delimiter = ',')]
    #[serde(default)]
    pub nats_url: Vec<String>,
    /// NATS user (with --nats-password).
    #[arg(long, env = "TTGW_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password (with --nats-user).
    #[arg(long, env = "TTGW_NATS_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub nats_password: Option<SecretString>,
    /// NATS token.
    #[arg(long, env = "TTGW_NATS_TOKEN", hide_env_values = true, value_parser = secret)]
    pub nats_token: Option<SecretString>,
    /// A PEM CA bundle to verify the NATS servers with (TLS is then required).
    #[arg(long, env = "TTGW_NATS_TLS_CA")]
    pub nats_tls_ca: Option<std::path::PathBuf>,
    /// Prefix of this gateway's stream, subjects and buckets in NATS (letters, digits, - and _),
    /// so several gateways can share one NATS.
    #[arg(long, env = "TTGW_NATS_PREFIX", default_value = "ttgw")]
    pub nats_prefix: String,
    /// Replicas of the journal and the buckets (1; 3 on a NATS cluster).
    #[arg(long, env = "TTGW_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: u64,
    /// Journal messages kept per account: how far back a stream resumes, in events.
    #[arg(long, env = "TTGW_NATS_HISTORY_EVENTS", default_value_t = 10_000)]
    pub nats_history_events: u64,
    /// Seconds journal messages are kept: how far back a stream resumes, in time.
    #[arg(long, env = "TTGW_NATS_HISTORY_SECS", default_value_t = 86_400)]
    pub nats_history_secs: u64,
    /// Seconds an account's lease lasts without renewal (renewed every fifth of it): a
    /// crashed node's accounts move after about this long.
    #[arg(long, env = "TTGW_LEASE_TTL_SECS", default_value_t = 5)]
    pub lease_ttl_secs: u64,
    /// This node's name in the cluster (letters, digits, - and _); default: the host name
    /// and a random suffix.
    #[arg(long, env = "TTGW_NODE_ID")]
    pub node_id: Option<String>,
    /// PEM certificate chain: serve HTTPS (HTTP/2 and HTTP/1.1) instead of HTTP (with --tls-key).
    #[arg(long, env = "TTGW_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TTGW_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Seconds a stream may stay silent before a keep-alive comment (SSE) (1-15).
    #[arg(long, env = "TTGW_SSE_KEEPALIVE_SECS", default_value_t = 15)]
    pub sse_keepalive_secs: u64,
    /// Milliseconds the oldest event not yet delivered to a subscriber may wait before the
    /// subscriber is cut as lagging (SSE comment + end, WebSocket close 4008); it resumes
    /// with its id (100-600000).
    #[arg(long, env = "TTGW_MAX_LAG_MS", default_value_t = 5000)]
    pub max_lag_ms: u64,
    /// Over more accounts than this, `/v1/events` ids name one place in the log's order and
    /// the few accounts not at it (`<epoch>-~<order>.<id>.<seq>`) instead of every account's
    /// position (`<epoch>-<id>.<seq>...`), which grows with the accounts (0-1000000).
    #[arg(long, env = "TTGW_COMPACT_IDS_ABOVE", default_value_t = 64)]
    pub compact_ids_above: usize,
    /// Seconds an event stays in the resume ring at most.
    #[arg(long, env = "TTGW_RING_MAX_AGE_SECS", default_value_t = 3600)]
    pub ring_max_age_secs: u64,
    /// Events a live subscriber may fall behind before it is cut as a slow consumer.
    #[arg(long, env = "TTGW_SUBSCRIBER_QUEUE", default_value_t = 4096)]
    pub subscriber_queue: usize,
    /// Events kept per account for resuming streams.
    #[arg(long, env = "TTGW_RING_EVENTS", default_value_t = 10_000)]
    pub ring_events: usize,
    /// Bytes of events kept per account for resuming streams (the oldest leave first).
    #[arg(long, env = "TTGW_RING_MAX_BYTES", default_value_t = 16 << 20)]
    pub ring_max_bytes: usize,
    /// Bytes of events kept for resuming streams, all accounts together: past it, an
    /// account's new event pushes that account's oldest out.
    #[arg(long, env = "TTGW_RING_BUDGET_BYTES", default_value_t = 1 << 30)]
    pub ring_budget_bytes: usize,
    /// Log format.
    #[arg(long, env = "TTGW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Demo mode: market script steps per second (0 pauses it).
    #[arg(long, env = "TTGW_SIM_RATE", default_value_t = 2.0)]
    pub sim_rate: f64,
    /// Demo mode: generated accounts the simulator serves beside its three demo accounts.
    #[arg(long, env = "TTGW_SIM_ACCOUNTS", default_value_t = 0)]
    pub sim_accounts: usize,
    /// Demo mode: account REST calls per second the simulator answers, like a broker's rate
    /// limit (beyond it: 429 with Retry-After); 0 for none.
    #[arg(long, env = "TTGW_SIM_REST_RATE", default_value_t = 0.0)]
    pub sim_rest_rate: f64,
    /// Demo mode: seed of the market script.
    #[arg(long, env = "TTGW_SIM_SEED", default_value_t = 42)]
    pub sim_seed: u64,
    /// Demo mode: lifetime of the simulator's access tokens, in seconds.
    #[arg(long, env = "TTGW_SIM_TOKEN_TTL_SECS", default_value_t = 900)]
    pub sim_token_ttl_secs: u64,
}

/// An account to serve, with its optional alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountChoice {
    pub alias: Option<String>,
    pub number: String,
}

/// Where tastytrade is.
#[derive(Clone, Debug)]
pub enum Endpoints {
    /// Start the embedded simulator and use it.
    EmbeddedSimulator,
    /// Connect to these.
    Remote {
        api_url: String,
        streamer_url: String,
    },
}

/// Certificate and key files for HTTPS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Validated settings for `serve`.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: UpstreamKind,
    pub endpoints: Endpoints,
    pub credentials: Credentials,
    pub accounts: Vec<AccountChoice>,
    pub heartbeat: Duration,
    pub quote_alerts: bool,
    pub public_watchlists: bool,
    pub user_messages: bool,
    pub token_refresh_margin: Duration,
    pub reconcile: Duration,
    pub backoff_cap: Duration,
    pub upstream_attempts_per_sec: u32,
    pub upstream_rest_connections: usize,
    pub retry_after_cap: Duration,
    pub header_read_timeout: Duration,
    pub max_connections: Option<usize>,
    pub max_streams_per_client: usize,
    pub metrics_require_key: bool,
    pub metrics_listen: Option<SocketAddr>,
    pub insecure_open_api: bool,
    pub ready_requires: ReadyRequires,
    pub ring_events: usize,
    pub ring_max_bytes: usize,
    pub ring_budget_bytes: usize,
    pub ring_max_age: Duration,
    pub subscriber_queue: usize,
    pub api_keys: ApiKeys,
    /// Token checking, when --jwt-secret or --jwt-jwks is given.
    pub jwt: Option<JwtSettings>,
    /// Scale-out on NATS JetStream, when --nats-url is given.
    pub cluster: Option<crate::cluster::ClusterSettings>,
    pub cors_origins: Vec<axum::http::HeaderValue>,
    pub tls: Option<TlsFiles>,
    pub sse_keepalive: Duration,
    /// How old the oldest undelivered event of a subscriber may get (`--max-lag-ms`).
    pub max_lag: Duration,
    /// Over more accounts than this `/v1/events` ids are compact (`--compact-ids-above`).
    pub compact_ids_above: usize,
    pub log_format: LogFormat,
    pub sim_rate: f64,
    pub sim_seed: u64,
    pub sim_accounts: usize,
    pub sim_rest_rate: f64,
    pub sim_token_ttl: Duration,
}

/// A setting that cannot be used; the message names it and the accepted values.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: std::borrow::Cow<'static, str>,
    pub message: String,
}

fn bad(key: impl Into<std::borrow::Cow<'static, str>>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// tastytrade account numbers: 5 to 12 ASCII letters and digits.
fn valid_account_number(number: &str) -> bool {
    (5..=12).contains(&number.len()) && number.chars().all(|c| c.is_ascii_alphanumeric())
}

fn parse_accounts(items: &[String]) -> Result<Vec<AccountChoice>, ConfigError> {
    let mut choices: Vec<AccountChoice> = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (alias, number) = match item.split_once('=') {
            Some((alias, number)) => (Some(alias.trim().to_string()), number.trim().to_string()),
            None => (None, item.to_string()),
        };
        if !valid_account_number(&number) {
            return Err(bad(
                "accounts",
                format!(
                    "`{}` is not an account number (5-12 letters and digits)",
                    mask_number(&number)
                ),
            ));
        }
        if let Some(alias) = &alias
            && !valid_alias(alias)
        {
            return Err(bad(
                "accounts",
                format!(
                    "alias for {} must be 1-40 of a-z, A-Z, 0-9, - and _",
                    mask_number(&number)
                ),
            ));
        }
        if choices.iter().any(|c| c.number == number) {
            return Err(bad(
                "accounts",
                format!("{} is listed twice", mask_number(&number)),
            ));
        }
        if alias.is_some() && choices.iter().any(|c| c.alias == alias) {
            return Err(bad("accounts", "an alias is used twice"));
        }
        choices.push(AccountChoice { alias, number });
    }
    Ok(choices)
}

impl Config {
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        check_ranges(&args)?;
        let endpoints = endpoints(&args)?;
        let credentials = credentials(&args, &endpoints)?;
        let jwt = jwt::settings(&args)?;
        let cluster = cluster::settings(&args)?;
        let api_keys = api_keys(&args, &endpoints, jwt.is_some())?;
        let cors_origins = args
            .cors_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(parse_origin)
            .collect::<Result<Vec<_>, _>>()?;
        let tls = tls_files(&args)?;
        Ok(Self {
            tls,
            cors_origins,
            listen: args.listen,
            upstream: args.upstream,
            endpoints,
            credentials,
            accounts: parse_accounts(&args.accounts)?,
            heartbeat: Duration::from_secs(args.heartbeat_secs),
            quote_alerts: args.quote_alerts,
            public_watchlists: args.public_watchlists,
            user_messages: args.user_messages,
            token_refresh_margin: Duration::from_secs(args.token_refresh_margin_secs),
            reconcile: Duration::from_secs(args.reconcile_secs),
            backoff_cap: Duration::from_secs(args.backoff_cap_secs),
            upstream_attempts_per_sec: args.upstream_attempts_per_sec,
            upstream_rest_connections: args.upstream_rest_connections as usize,
            retry_after_cap: Duration::from_secs(args.retry_after_cap_secs),
            header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
            max_connections: args.max_connections,
            max_streams_per_client: args.max_streams_per_client,
            metrics_require_key: args.metrics_require_key,
            metrics_listen: args.metrics_listen,
            insecure_open_api: args.insecure_open_api,
            ready_requires: args.ready_requires,
            ring_events: args.ring_events,
            ring_max_bytes: args.ring_max_bytes,
            ring_budget_bytes: args.ring_budget_bytes,
            ring_max_age: Duration::from_secs(args.ring_max_age_secs),
            subscriber_queue: args.subscriber_queue,
            api_keys,
            jwt,
            cluster,
            sse_keepalive: Duration::from_secs(args.sse_keepalive_secs),
            max_lag: Duration::from_millis(args.max_lag_ms),
            compact_ids_above: args.compact_ids_above,
            log_format: args.log_format,
            sim_rate: args.sim_rate,
            sim_seed: args.sim_seed,
            sim_accounts: args.sim_accounts,
            sim_rest_rate: args.sim_rest_rate,
            sim_token_ttl: Duration::from_secs(args.sim_token_ttl_secs),
        })
    }
}

/// Every numeric setting within its range.
fn check_ranges(args: &ServeArgs) -> Result<(), ConfigError> {
    let ranges: [(&'static str, u64, u64, u64); 17] = [
        (
            "token-refresh-margin-secs",
            args.token_refresh_margin_secs,
            1,
            3600,
        ),
        ("reconcile-secs", args.reconcile_secs, 5, 86_400),
        ("backoff-cap-secs", args.backoff_cap_secs, 1, 3600),
        (
            "upstream-attempts-per-sec",
            u64::from(args.upstream_attempts_per_sec),
            1,
            100_000,
        ),
        (
            "upstream-rest-connections",
            u64::from(args.upstream_rest_connections),
            1,
            1_024,
        ),
        ("retry-after-cap-secs", args.retry_after_cap_secs, 1, 86_400),
        (
            "header-read-timeout-secs",
            args.header_read_timeout_secs,
            1,
            300,
        ),
        (
            "max-connections",
            args.max_connections.unwrap_or(1) as u64,
            1,
            10_000_000,
        ),
        (
            "max-streams-per-client",
            args.max_streams_per_client as u64,
            1,
            10_000_000,
        ),
        ("ring-events", args.ring_events as u64, 100, 10_000_000),
        (
            "ring-max-bytes",
            args.ring_max_bytes as u64,
            64 << 10,
            64 << 30,
        ),
        (
            "ring-budget-bytes",
            args.ring_budget_bytes as u64,
            1 << 20,
            1 << 40,
        ),
        ("sse-keepalive-secs", args.sse_keepalive_secs, 1, 15),
        ("max-lag-ms", args.max_lag_ms, 100, 600_000),
        (
            "compact-ids-above",
            args.compact_ids_above as u64,
            0,
            1_000_000,
        ),
        ("ring-max-age-secs", args.ring_max_age_secs, 1, 7 * 86_400),
        (
            "subscriber-queue",
            args.subscriber_queue as u64,
            16,
            1_000_000,
        ),
    ];
    let simulator: [(&'static str, u64, u64, u64); 2] = [
        ("sim-accounts", args.sim_accounts as u64, 0, 100_000),
        ("sim-token-ttl-secs", args.sim_token_ttl_secs, 1, 86_400),
    ];
    if !(2..=60).contains(&args.heartbeat_secs) {
        return Err(bad(
            "heartbeat-secs",
            "must be from 2 to 60 (tastytrade's heartbeat window)",
        ));
    }
    within(&ranges)?;
    if !(args.sim_rate.is_finite() && (0.0..=100_000.0).contains(&args.sim_rate)) {
        return Err(bad("sim-rate", "must be from 0 to 100000 steps per second"));
    }
    if !(args.sim_rest_rate.is_finite() && (0.0..=1_000_000.0).contains(&args.sim_rest_rate)) {
        return Err(bad(
            "sim-rest-rate",
            "must be from 0 (no limit) to 1000000 calls per second",
        ));
    }
    within(&simulator)
}

/// The first `(name, value, low, high)` out of its range, as an error.
fn within(ranges: &[(&'static str, u64, u64, u64)]) -> Result<(), ConfigError> {
    for &(name, value, low, high) in ranges {
        if !(low..=high).contains(&value) {
            return Err(bad(name, format!("must be from {low} to {high}")));
        }
    }
    Ok(())
}

/// tastytrade's URLs: given, or those of `--upstream`.
fn endpoints(args: &ServeArgs) -> Result<Endpoints, ConfigError> {
    Ok(match (&args.api_url, &args.streamer_url) {
        (Some(api), Some(streamer)) => {
            check_url("api-url", api, &["http", "https"])?;
            check_url("streamer-url", streamer, &["ws", "wss"])?;
            Endpoints::Remote {
                api_url: api.clone(),
                streamer_url: streamer.clone(),
            }
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(bad("api-url", "--api-url and --streamer-url go together"));
        }
        (None, None) => match args.upstream {
            UpstreamKind::Demo => Endpoints::EmbeddedSimulator,
            UpstreamKind::Sandbox => Endpoints::Remote {
                api_url: "https://api.cert.tastyworks.com".into(),
                streamer_url: "wss://streamer.cert.tastyworks.com".into(),
            },
            UpstreamKind::Production => Endpoints::Remote {
                api_url: "https://api.tastyworks.com".into(),
                streamer_url: "wss://streamer.tastyworks.com".into(),
            },
        },
    })
}

/// How the gateway signs in upstream: OAuth or a session login, or the simulator's demo
/// credentials when the upstream is the simulator.
fn credentials(args: &ServeArgs, endpoints: &Endpoints) -> Result<Credentials, ConfigError> {
    Ok(
        match (
            args.client_secret.clone(),
            args.refresh_token.clone(),
            args.login.clone(),
            args.password.clone(),
        ) {
            (Some(client_secret), Some(refresh_token), None, None) => Credentials::OAuth {
                client_secret,
                refresh_token,
            },
            (None, None, Some(login), Some(password)) => Credentials::Session { login, password },
            (None, None, None, None) => {
                let real = matches!(endpoints, Endpoints::Remote { .. })
                    && args.upstream != UpstreamKind::Demo
                    && args.api_url.is_none();
                if real {
                    return Err(bad(
                        "client-secret",
                        "sandbox and production need --client-secret and --refresh-token (or --login and --password)",
                    ));
                }
                // The simulator's own demo credentials: they open nothing but made-up accounts.
                let demo = crate::sim::SimCredentials::default();
                Credentials::OAuth {
                    client_secret: demo.client_secret.into(),
                    refresh_token: demo.refresh_token.into(),
                }
            }
            _ => {
                return Err(bad(
                    "client-secret",
                    "give --client-secret with --refresh-token, or --login with --password, not a mix",
                ));
            }
        },
    )
}

/// The consumer keys, required beyond loopback and in front of any real upstream.
/// Tokens count as credentials: a gateway with only tokens configured is not open.
fn api_keys(args: &ServeArgs, endpoints: &Endpoints, tokens: bool) -> Result<ApiKeys, ConfigError> {
    use secrecy::ExposeSecret;
    let api_keys = ApiKeys::parse(args.api_keys.iter().map(|k| k.expose_secret()))
        .map_err(|e| bad("api-keys", e.to_string()))?;
    // Anything but the embedded simulator may be real money: --api-url too.
    let real_upstream = matches!(endpoints, Endpoints::Remote { .. });
    let exposed = !args.listen.ip().is_loopback();
    if api_keys.is_empty() && !tokens && exposed {
        return Err(bad(
            "api-keys",
            "consumer API keys are required when listening beyond loopback (e.g. TTGW_API_KEYS=reader:SECRET:*)",
        ));
    }
    if api_keys.is_empty() && !tokens && real_upstream && !args.insecure_open_api {
        return Err(bad(
            "api-keys",
            "consumer API keys are required whenever the upstream is not the embedded simulator (--api-url, sandbox, production): give TTGW_API_KEYS=reader:SECRET:* (or --insecure-open-api for a benchmark against a local simulator)",
        ));
    }
    Ok(api_keys)
}

/// The TLS certificate and key, both readable files, or neither.
fn tls_files(args: &ServeArgs) -> Result<Option<TlsFiles>, ConfigError> {
    Ok(match (args.tls_cert.clone(), args.tls_key.clone()) {
        (Some(cert), Some(key)) => {
            for (name, path) in [("tls-cert", &cert), ("tls-key", &key)] {
                if !path.is_file() {
                    return Err(bad(
                        name,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
            Some(TlsFiles { cert, key })
        }
        (None, None) => None,
        _ => return Err(bad("tls-cert", "--tls-cert and --tls-key go together")),
    })
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn parse_origin(origin: &str) -> Result<axum::http::HeaderValue, ConfigError> {
    let url = reqwest::Url::parse(origin)
        .map_err(|e| bad("cors-origins", format!("`{origin}` is not an origin ({e})")))?;
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !origin.ends_with('/');
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare {
        return Err(bad(
            "cors-origins",
            format!("`{origin}` must be scheme://host[:port], like https://app.example.com"),
        ));
    }
    axum::http::HeaderValue::from_str(origin).map_err(|_| {
        bad(
            "cors-origins",
            format!("`{origin}` is not a valid header value"),
        )
    })
}

fn check_url(key: &'static str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(key, format!("not a URL ({e})")))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(bad(
            key,
            format!("scheme must be one of {}", schemes.join(", ")),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_with_aliases_and_errors_are_masked() {
        let parsed = parse_accounts(&["main=5WT31842".into(), " 5WU09822 ".into()]).unwrap();
        assert_eq!(
            parsed,
            vec![
                AccountChoice {
                    alias: Some("main".into()),
                    number: "5WT31842".into()
                },
                AccountChoice {
                    alias: None,
                    number: "5WU09822".into()
                },
            ]
        );
        let error = parse_accounts(&["bad alias=5WT31842".into()])
            .unwrap_err()
            .to_string();
        assert!(!error.contains("5WT31842"), "{error}");
        assert!(error.contains("***1842"), "{error}");
        let error = parse_accounts(&["5WT31842".into(), "x=5WT31842".into()])
            .unwrap_err()
            .to_string();
        assert!(!error.contains("5WT31842"), "{error}");
    }
}
