//! Routes what the simulator sends to the streamer sockets that want it: an account's
//! notifications only to the sockets that `connect`ed that account; user channels and
//! faults to every socket, each filtering as before. A broadcast hub that woke every socket
//! for every event cost sockets x events wake-ups, 25 M a second at 5,000 accounts of one
//! event a second each (the many-accounts workload of `bench/run.sh`), so the simulator,
//! not the gateway, set the latency there. Each socket has a bounded inbox, in publish
//! order: one that falls behind is closed as a slow consumer, as the hub's lag was.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::state::{Channel, Outbound};

/// Messages a socket may have waiting before it is cut as a slow consumer.
const INBOX: usize = 65_536;

#[derive(Default)]
pub struct Router {
    routes: Mutex<Routes>,
}

#[derive(Default)]
struct Routes {
    next_id: u64,
    inboxes: HashMap<u64, Route>,
    by_account: HashMap<String, HashSet<u64>>,
}

struct Route {
    inbox: mpsc::Sender<Arc<Outbound>>,
    accounts: BTreeSet<String>,
}

impl Router {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new socket's id and inbox; it gets account notifications once [`Router::route`]
    /// names its accounts.
    pub fn subscribe(&self) -> (u64, mpsc::Receiver<Arc<Outbound>>) {
        let (inbox, receiver) = mpsc::channel(INBOX);
        let mut routes = self.routes();
        routes.next_id += 1;
        let id = routes.next_id;
        routes.inboxes.insert(
            id,
            Route {
                inbox,
                accounts: BTreeSet::new(),
            },
        );
        (id, receiver)
    }

    /// The accounts socket `id` has `connect`ed, now.
    pub fn route(&self, id: u64, accounts: &BTreeSet<String>) {
        let mut routes = self.routes();
        let Some(route) = routes.inboxes.get_mut(&id) else {
            return;
        };
        if route.accounts == *accounts {
            return;
        }
        let before = std::mem::replace(&mut route.accounts, accounts.clone());
        for account in before.difference(accounts) {
            routes.unroute(id, account);
        }
        for account in accounts {
            routes
                .by_account
                .entry(account.clone())
                .or_default()
                .insert(id);
        }
    }

    /// Forgets socket `id` (it ended, or fell behind: its inbox then ends).
    pub fn remove(&self, id: u64) {
        self.routes().remove(id);
    }

    /// Sends `outbound` to the sockets it concerns, in publish order per socket.
    pub fn send(&self, outbound: Outbound) {
        let outbound = Arc::new(outbound);
        let mut routes = self.routes();
        let targets: Vec<u64> = match &*outbound {
            Outbound::Notify {
                channel: Channel::Account(number),
                ..
            } => routes
                .by_account
                .get(number)
                .map(|ids| ids.iter().copied().collect())
                .unwrap_or_default(),
            _ => routes.inboxes.keys().copied().collect(),
        };
        for id in targets {
            let full = routes
                .inboxes
                .get(&id)
                .is_some_and(|route| route.inbox.try_send(outbound.clone()).is_err());
            if full {
                routes.remove(id);
            }
        }
    }
}

impl Routes {
    fn unroute(&mut self, id: u64, account: &str) {
        if let Some(ids) = self.by_account.get_mut(account) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_account.remove(account);
            }
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(route) = self.inboxes.remove(&id) {
            for account in &route.accounts {
                self.unroute(id, account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify(account: &str) -> Outbound {
        Outbound::Notify {
            channel: Channel::Account(account.into()),
            text: account.into(),
        }
    }

    #[test]
    fn an_accounts_notifications_reach_only_the_sockets_that_connected_it() {
        let router = Router::default();
        let (a, mut inbox_a) = router.subscribe();
        let (b, mut inbox_b) = router.subscribe();
        router.route(a, &BTreeSet::from(["5WT1".to_string()]));
        router.route(b, &BTreeSet::from(["5WT2".to_string()]));
        router.send(notify("5WT1"));
        router.send(Outbound::Notify {
            channel: Channel::UserMessages,
            text: "all".into(),
        });
        let text = |o: Arc<Outbound>| match &*o {
            Outbound::Notify { text, .. } => text.to_string(),
            Outbound::Fault { .. } => "fault".into(),
        };
        assert_eq!(inbox_a.try_recv().map(text).ok().as_deref(), Some("5WT1"));
        assert_eq!(inbox_a.try_recv().map(text).ok().as_deref(), Some("all"));
        assert_eq!(inbox_b.try_recv().map(text).ok().as_deref(), Some("all"));
        assert!(inbox_b.try_recv().is_err(), "b never connected 5WT1");
        router.remove(a);
        router.send(notify("5WT1"));
        assert!(inbox_a.try_recv().is_err(), "a removed: its inbox ended");
    }
}
