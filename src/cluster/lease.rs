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
use tokio::task::JoinHandle;
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

/// Assignments kept: the live nodes', and those with a recent leaver or two.
const ASSIGNMENTS_CACHED: usize = 4;

/// An assignment (account -> node) with the node set it was computed for.
type Assignment = (Vec<String>, HashMap<String, String>);

/// What this node knows of one account's lease key.
#[derive(Clone, Debug)]
struct Seen {
    node: Option<String>,
    /// The node that deleted the key (handing it over): not the one to take it back.
    released_by: Option<String>,
    /// When a write of the key was last seen (a holder renews every `renew`).
    at: Instant,
    /// The write's revision: a watch started again replays the latest write of each key,
    /// which must not look like a fresh renew (0 for this node's own takes).
    revision: u64,
}

/// The node's leases: taking, renewing, handing over.
pub struct Leases {
    cluster: Cluster,
    node: String,
    ttl: Duration,
    renew: Duration,
    accounts: Vec<String>,
    live_nodes: watch::Receiver<Vec<String>>,
    /// The last few assignments, with the nodes each was computed for: it changes only
    /// when they do, and every account asks for it every renew period.
    assigned: Mutex<Vec<Assignment>>,
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
    /// The renew task: a release waits for it, so that no renew lands after the delete
    /// read the revision (the delete would then miss, and the key stay for a whole TTL).
    renewer: Option<JoinHandle<()>>,
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
            assigned: Mutex::new(Vec::new()),
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
        let live = self.live_nodes.borrow().clone();
        let leaving = lock(&self.seen)
            .get(account)
            .and_then(|s| s.released_by.clone());
        successor(&live, leaving.as_deref(), account, |nodes| {
            self.assigned(nodes, account)
        })
    }

    /// `account`'s node in the assignment for `nodes`, from the last few computed (the live
    /// nodes, and with each leaver), since every account asks every renew period.
    fn assigned(&self, nodes: &[String], account: &str) -> Option<String> {
        let mut cache = lock(&self.assigned);
        match cache.iter().position(|(for_nodes, _)| for_nodes == nodes) {
            // Most recently used first, so a rolling restart's few sets all stay cached.
            Some(at) => cache[..=at].rotate_right(1),
            None => {
                cache.insert(0, (nodes.to_vec(), assignment(&self.accounts, nodes)));
                cache.truncate(ASSIGNMENTS_CACHED);
            }
        }
        cache[0].1.get(account).cloned()
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
        let revision = Arc::new(Mutex::new(term));
        lock(&self.seen).insert(
            account.to_string(),
            Seen {
                node: Some(self.node.clone()),
                released_by: None,
                at: Instant::now(),
                revision: term,
            },
        );
        crate::cluster::metrics::lease_taken();
        let renewer = tokio::spawn(renew(
            self.clone(),
            account.to_string(),
            revision.clone(),
            end.clone(),
            handover.clone(),
        ));
        LeaseGuard {
            account: account.to_string(),
            term,
            end,
            handover,
            revision,
            renewer: Some(renewer),
            leases: self.clone(),
        }
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
    pub async fn release(mut self) {
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
        if let Some(renewer) = self.renewer.take() {
            let _ = tokio::time::timeout(self.leases.renew, renewer).await;
        }
        let store = &self.leases.cluster.leases;
        let revision = *lock(&self.revision);
        let delete = store.delete_expect_revision(&self.account, Some(revision));
        if let Ok(Ok(())) = tokio::time::timeout(self.leases.renew, delete).await {
            return;
        }
        // A renew whose answer was lost may have moved the key on: delete it if still ours.
        if let Some(revision) = ours_at(&self.leases, &self.account).await {
            let delete = store.delete_expect_revision(&self.account, Some(revision));
            let _ = tokio::time::timeout(self.leases.renew, delete).await;
        }
    }
}

