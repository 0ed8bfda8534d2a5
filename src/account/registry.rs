//! The registry of served accounts, addressed by public id; and how public ids are chosen:
//! the operator's alias, else a slug of the account's nickname, never the account number.

use std::collections::HashSet;
use std::sync::Arc;

use super::Account;
use crate::mask::Masker;

/// Every served account, in configuration order.
#[derive(Default)]
pub struct Registry {
    accounts: Vec<Arc<Account>>,
    /// The account-independent stream (quote alerts, watchlists, user messages), if subscribed.
    user: Option<Arc<Account>>,
}

/// The public id of the account-independent stream; never given to an account.
pub const USER_STREAM_ID: &str = "user";

impl Registry {
    pub fn new(accounts: Vec<Arc<Account>>, user: Option<Arc<Account>>) -> Self {
        Self { accounts, user }
    }

    /// An account, or the account-independent stream (`user`).
    pub fn get(&self, public_id: &str) -> Option<&Arc<Account>> {
        self.accounts
            .iter()
            .chain(self.user.iter())
            .find(|a| a.info.public_id == public_id)
    }

    /// The served accounts.
    pub fn all(&self) -> &[Arc<Account>] {
        &self.accounts
    }

    /// The accounts and, if there is one, the account-independent stream.
    pub fn streams(&self) -> Vec<Arc<Account>> {
        self.accounts
            .iter()
            .chain(self.user.iter())
            .cloned()
            .collect()
    }
}

/// Lowercase ASCII letters and digits, runs of anything else as one `-`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(40).collect()
}

/// Whether an operator-given alias is usable as a public id.
pub fn valid_alias(alias: &str) -> bool {
    alias != USER_STREAM_ID
        && !alias.is_empty()
        && alias.len() <= 40
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Chooses a public id for each account: its alias, else its nickname's slug, else
/// `account-N`; unique, and never containing an account number.
pub fn public_ids(accounts: &[(Option<String>, Option<String>)], masker: &Masker) -> Vec<String> {
    let mut taken: HashSet<String> = accounts
        .iter()
        .filter_map(|(alias, _)| alias.clone())
        .collect();
    taken.insert(USER_STREAM_ID.to_string());
    accounts
        .iter()
        .enumerate()
        .map(|(index, (alias, nickname))| {
            if let Some(alias) = alias {
                return alias.clone();
            }
            // A nickname that holds an account number (in any case) must not become an id.
            let base = nickname
                .as_deref()
                .filter(|n| masker.mask_str(&n.to_ascii_uppercase()).is_none())
                .map(slug)
                .filter(|s| !s.is_empty() && masker.mask_str(&s.to_ascii_uppercase()).is_none())
                .unwrap_or_else(|| format!("account-{}", index + 1));
            let mut candidate = base.clone();
            let mut n = 2;
            while taken.contains(&candidate) {
                candidate = format!("{base}-{n}");
                n += 1;
            }
            taken.insert(candidate.clone());
            candidate
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_alias_then_nickname_and_are_unique() {
        let masker = Masker::new(["5WT31842"]);
        let ids = public_ids(
            &[
                (None, Some("Roth IRA".into())),
                (Some("main".into()), Some("Individual".into())),
                (None, Some("Roth IRA".into())),
                (None, Some("5WT31842".into())),
                (None, Some("User".into())),
                (None, None),
            ],
            &masker,
        );
        assert_eq!(
            ids,
            vec![
                "roth-ira",
                "main",
                "roth-ira-2",
                "account-4",
                "user-2",
                "account-6"
            ]
        );
    }

    #[test]
    fn aliases_are_checked() {
        assert!(valid_alias("main_1"));
        assert!(!valid_alias("a b"));
        assert!(!valid_alias(""));
        assert!(
            !valid_alias("user"),
            "reserved for the account-independent stream"
        );
    }
}
