//! Per custom key store metrics of XKS proxy calls: a counter by store, operation and outcome
//! (`success` or the failure's cause class) and a latency histogram by store and operation.
//!
//! The domain reports every proxy call through [`XksCallObserver`]. A call finds its series
//! under a read lock (a write lock only for a store's first call of an operation) and then
//! only adds to atomics; a failure's class is counted under a small mutex. Label values are
//! store ids (bounded by the store quota), the four XKS operations and the fixed cause
//! classes of `XksFailure::cause_class` — never a key id or text from a proxy.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use keyhold_core::ports::xks::{XksCallObserver, XksFailure, XksOperation};

/// Upper bounds of the latency buckets, in seconds: proxy calls have a 250 ms budget by
/// default, so the buckets are finer below it.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// One store's calls of one operation.
#[derive(Default)]
struct CallStats {
    successes: AtomicU64,
    /// Failures by cause class.
    failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Calls at or below each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// The operations, in the order of a store's series.
const OPERATIONS: [XksOperation; 4] = [
    XksOperation::GetHealthStatus,
    XksOperation::GetKeyMetadata,
    XksOperation::Encrypt,
    XksOperation::Decrypt,
];

fn index(op: XksOperation) -> usize {
    match op {
        XksOperation::GetHealthStatus => 0,
        XksOperation::GetKeyMetadata => 1,
        XksOperation::Encrypt => 2,
        XksOperation::Decrypt => 3,
    }
}

/// One store's series, one per operation.
type StoreSeries = [CallStats; OPERATIONS.len()];

/// The XKS call metrics of one server.
#[derive(Default)]
pub struct XksCallMetrics {
    /// By custom key store id (looked up by `&str`: no allocation per call).
    series: RwLock<HashMap<String, Arc<StoreSeries>>>,
}

impl XksCallMetrics {
    fn stats(&self, store: &str) -> Option<Arc<StoreSeries>> {
        if let Some(s) = self.series.read().ok()?.get(store) {
            return Some(Arc::clone(s));
        }
        let mut map = self.series.write().ok()?;
        Some(Arc::clone(map.entry(store.to_string()).or_default()))
    }

    /// Appends the counter and histogram to `out` (nothing when no call was made).
    pub fn render(&self, out: &mut String) {
        let Ok(map) = self.series.read() else { return };
        let mut stores: Vec<(&String, &Arc<StoreSeries>)> = map.iter().collect();
        stores.sort_by(|a, b| a.0.cmp(b.0));
        let series: Vec<((&String, XksOperation), &CallStats)> = stores
            .iter()
            .flat_map(|(id, s)| {
                OPERATIONS
                    .iter()
                    .map(move |op| ((*id, *op), &s[index(*op)]))
            })
            .filter(|(_, s)| s.buckets.iter().any(|b| b.load(Ordering::Relaxed) > 0))
            .collect();
        if series.is_empty() {
            return;
        }
        out.push_str("# HELP keyhold_xks_proxy_calls_total XKS proxy calls by custom key store, operation and outcome (success, or the cause class of the failure).\n");
        out.push_str("# TYPE keyhold_xks_proxy_calls_total counter\n");
        for ((store, op), s) in &series {
            let labels = format!(
                "custom_key_store_id=\"{store}\",operation=\"{}\"",
                op.as_str()
            );
            let ok = s.successes.load(Ordering::Relaxed);
            if ok > 0 {
                let _ = writeln!(
                    out,
                    "keyhold_xks_proxy_calls_total{{{labels},outcome=\"success\"}} {ok}"
                );
            }
            let failures = s.failures.lock().map(|f| f.clone()).unwrap_or_default();
            for (class, n) in failures {
                let _ = writeln!(
                    out,
                    "keyhold_xks_proxy_calls_total{{{labels},outcome=\"{class}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP keyhold_xks_proxy_call_duration_seconds Duration of XKS proxy calls by custom key store and operation.\n");
        out.push_str("# TYPE keyhold_xks_proxy_call_duration_seconds histogram\n");
        for ((store, op), s) in &series {
            let labels = format!(
                "custom_key_store_id=\"{store}\",operation=\"{}\"",
                op.as_str()
            );
            let counts: [u64; BUCKETS.len() + 1] =
                std::array::from_fn(|i| s.buckets[i].load(Ordering::Relaxed));
            crate::metrics::render_histogram(
                out,
                "keyhold_xks_proxy_call_duration_seconds",
                &labels,
                &BUCKETS,
                &counts,
                s.sum_micros.load(Ordering::Relaxed),
            );
        }
    }
}

impl XksCallObserver for XksCallMetrics {
    fn observe(
        &self,
        custom_key_store_id: &str,
        operation: XksOperation,
        failure: Option<&XksFailure>,
        elapsed: Duration,
    ) {
        let Some(series) = self.stats(custom_key_store_id) else {
            return;
        };
        let s = &series[index(operation)];
        match failure {
            None => {
                s.successes.fetch_add(1, Ordering::Relaxed);
            }
            Some(f) => {
                if let Ok(mut failures) = s.failures.lock() {
                    *failures.entry(f.cause_class()).or_insert(0) += 1;
                }
            }
        }
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        s.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        s.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_store_operation_and_cause_class() {
        let m = XksCallMetrics::default();
        m.observe(
            "cks-1",
            XksOperation::Encrypt,
            None,
            Duration::from_millis(2),
        );
        m.observe(
            "cks-1",
            XksOperation::Encrypt,
            Some(&XksFailure::TimedOut { budget_ms: 250 }),
            Duration::from_millis(250),
        );
        let mut text = String::new();
        m.render(&mut text);
        assert!(text.contains("keyhold_xks_proxy_calls_total{custom_key_store_id=\"cks-1\",operation=\"Encrypt\",outcome=\"success\"} 1\n"), "{text}");
        assert!(text.contains("keyhold_xks_proxy_calls_total{custom_key_store_id=\"cks-1\",operation=\"Encrypt\",outcome=\"timed_out\"} 1\n"), "{text}");
        assert!(text.contains("keyhold_xks_proxy_call_duration_seconds_bucket{custom_key_store_id=\"cks-1\",operation=\"Encrypt\",le=\"0.0025\"} 1\n"), "{text}");
        assert!(text.contains("keyhold_xks_proxy_call_duration_seconds_count{custom_key_store_id=\"cks-1\",operation=\"Encrypt\"} 2\n"), "{text}");
    }
}
