//! Connection diagnostics (beyond AWS): for every custom key store, its last connection
//! attempts and the last periodic health check, each with the exact observed cause and the
//! fix AWS documents for its `ConnectionErrorCode`.
//!
//! AWS reports one word (`ConnectionErrorCode`); an operator needs to know *which*
//! certificate expired or *which* PKCS#11 call refused which user. The worker records every
//! attempt here as it makes it. The record is a document of kind [`DIAGNOSTICS_KIND`] in the
//! metadata store (same account, Region and id as the store), so every node sharing the
//! database can answer for a store another node drove. `DescribeCustomKeyStores` is not
//! affected: it keeps AWS's shape.

use keyhold_kms_model::enums::{ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType};
use serde::{Deserialize, Serialize};

use crate::error::KmsResult;
use crate::ports::{StoreError, StoredCustomKeyStore, StoredDocument};

use super::model::LoadedStore;
use super::CustomKeyStores;

/// The document kind holding a store's diagnostics (id: the store's id).
pub const DIAGNOSTICS_KIND: &str = "custom-key-store-diagnostics";
/// Connection attempts kept per store (the oldest is dropped first).
pub const MAX_ATTEMPTS: usize = 10;
/// Compare-and-set retries when two nodes record at once.
const WRITE_RETRIES: usize = 5;

/// What an attempt was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptKind {
    /// ConnectCustomKeyStore's connection attempt.
    Connect,
    /// DisconnectCustomKeyStore's disconnection.
    Disconnect,
    /// The periodic health check of a connected external key store (`KmsHealthCheck`).
    HealthCheck,
}

/// One connection attempt as observed by the node that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConnectionAttempt {
    /// When it ended, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The node that made it (its lease-holder id).
    pub node_id: String,
    /// What it was made for.
    pub kind: AttemptKind,
    /// `CONNECTED`, `FAILED` or `DISCONNECTED` (a failed health check is `FAILED` although
    /// the store stays `CONNECTED`, as at AWS).
    pub outcome: ConnectionStateType,
    /// The code of a failure (for a health check: the code a Connect would have recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_error_code: Option<ConnectionErrorCodeType>,
    /// The exact observed cause, as one sentence (never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The stored document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DiagnosticsDoc {
    /// Oldest first, at most [`MAX_ATTEMPTS`].
    #[serde(default)]
    attempts: Vec<ConnectionAttempt>,
    #[serde(default)]
    last_health_check: Option<ConnectionAttempt>,
}

/// The diagnostics of one store, for the admin listener and `keyhold custom-key-stores
/// diagnose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDiagnostics {
    /// Owning account.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// `CustomKeyStoreId`.
    pub custom_key_store_id: String,
    /// `CustomKeyStoreName`.
    pub custom_key_store_name: String,
    /// `CustomKeyStoreType`.
    pub custom_key_store_type: CustomKeyStoreType,
    /// `ConnectionState` now.
    pub connection_state: ConnectionStateType,
    /// `ConnectionErrorCode` now (only while `FAILED`, as DescribeCustomKeyStores says).
    pub connection_error_code: Option<ConnectionErrorCodeType>,
    /// Connection attempts, newest first.
    pub attempts: Vec<ConnectionAttempt>,
    /// The last periodic health check, if any.
    pub last_health_check: Option<ConnectionAttempt>,
}

/// The general procedure AWS documents for every connection failure.
pub const GENERAL_FIX: &str = "To fix the failure, use the DisconnectCustomKeyStore operation to disconnect the custom key store, correct the error, use the UpdateCustomKeyStore operation if necessary, and then use ConnectCustomKeyStore again.";

