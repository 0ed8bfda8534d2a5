//! Prometheus metrics, named in one place: what the upstream side, the accounts and the
//! streams record, and the process-wide recorder `/metrics` renders. Labels carry public
//! ids, event types and transports only, never an account number.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::model::LinkState;

/// The recorder is process-wide: the first gateway in a process installs it, later ones
/// (tests start many) share it.
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded in when nobody scrapes /metrics.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the recorder if nothing did yet; returns the handle to render with.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let lag_buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(EVENT_LAG.into()), &lag_buckets)
                .ok()?
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &lag_buckets)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe_all();
                    process_collector().describe();
                    zero_process_wide();
                    // Histograms keep every sample until upkeep folds them in; /metrics runs
                    // it, but without a scraper the lag histogram (a sample per delivery)
                    // would grow without bound.
                    let upkeep = handle.clone();
                    let _ = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP_EVERY);
                                upkeep.run_upkeep();
                            }
                        });
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "could not install the metrics recorder; /metrics will be empty");
                    None
                }
            }
        })
        .clone()
}

pub const SUBSCRIBERS: &str = "ttgw_subscribers";
pub const EVENTS_PUBLISHED: &str = "ttgw_events_published_total";
pub const EVENTS_DELIVERED: &str = "ttgw_events_delivered_total";
pub const SLOW_CONSUMER_CUTS: &str = "ttgw_slow_consumer_cuts_total";
pub const LAGGING_CUTS: &str = "ttgw_lagging_subscriber_cuts_total";
pub const STREAM_STARTS: &str = "ttgw_stream_starts_total";
pub const UPSTREAM_RECONNECTS: &str = "ttgw_upstream_reconnects_total";
pub const RESYNC_EVENTS: &str = "ttgw_resync_events_total";
pub const UPSTREAM_SKIPPED: &str = "ttgw_upstream_skipped_total";
pub const UPSTREAM_STATE: &str = "ttgw_upstream_state";
pub const EVENT_LAG: &str = "ttgw_event_lag_seconds";
pub const REFUSED: &str = "ttgw_refused_total";
pub const UPSTREAM_ATTEMPTS: &str = "ttgw_upstream_attempts_total";
pub const HTTP_REQUESTS: &str = "ttgw_http_requests_total";
pub const HTTP_DURATION: &str = "ttgw_http_request_duration_seconds";
pub const BUILD_INFO: &str = "ttgw_build_info";

/// Every family the gateway emits (besides the `process_*` ones of `metrics-process`).
pub const FAMILIES: [&str; 16] = [
    SUBSCRIBERS,
    EVENTS_PUBLISHED,
    EVENTS_DELIVERED,
    SLOW_CONSUMER_CUTS,
    LAGGING_CUTS,
    STREAM_STARTS,
    UPSTREAM_RECONNECTS,
    RESYNC_EVENTS,
    UPSTREAM_SKIPPED,
    UPSTREAM_STATE,
    EVENT_LAG,
    REFUSED,
    UPSTREAM_ATTEMPTS,
    HTTP_REQUESTS,
    HTTP_DURATION,
    BUILD_INFO,
];

const TRANSPORTS: [&str; 2] = ["sse", "ws"];

/// The event types a label may name (the model's named kinds); anything else (an upstream
/// type we do not know) is counted as `other`, so an upstream cannot grow the label set.
const KNOWN_TYPES: &[&str] = crate::model::EventKind::NAMES;

/// `kind` if it is a known event type, else `other`.
pub fn type_label(kind: &str) -> &'static str {
    KNOWN_TYPES
        .iter()
        .find(|known| **known == kind)
        .copied()
        .unwrap_or("other")
}

