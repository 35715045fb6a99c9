//! The proxy's CLI without the rest of Keyhold: `cargo run --release -p keyhold-xks-proxy
//! --example xks-proxy -- serve --config FILE` (same subcommands as `keyhold xks-proxy`).

use clap::Parser;

#[derive(Parser)]
#[command(name = "xks-proxy", about = "Keyhold's XKS proxy")]
struct Cli {
    #[command(subcommand)]
    command: keyhold_xks_proxy::XksProxyCommand,
}

fn main() -> Result<(), keyhold_xks_proxy::cli::CliError> {
    keyhold_xks_proxy::run(Cli::parse().command)
}
