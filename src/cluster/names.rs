//! What the cluster's objects in NATS are called: every name from `--nats-prefix` and an
//! account's public id, so several gateways can share one NATS and no number appears.

/// The names of one gateway's stream, subjects and buckets.
#[derive(Clone, Debug)]
pub struct Names {
    /// `<prefix>.evt`
    subject_root: String,
    /// `<PREFIX>_EVT`
    pub stream: String,
    pub lease_bucket: String,
    pub node_bucket: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Self {
            subject_root: format!("{prefix}.evt"),
            stream: format!("{}_EVT", prefix.to_ascii_uppercase()),
            lease_bucket: format!("{prefix}_lease"),
            node_bucket: format!("{prefix}_nodes"),
        }
    }

    /// The journal subject of one account.
    pub fn subject(&self, account: &str) -> String {
        format!("{}.{account}", self.subject_root)
    }

    /// Every account's subject.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.subject_root)
    }

    /// The account a journal subject belongs to.
    pub fn account_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.subject_root.as_str())?
            .strip_prefix('.')
            .filter(|account| !account.is_empty() && !account.contains('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_and_names_carry_the_prefix() {
        let names = Names::new("ttgw");
        assert_eq!(names.subject("main"), "ttgw.evt.main");
        assert_eq!(names.account_of("ttgw.evt.main"), Some("main"));
        assert_eq!(names.account_of("ttgw.evt."), None);
        assert_eq!(names.account_of("other.evt.main"), None);
        assert_eq!(names.stream, "TTGW_EVT");
        assert_eq!(names.lease_bucket, "ttgw_lease");
    }
}
