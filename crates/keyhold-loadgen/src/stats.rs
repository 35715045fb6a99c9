//! Latency recording and the report: exact percentiles from all recorded samples (a run
//! records at most a few million, so a sorted vector is cheap and needs no bucketing).

use std::time::Duration;

use serde_json::json;

/// What one worker saw during the measured window.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Latency of every successful request, in nanoseconds.
    latencies_ns: Vec<u64>,
    /// Requests that did not get a 200 (including transport failures).
    errors: u64,
    /// A description of the first error (status and body, or the transport error).
    first_error: Option<String>,
}

impl Recorder {
    /// Records a successful request.
    pub fn success(&mut self, latency: Duration) {
        self.latencies_ns
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records a failed request; `describe` is called only for the first one.
    pub fn error(&mut self, describe: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(describe());
        }
    }

    /// Adds another worker's records.
    pub fn merge(&mut self, other: Recorder) {
        self.latencies_ns.extend(other.latencies_ns);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Summarises the records of a window of `elapsed`.
    pub fn summarize(mut self, elapsed: Duration) -> Summary {
        self.latencies_ns.sort_unstable();
        let ok = self.latencies_ns.len() as u64;
        let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let mean_ns = if ok == 0 {
            0.0
        } else {
            self.latencies_ns.iter().map(|&n| n as f64).sum::<f64>() / ok as f64
        };
        Summary {
            ok,
            errors: self.errors,
            first_error: self.first_error,
            elapsed_s: secs,
            rps: ok as f64 / secs,
            mean_ms: mean_ns / 1e6,
            p50_ms: percentile_ms(&self.latencies_ns, 50.0),
            p90_ms: percentile_ms(&self.latencies_ns, 90.0),
            p99_ms: percentile_ms(&self.latencies_ns, 99.0),
            p999_ms: percentile_ms(&self.latencies_ns, 99.9),
            max_ms: self.latencies_ns.last().map_or(0.0, |&n| n as f64 / 1e6),
        }
    }
}

/// Nearest-rank percentile of sorted samples, in milliseconds (0 when empty).
fn percentile_ms(sorted_ns: &[u64], p: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_ns.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted_ns.len()) - 1;
    sorted_ns[idx] as f64 / 1e6
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Successful requests in the window.
    pub ok: u64,
    /// Failed requests in the window.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Length of the measured window in seconds.
    pub elapsed_s: f64,
    /// Successful requests per second.
    pub rps: f64,
    /// Mean latency.
    pub mean_ms: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile latency.
    pub p90_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// 99.9th percentile latency.
    pub p999_ms: f64,
    /// Largest latency.
    pub max_ms: f64,
}

impl Summary {
    /// The human-readable line, e.g.
    /// `encrypt  c=16  12345 req/s  p50 1.20 ms  p99 3.40 ms  errors 0`.
    pub fn human_line(&self, operation: &str, concurrency: usize) -> String {
        format!(
            "{operation}  c={concurrency}  {:.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            self.rps, self.p50_ms, self.p99_ms, self.errors
        )
    }

    /// One JSON object describing the run.
    pub fn json(&self, operation: &str, concurrency: usize) -> serde_json::Value {
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        json!({
            "operation": operation,
            "concurrency": concurrency,
            "duration_s": round(self.elapsed_s),
            "requests": self.ok,
            "errors": self.errors,
            "rps": round(self.rps),
            "mean_ms": round(self.mean_ms),
            "p50_ms": round(self.p50_ms),
            "p90_ms": round(self.p90_ms),
            "p99_ms": round(self.p99_ms),
            "p999_ms": round(self.p999_ms),
            "max_ms": round(self.max_ms),
            "first_error": self.first_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_merge() {
        let mut a = Recorder::default();
        for ms in 1..=50 {
            a.success(Duration::from_millis(ms));
        }
        let mut b = Recorder::default();
        for ms in 51..=100 {
            b.success(Duration::from_millis(ms));
        }
        b.error(|| "HTTP 500 first".into());
        b.error(|| "HTTP 500 second".into());
        a.merge(b);
        let s = a.summarize(Duration::from_secs(2));
        assert_eq!(s.ok, 100);
        assert_eq!(s.errors, 2);
        assert_eq!(s.first_error.as_deref(), Some("HTTP 500 first"));
        assert_eq!(s.rps, 50.0);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert!(s
            .human_line("encrypt", 4)
            .starts_with("encrypt  c=4  50 req/s  p50 50.00 ms"));
        assert_eq!(s.json("encrypt", 4)["requests"], 100);
    }

    #[test]
    fn empty_run_is_all_zero() {
        let s = Recorder::default().summarize(Duration::from_secs(1));
        assert_eq!((s.ok, s.p50_ms, s.max_ms), (0, 0.0, 0.0));
    }
}