/// Process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, ...), collected at each scrape.
pub fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// `# HELP` for every family the gateway emits.
fn describe_all() {
    describe_gauge!(SUBSCRIBERS, "Open subscribers, by transport (sse, ws)");
    describe_counter!(EVENTS_PUBLISHED, "Events published, by account and type");
    describe_counter!(
        EVENTS_DELIVERED,
        "Events sent to subscribers, by transport and type"
    );
    describe_counter!(
        SLOW_CONSUMER_CUTS,
        "Subscribers cut for falling too far behind"
    );
    describe_counter!(
        LAGGING_CUTS,
        "Subscribers cut because their oldest undelivered event got older than --max-lag-ms"
    );
    describe_counter!(
        STREAM_STARTS,
        "Streams started, by how: snapshot, replay or reset"
    );
    describe_counter!(
        UPSTREAM_RECONNECTS,
        "Upstream connections lost and retried, by account"
    );
    describe_counter!(
        RESYNC_EVENTS,
        "Differences a REST resync published, by account"
    );
    describe_counter!(
        UPSTREAM_SKIPPED,
        "Upstream input skipped or passed through, by account and reason"
    );
    describe_gauge!(
        UPSTREAM_STATE,
        "1 for each account's current upstream state, else 0"
    );
    describe_histogram!(
        EVENT_LAG,
        Unit::Seconds,
        "tastytrade's event timestamp to the send, by transport"
    );
    describe_counter!(
        REFUSED,
        "Connections or streams refused by a limit, by reason"
    );
    describe_counter!(
        UPSTREAM_ATTEMPTS,
        "Upstream connection attempts and baseline reads let through the shared budget"
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request (to the headers, for streams), by route template"
    );
    describe_gauge!(BUILD_INFO, "1, labelled with the gateway's version");
}

/// Every process-wide series at zero, so each family is there from the first scrape.
fn zero_process_wide() {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for transport in TRANSPORTS {
        gauge!(SUBSCRIBERS, "transport" => transport).increment(0.0);
        counter!(SLOW_CONSUMER_CUTS, "transport" => transport).increment(0);
        counter!(LAGGING_CUTS, "transport" => transport).increment(0);
        let _ = histogram!(EVENT_LAG, "transport" => transport);
        for start in ["snapshot", "replay", "reset"] {
            counter!(STREAM_STARTS, "transport" => transport, "start" => start).increment(0);
        }
        for &kind in KNOWN_TYPES {
            counter!(EVENTS_DELIVERED, "transport" => transport, "type" => kind).increment(0);
        }
    }
    for reason in ["connections", "per_client"] {
        counter!(REFUSED, "reason" => reason).increment(0);
    }
    for what in ["connect", "baseline"] {
        counter!(UPSTREAM_ATTEMPTS, "what" => what).increment(0);
    }
}

/// An account's series at zero, when it is created.
pub fn zero_account(account: &str) {
    counter!(UPSTREAM_RECONNECTS, "account" => account.to_string()).increment(0);
    counter!(RESYNC_EVENTS, "account" => account.to_string()).increment(0);
    for reason in ["frame", "invalid", "unknown_type"] {
        counter!(UPSTREAM_SKIPPED, "account" => account.to_string(), "reason" => reason)
            .increment(0);
    }
    counter!(EVENTS_PUBLISHED, "account" => account.to_string(), "type" => "status").increment(0);
    upstream_state(account, LinkState::Connecting);
}

/// One HTTP request answered.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    counter!(HTTP_REQUESTS, "route" => route.to_string(), "method" => method.to_string(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_DURATION, "route" => route.to_string()).record(seconds);
}

/// A connection or stream refused by a limit (`connections`, `per_client`, `header_timeout`).
pub fn stream_refused(reason: &'static str) {
    counter!(REFUSED, "reason" => reason).increment(1);
}

/// One upstream connection attempt or baseline read let through the shared budget.
pub fn upstream_attempt(what: &'static str) {
    counter!(UPSTREAM_ATTEMPTS, "what" => what).increment(1);
}

