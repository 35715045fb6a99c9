//! `keyhold-loadgen`: drives a Keyhold KMS endpoint with freshly SigV4-signed requests from a
//! fixed number of workers, each looping over its own keep-alive HTTP/1.1 connection, for a
//! warm-up period and then a measured period; reports req/s and latency percentiles.
//!
//! ```text
//! keyhold-loadgen --endpoint http://127.0.0.1:4600 --operation encrypt \
//!     --concurrency 16 --duration 10 --warmup 2 [--json]
//! ```
//!
//! Latency is measured per request from signing to the last byte of the response, so it
//! includes the client's signing cost, as with a real SDK. Exits non-zero when any request
//! failed or none succeeded.

mod client;
mod ops;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use tokio::time::Instant;

use client::{Connection, RequestTemplate, Signer, Target};
use ops::{Operation, SetupOptions};
use stats::Recorder;

/// How long a request may take past the end of the run before it is abandoned (and counted
/// as an error), so that a stalled server cannot keep the load generator running.
const STRAGGLER_GRACE: Duration = Duration::from_secs(10);

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "keyhold-loadgen",
    version,
    about = "Load generator for Keyhold: signed requests at fixed concurrency, req/s and latency"
)]
struct Args {
    /// Endpoint, e.g. http://127.0.0.1:4600 (plain HTTP only).
    #[arg(long)]
    endpoint: String,
    /// Operation to repeat.
    #[arg(long, value_enum)]
    operation: Operation,
    /// Number of workers, each with its own keep-alive connection and one request in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Measured duration in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before measuring (requests are sent but not recorded).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Access key id to sign with (any is accepted by a dev-mode server).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "AKIDKEYHOLDLOADGEN")]
    access_key_id: String,
    /// Secret access key to sign with.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "keyhold-loadgen-secret",
        hide_env_values = true
    )]
    secret: String,
    /// Region in the signature scope.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Plaintext size for encrypt and decrypt.
    #[arg(long, default_value_t = 512)]
    plaintext_bytes: usize,
    /// Existing key to use; when absent one is created with CreateKey.
    #[arg(long)]
    key_id: Option<String>,
    /// Also print the result as one JSON object line.
    #[arg(long)]
    json: bool,
    /// Runtime worker threads [default: number of CPUs].
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("keyhold-loadgen: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs the whole load test; `Ok(false)` means it ran but saw errors or no success.
fn run(args: Args) -> anyhow::Result<bool> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    if !(args.warmup >= 0.0 && args.warmup.is_finite()) {
        bail!("--warmup must be zero or a positive number of seconds");
    }
    if args.plaintext_bytes == 0 {
        bail!("--plaintext-bytes must be at least 1");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    builder.build()?.block_on(drive(args))
}

async fn drive(args: Args) -> anyhow::Result<bool> {
    let target = Arc::new(Target::parse(&args.endpoint)?);
    let signer = Arc::new(Signer {
        access_key_id: args.access_key_id.clone(),
        secret: args.secret.clone(),
        region: args.region.clone(),
        service: args.operation.api().service(),
    });
    let mut setup_conn = Connection::open(target.clone()).await?;
    let prepared = ops::prepare(
        args.operation,
        &mut setup_conn,
        &signer,
        &SetupOptions {
            key_id: args.key_id.clone(),
            plaintext_bytes: args.plaintext_bytes,
        },
    )
    .await?;
    drop(setup_conn);
    eprintln!(
        "{}: key {}, {} workers, warm-up {} s, measuring {} s",
        args.operation.name(),
        prepared.key_id,
        args.concurrency,
        args.warmup,
        args.duration
    );
    let template = Arc::new(prepared.template);

    // Connect every worker before starting the clock, so connection setup is not measured.
    let mut conns = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        conns.push(Connection::open(target.clone()).await?);
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let window = Window { measure_from, end };
            tokio::spawn(worker(
                conn,
                target.clone(),
                signer.clone(),
                template.clone(),
                window,
            ))
        })
        .collect();
    let mut total = Recorder::default();
    for w in workers {
        total.merge(w.await.context("worker panicked")?);
    }
    let summary = total.summarize(end - measure_from);

    let name = args.operation.name();
    println!("{}", summary.human_line(name, args.concurrency));
    if args.json {
        println!("{}", summary.json(name, args.concurrency));
    }
    if let Some(first) = &summary.first_error {
        eprintln!("first error: {first}");
    }
    if summary.ok == 0 {
        eprintln!("no request succeeded");
    }
    Ok(summary.errors == 0 && summary.ok > 0)
}

/// The time window of one run.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Requests started from here on are recorded.
    measure_from: Instant,
    /// No request is started from here on.
    end: Instant,
}

/// One worker: sends `template` over `conn` back to back until the window ends, reconnecting
/// after transport failures.
async fn worker(
    conn: Connection,
    target: Arc<Target>,
    signer: Arc<Signer>,
    template: Arc<RequestTemplate>,
    window: Window,
) -> Recorder {
    let mut rec = Recorder::default();
    let mut conn = Some(conn);
    let deadline = window.end + STRAGGLER_GRACE;
    loop {
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        let measured = started >= window.measure_from;
        let mut c = match conn.take() {
            Some(c) if !c.is_closed() => c,
            _ => match tokio::time::timeout_at(deadline, Connection::open(target.clone())).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    if measured {
                        rec.error(|| format!("{e:#}"));
                    }
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => break,
            },
        };
        let result = tokio::time::timeout_at(deadline, c.send(&signer, &template)).await;
        let latency = started.elapsed();
        match result {
            Ok(Ok(resp)) => {
                conn = Some(c);
                if !measured {
                    continue;
                }
                if resp.status == 200 {
                    rec.success(latency);
                } else {
                    rec.error(|| {
                        format!(
                            "HTTP {} {}",
                            resp.status,
                            String::from_utf8_lossy(&resp.body)
                        )
                    });
                }
            }
            Ok(Err(e)) => {
                if measured {
                    rec.error(|| format!("{e:#}"));
                }
            }
            Err(_) => {
                if measured {
                    rec.error(|| "request still unanswered 10 s after the run ended".into());
                }
                break;
            }
        }
    }
    rec
}
