//! `keyhold xks-proxy bench`: signed Encrypt requests at a fixed concurrency against any XKS
//! proxy, reporting requests per second and latency percentiles.

use std::time::{Duration, Instant};

use keyhold_xks_wire::{EncryptRequest, RequestMetadata, B64};
use rand::RngCore;

use crate::client::{ClientOptions, SignedClient};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Where and how.
    pub client: ClientOptions,
    /// External key id to encrypt under.
    pub key_id: String,
    /// Concurrent workers, one connection each.
    pub concurrency: usize,
    /// How long.
    pub duration: Duration,
    /// Plaintext size in bytes.
    pub plaintext_bytes: usize,
    /// Ask for a ciphertext data integrity value (SHA_256), as KMS does on every Encrypt.
    pub cdiv: bool,
}

/// Results.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Successful (200) answers.
    pub ok: u64,
    /// Other answers and transport errors.
    pub errors: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Median latency of successful requests.
    pub p50: Duration,
    /// 99th percentile latency of successful requests.
    pub p99: Duration,
    /// First error seen, for diagnosis.
    pub first_error: Option<String>,
}

impl BenchReport {
    /// Successful requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ok, {} errors in {:.2} s: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            self.ok,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.requests_per_second(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )?;
        if let Some(e) = &self.first_error {
            write!(f, " (first error: {e})")?;
        }
        Ok(())
    }
}

fn body(key_id: &str, plaintext: &[u8], cdiv: bool) -> Vec<u8> {
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let req = EncryptRequest {
        request_metadata: RequestMetadata {
            aws_principal_arn: Some("arn:aws:iam::111122223333:role/keyhold-bench".to_string()),
            kms_operation: "Encrypt".to_string(),
            kms_request_id: id.iter().map(|b| format!("{b:02x}")).collect(),
            kms_key_arn: Some(format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}")),
            ..Default::default()
        },
        plaintext: B64(plaintext.to_vec()),
        encryption_algorithm: "AES_GCM".to_string(),
        additional_authenticated_data: Some(B64(b"keyhold-bench".to_vec())),
        ciphertext_data_integrity_value_algorithm: cdiv.then(|| "SHA_256".to_string()),
    };
    serde_json::to_vec(&req).unwrap_or_default()
}

struct WorkerResult {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

async fn worker(
    client: SignedClient,
    key_id: String,
    plaintext: Vec<u8>,
    cdiv: bool,
    deadline: Instant,
) -> WorkerResult {
    let mut r = WorkerResult {
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
    };
    let suffix = format!("/keys/{key_id}/encrypt");
    let mut conn = None;
    while Instant::now() < deadline {
        if conn.is_none() {
            match client.connect().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    r.errors += 1;
                    r.first_error.get_or_insert(e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let req = match client.request(&suffix, body(&key_id, &plaintext, cdiv)) {
            Ok(req) => req,
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
                break;
            }
        };
        let started = Instant::now();
        match c.send(req).await {
            Ok((200, _)) => r.latencies.push(started.elapsed()),
            Ok((status, body)) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| {
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                });
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
                conn = None;
            }
        }
    }
    r
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs the benchmark.
pub async fn run_bench(opts: BenchOptions) -> Result<BenchReport, String> {
    let client = SignedClient::new(opts.client.clone())?;
    let mut plaintext = vec![0u8; opts.plaintext_bytes];
    rand::rngs::OsRng.fill_bytes(&mut plaintext);
    let started = Instant::now();
    let deadline = started + opts.duration;
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        tasks.push(tokio::spawn(worker(
            client.clone(),
            opts.key_id.clone(),
            plaintext.clone(),
            opts.cdiv,
            deadline,
        )));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let r = t.await.map_err(|e| e.to_string())?;
        latencies.extend(r.latencies);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(BenchReport {
        ok: latencies.len() as u64,
        errors,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        first_error,
    })
}
