//! Startup, step "cluster" (with --nats-url): connect to NATS, open the JetStream event log
//! over it (the accounts are then built on it), and, once they are, start its replica and
//! the node's leases, which decide where each upstream socket runs (`links`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::StartError;
use super::accounts::Served;
use crate::cluster::lease::Leases;
use crate::cluster::{Cluster, ClusterSettings};
use crate::log::{EventLog, RingLimits, jetstream::JetStreamLog};

/// How long a starting node waits for NATS to answer.
const NATS_PATIENCE: Duration = Duration::from_secs(30);

/// A node's part of the cluster: its connection and its log.
pub struct Joined {
    pub cluster: Cluster,
    pub log: Arc<JetStreamLog>,
}

/// Connects and opens the log (before the accounts are built on it).
pub async fn join(settings: &ClusterSettings, limits: RingLimits) -> Result<Joined, StartError> {
    let cluster = Cluster::connect(settings.clone(), NATS_PATIENCE)
        .await
        .map_err(|e| StartError::Cluster(e.to_string()))?;
    crate::cluster::metrics::install();
    let log = JetStreamLog::new(cluster.clone(), limits)
        .await
        .map_err(StartError::Cluster)?;
    tracing::info!(node = %settings.node_id, epoch = %log.epoch(), "joined the cluster");
    Ok(Joined {
        cluster,
        log: Arc::new(log),
    })
}

/// Starts the replica and the leases for the served accounts.
pub fn start(joined: &Joined, served: &Served, shutdown: &watch::Receiver<bool>) -> Arc<Leases> {
    joined.log.start(shutdown.clone());
    let accounts = served
        .registry
        .all()
        .iter()
        .map(|a| a.info.public_id.clone())
        .collect();
    let leases = Leases::start(joined.cluster.clone(), accounts, shutdown.clone());
    joined.log.set_leases(leases.clone());
    leases
}