/// The fix AWS documents for `code` in a store of type `store_type`, word for word from the
/// `ConnectionErrorCode` documentation of `CustomKeyStoresListEntry` — the one table.
pub fn documented_fix(
    code: ConnectionErrorCodeType,
    store_type: CustomKeyStoreType,
) -> &'static str {
    use ConnectionErrorCodeType as C;
    match code {
        C::InternalError => "AWS KMS could not complete the request due to an internal error. Retry the request. For ConnectCustomKeyStore requests, disconnect the custom key store before trying to connect again.",
        C::NetworkErrors => "Network errors are preventing AWS KMS from connecting the custom key store to its backing key store.",
        C::ClusterNotFound => "AWS KMS cannot find the AWS CloudHSM cluster with the specified cluster ID.",
        C::InsufficientCloudhsmHsms => "The associated AWS CloudHSM cluster does not contain any active HSMs. To connect a custom key store to its AWS CloudHSM cluster, the cluster must contain at least one active HSM.",
        C::InsufficientFreeAddressesInSubnet => "At least one private subnet associated with the AWS CloudHSM cluster doesn't have any available IP addresses. A AWS CloudHSM key store connection requires one free IP address in each of the associated private subnets, although two are preferable.",
        C::InvalidCredentials => match store_type {
            CustomKeyStoreType::AwsCloudhsm => "The KeyStorePassword for the custom key store doesn't match the current password of the kmsuser crypto user in the AWS CloudHSM cluster. Before you can connect your custom key store to its AWS CloudHSM cluster, you must change the kmsuser account password and update the KeyStorePassword value for the custom key store.",
            CustomKeyStoreType::ExternalKeyStore => "One or both of the XksProxyAuthenticationCredential values is not valid on the specified external key store proxy.",
        },
        C::SubnetNotFound => "A subnet in the AWS CloudHSM cluster configuration was deleted. If AWS KMS cannot find all of the subnets in the cluster configuration, attempts to connect the custom key store to the AWS CloudHSM cluster fail. To fix this error, create a cluster from a recent backup and associate it with your custom key store. (This process creates a new cluster configuration with a VPC and private subnets.)",
        C::UserLockedOut => "The kmsuser CU account is locked out of the associated AWS CloudHSM cluster due to too many failed password attempts. Before you can connect your custom key store to its AWS CloudHSM cluster, you must change the kmsuser account password and update the key store password value for the custom key store.",
        C::UserLoggedIn => "The kmsuser CU account is logged into the associated AWS CloudHSM cluster. This prevents AWS KMS from rotating the kmsuser account password and logging into the cluster. Before you can connect your custom key store to its AWS CloudHSM cluster, you must log the kmsuser CU out of the cluster. If you changed the kmsuser password to log into the cluster, you must also and update the key store password value for the custom key store.",
        C::UserNotFound => "AWS KMS cannot find a kmsuser CU account in the associated AWS CloudHSM cluster. Before you can connect your custom key store to its AWS CloudHSM cluster, you must create a kmsuser CU account in the cluster, and then update the key store password value for the custom key store.",
        C::XksProxyAccessDenied => "AWS KMS requests are denied access to the external key store proxy. If the external key store proxy has authorization rules, verify that they permit AWS KMS to communicate with the proxy on your behalf.",
        C::XksProxyInvalidConfiguration => "A configuration error is preventing the external key store from connecting to its proxy. Verify the value of the XksProxyUriPath.",
        C::XksProxyInvalidResponse => "AWS KMS cannot interpret the response from the external key store proxy. If you see this connection error code repeatedly, notify your external key store proxy vendor.",
        C::XksProxyInvalidTlsConfiguration => "AWS KMS cannot connect to the external key store proxy because the TLS configuration is invalid. Verify that the XKS proxy supports TLS 1.2 or 1.3. Also, verify that the TLS certificate is not expired, and that it matches the hostname in the XksProxyUriEndpoint value, and that it is signed by a certificate authority included in the Trusted Certificate Authorities list.",
        C::XksProxyNotReachable => "AWS KMS can't communicate with your external key store proxy. Verify that the XksProxyUriEndpoint and XksProxyUriPath are correct. Use the tools for your external key store proxy to verify that the proxy is active and available on its network. Also, verify that your external key manager instances are operating properly. Connection attempts fail with this connection error code if the proxy reports that all external key manager instances are unavailable.",
        C::XksProxyTimedOut => "AWS KMS can connect to the external key store proxy, but the proxy does not respond to AWS KMS in the time allotted. If you see this connection error code repeatedly, notify your external key store proxy vendor.",
        C::XksVpcEndpointServiceInvalidConfiguration => "The Amazon VPC endpoint service configuration doesn't conform to the requirements for an AWS KMS external key store: an endpoint service for interface endpoints in the caller's AWS account; a network load balancer (NLB) connected to at least two subnets, each in a different Availability Zone; the Allow principals list includes the AWS KMS service principal for the Region, cks.kms.<region>.amazonaws.com; no acceptance of connection requests required; a private DNS name, unique in its AWS Region, whose domain has a verification status of verified; and a TLS certificate for the private DNS hostname at which the endpoint is reachable.",
        C::XksVpcEndpointServiceNotFound => "AWS KMS can't find the VPC endpoint service that it uses to communicate with the external key store proxy. Verify that the XksProxyVpcEndpointServiceName is correct and the AWS KMS service principal has service consumer permissions on the Amazon VPC endpoint service.",
    }
}

