//! Log output: `tracing` lines on standard error, filtered by `KEYHOLD_LOG`, as text
//! (coloured only when standard error is a terminal) or as one JSON object per line.

use std::io::IsTerminal as _;

use crate::config::LogFormat;

/// The filter used when `KEYHOLD_LOG` is not set.
pub const DEFAULT_FILTER: &str = "warn,keyhold_server=info";

/// Installs the global subscriber writing `format` lines to standard error. ANSI colour codes
/// are written only when standard error is a terminal, never into files or pipes.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYHOLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}
