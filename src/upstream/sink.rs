//! Where an account's streamer hands what it learned: events parsed from frames, REST
//! baselines, and changes of its link's status. upstream/ knows only this trait and model
//! types; the accounts implement it (wired together at startup), so upstream never reaches
//! into an account's internals.

use serde_json::Value;

use crate::model::state::{AccountState, Applied};
use crate::model::{EventKind, UpstreamStatus};

/// An account (or the user's own stream) as its streamer sees it.
pub trait AccountSink: Send + Sync {
    /// The account's public id (for logs; never the number).
    fn public_id(&self) -> &str;

    /// Masks, applies and publishes one pushed event; says what applying did.
    fn event(&self, kind: EventKind, data: Value, timestamp: Option<i64>) -> Applied;

    /// Diffs a REST baseline against the account's state and publishes the differences;
    /// returns how many there were.
    fn baseline(&self, baseline: AccountState) -> usize;

    /// Changes the link's status (error texts are masked by the account).
    fn status(&self, change: &mut dyn FnMut(&mut UpstreamStatus));
}

impl dyn AccountSink {
    /// [`AccountSink::status`] with a one-shot closure.
    pub fn update_status(&self, change: impl FnOnce(&mut UpstreamStatus)) {
        let mut change = Some(change);
        self.status(&mut |status| {
            if let Some(change) = change.take() {
                change(status);
            }
        });
    }
}