impl ConnectionAttempt {
    /// The documented fix for this attempt's error code, if it failed.
    pub fn fix(&self, store_type: CustomKeyStoreType) -> Option<&'static str> {
        self.connection_error_code
            .map(|c| documented_fix(c, store_type))
    }
}

impl StoreDiagnostics {
    /// The documented fix for the store's current error code, if it is `FAILED`.
    pub fn fix(&self) -> Option<&'static str> {
        self.connection_error_code
            .map(|c| documented_fix(c, self.custom_key_store_type))
    }
}

fn document(
    row: &StoredCustomKeyStore,
    version: i64,
    doc: &DiagnosticsDoc,
) -> Option<StoredDocument> {
    Some(StoredDocument {
        kind: DIAGNOSTICS_KIND.to_string(),
        account_id: row.account_id.clone(),
        region: row.region.clone(),
        id: row.id.clone(),
        created_at_ms: now_ms(),
        version,
        doc: serde_json::to_string(doc).ok()?,
    })
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
    )
    .unwrap_or(i64::MAX)
}

impl CustomKeyStores {
    /// A new attempt made by this node now.
    pub(crate) fn attempt(
        &self,
        kind: AttemptKind,
        outcome: ConnectionStateType,
        connection_error_code: Option<ConnectionErrorCodeType>,
        cause: Option<String>,
    ) -> ConnectionAttempt {
        ConnectionAttempt {
            time_ms: now_ms(),
            node_id: self.inner.settings.node_id.clone(),
            kind,
            outcome,
            connection_error_code,
            cause,
        }
    }

    /// Records `attempt` for the store `row` (a health check replaces the last one; other
    /// attempts are appended, keeping [`MAX_ATTEMPTS`]). Never fails the caller: a lost
    /// record is logged.
    pub(crate) async fn record_attempt(
        &self,
        row: &StoredCustomKeyStore,
        attempt: ConnectionAttempt,
    ) {
        if let Err(e) = self.try_record(row, attempt).await {
            tracing::warn!(custom_key_store_id = %row.id, error = %e, "recording a connection attempt failed");
        }
    }

