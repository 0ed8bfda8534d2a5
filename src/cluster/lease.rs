//! Leases: exactly one node holds each account's upstream socket, cluster-wide. A lease is a
//! key of the `<prefix>_lease` bucket (whose TTL is the lease's): `create` takes it (the KV
//! revision then is the holder's *term*), `update(revision)` renews it in its own task, and
//! a holder that has not renewed for `ttl - margin` (measured from when the last good renew
//! was *sent*) fences itself before anyone else can take it. Appends are fenced on the
//! journal too (log::jetstream), so a paused former holder cannot write after a takeover.
//!
//! Accounts spread over the live nodes (the `<prefix>_nodes` bucket) by rendezvous hashing
//! with bounded loads: each account's preferred node tries first, others only once it has
//! been free a while; a holder that is not the preferred node hands the account over, a few
//! at a time, so a node that joins takes its share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::Cluster;

/// Why a lease ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseEnd {
    /// Another node holds it now (its revision moved, or the journal refused an append).
    Deposed,
    /// No renew got through in time: stopped before the lease could pass to another node.
    Fenced,
    /// Handed to the account's preferred node (spreading accounts over the nodes).
    Handover,
    /// Released by this node (shutdown).
    Released,
}

impl LeaseEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposed => "deposed",
            Self::Fenced => "fenced",
            Self::Handover => "handover",
            Self::Released => "released",
        }
    }
}

/// What this node knows of one account's lease key.
#[derive(Clone, Debug)]
struct Seen {
    node: Option<String>,
    /// The node that deleted the key (handing it over): not the one to take it back.
    released_by: Option<String>,
    /// When a write of the key was last seen (a holder renews every `renew`).
    at: Instant,
}

/// The node's leases: taking, renewing, handing over.
pub struct Leases {
    cluster: Cluster,
    node: String,
    ttl: Duration,
    renew: Duration,
    accounts: Vec<String>,
    live_nodes: watch::Receiver<Vec<String>>,
    /// The assignment for the live nodes it was computed for: it changes only when they
    /// do, and every account asks for it every renew period.
    assigned: Mutex<(Vec<String>, HashMap<String, String>)>,
    seen: Mutex<HashMap<String, Seen>>,
    freed: Mutex<HashMap<String, Arc<Notify>>>,
    handovers: Mutex<(Instant, u32)>,
}

