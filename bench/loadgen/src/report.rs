//! A run's result: computed from the subscribers' tallies, written as JSON and as a table,
//! and the side-by-side table of several runs (gateway vs peer) with ratios.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub samples: u64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds (see [`quantize`]).
    pub fn of(histogram: &BTreeMap<u32, u64>) -> Self {
        let total: u64 = histogram.values().sum();
        if total == 0 {
            return Self::default();
        }
        let at = |q: f64| {
            let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (&us, &count) in histogram {
                seen += count;
                if seen >= rank {
                    return us as f64 / 1000.0;
                }
            }
            0.0
        };
        Self {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: histogram
                .keys()
                .next_back()
                .map_or(0.0, |&us| us as f64 / 1000.0),
            samples: total,
        }
    }
}

/// Microseconds kept to three significant digits (at most 0.1% off), so processes can send
/// their latencies as a small histogram and the parent can merge them.
pub fn quantize(us: u32) -> u32 {
    let (mut value, mut scale) = (us, 1);
    while value >= 1000 {
        value /= 10;
        scale *= 10;
    }
    value * scale
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub label: String,
    /// `gateway`, `nchan`, ...
    pub server: String,
    pub transport: String,
    pub mode: String,
    pub subscribers: usize,
    pub connected: usize,
    /// Events per second asked for (0: closed loop, as fast as the server fans out).
    pub rate: f64,
    pub batch: usize,
    pub payload_bytes: usize,
    pub sent: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub deliveries_per_sec: f64,
    pub latency: Latency,
    pub gaps: u64,
    pub duplicates: u64,
    pub errors: u64,
    /// Streams the server cut (slow or lagging) that resumed with their last id; not a
    /// failure: their events are checked across the cut like any other.
    #[serde(default)]
    pub resumes: u64,
    /// Server resident memory before the subscribers connected, once they all had, and at the end.
    pub server_rss_mib_before: f64,
    pub server_rss_mib_connected: f64,
    pub server_rss_mib_end: f64,
    /// (RSS with every subscriber connected - RSS before) / subscribers.
    pub server_kib_per_subscriber: f64,
    /// Server CPU seconds while events flowed (publish + drain).
    pub server_cpu_secs: f64,
    pub server_cpu_us_per_delivery: f64,
    pub loadgen_cpu_secs: f64,
    pub seconds: f64,
    /// /proc/loadavg when the run started.
    pub load_before: String,
    pub passed: bool,
    pub failures: Vec<String>,
}

impl Report {
    /// Marks the run failed for gaps, duplicates, errors or missing connections.
    pub fn judge(&mut self) {
        let mut failures = Vec::new();
        if self.gaps > 0 {
            failures.push(format!("{} gaps", self.gaps));
        }
        if self.duplicates > 0 {
            failures.push(format!("{} duplicates", self.duplicates));
        }
        if self.errors > 0 {
            failures.push(format!("{} errors", self.errors));
        }
        if self.connected < self.subscribers {
            failures.push(format!(
                "{} of {} connected",
                self.connected, self.subscribers
            ));
        }
        if self.delivered < self.expected_deliveries {
            failures.push(format!(
                "{} of {} delivered",
                self.delivered, self.expected_deliveries
            ));
        }
        self.passed = failures.is_empty();
        self.failures = failures;
    }

    pub fn table(&self) -> String {
        let status = if self.passed {
            "PASSED".to_string()
        } else {
            format!("FAILED: {}", self.failures.join(", "))
        };
        let rows: Vec<(&str, String)> = vec![
            (
                "run",
                format!(
                    "{} ({} {} {})",
                    self.label, self.server, self.transport, self.mode
                ),
            ),
            (
                "subscribers",
                format!("{} ({} connected)", self.subscribers, self.connected),
            ),
            (
                "rate / batch",
                format!("{} ev/s / {}", rate_text(self.rate), self.batch),
            ),
            ("events sent", self.sent.to_string()),
            (
                "deliveries",
                format!("{} of {}", self.delivered, self.expected_deliveries),
            ),
            ("deliveries/s", format!("{:.0}", self.deliveries_per_sec)),
            (
                "latency p50/p90/p99/max",
                format!(
                    "{:.2} / {:.2} / {:.2} / {:.2} ms",
                    self.latency.p50_ms,
                    self.latency.p90_ms,
                    self.latency.p99_ms,
                    self.latency.max_ms
                ),
            ),
            (
                "gaps / duplicates / errors",
                format!("{} / {} / {}", self.gaps, self.duplicates, self.errors),
            ),
            ("streams cut and resumed", self.resumes.to_string()),
            (
                "server RSS before/connected/end",
                format!(
                    "{:.1} / {:.1} / {:.1} MiB",
                    self.server_rss_mib_before,
                    self.server_rss_mib_connected,
                    self.server_rss_mib_end
                ),
            ),
            (
                "server memory per subscriber",
                format!("{:.2} KiB", self.server_kib_per_subscriber),
            ),
            (
                "server CPU",
                format!(
                    "{:.2} s ({:.2} us/delivery)",
                    self.server_cpu_secs, self.server_cpu_us_per_delivery
                ),
            ),
            ("loadgen CPU", format!("{:.2} s", self.loadgen_cpu_secs)),
            ("load average before", self.load_before.clone()),
            ("result", status),
        ];
        rows.iter().map(|(k, v)| format!("{k:<32} {v}\n")).collect()
    }
}

