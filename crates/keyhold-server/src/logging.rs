//! Log output: `tracing` lines on standard error, filtered by `KEYHOLD_LOG`, as text
//! (coloured only when standard error is a terminal) or as one JSON object per line.
//!
//! Lines are formatted on the thread that logs but written by a dedicated thread
//! (`tracing-appender`'s non-blocking writer): with the default filter every request logs a
//! line, and a `write(2)` to standard error per request on the request path cost Encrypt
//! about a tenth of its throughput. The writer never drops lines (a full queue makes the
//! logging thread wait); lines still queued when the process is killed are lost, which is
//! why the audit trail has its own writer with its own guarantee.

use std::io::IsTerminal as _;

use crate::config::LogFormat;

/// The filter used when `KEYHOLD_LOG` is not set.
pub const DEFAULT_FILTER: &str = "warn,keyhold_server=info";

/// Keeps the log writer thread running; dropping it writes out the queued lines. Hold it
/// for as long as the program logs.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Installs the global subscriber writing `format` lines to standard error. ANSI colour codes
/// are written only when standard error is a terminal, never into files or pipes.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYHOLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("keyhold-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
    LogGuard(guard)
}
