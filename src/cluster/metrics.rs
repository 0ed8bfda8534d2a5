//! The cluster's own metrics, per node: leases held, takeovers, how leases ended, appends
//! refused by the journal's fencing, and the journal's publish latency.

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

const LEASES_HELD: &str = "ttgw_cluster_leases_held";
const TAKEOVERS: &str = "ttgw_cluster_takeovers_total";
const LEASE_ENDS: &str = "ttgw_cluster_lease_ends_total";
const RENEW_FAILURES: &str = "ttgw_cluster_lease_renew_failures_total";
const FENCED_APPENDS: &str = "ttgw_cluster_fenced_appends_total";
const PUBLISH_SECONDS: &str = "ttgw_cluster_journal_publish_seconds";
const PUBLISH_RETRIES: &str = "ttgw_cluster_journal_retries_total";
const SKIPPED: &str = "ttgw_cluster_journal_skipped_total";
const UNLED_APPENDS: &str = "ttgw_cluster_unled_appends_total";
const REPLICA_GAPS: &str = "ttgw_cluster_replica_gaps_total";
const REPLICA_STALLS: &str = "ttgw_cluster_replica_stalls_total";
const WATCH_RESTARTS: &str = "ttgw_cluster_lease_watch_restarts_total";

const ENDS: [&str; 4] = ["deposed", "fenced", "handover", "released"];

/// Describes every series and sets them at zero (called when a node joins a cluster).
pub fn install() {
    describe_gauge!(
        LEASES_HELD,
        "Account leases this node holds (upstream sockets it may open)"
    );
    describe_counter!(
        TAKEOVERS,
        "Accounts this node took over (led from the journal)"
    );
    describe_counter!(LEASE_ENDS, "Leases this node lost or gave up, by why");
    describe_counter!(RENEW_FAILURES, "Lease renewals that did not get through");
    describe_counter!(
        FENCED_APPENDS,
        "Journal appends refused because another node leads the account"
    );
    describe_histogram!(
        PUBLISH_SECONDS,
        Unit::Seconds,
        "Journal append to JetStream's ack"
    );
    describe_counter!(PUBLISH_RETRIES, "Journal appends retried after an error");
    describe_counter!(SKIPPED, "Journal messages the replica could not read");
    describe_counter!(
        UNLED_APPENDS,
        "Appends dropped because this node no longer leads the account"
    );
    describe_counter!(
        WATCH_RESTARTS,
        "Times the watch over the lease keys ended or went quiet for a TTL and was started again"
    );
    gauge!(LEASES_HELD).set(0.0);
    for counter in [
        TAKEOVERS,
        RENEW_FAILURES,
        FENCED_APPENDS,
        PUBLISH_RETRIES,
        SKIPPED,
        UNLED_APPENDS,
        WATCH_RESTARTS,
    ] {
        counter!(counter).increment(0);
    }
    for why in ENDS {
        counter!(LEASE_ENDS, "why" => why).increment(0);
    }
}

pub fn lease_taken() {
    gauge!(LEASES_HELD).increment(1.0);
}

pub fn lease_ended(why: &'static str) {
    gauge!(LEASES_HELD).decrement(1.0);
    counter!(LEASE_ENDS, "why" => why).increment(1);
}

pub fn lease_renew_failed() {
    counter!(RENEW_FAILURES).increment(1);
}

pub fn takeover() {
    counter!(TAKEOVERS).increment(1);
}

pub fn fenced_append() {
    counter!(FENCED_APPENDS).increment(1);
}

pub fn journal_published(took: std::time::Duration) {
    histogram!(PUBLISH_SECONDS).record(took.as_secs_f64());
}

pub fn journal_retry() {
    counter!(PUBLISH_RETRIES).increment(1);
}

pub fn journal_skipped() {
    counter!(SKIPPED).increment(1);
}

pub fn unled_append() {
    counter!(UNLED_APPENDS).increment(1);
}

pub fn replica_gap() {
    counter!(REPLICA_GAPS).increment(1);
}

pub fn replica_stall() {
    counter!(REPLICA_STALLS).increment(1);
}

pub fn lease_watch_restarted() {
    counter!(WATCH_RESTARTS).increment(1);
}