/// Counts an open subscriber for as long as it lives.
pub struct SubscriberGauge(&'static str);

impl SubscriberGauge {
    pub fn open(transport: &'static str) -> Self {
        gauge!(SUBSCRIBERS, "transport" => transport).increment(1.0);
        Self(transport)
    }
}

impl Drop for SubscriberGauge {
    fn drop(&mut self) {
        gauge!(SUBSCRIBERS, "transport" => self.0).decrement(1.0);
    }
}

pub fn published(account: &str, kind: &str) {
    counter!(EVENTS_PUBLISHED, "account" => account.to_string(), "type" => type_label(kind))
        .increment(1);
}

/// One subscriber's delivery metrics. A delivery is the hottest path (every event times
/// every subscriber): a metric looked up by its labels costs an allocation and a hash of the
/// labels each time, a kept handle only an atomic add.
pub struct Deliveries {
    transport: &'static str,
    lag: Histogram,
    /// Counters by event type (a handful; a short list beats a hash).
    by_kind: Vec<(String, Counter)>,
}

impl Deliveries {
    pub fn new(transport: &'static str) -> Self {
        Self {
            transport,
            lag: histogram!(EVENT_LAG, "transport" => transport),
            by_kind: Vec::new(),
        }
    }

    /// One event sent; `upstream_ms` is tastytrade's timestamp, if any.
    pub fn record(&mut self, kind: &str, upstream_ms: Option<i64>) {
        let index = match self.by_kind.iter().position(|(k, _)| k == kind) {
            Some(index) => index,
            None => {
                let transport = self.transport;
                let count = counter!(EVENTS_DELIVERED, "transport" => transport, "type" => type_label(kind));
                self.by_kind.push((kind.to_string(), count));
                self.by_kind.len() - 1
            }
        };
        self.by_kind[index].1.increment(1);
        if let Some(ms) = upstream_ms {
            // SystemTime, not chrono's Utc::now: no calendar arithmetic per delivery.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(ms, |d| d.as_millis() as i64);
            let lag = Duration::from_millis(now.saturating_sub(ms).max(0) as u64);
            self.lag.record(lag.as_secs_f64());
        }
    }
}

pub fn slow_consumer(transport: &'static str) {
    counter!(SLOW_CONSUMER_CUTS, "transport" => transport).increment(1);
}

pub fn lagging_subscriber(transport: &'static str) {
    counter!(LAGGING_CUTS, "transport" => transport).increment(1);
}

/// How a stream started: `snapshot`, `replay` (a resume served from the history) or `reset`.
pub fn stream_start(transport: &'static str, how: &'static str) {
    counter!(STREAM_STARTS, "transport" => transport, "start" => how).increment(1);
}

pub fn reconnect(account: &str) {
    counter!(UPSTREAM_RECONNECTS, "account" => account.to_string()).increment(1);
}

pub fn resync_events(account: &str, count: usize) {
    counter!(RESYNC_EVENTS, "account" => account.to_string()).increment(count as u64);
}

/// Upstream input skipped or passed through: `reason` is `frame` (unreadable), `invalid`
/// (broken shape) or `unknown_type` (passed through).
pub fn upstream_skipped(account: &str, reason: &'static str, count: u64) {
    counter!(UPSTREAM_SKIPPED, "account" => account.to_string(), "reason" => reason)
        .increment(count);
}

/// One gauge per (account, state): 1 for the current state, 0 for the others.
pub fn upstream_state(account: &str, state: LinkState) {
    for candidate in [
        LinkState::Connecting,
        LinkState::Resyncing,
        LinkState::Live,
        LinkState::BackingOff,
        LinkState::Stopped,
    ] {
        let name = match candidate {
            LinkState::Connecting => "connecting",
            LinkState::Resyncing => "resyncing",
            LinkState::Live => "live",
            LinkState::BackingOff => "backing_off",
            LinkState::Stopped => "stopped",
        };
        let value = if candidate == state { 1.0 } else { 0.0 };
        gauge!(UPSTREAM_STATE, "account" => account.to_string(), "state" => name).set(value);
    }
}
