//! Log output: `tracing` lines on standard error, filtered by `KEYHOLD_LOG`, as text
//! (coloured only when standard error is a terminal) or as one JSON object per line.
//!
//! Lines are formatted on the thread that logs but written by a dedicated thread, many at a
//! time ([`crate::log_writer`]): with the default filter every request logs a line, and a
//! `write(2)` to standard error per request on the request path cost Encrypt about a tenth
//! of its throughput. The writer never drops lines (too many waiting makes the logging
//! thread wait); lines still waiting when the process is killed are lost, which is why the
//! audit trail has its own writer with its own guarantee.

use std::io::IsTerminal as _;

use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::LogFormat;

/// The filter used when `KEYHOLD_LOG` is not set.
pub const DEFAULT_FILTER: &str = "warn,keyhold_server=info";

/// Keeps the log writer thread running; dropping it writes out the waiting lines. Hold it
/// for as long as the program logs.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] Option<crate::log_writer::GatherGuard>);

/// Installs the global subscriber writing `format` lines to standard error. ANSI colour codes
/// are written only when standard error is a terminal, never into files or pipes.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYHOLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = match crate::log_writer::gathering(std::io::stderr(), "keyhold-log") {
        Ok((writer, guard)) => (BoxMakeWriter::new(writer), Some(guard)),
        // No thread for the writer: write each line from the thread that logs it.
        Err(e) => {
            eprintln!("keyhold: cannot start the log writer thread ({e}); writing directly");
            (BoxMakeWriter::new(std::io::stderr), None)
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
    LogGuard(guard)
}