    async fn try_record(
        &self,
        row: &StoredCustomKeyStore,
        attempt: ConnectionAttempt,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        for _ in 0..WRITE_RETRIES {
            let current = store
                .get_document(DIAGNOSTICS_KIND, &row.account_id, &row.region, &row.id)
                .await?;
            let (version, mut doc) = match &current {
                Some(d) => (d.version, serde_json::from_str(&d.doc).unwrap_or_default()),
                None => (0, DiagnosticsDoc::default()),
            };
            let doc: &mut DiagnosticsDoc = &mut doc;
            if attempt.kind == AttemptKind::HealthCheck {
                doc.last_health_check = Some(attempt.clone());
            } else {
                doc.attempts.push(attempt.clone());
                let excess = doc.attempts.len().saturating_sub(MAX_ATTEMPTS);
                doc.attempts.drain(..excess);
            }
            let Some(next) = document(row, version + 1, doc) else {
                return Ok(());
            };
            let written = match current {
                Some(_) => store.update_document(&next, None, None).await,
                None => store.insert_document(&next, &[], &[]).await,
            };
            match written {
                Ok(()) => return Ok(()),
                // Another node recorded meanwhile: read again.
                Err(
                    StoreError::VersionMismatch
                    | StoreError::Conflict { .. }
                    | StoreError::NotFound,
                ) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::VersionMismatch)
    }

    /// Forgets a deleted store's diagnostics (best effort).
    pub(crate) async fn forget_attempts(&self, account: &str, region: &str, id: &str) {
        let store = &self.inner.store;
        if let Ok(Some(d)) = store
            .get_document(DIAGNOSTICS_KIND, account, region, id)
            .await
        {
            if let Err(e) = store
                .delete_document(DIAGNOSTICS_KIND, account, region, id, d.version)
                .await
            {
                tracing::debug!(custom_key_store_id = %id, error = %e, "forgetting connection diagnostics failed");
            }
        }
    }

    /// The diagnostics of the store with this id, in any account and Region (store ids are
    /// unique), or `None` when there is no such store.
    pub async fn diagnostics(&self, id: &str) -> KmsResult<Option<StoreDiagnostics>> {
        let states: Vec<&str> = ConnectionStateType::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        let rows = self
            .inner
            .store
            .list_custom_key_stores_in_states(&states)
            .await?;
        let Some(row) = rows.into_iter().find(|r| r.id == id) else {
            return Ok(None);
        };
        let s = LoadedStore::from_row(row)?;
        let doc: DiagnosticsDoc = match self
            .inner
            .store
            .get_document(
                DIAGNOSTICS_KIND,
                &s.row.account_id,
                &s.row.region,
                &s.row.id,
            )
            .await?
        {
            Some(d) => serde_json::from_str(&d.doc).unwrap_or_default(),
            None => DiagnosticsDoc::default(),
        };
        let entry = s.list_entry();
        let mut attempts = doc.attempts;
        attempts.reverse();
        Ok(Some(StoreDiagnostics {
            account_id: s.row.account_id.clone(),
            region: s.row.region.clone(),
            custom_key_store_id: s.row.id.clone(),
            custom_key_store_name: s.row.name.clone(),
            custom_key_store_type: s.store_type()?,
            connection_state: s.state()?,
            connection_error_code: entry.connection_error_code,
            attempts,
            last_health_check: doc.last_health_check,
        }))
    }
}

/// One custom key store as `/metrics` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInventory {
    /// `CustomKeyStoreId`.
    pub custom_key_store_id: String,
    /// `CustomKeyStoreType` wire value.
    pub custom_key_store_type: String,
    /// `ConnectionState` wire value.
    pub connection_state: String,
    /// The cluster of an `AWS_CLOUDHSM` store.
    pub cloud_hsm_cluster_id: Option<String>,
    /// KMS keys in the store (keys pending deletion included).
    pub keys: u64,
}

impl CustomKeyStores {
    /// Every custom key store of every account and Region with its key count: one listing
    /// and one count per store (stores are bounded by their quota), for scrapes.
    pub async fn inventory(&self) -> KmsResult<Vec<StoreInventory>> {
        let states: Vec<&str> = ConnectionStateType::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        let store = &self.inner.store;
        let rows = store.list_custom_key_stores_in_states(&states).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let keys = store
                .count_keys_in_custom_key_store(&row.account_id, &row.region, &row.id)
                .await?;
            let cluster = LoadedStore::from_row(row.clone())
                .ok()
                .and_then(|s| s.doc.cloud_hsm().map(|c| c.cluster_id.clone()));
            out.push(StoreInventory {
                custom_key_store_id: row.id,
                custom_key_store_type: row.store_type,
                connection_state: row.connection_state,
                cloud_hsm_cluster_id: cluster,
                keys,
            });
        }
        out.sort_by(|a, b| a.custom_key_store_id.cmp(&b.custom_key_store_id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_fix_and_invalid_credentials_depends_on_the_type() {
        for code in ConnectionErrorCodeType::ALL {
            for t in [
                CustomKeyStoreType::AwsCloudhsm,
                CustomKeyStoreType::ExternalKeyStore,
            ] {
                assert!(!documented_fix(*code, t).is_empty());
            }
        }
        assert!(documented_fix(
            ConnectionErrorCodeType::InvalidCredentials,
            CustomKeyStoreType::AwsCloudhsm
        )
        .contains("kmsuser"));
        assert!(documented_fix(
            ConnectionErrorCodeType::InvalidCredentials,
            CustomKeyStoreType::ExternalKeyStore
        )
        .contains("XksProxyAuthenticationCredential"));
    }
}