/// A held lease. Dropping it without [`LeaseGuard::release`] leaves the key to expire.
pub struct LeaseGuard {
    pub account: String,
    /// The KV revision the lease was taken at: the holder's term (in journal message ids).
    pub term: u64,
    end: watch::Sender<Option<LeaseEnd>>,
    /// Turns true when the account should move to its preferred node: the holder winds
    /// down (its queued appends land, the lease is still renewed) and then releases.
    handover: watch::Sender<bool>,
    revision: Arc<Mutex<u64>>,
    leases: Arc<Leases>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Leases {
    /// Starts the node's membership and lease-watch tasks for `accounts` (every node
    /// serves the same ones); they end on `shutdown`.
    pub fn start(
        cluster: Cluster,
        accounts: Vec<String>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let ttl = cluster.settings.lease_ttl;
        let node = cluster.settings.node_id.clone();
        let (live_tx, live_nodes) = watch::channel(vec![node.clone()]);
        let leases = Arc::new(Self {
            cluster,
            node,
            ttl,
            renew: ttl / 5,
            accounts,
            live_nodes,
            assigned: Mutex::new((Vec::new(), HashMap::new())),
            seen: Mutex::new(HashMap::new()),
            freed: Mutex::new(HashMap::new()),
            handovers: Mutex::new((Instant::now(), 0)),
        });
        tokio::spawn(membership(leases.clone(), live_tx, shutdown.clone()));
        tokio::spawn(watch_holders(leases.clone(), shutdown));
        leases
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The node holding `account`, as last seen.
    pub fn holder(&self, account: &str) -> Option<String> {
        let seen = lock(&self.seen);
        let entry = seen.get(account)?;
        // A key not renewed for a whole TTL has expired.
        (entry.at.elapsed() <= self.ttl)
            .then(|| entry.node.clone())
            .flatten()
    }

    /// The node `account` should be held by among the live ones (less the one that just
    /// handed it over, which may still look live).
    pub fn preferred(&self, account: &str) -> Option<String> {
        let nodes = self.live_nodes.borrow().clone();
        let preferred = {
            let mut assigned = lock(&self.assigned);
            if assigned.0 != nodes {
                *assigned = (nodes.clone(), assignment(&self.accounts, &nodes));
            }
            assigned.1.get(account).cloned()?
        };
        let leaving = lock(&self.seen)
            .get(account)
            .and_then(|s| s.released_by.clone());
        if leaving.as_deref() != Some(preferred.as_str()) {
            return Some(preferred);
        }
        // Only for this account, and only while the key is free: the next in its ranking
        // (recomputing every account without the leaver would move others, and bounce).
        let mut ranked: Vec<&String> = nodes.iter().filter(|n| **n != preferred).collect();
        ranked.sort_by_key(|n| std::cmp::Reverse(weight(n, account)));
        ranked.first().map(|n| n.to_string())
    }

    fn freed(&self, account: &str) -> Arc<Notify> {
        lock(&self.freed)
            .entry(account.to_string())
            .or_default()
            .clone()
    }

    /// Whether this node should try to take `account` now: it looks free (never written, or
    /// not renewed for a TTL), and this node is its preferred one or it has been free for a
    /// while (the preferred node may be gone).
    fn should_try(&self, account: &str, free_since: &mut Option<Instant>) -> bool {
        let free = match lock(&self.seen).get(account) {
            Some(seen) => seen.node.is_none() || seen.at.elapsed() > self.ttl,
            None => true,
        };
        if !free {
            *free_since = None;
            return false;
        }
        let since = *free_since.get_or_insert_with(Instant::now);
        self.preferred(account).as_deref() == Some(self.node.as_str())
            || since.elapsed() >= self.renew * 3
    }

    /// Waits until this node holds `account`'s lease.
    pub async fn acquire(self: &Arc<Self>, account: &str) -> LeaseGuard {
        let freed = self.freed(account);
        let mut free_since = None;
        loop {
            if self.should_try(account, &mut free_since)
                && let Some(term) = self.try_create(account).await
            {
                return self.hold(account, term);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.renew) => {}
                _ = freed.notified() => {}
            }
        }
    }

    async fn try_create(&self, account: &str) -> Option<u64> {
        let value = Bytes::from(self.node.clone());
        match tokio::time::timeout(self.renew, self.cluster.leases.create(account, value)).await {
            Ok(Ok(term)) => Some(term),
            _ => None,
        }
    }

    fn hold(self: &Arc<Self>, account: &str, term: u64) -> LeaseGuard {
        let (end, _) = watch::channel(None);
        let (handover, _) = watch::channel(false);
        let guard = LeaseGuard {
            account: account.to_string(),
            term,
            end,
            handover: handover.clone(),
            revision: Arc::new(Mutex::new(term)),
            leases: self.clone(),
        };
        lock(&self.seen).insert(
            account.to_string(),
            Seen {
                node: Some(self.node.clone()),
                released_by: None,
                at: Instant::now(),
            },
        );
        crate::cluster::metrics::lease_taken();
        tokio::spawn(renew(
            self.clone(),
            account.to_string(),
            guard.revision.clone(),
            guard.end.clone(),
            handover,
        ));
        guard
    }

    /// Whether a held account may be handed to its preferred node now: a few per renew
    /// period, so a joining node takes its share without a stampede of reconnects.
    fn may_hand_over(&self, account: &str) -> bool {
        let Some(preferred) = self.preferred(account) else {
            return false;
        };
        if preferred == self.node {
            return false;
        }
        let mut window = lock(&self.handovers);
        if window.0.elapsed() >= self.renew {
            *window = (Instant::now(), 0);
        }
        let allowed = (self.accounts.len() as u32 / 10).max(1);
        if window.1 >= allowed {
            return false;
        }
        window.1 += 1;
        true
    }
}

impl LeaseGuard {
    /// Ends the lease now (the journal refused an append: another node holds it).
    pub fn fence(&self, why: LeaseEnd) {
        self.end.send_if_modified(|end| {
            let first = end.is_none();
            if first {
                *end = Some(why);
            }
            first
        });
    }

    /// Follows the lease's end (`None` while held).
    pub fn ended(&self) -> watch::Receiver<Option<LeaseEnd>> {
        self.end.subscribe()
    }

    /// Follows whether the account is to be handed over (see [`LeaseGuard::release`]).
    pub fn handover(&self) -> watch::Receiver<bool> {
        self.handover.subscribe()
    }

    /// Whether the lease still holds.
    pub fn holds(&self) -> bool {
        self.end.borrow().is_none()
    }

