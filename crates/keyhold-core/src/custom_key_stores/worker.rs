//! The asynchronous half of the connection state machine.
//!
//! ConnectCustomKeyStore and DisconnectCustomKeyStore only move a store to `CONNECTING` or
//! `DISCONNECTING` (compare-and-set) and return. A worker then drives the store to a final
//! state: `CONNECTED`, `FAILED` with a `ConnectionErrorCode`, or `DISCONNECTED`.
//!
//! Exactly one worker among all Keyhold nodes owns a store at a time, through the lease
//! `cks:<id>` in the metadata store. A holder that crashes leaves its lease to expire; the
//! periodic recovery sweep ([`CustomKeyStores::recover_once`]) picks up every store still
//! `CONNECTING` or `DISCONNECTING`, so no store stays in a transient state after a crash or
//! restart. A node restarted with the same node id resumes its own stores at once.

use std::time::Duration;

use keyhold_kms_model::enums::{ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType};

use crate::error::KmsResult;
use crate::ports::xks::{HealthCheckReason, XksFailure, XksRequestMetadata};
use crate::ports::StoreError;

use super::diagnostics::AttemptKind;
use super::model::{unwrap_secret, LoadedStore, SecretKind, StoreKind, XksDoc};
use super::CustomKeyStores;

/// Transitions a worker makes per lease before letting go (guards against livelock).
const MAX_STEPS: usize = 16;

/// Marks a store as driven by this process until dropped.
struct DrivingGuard<'a> {
    stores: &'a CustomKeyStores,
    id: String,
}

impl<'a> DrivingGuard<'a> {
    fn take(stores: &'a CustomKeyStores, id: &str) -> Option<Self> {
        let mut driving = stores
            .inner
            .driving
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        driving.insert(id.to_string()).then(|| DrivingGuard {
            stores,
            id: id.to_string(),
        })
    }
}

impl Drop for DrivingGuard<'_> {
    fn drop(&mut self) {
        let mut driving = self
            .stores
            .inner
            .driving
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        driving.remove(&self.id);
    }
}

fn lease_name(id: &str) -> String {
    format!("cks:{id}")
}

fn is_transient(state: &str) -> bool {
    state == ConnectionStateType::Connecting.as_str()
        || state == ConnectionStateType::Disconnecting.as_str()
}

