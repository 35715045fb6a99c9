//! Request metrics for the admin listener's `/metrics`, in the Prometheus text exposition
//! format (version 0.0.4).
//!
//! Every KMS and CloudHSM operation of the pinned models has its counters, made when the
//! server starts; a request only increments atomics (no lock, no allocation) unless it fails,
//! when the failure's exception name is counted under a small mutex. Labels come only from
//! the models (operation names, exception names), never from what a client sent, so a client
//! cannot grow the label set.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds (`+Inf` is implied).
const BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The `outcome` label of a request that succeeded.
pub const SUCCESS: &str = "success";

/// Counters and latency histogram of one operation.
struct OpStats {
    service: &'static str,
    operation: &'static str,
    successes: AtomicU64,
    /// Failures by exception name.
    failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests at or below each bucket bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl OpStats {
    fn new(service: &'static str, operation: &'static str) -> Self {
        Self {
            service,
            operation,
            successes: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// A point-in-time value computed when `/metrics` is scraped: `name{labels} value`.
pub struct Gauge {
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Samples: label pairs and value.
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// The request metrics of one server.
pub struct Metrics {
    /// By `X-Amz-Target` (`TrentService.Encrypt`, `BaldrApiService.CreateCluster`).
    by_target: HashMap<String, OpStats>,
    /// Requests with no known target (wrong method, unknown operation, test endpoints).
    other: OpStats,
    /// XKS proxy calls per custom key store (the domain reports them).
    pub xks_calls: std::sync::Arc<crate::store_metrics::XksCallMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Counters for every operation of the KMS and CloudHSM v2 models, all at zero.
    pub fn new() -> Self {
        let mut by_target = HashMap::new();
        for op in keyhold_kms_model::Operation::ALL {
            by_target.insert(
                format!("TrentService.{}", op.name()),
                OpStats::new("kms", op.name()),
            );
        }
        for op in keyhold_cloudhsm_model::Operation::ALL {
            by_target.insert(
                format!("BaldrApiService.{}", op.name()),
                OpStats::new("cloudhsm", op.name()),
            );
        }
        Self {
            by_target,
            other: OpStats::new("none", "unknown"),
            xks_calls: Default::default(),
        }
    }

    /// Records one request to `target` that ended with `outcome` ([`SUCCESS`] or the
    /// exception name sent in `__type`) after `elapsed`.
    pub fn record(&self, target: &str, outcome: &'static str, elapsed: Duration) {
        let stats = self.by_target.get(target).unwrap_or(&self.other);
        if outcome == SUCCESS {
            stats.successes.fetch_add(1, Ordering::Relaxed);
        } else if let Ok(mut failures) = stats.failures.lock() {
            *failures.entry(outcome).or_insert(0) += 1;
        }
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        stats.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The exposition text: request counters and latency histograms (operations that have
    /// seen no request are left out), XKS proxy calls per store, then `gauges`.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        let mut ops: Vec<&OpStats> = self.by_target.values().collect();
        ops.sort_by_key(|s| (s.service, s.operation));
        ops.push(&self.other);
        let seen: Vec<(&OpStats, [u64; BUCKETS.len() + 1])> = ops
            .into_iter()
            .map(|s| {
                let counts = std::array::from_fn(|i| s.buckets[i].load(Ordering::Relaxed));
                (s, counts)
            })
            .filter(|(_, counts)| counts.iter().any(|c| *c > 0))
            .collect();

        out.push_str("# HELP keyhold_requests_total Requests answered, by operation and outcome (success, or the exception name sent).\n");
        out.push_str("# TYPE keyhold_requests_total counter\n");
        for (s, _) in &seen {
            let successes = s.successes.load(Ordering::Relaxed);
            if successes > 0 {
                let _ = writeln!(
                    out,
                    "keyhold_requests_total{{service=\"{}\",operation=\"{}\",outcome=\"{SUCCESS}\"}} {successes}",
                    s.service, s.operation
                );
            }
            let failures = s.failures.lock().map(|f| f.clone()).unwrap_or_default();
            for (name, n) in failures {
                let _ = writeln!(
                    out,
                    "keyhold_requests_total{{service=\"{}\",operation=\"{}\",outcome=\"{name}\"}} {n}",
                    s.service, s.operation
                );
            }
        }

        out.push_str("# HELP keyhold_request_duration_seconds Time from the first byte of a request to its response, by operation.\n");
        out.push_str("# TYPE keyhold_request_duration_seconds histogram\n");
        for (s, counts) in &seen {
            let labels = format!("service=\"{}\",operation=\"{}\"", s.service, s.operation);
            render_histogram(
                &mut out,
                "keyhold_request_duration_seconds",
                &labels,
                &BUCKETS,
                counts,
                s.sum_micros.load(Ordering::Relaxed),
            );
        }

        self.xks_calls.render(&mut out);

        for g in gauges {
            let _ = writeln!(out, "# HELP {} {}", g.name, g.help);
            let _ = writeln!(out, "# TYPE {} gauge", g.name);
            for (labels, value) in &g.samples {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                if labels.is_empty() {
                    let _ = writeln!(out, "{} {value}", g.name);
                } else {
                    let _ = writeln!(out, "{}{{{}}} {value}", g.name, labels.join(","));
                }
            }
        }
        out
    }
}

/// A label value as the text format requires: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes one series of a Prometheus histogram: a cumulative `_bucket` line per upper bound in
/// `bounds` and for `+Inf`, then `_sum` (seconds) and `_count`. `counts` holds the
/// observations per bucket, one more than `bounds` (the last is above every bound).
pub(crate) fn render_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds: &[f64],
    counts: &[u64],
    sum_micros: u64,
) {
    let mut cumulative = 0;
    for (bound, n) in bounds.iter().zip(counts) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    cumulative += counts.get(bounds.len()).copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
    let sum = sum_micros as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_operation_and_outcome() {
        let m = Metrics::new();
        m.record("TrentService.Encrypt", SUCCESS, Duration::from_micros(300));
        m.record("TrentService.Encrypt", SUCCESS, Duration::from_millis(3));
        m.record(
            "TrentService.Encrypt",
            "NotFoundException",
            Duration::from_millis(20),
        );
        // A target from the client that is no operation never becomes a label.
        m.record(
            "TrentService.<script>",
            "UnknownOperationException",
            Duration::ZERO,
        );
        let text = m.render(&[]);
        assert!(text.contains(
            "keyhold_requests_total{service=\"kms\",operation=\"Encrypt\",outcome=\"success\"} 2\n"
        ));
        assert!(text.contains(
            "keyhold_requests_total{service=\"kms\",operation=\"Encrypt\",outcome=\"NotFoundException\"} 1\n"
        ));
        assert!(text.contains("operation=\"unknown\",outcome=\"UnknownOperationException\"} 1\n"));
        assert!(!text.contains("script"));
        assert!(text.contains(
            "keyhold_request_duration_seconds_bucket{service=\"kms\",operation=\"Encrypt\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "keyhold_request_duration_seconds_bucket{service=\"kms\",operation=\"Encrypt\",le=\"0.005\"} 2\n"
        ));
        assert!(text.contains(
            "keyhold_request_duration_seconds_count{service=\"kms\",operation=\"Encrypt\"} 3\n"
        ));
        // Operations without requests are not listed.
        assert!(!text.contains("operation=\"Decrypt\""));
    }

    #[test]
    fn gauges_escape_their_label_values() {
        let g = Gauge {
            name: "keyhold_test",
            help: "A test.",
            samples: vec![(vec![("name", "a\"b\\c\nd".to_string())], 2.0)],
        };
        let text = Metrics::new().render(&[g]);
        assert!(
            text.contains("keyhold_test{name=\"a\\\"b\\\\c\\nd\"} 2\n"),
            "{text}"
        );
    }
}
