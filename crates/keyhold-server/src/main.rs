//! `keyhold`: the command-line entry point.

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use keyhold_server::config::{resolve, LogFormat, ServeArgs};

#[derive(Parser)]
#[command(
    name = "keyhold",
    version,
    about = "A key management service that speaks the AWS KMS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the KMS endpoint (zero configuration: http://127.0.0.1:4600, data in ~/.local/share/keyhold).
    Serve(ServeArgs),
    /// Keyhold's own XKS proxy (its own configuration file); logs with KEYHOLD_LOG=keyhold_xks_proxy=info.
    XksProxy {
        #[command(subcommand)]
        command: keyhold_xks_proxy::XksProxyCommand,
    },
    /// Root key utilities.
    RootKey {
        #[command(subcommand)]
        command: RootKeyCommand,
    },
    /// CloudHSM CLI equivalents against a running Keyhold (cluster activation, kmsuser).
    Cloudhsm {
        #[command(subcommand)]
        command: keyhold_cloudhsm::cli::CloudHsmCommand,
    },
    /// Custom key store diagnostics from a running Keyhold's admin listener.
    CustomKeyStores {
        #[command(subcommand)]
        command: keyhold_server::diagnostics::CustomKeyStoresCommand,
    },
}

#[derive(Subcommand)]
enum RootKeyCommand {
    /// Write a new random root key (base64 of 32 bytes) to FILE with mode 0600.
    Generate {
        /// Where to write it; refuses to overwrite.
        file: std::path::PathBuf,
    },
}

/// The server's allocator. glibc's malloc locks an arena to free memory another thread
/// allocated, and a tokio server does that all the time (a task allocates on one worker and
/// is finished on another); under load those locks were most of the server's `futex` calls.
/// mimalloc frees across threads without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `serve` installs its logger once its settings (and so its log format) are resolved.
    let _log = (!matches!(cli.command, Command::Serve(_)))
        .then(|| keyhold_server::logging::init(LogFormat::Text));
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::XksProxy { command } => Ok(keyhold_xks_proxy::run(command)?),
        Command::RootKey {
            command: RootKeyCommand::Generate { file },
        } => {
            let src = keyhold_crypto::RootKeySource::File {
                path: file.clone(),
                create_if_missing: true,
            };
            if file.exists() {
                anyhow::bail!("{} already exists", file.display());
            }
            let key = src.load()?;
            println!(
                "wrote root key {} (fingerprint {})",
                file.display(),
                key.fingerprint()
            );
            Ok(())
        }
        Command::Cloudhsm { command } => keyhold_cloudhsm::cli::run(command),
        Command::CustomKeyStores { command } => keyhold_server::diagnostics::run(command),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = resolve(args)?;
    let _log = keyhold_server::logging::init(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let ready_file = settings.ready_file.clone();
        let data_dir = settings.data_dir.clone();
        let storage = if settings.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        let auth = settings.auth;
        // With `--audit-log -` standard output carries only audit records.
        let banner_to_stderr =
            settings.audit_log == Some(keyhold_server::audit::AuditTarget::Stdout);
        let server = keyhold_server::start(settings).await?;
        let banner = format!(
            "Keyhold KMS endpoint: {}\n  data dir: {} ({storage}), auth: {auth:?}",
            server.endpoint(),
            data_dir.display()
        );
        if banner_to_stderr {
            eprintln!("{banner}");
        } else {
            println!("{banner}");
        }
        if let Some(path) = ready_file {
            std::fs::write(&path, server.local_addr.to_string())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate() => {}
        }
        server.shutdown().await;
        Ok(())
    })
}

#[cfg(unix)]
async fn terminate() {
    if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        s.recv().await;
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await
}
