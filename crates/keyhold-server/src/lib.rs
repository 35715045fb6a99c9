//! The Keyhold KMS endpoint: HTTP(S) listener, awsJson1.1 routing, SigV4 check, wire errors,
//! configuration, and the `keyhold` binary.
//!
//! This crate is the protocol edge: the only place where domain errors become wire errors.
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod dispatch;
pub mod listener;
pub mod router;
pub mod wire;

use std::sync::Arc;

use anyhow::Context as _;

pub use config::Settings;
pub use listener::RunningServer;

/// Opens storage and the root key, then starts serving `settings` in the background.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    let root_key = Arc::new(settings.root_key.load().context("loading the root key")?);
    let store = keyhold_store::open_store(settings.database_url.as_deref(), &settings.data_dir)
        .await
        .context("opening the metadata store")?;
    let kms = keyhold_core::Kms::new(store, root_key);
    let tls = settings.tls.clone();
    let listen = settings.listen;
    let state = Arc::new(router::AppState { kms, settings });
    let tls_paths = tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    listener::start(listen, tls_paths, state).await
}