fn rate_text(rate: f64) -> String {
    if rate > 0.0 {
        format!("{rate}")
    } else {
        "max (closed loop)".into()
    }
}

/// One side-by-side table: a row per label and metric, a column per server, and the ratio of
/// the first server's figure to the second's. Several runs of one label and server (rounds)
/// show each figure's median; their checks pass only if every run passed.
pub fn side_by_side(reports: &[Report]) -> String {
    let mut servers: Vec<&str> = Vec::new();
    let mut labels: Vec<&str> = Vec::new();
    for r in reports {
        if !servers.contains(&r.server.as_str()) {
            servers.push(&r.server);
        }
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    let runs = |label: &str, server: &str| -> Vec<&Report> {
        reports
            .iter()
            .filter(|r| r.label == label && r.server == server)
            .collect()
    };
    let median = |label: &str, server: &str, get: fn(&Report) -> Option<f64>| {
        let mut values: Vec<f64> = runs(label, server).into_iter().filter_map(get).collect();
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => None,
            n if n % 2 == 1 => Some(values[n / 2]),
            n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
        }
    };
    type Metric = (&'static str, fn(&Report) -> Option<f64>, &'static str);
    let metrics: [Metric; 8] = [
        (
            "deliveries/s",
            |r| (r.mode == "fanout").then_some(r.deliveries_per_sec),
            "%.0f",
        ),
        (
            "p50 ms",
            |r| (r.latency.samples > 0).then_some(r.latency.p50_ms),
            "%.2f",
        ),
        (
            "p99 ms",
            |r| (r.latency.samples > 0).then_some(r.latency.p99_ms),
            "%.2f",
        ),
        (
            "max ms",
            |r| (r.latency.samples > 0).then_some(r.latency.max_ms),
            "%.2f",
        ),
        (
            "server CPU us/delivery",
            |r| (r.delivered > 0 && r.mode == "fanout").then_some(r.server_cpu_us_per_delivery),
            "%.2f",
        ),
        ("server RSS end MiB", |r| Some(r.server_rss_mib_end), "%.1f"),
        (
            "KiB/subscriber",
            |r| (r.mode == "idle").then_some(r.server_kib_per_subscriber),
            "%.2f",
        ),
        ("connected", |r| Some(r.connected as f64), "%.0f"),
    ];
    let mut out = format!("{:<14} {:<24}", "workload", "metric");
    for s in &servers {
        out.push_str(&format!(" {s:>12}"));
    }
    if servers.len() == 2 {
        out.push_str(&format!(" {:>8}", "ratio"));
    }
    out.push('\n');
    for label in &labels {
        for (name, get, format) in &metrics {
            let values: Vec<Option<f64>> = servers.iter().map(|s| median(label, s, *get)).collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            out.push_str(&format!("{label:<14} {name:<24}"));
            for v in &values {
                let text = match v {
                    Some(v) if *format == "%.0f" => format!("{v:.0}"),
                    Some(v) if *format == "%.1f" => format!("{v:.1}"),
                    Some(v) => format!("{v:.2}"),
                    None => "-".into(),
                };
                out.push_str(&format!(" {text:>12}"));
            }
            if let [Some(a), Some(b)] = values[..] {
                let ratio = if b != 0.0 {
                    format!("{:.2}x", a / b)
                } else {
                    "-".into()
                };
                out.push_str(&format!(" {ratio:>8}"));
            }
            out.push('\n');
        }
        let status: Vec<String> = servers
            .iter()
            .map(|s| {
                let all = runs(label, s);
                match all.iter().filter(|r| !r.passed).count() {
                    _ if all.is_empty() => "-".to_string(),
                    0 => "pass".to_string(),
                    failed => format!("FAIL {failed}/{}", all.len()),
                }
            })
            .collect();
        out.push_str(&format!("{label:<14} {:<24}", "checks (gaps/dups/errors)"));
        for s in status {
            out.push_str(&format!(" {s:>12}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_histogram() {
        let mut h = BTreeMap::new();
        for us in 1..=100u32 {
            *h.entry(quantize(us * 1000)).or_insert(0) += 1;
        }
        let l = Latency::of(&h);
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(quantize(123_456), 123_000);
        assert_eq!(quantize(999), 999);
    }
}