impl Drop for LeaseGuard {
    /// Stops the renewing (a guard dropped without a release, e.g. its task cancelled,
    /// must not keep the key alive): the key then expires.
    fn drop(&mut self) {
        self.fence(LeaseEnd::Released);
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
        if let Some(mut nodes) = live_nodes(&leases).await {
            if !nodes.contains(&leases.node) {
                nodes.push(leases.node.clone());
            }
            nodes.sort();
            live.send_if_modified(|current| {
                let changed = *current != nodes;
                if changed {
                    tracing::info!(nodes = ?nodes, "live nodes changed");
                }
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

/// Every node with a membership key, or `None` if the listing did not complete (a partial
/// list would move accounts away from nodes that are live).
async fn live_nodes(leases: &Leases) -> Option<Vec<String>> {
    let listing = tokio::time::timeout(leases.renew, leases.cluster.nodes.keys());
    let mut keys = listing.await.ok()?.ok()?;
    let mut nodes = Vec::new();
    loop {
        match tokio::time::timeout(leases.renew, keys.next()).await {
            Ok(Some(Ok(key))) => nodes.push(key),
            Ok(None) => return Some(nodes),
            _ => return None,
        }
    }
}

/// Follows every lease key: who holds what (for `upstream.node`), and when a key is
/// deleted (a hand-over), wakes the nodes waiting for it.
async fn watch_holders(leases: Arc<Leases>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Ok(mut entries) = leases.cluster.leases.watch_with_history(">").await {
            loop {
                // Every held lease is renewed every `renew`: a watch quiet for a whole TTL
                // is more likely stuck than idle (seen after a SIGSTOP: its consumer was
                // never recreated). Watching afresh costs one consumer and the last value
                // of every key.
                let entry = tokio::select! {
                    entry = tokio::time::timeout(leases.ttl, entries.next()) => entry,
                    _ = shutdown.changed() => return,
                };
                let Ok(Some(Ok(entry))) = entry else {
                    crate::cluster::metrics::lease_watch_restarted();
                    break;
                };
                let node = (entry.operation == kv::Operation::Put)
                    .then(|| String::from_utf8_lossy(&entry.value).into_owned());
                let freed = node.is_none();
                let mut seen = lock(&leases.seen);
                let before = seen.get(&entry.key);
                let released_by = match (&node, before) {
                    // A replayed delete keeps who released the key.
                    (None, Some(before)) => before.node.clone().or(before.released_by.clone()),
                    _ => None,
                };
                let at = match before {
                    Some(before) if before.revision == entry.revision => before.at,
                    _ => Instant::now(),
                };
                seen.insert(
                    entry.key.clone(),
                    Seen {
                        node,
                        released_by,
                        at,
                        revision: entry.revision,
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

/// The node `account` should go to among the `live` nodes, `leaving` being the node that
/// just released it (if one did), with `assigned` the assignment's answer for a node set.
/// The leaver counts as live whether or not its membership key is gone yet: every node must
/// name the same successor, though they see the leaver go at different moments (a node that
/// computed without it while another computed with it left the key free for 3 renew
/// periods). If the leaver is the assigned node, the next in this account's ranking only
/// (recomputing every account without the leaver would move others, and bounce).
fn successor(
    live: &[String],
    leaving: Option<&str>,
    account: &str,
    assigned: impl FnOnce(&[String]) -> Option<String>,
) -> Option<String> {
    let Some(leaving) = leaving else {
        return assigned(live);
    };
    let mut nodes = live.to_vec();
    if !nodes.iter().any(|n| n == leaving) {
        nodes.push(leaving.to_string());
        nodes.sort();
    }
    let preferred = assigned(&nodes)?;
    if preferred != leaving {
        return Some(preferred);
    }
    let mut ranked: Vec<&String> = nodes.iter().filter(|n| **n != preferred).collect();
    ranked.sort_by_key(|n| std::cmp::Reverse(weight(n, account)));
    ranked.first().map(|n| n.to_string())
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
    fn every_node_names_the_same_successor_whether_or_not_it_saw_the_leaver_go() {
        let accounts = names("account-", 30);
        let all = names("node-", 3);
        let without_leaver = vec![all[0].clone(), all[2].clone()];
        let assigned =
            |nodes: &[String], account: &str| assignment(&accounts, nodes).get(account).cloned();
        for account in &accounts {
            let seen_with = successor(&all, Some("node-1"), account, |n| assigned(n, account));
            let seen_without = successor(&without_leaver, Some("node-1"), account, |n| {
                assigned(n, account)
            });
            assert_eq!(seen_with, seen_without, "{account}");
            assert_ne!(seen_with.as_deref(), Some("node-1"), "{account}");
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