impl CustomKeyStores {
    /// Drives the store in the background (if a Tokio runtime is running; otherwise the next
    /// recovery sweep does it).
    pub(crate) fn spawn_drive(&self, account: &str, region: &str, id: &str) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        let (account, region, id) = (account.to_string(), region.to_string(), id.to_string());
        handle.spawn(async move {
            if let Err(e) = this.drive(&account, &region, &id).await {
                tracing::warn!(custom_key_store_id = %id, error = %e, "custom key store worker failed; the recovery sweep will retry");
            }
        });
    }

    /// Drives one store from `CONNECTING`/`DISCONNECTING` to a final state if this node can
    /// take its lease; returns at once when another worker owns it.
    pub async fn drive(&self, account: &str, region: &str, id: &str) -> KmsResult<()> {
        // One driver per store in this process; the one running re-reads the state when it
        // finishes, so a transition requested meanwhile is not lost.
        let Some(_driving) = DrivingGuard::take(self, id) else {
            return Ok(());
        };
        let store = &self.inner.store;
        let node = &self.inner.settings.node_id;
        let lease = lease_name(id);
        for _ in 0..MAX_STEPS {
            if !store
                .try_acquire_lease(&lease, node, self.inner.settings.lease_ttl_ms)
                .await?
            {
                return Ok(());
            }
            let result = self
                .while_holding(&lease, self.drive_owned(account, region, id))
                .await;
            if let Err(e) = store.release_lease(&lease, node).await {
                tracing::warn!(custom_key_store_id = %id, error = %e, "releasing a connection lease failed");
            }
            result?;
            // A transition requested while we held the lease may have found it taken; look
            // again now that it is free.
            match store.get_custom_key_store(account, region, id).await? {
                Some(row) if is_transient(&row.connection_state) => continue,
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// Runs `work` while renewing `lease` every third of its TTL, so a call slower than the
    /// TTL (a hung HSM, a slow proxy) does not let another node take the store over halfway.
    /// If the lease is lost anyway (the metadata store unreachable for a whole TTL), `work`
    /// still runs to its end — stopping halfway could leave a kmsuser password changed but not
    /// stored — and its writes stay safe through compare-and-set.
    async fn while_holding<T>(&self, lease: &str, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => out,
            () = self.keep_lease(lease) => work.await,
        }
    }

    /// Renews `lease` every third of its TTL; never returns (dropped when the work ends).
    async fn keep_lease(&self, lease: &str) {
        let (store, node) = (&self.inner.store, &self.inner.settings.node_id);
        let ttl = self.inner.settings.lease_ttl_ms;
        let every = Duration::from_millis(u64::try_from(ttl / 3).unwrap_or(1).max(1));
        loop {
            tokio::time::sleep(every).await;
            match store.try_acquire_lease(lease, node, ttl).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(lease, "a connection lease was lost during a call; finishing the call, its writes are compare-and-set");
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    tracing::warn!(lease, error = %e, "renewing a connection lease failed");
                }
            }
        }
    }

    /// The lease is held: run transitions until the store is final (or gone).
    async fn drive_owned(&self, account: &str, region: &str, id: &str) -> KmsResult<()> {
        let store = &self.inner.store;
        for _ in 0..MAX_STEPS {
            let Some(row) = store.get_custom_key_store(account, region, id).await? else {
                return Ok(());
            };
            let s = LoadedStore::from_row(row)?;
            let (kind, (state, code, cause)) = match s.state()? {
                ConnectionStateType::Connecting => {
                    (AttemptKind::Connect, self.connect_outcome(&s).await)
                }
                ConnectionStateType::Disconnecting => {
                    self.close_cloudhsm_sessions(&s).await;
                    (
                        AttemptKind::Disconnect,
                        (ConnectionStateType::Disconnected, None, None),
                    )
                }
                _ => return Ok(()),
            };
            // Recorded as observed, whether or not the state write below wins a race.
            let attempt = self.attempt(kind, state, code, cause);
            self.record_attempt(&s.row, attempt).await;
            let next = s.next(state, code)?;
            match store.update_custom_key_store(&next, None).await {
                Ok(()) => {
                    tracing::info!(
                        custom_key_store_id = %id,
                        connection_state = %state,
                        connection_error_code = code.map(|c| c.as_str()).unwrap_or(""),
                        "custom key store connection state changed"
                    );
                    return Ok(());
                }
                // Someone changed it meanwhile (e.g. Disconnect during CONNECTING): re-read.
                Err(StoreError::VersionMismatch) => continue,
                Err(StoreError::NotFound) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Tries to connect a `CONNECTING` store: the final state, error code and observed cause.
    async fn connect_outcome(&self, s: &LoadedStore) -> Outcome {
        let failed = |c, cause: String| (ConnectionStateType::Failed, Some(c), Some(cause));
        let x = match &s.doc.kind {
            StoreKind::External(x) => x,
            StoreKind::CloudHsm(hsm) => return self.cloudhsm_connect_outcome(s, hsm).await,
        };
        let secret = match unwrap_secret(
            &self.inner.root_key,
            &s.row,
            SecretKind::XksSecret,
            &x.wrapped_secret,
        ) {
            Ok(secret) => secret,
            Err(e) => {
                tracing::error!(custom_key_store_id = %s.row.id, error = %e, "cannot unwrap the proxy credential");
                return failed(
                    ConnectionErrorCodeType::InternalError,
                    UNWRAP_CREDENTIAL_FAILED.to_string(),
                );
            }
        };
        let target = x.target(&s.row.region, secret);
        match self
            .connector()
            .get_health_status(&target, HealthCheckReason::Connect, &metadata(s))
            .await
        {
            Ok(_) => (ConnectionStateType::Connected, None, None),
            Err(f) => {
                tracing::warn!(custom_key_store_id = %s.row.id, failure = %f, "connecting to the XKS proxy failed");
                let code = ConnectionErrorCodeType::try_from(f.connection_error_code())
                    .unwrap_or(ConnectionErrorCodeType::InternalError);
                failed(code, xks_cause(x, &f))
            }
        }
    }

    /// Drives every store left `CONNECTING` or `DISCONNECTING` (after a crash, a restart, or a
    /// lost race). Returns how many stores were looked at.
    pub async fn recover_once(&self) -> KmsResult<usize> {
        let rows = self
            .inner
            .store
            .list_custom_key_stores_in_states(&[
                ConnectionStateType::Connecting.as_str(),
                ConnectionStateType::Disconnecting.as_str(),
            ])
            .await?;
        let n = rows.len();
        for row in rows {
            if let Err(e) = self.drive(&row.account_id, &row.region, &row.id).await {
                tracing::warn!(custom_key_store_id = %row.id, error = %e, "recovering a custom key store failed");
            }
        }
        Ok(n)
    }

    /// Checks the health of every CONNECTED external key store this node can take the lease
    /// of, and logs it. A failing proxy never changes the store's state (AWS keeps it
    /// CONNECTED; cryptographic operations fail instead).
    pub async fn health_check_once(&self) -> KmsResult<()> {
        let store = &self.inner.store;
        let node = &self.inner.settings.node_id;
        let rows = store
            .list_custom_key_stores_in_states(&[ConnectionStateType::Connected.as_str()])
            .await?;
        for row in rows {
            if row.store_type != CustomKeyStoreType::ExternalKeyStore.as_str() {
                continue;
            }
            let (account, region, id) =
                (row.account_id.clone(), row.region.clone(), row.id.clone());
            let lease = lease_name(&id);
            if !store
                .try_acquire_lease(&lease, node, self.inner.settings.lease_ttl_ms)
                .await?
            {
                continue;
            }
            let s = LoadedStore::from_row(row);
            if let Ok(s) = &s {
                self.log_health(s).await;
            }
            if let Err(e) = store.release_lease(&lease, node).await {
                tracing::warn!(error = %e, "releasing a connection lease failed");
            }
            // A Disconnect that came in while we held the lease could not start its worker.
            if let Ok(Some(row)) = store.get_custom_key_store(&account, &region, &id).await {
                if is_transient(&row.connection_state) {
                    self.drive(&account, &region, &id).await?;
                }
            }
        }
        Ok(())
    }

    async fn log_health(&self, s: &LoadedStore) {
        let Some(x) = s.doc.xks() else { return };
        let Ok(secret) = unwrap_secret(
            &self.inner.root_key,
            &s.row,
            SecretKind::XksSecret,
            &x.wrapped_secret,
        ) else {
            tracing::error!(custom_key_store_id = %s.row.id, "cannot unwrap the proxy credential");
            let attempt = self.attempt(
                AttemptKind::HealthCheck,
                ConnectionStateType::Failed,
                Some(ConnectionErrorCodeType::InternalError),
                Some(UNWRAP_CREDENTIAL_FAILED.to_string()),
            );
            self.record_attempt(&s.row, attempt).await;
            return;
        };
        let target = x.target(&s.row.region, secret);
        let result = self
            .connector()
            .get_health_status(&target, HealthCheckReason::Periodic, &metadata(s))
            .await;
        let attempt = match &result {
            Ok(_) => self.attempt(
                AttemptKind::HealthCheck,
                ConnectionStateType::Connected,
                None,
                None,
            ),
            Err(f) => self.attempt(
                AttemptKind::HealthCheck,
                ConnectionStateType::Failed,
                ConnectionErrorCodeType::try_from(f.connection_error_code()).ok(),
                Some(xks_cause(x, f)),
            ),
        };
        self.record_attempt(&s.row, attempt).await;
        match result {
            Ok(h) => {
                let active = h
                    .ekm_fleet_details
                    .iter()
                    .filter(|m| m.health_status == "ACTIVE")
                    .count();
                tracing::info!(
                    custom_key_store_id = %s.row.id,
                    proxy_vendor = %h.xks_proxy_vendor,
                    ekm_instances = h.ekm_fleet_details.len(),
                    ekm_active = active,
                    "XKS proxy health check passed"
                );
            }
            Err(f) => {
                tracing::warn!(
                    custom_key_store_id = %s.row.id,
                    failure = %f,
                    would_be = f.connection_error_code(),
                    "XKS proxy health check failed (the store stays CONNECTED)"
                );
            }
        }
    }

    /// Starts the background loops: a recovery sweep now and every `recovery_every`, and, when
    /// `health_every` is set, the periodic health check. The returned handles stop them on
    /// abort.
    pub fn spawn_background(
        &self,
        recovery_every: Duration,
        health_every: Option<Duration>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        let this = self.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(recovery_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.recover_once().await {
                    tracing::warn!(error = %e, "custom key store recovery sweep failed");
                }
            }
        }));
        if let Some(every) = health_every {
            let this = self.clone();
            handles.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = this.health_check_once().await {
                        tracing::warn!(error = %e, "custom key store health check failed");
                    }
                }
            }));
        }
        handles
    }
}