    /// Something that can end the lease from elsewhere (the journal, when it is deposed).
    pub fn fencer(&self) -> Fencer {
        Fencer(self.end.clone())
    }

    /// Gives the lease up: the next node can take it at once. A lease another node took
    /// meanwhile is left alone (the delete is compare-and-set on our revision anyway).
    pub async fn release(self) {
        let before = *self.end.borrow();
        let why = if *self.handover.borrow() {
            LeaseEnd::Handover
        } else {
            LeaseEnd::Released
        };
        self.fence(why);
        if before == Some(LeaseEnd::Deposed) {
            return;
        }
        let revision = *lock(&self.revision);
        let delete = self
            .leases
            .cluster
            .leases
            .delete_expect_revision(&self.account, Some(revision));
        let _ = tokio::time::timeout(self.leases.renew, delete).await;
    }
}

/// Ends a lease from outside its holder's task.
#[derive(Clone)]
pub struct Fencer(watch::Sender<Option<LeaseEnd>>);

impl Fencer {
    pub fn fence(&self, why: LeaseEnd) {
        self.0.send_if_modified(|end| {
            let first = end.is_none();
            if first {
                *end = Some(why);
            }
            first
        });
    }

    /// Whether the lease ended.
    pub fn ended(&self) -> bool {
        self.0.borrow().is_some()
    }
}

/// Renews one lease every `renew` until it ends; fences it when renewing failed for
/// `ttl - margin` since the last good renew was sent, and hands it over when asked.
async fn renew(
    leases: Arc<Leases>,
    account: String,
    revision: Arc<Mutex<u64>>,
    end: watch::Sender<Option<LeaseEnd>>,
    handover: watch::Sender<bool>,
) {
    renew_while_held(&leases, &account, &revision, &end, &handover).await;
    let why = end.borrow().unwrap_or(LeaseEnd::Released);
    crate::cluster::metrics::lease_ended(why.as_str());
}

async fn renew_while_held(
    leases: &Leases,
    account: &str,
    revision: &Mutex<u64>,
    end: &watch::Sender<Option<LeaseEnd>>,
    handover: &watch::Sender<bool>,
) {
    let margin = leases.renew.max(Duration::from_millis(500));
    let fence_after = leases.ttl.saturating_sub(margin);
    let mut ended = end.subscribe();
    let mut last_good = Instant::now();
    let mut next = last_good + leases.renew;
    let value = Bytes::from(leases.node.clone());
    loop {
        // Never past the fence deadline: a renew that hangs must not hold the fence off.
        let fence_at = last_good + fence_after;
        tokio::select! {
            _ = tokio::time::sleep_until(next.min(fence_at)) => {}
            _ = ended.changed() => return,
        }
        if end.borrow().is_some() {
            return;
        }
        let sent = Instant::now();
        next = sent + leases.renew;
        let current = *lock(revision);
        let update = leases
            .cluster
            .leases
            .update(account, value.clone(), current);
        let limit = leases.renew.min(fence_at.saturating_duration_since(sent));
        match tokio::time::timeout(limit, update).await {
            Ok(Ok(next)) => {
                *lock(revision) = next;
                last_good = sent;
            }
            Ok(Err(error)) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // An earlier renew that timed out may have landed: the key is still ours.
                match ours_at(leases, account).await {
                    Some(now) => {
                        *lock(revision) = now;
                        last_good = sent;
                    }
                    None => {
                        end_lease(end, account, LeaseEnd::Deposed);
                        return;
                    }
                }
            }
            _ => crate::cluster::metrics::lease_renew_failed(),
        }
        if last_good.elapsed() >= fence_after {
            end_lease(end, account, LeaseEnd::Fenced);
            return;
        }
        if !*handover.borrow() && leases.may_hand_over(account) {
            tracing::info!(%account, "handing the account over to its preferred node");
            let _ = handover.send(true);
        }
    }
}

/// The key's revision if this node wrote its latest value (a renew whose answer was lost).
async fn ours_at(leases: &Leases, account: &str) -> Option<u64> {
    let entry = tokio::time::timeout(leases.renew, leases.cluster.leases.entry(account))
        .await
        .ok()?
        .ok()??;
    (entry.operation == kv::Operation::Put && entry.value == leases.node.as_bytes())
        .then_some(entry.revision)
}

