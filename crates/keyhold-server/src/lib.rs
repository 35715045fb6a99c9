//! The Keyhold KMS endpoint: HTTP(S) listener, awsJson1.1 routing, SigV4 check, wire errors,
//! configuration, and the `keyhold` binary.
//!
//! This crate is the protocol edge: the only place where domain errors become wire errors.
#![warn(missing_docs)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod cloudhsm_dispatch;
pub mod config;
pub mod diagnostics;
pub mod dispatch;
pub mod ids;
pub mod listener;
pub mod log_writer;
pub mod logging;
pub mod metrics;
pub mod router;
pub mod seed;
pub mod store_metrics;
pub mod wire;

use std::sync::Arc;

use anyhow::Context as _;

pub use config::Settings;
pub use listener::RunningServer;

/// Opens storage and the root key, then starts serving `settings` in the background.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    if settings.auth == config::AuthMode::Dev && !settings.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %settings.listen,
            "dev authentication on a non-loopback address: anyone who can reach {} is \
             accepted without a signature check; listen on 127.0.0.1 or use --auth strict",
            settings.listen
        );
    }
    // A malformed seed file stops the start before anything is opened.
    let seed = match &settings.seed {
        Some(path) => Some(seed::SeedPlan::load(
            path,
            settings.test_mode,
            &settings.default_account,
        )?),
        None => None,
    };
    let root_key = Arc::new(settings.root_key.load().context("loading the root key")?);
    let store: Arc<dyn keyhold_core::ports::MetadataStore> = match (
        settings.database_url.as_deref(),
        settings.database_schema.as_deref(),
    ) {
        (Some(url), Some(schema))
            if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
        {
            Arc::new(
                keyhold_store::PostgresStore::connect_with_schema(url, schema)
                    .await
                    .context("opening the metadata store")?,
            )
        }
        (_, Some(_)) => {
            anyhow::bail!("database_schema needs a postgres:// database URL")
        }
        (url, None) => keyhold_store::open_store(url, &settings.data_dir)
            .await
            .context("opening the metadata store")?,
    };
    let xks = keyhold_xks::XksClient::new(settings.xks.clone())
        .context("configuring the XKS client ([xks] table)")?;
    let node_id = match &settings.node_id {
        Some(id) => id.clone(),
        None => node_id(&settings.data_dir).context("reading or creating the node id")?,
    };
    let cks_settings = keyhold_core::custom_key_stores::CustomKeyStoreSettings {
        max_custom_key_stores: settings.max_custom_key_stores,
        crypto_requests_per_second: settings.custom_key_store_requests_per_second,
        node_id,
        // Longer than any proxy call can take, so a lease never expires under its holder.
        lease_ttl_ms: 30_000i64
            .max(i64::try_from(settings.xks.timeout_ms.saturating_mul(4)).unwrap_or(i64::MAX)),
    };
    // In test mode the domain clock can be moved forward (router::ADVANCE_CLOCK_PATH).
    let test_clock = settings
        .test_mode
        .then(|| Arc::new(keyhold_core::ports::clock::OffsetClock::default()));
    let clock: Arc<dyn keyhold_core::ports::clock::Clock> = match &test_clock {
        Some(c) => c.clone(),
        None => Arc::new(keyhold_core::ports::clock::SystemClock),
    };
    let kms = keyhold_core::Kms::with_clock(
        store.clone(),
        root_key.clone(),
        Arc::new(xks),
        cks_settings,
        clock,
    );
    kms.set_key_cache_ttl(settings.key_cache_ttl);
    // CloudHSM: on when configured, or by default when its PKCS#11 module exists; when off,
    // an unavailable service answers the API and refuses AWS_CLOUDHSM key stores, saying why.
    let clusters = match settings.cloudhsm.availability() {
        keyhold_cloudhsm::Availability::On => {
            // Cluster records live in the metadata store, shared by all nodes; tokens in
            // <data_dir>/cloudhsm (per node).
            let clusters = keyhold_cloudhsm::ClusterService::open(
                settings.cloudhsm.clone(),
                &settings.data_dir,
                store,
                root_key.clone(),
            )
            .context("opening the CloudHSM clusters ([cloudhsm] table)")?;
            // An earlier release kept clusters in <data_dir>/cloudhsm/clusters.json: import
            // them once (before binding, so configured bindings win). A file that cannot be
            // read stays where it is and is tried again at the next start; it does not stop
            // this one.
            if let Err(e) = clusters.import_legacy_clusters(&settings.data_dir).await {
                tracing::error!(error = %e, "cannot import <data_dir>/cloudhsm/clusters.json of an earlier release; it is left in place");
            }
            clusters
                .bind_configured_clusters()
                .await
                .context("binding the [[cloudhsm.bound_clusters]]")?;
            clusters
        }
        keyhold_cloudhsm::Availability::Off(reason) => {
            tracing::info!(%reason, "CloudHSM is off");
            keyhold_cloudhsm::ClusterService::unavailable(
                settings.cloudhsm.clone(),
                store,
                root_key.clone(),
                reason,
            )
        }
    };
    kms.custom_key_stores
        .set_hsm_clusters(Arc::new(clusters.clone()));
    let cloudhsm = Some(clusters);
    // Seeded items exist before the first request is accepted.
    if let Some(plan) = &seed {
        let report = plan.apply(&kms).await?;
        tracing::info!(
            created = report.created,
            existing = report.existing,
            "seed file applied"
        );
    }
    // Finish stores left CONNECTING/DISCONNECTING (now, then periodically) and health-check
    // connected external key stores.
    kms.custom_key_stores.spawn_background(
        settings.custom_key_store_sweep_interval,
        settings.xks_health_check_interval,
    );
    let tls = settings.tls.clone();
    let listen = settings.listen;
    let admin_listen = settings.admin_listen;
    // Counted only when there is an admin listener to read them.
    let metrics = admin_listen.map(|_| Arc::new(metrics::Metrics::new()));
    if let Some(m) = &metrics {
        kms.custom_key_stores.set_xks_observer(m.xks_calls.clone());
    }
    let audit = match &settings.audit_log {
        Some(target) => Some(audit::AuditLog::open(target)?),
        None => None,
    };
    let state = Arc::new(router::AppState {
        kms,
        audit,
        metrics,
        settings,
        cloudhsm,
        test_clock,
    });
    if let Some(listen) = admin_listen {
        admin::start(listen, state.clone()).await?;
    }
    // Complete scheduled key deletions and automatic rotations when they fall due.
    let sweeper = Arc::clone(&state);
    tokio::spawn(async move {
        sweeper
            .kms
            .keys
            .run_due_work(std::time::Duration::from_secs(60))
            .await;
    });
    // Write recorded key uses (GetKeyLastUsage) in batches, off the request path.
    let flusher = Arc::clone(&state);
    tokio::spawn(async move {
        flusher
            .kms
            .keys
            .run_usage_flush(std::time::Duration::from_secs(5))
            .await;
    });
    let tls_paths = tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    listener::start(listen, tls_paths, state).await
}

/// This node's lease-holder id, kept in `<data_dir>/node-id` so a restarted node resumes the
/// custom key store connections it owned without waiting for its leases to expire.
fn node_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let id = format!("node-{}", uuid::Uuid::new_v4());
    std::fs::write(&path, &id)?;
    Ok(id)
}