/// What a connection attempt ended in: state, error code and the observed cause.
pub(crate) type Outcome = (
    ConnectionStateType,
    Option<ConnectionErrorCodeType>,
    Option<String>,
);

/// The cause recorded when a stored secret does not unwrap.
pub(crate) const UNWRAP_CREDENTIAL_FAILED: &str =
    "the stored credential cannot be unwrapped with this node's root key (was the server started with another root key?)";

/// The cause sentence of a failed health check of the store `x`.
fn xks_cause(x: &XksDoc, f: &XksFailure) -> String {
    let host = x
        .uri_endpoint
        .strip_prefix("https://")
        .unwrap_or(&x.uri_endpoint);
    let mut cause = f.cause_sentence(host, &format!("{}/health", x.uri_path));
    if let (
        XksFailure::VpcEndpointServiceNotFound | XksFailure::VpcEndpointServiceInvalid { .. },
        Some(name),
    ) = (f, &x.vpc_endpoint_service_name)
    {
        cause.push_str(&format!(" ({name})"));
    }
    cause
}

fn metadata(s: &LoadedStore) -> XksRequestMetadata {
    XksRequestMetadata {
        aws_principal_arn: format!("arn:aws:iam::{}:root", s.row.account_id),
        kms_request_id: uuid::Uuid::new_v4().to_string(),
        custom_key_store_id: Some(s.row.id.clone()),
    }
}