fn end_lease(end: &watch::Sender<Option<LeaseEnd>>, account: &str, why: LeaseEnd) {
    end.send_if_modified(|end| {
        let first = end.is_none();
        if first {
            *end = Some(why);
        }
        first
    });
    tracing::warn!(%account, why = why.as_str(), "lease ended");
}

/// Announces this node every renew period and follows which nodes are live.
async fn membership(
    leases: Arc<Leases>,
    live: watch::Sender<Vec<String>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let bucket = &leases.cluster.nodes;
    loop {
        let _ = tokio::time::timeout(
            leases.renew,
            bucket.put(&leases.node, Bytes::from_static(b"live")),
        )
        .await;
        if let Ok(Ok(mut keys)) = tokio::time::timeout(leases.renew, bucket.keys()).await {
            let mut nodes = Vec::new();
            while let Ok(Some(Ok(key))) = tokio::time::timeout(leases.renew, keys.next()).await {
                nodes.push(key);
            }
            if !nodes.contains(&leases.node) {
                nodes.push(leases.node.clone());
            }
            nodes.sort();
            live.send_if_modified(|current| {
                let changed = *current != nodes;
                *current = nodes;
                changed
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(leases.renew) => {}
            _ = shutdown.changed() => {
                let _ = tokio::time::timeout(leases.renew, bucket.delete(&leases.node)).await;
                return;
            }
        }
    }
}

/// Follows every lease key: who holds what (for `upstream.node`), and when a key is
/// deleted (a hand-over), wakes the nodes waiting for it.
async fn watch_holders(leases: Arc<Leases>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Ok(mut entries) = leases.cluster.leases.watch_with_history(">").await {
            loop {
                let entry = tokio::select! {
                    entry = entries.next() => entry,
                    _ = shutdown.changed() => return,
                };
                let Some(Ok(entry)) = entry else { break };
                let node = (entry.operation == kv::Operation::Put)
                    .then(|| String::from_utf8_lossy(&entry.value).into_owned());
                let freed = node.is_none();
                let mut seen = lock(&leases.seen);
                let released_by = match (&node, seen.get(&entry.key)) {
                    (None, Some(before)) => before.node.clone(),
                    _ => None,
                };
                seen.insert(
                    entry.key.clone(),
                    Seen {
                        node,
                        released_by,
                        at: Instant::now(),
                    },
                );
                drop(seen);
                if freed {
                    leases.freed(&entry.key).notify_waiters();
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(leases.renew) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Which node each account should be held by: rendezvous hashing (each account ranks the
/// nodes by a hash of both, so adding a node moves only its share) with bounded loads (no
/// node gets more than 10 % over an even share). Every node computes the same answer.
pub fn assignment(accounts: &[String], nodes: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if nodes.is_empty() {
        return out;
    }
    let cap = (accounts.len() * 11).div_ceil(nodes.len() * 10).max(1);
    let mut load: HashMap<&str, usize> = HashMap::new();
    let mut sorted: Vec<&String> = accounts.iter().collect();
    sorted.sort();
    for account in sorted {
        let mut ranked: Vec<(u64, &String)> =
            nodes.iter().map(|n| (weight(n, account), n)).collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let chosen = ranked
            .iter()
            .map(|(_, n)| *n)
            .find(|n| load.get(n.as_str()).copied().unwrap_or(0) < cap)
            .unwrap_or(ranked[0].1);
        *load.entry(chosen.as_str()).or_default() += 1;
        out.insert(account.clone(), chosen.clone());
    }
    out
}

fn weight(node: &str, account: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(node.as_bytes())
        .chain_update([0])
        .chain_update(account.as_bytes())
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn thirty_accounts_spread_7_to_13_over_3_nodes_whatever_the_node_ids() {
        let accounts = names("account-", 30);
        for trial in 0..200 {
            let nodes: Vec<String> = (0..3).map(|i| format!("host{i}-{trial:x}")).collect();
            let assigned = assignment(&accounts, &nodes);
            for node in &nodes {
                let held = assigned.values().filter(|n| *n == node).count();
                assert!((7..=13).contains(&held), "{node} got {held}");
            }
        }
    }

    #[test]
    fn adding_a_node_moves_about_its_share() {
        let accounts = names("a", 300);
        let before = assignment(&accounts, &names("n", 3));
        let after = assignment(&accounts, &names("n", 4));
        let moved = accounts.iter().filter(|a| before[*a] != after[*a]).count();
        assert!(moved <= 300 / 4 + 40, "{moved} of 300 moved");
        assert!(after.values().any(|n| n == "n3"));
    }
}
