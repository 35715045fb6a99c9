//! Keys in AWS CloudHSM key stores: the backing key is a persistent, non-extractable AES-256
//! key in the store's cluster labelled with the KMS key ARN, and every encryption and
//! decryption runs inside the HSM (AES-256-GCM through the `kmsuser` session pool), with the
//! blob header and the encryption context as AAD. Keyhold holds no material for these keys.
//!
//! Failures: a ciphertext that does not authenticate is `InvalidCiphertextException`; a
//! missing session pool, an unreachable HSM or a missing backing key is
//! `KMSInvalidStateException`; session exhaustion and anything else `KMSInternalException`.
//! GenerateRandom lives here too (from the HSM with a CloudHSM `CustomKeyStoreId`).

use async_trait::async_trait;
use keyhold_kms_model::Exception;
use std::future::Future;
use std::sync::Arc;

use keyhold_crypto::blob::{associated_data, BlobKind};
use keyhold_crypto::{CiphertextBlob, SecretBytes};
use keyhold_kms_model::enums::{ConnectionStateType, CustomKeyStoreType};
use keyhold_kms_model::shapes::{GenerateRandomRequest, GenerateRandomResponse};
use keyhold_kms_model::Blob;

use super::holder::{CryptoCall, KeyHolder};
use super::{Keys, LoadedKey};
use crate::context::RequestContext;
use crate::custom_key_stores::{invalid_state, CustomKeyStores, LoadedStore};
use crate::error::{KmsError, KmsResult};
use crate::ports::cloudhsm::{CloudHsmFailure, HsmClusters, HsmKeyFailure, HsmTarget};

/// CloudHSM's minimum: two active HSMs in different availability zones.
const MIN_ZONES: usize = 2;

/// `CustomKeyStoreInvalidStateException` for a store that is not connected.
fn store_not_connected(id: &str, state: ConnectionStateType) -> KmsError {
    invalid_state(format!(
        "Custom key store {id} is not connected (its ConnectionState is {state}). Connect the custom key store and try again."
    ))
}

/// The `KmsError` AWS answers a failed HSM operation on `arn` (store `store_id`) with.
fn hsm_failure(arn: &str, store_id: &str, operation: &str, f: &HsmKeyFailure) -> KmsError {
    tracing::warn!(key_arn = %arn, custom_key_store_id = %store_id, operation, failure = %f, "CloudHSM key operation failed");
    match f {
        HsmKeyFailure::InvalidCiphertext => KmsError::new(Exception::InvalidCiphertext, String::new()),
        // AWS's guide quotes "KMS cannot communicate with your CloudHSM cluster" and advises
        // retrying: the cause may be transient.
        HsmKeyFailure::NotConnected { .. } | HsmKeyFailure::Unavailable { .. } => {
            KmsError::new(Exception::KMSInvalidState, format!(
                "{arn} is unavailable: KMS cannot communicate with your CloudHSM cluster (custom key store {store_id}). This might be a transient network issue; retry the request."
            ))
        }
        HsmKeyFailure::KeyNotFound => KmsError::new(Exception::KMSInvalidState, format!(
            "The key material for {arn} is not available in the AWS CloudHSM cluster associated with custom key store {store_id}."
        )),
        // Session exhaustion: AWS answers KMSInternalException about PKCS #11 sessions; the
        // caller should back off and retry.
        HsmKeyFailure::Busy => KmsError::new(Exception::KMSInternal, format!(
                "KMS cannot complete the request: all PKCS #11 sessions to the AWS CloudHSM cluster of custom key store {store_id} are in use. Back off and retry the request."
            )),
        HsmKeyFailure::Internal { .. } => {
            KmsError::internal(std::io::Error::other(f.to_string()))
        }
    }
}

impl Keys {
    /// The custom key store `store_id`, which must be an AWS CloudHSM key store
    /// (UnsupportedOperationException with `not_cloudhsm`'s message otherwise) and CONNECTED,
    /// with the port to its cluster and the cluster's address.
    async fn connected_cloudhsm_store(
        &self,
        ctx: &RequestContext,
        store_id: &str,
        not_cloudhsm: impl FnOnce() -> String,
    ) -> KmsResult<(LoadedStore, Arc<dyn HsmClusters>, HsmTarget)> {
        let store = self
            .custom_key_stores
            .load(&ctx.account_id, &ctx.region, store_id)
            .await?;
        if store.store_type()? != CustomKeyStoreType::AwsCloudhsm {
            return Err(KmsError::new(
                Exception::UnsupportedOperation,
                not_cloudhsm(),
            ));
        }
        let state = store.state()?;
        if state != ConnectionStateType::Connected {
            return Err(store_not_connected(store_id, state));
        }
        let (Some(hsm), Some(target)) = (
            self.custom_key_stores.hsm_clusters(),
            CustomKeyStores::hsm_target(&store),
        ) else {
            return Err(store_not_connected(store_id, ConnectionStateType::Failed));
        };
        Ok((store, hsm, target))
    }

    /// The checks CreateKey makes for a key in an AWS CloudHSM key store: the store exists,
    /// is an AWS_CLOUDHSM store, is CONNECTED, and its cluster still has two active HSMs in
    /// different availability zones. Returns the store.
    pub(super) async fn check_cloudhsm_store(
        &self,
        ctx: &RequestContext,
        store_id: &str,
    ) -> KmsResult<LoadedStore> {
        let (store, hsm, target) = self
            .connected_cloudhsm_store(ctx, store_id, || {
                format!("Custom key store {store_id} is not an AWS CloudHSM key store; use Origin EXTERNAL_KEY_STORE for keys in an external key store.")
            })
            .await?;
        let facts = hsm
            .cluster_facts(&target.account, &target.region, &target.cluster_id)
            .await
            .map_err(|e| KmsError::internal(std::io::Error::other(e.to_string())))?;
        let mut zones = facts.map(|f| f.active_hsm_zones).unwrap_or_default();
        zones.sort();
        zones.dedup();
        if zones.len() < MIN_ZONES {
            return Err(KmsError::new(Exception::CloudHsmClusterInvalidConfiguration, format!(
                    "AWS CloudHSM cluster {} must contain at least two active HSMs, each in a different Availability Zone.",
                    target.cluster_id
                )));
        }
        Ok(store)
    }

    /// Runs `op` against the store's cluster; when no session pool is open on this node (a
    /// restart, or another login suspended it) it is opened with the stored password and
    /// `op` runs once more.
    pub(super) async fn hsm_op<T, F, Fut>(
        &self,
        store: &LoadedStore,
        op: F,
    ) -> Result<T, HsmKeyFailure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, HsmKeyFailure>>,
    {
        match op().await {
            Err(HsmKeyFailure::NotConnected { .. }) => {
                match self.custom_key_stores.open_cloudhsm_sessions(store).await {
                    Ok(()) => {}
                    Err(CloudHsmFailure::SessionsExhausted { .. }) => {
                        return Err(HsmKeyFailure::Busy)
                    }
                    Err(f) => {
                        return Err(HsmKeyFailure::NotConnected {
                            detail: f.to_string(),
                        })
                    }
                }
                op().await
            }
            other => other,
        }
    }

    /// The cluster of `store`, or `KMSInvalidStateException` for `arn`.
    fn target_of(&self, arn: &str, store: &LoadedStore) -> KmsResult<HsmTarget> {
        CustomKeyStores::hsm_target(store).ok_or_else(|| {
            hsm_failure(
                arn,
                &store.row.id,
                "lookup",
                &HsmKeyFailure::NotConnected {
                    detail: "no cluster".into(),
                },
            )
        })
    }

    /// Creates the backing key of a new KMS key `arn` in the store's cluster.
    pub(super) async fn create_backing_key(&self, store: &LoadedStore, arn: &str) -> KmsResult<()> {
        let target = self.target_of(arn, store)?;
        let hsm = self
            .custom_key_stores
            .hsm_clusters()
            .ok_or_else(|| store_not_connected(&store.row.id, ConnectionStateType::Failed))?;
        self.hsm_op(store, || hsm.create_key(&target, arn))
            .await
            .map_err(|f| {
                tracing::warn!(custom_key_store_id = %store.row.id, failure = %f, "creating the backing key failed");
                match f {
                    HsmKeyFailure::NotConnected { .. } | HsmKeyFailure::Unavailable { .. } => {
                        invalid_state(format!(
                            "Custom key store {} cannot reach its AWS CloudHSM cluster {}.",
                            store.row.id, target.cluster_id
                        ))
                    }
                    other => KmsError::internal(std::io::Error::other(other.to_string())),
                }
            })
    }

    /// Best-effort removal of a backing key whose KMS key could not be stored.
    pub(super) async fn discard_backing_key(&self, store: &LoadedStore, arn: &str) {
        let (Some(hsm), Some(target)) = (
            self.custom_key_stores.hsm_clusters(),
            CustomKeyStores::hsm_target(store),
        ) else {
            return;
        };
        if let Err(f) = hsm.destroy_key(&target, arn).await {
            tracing::warn!(key_arn = %arn, failure = %f, "removing an orphaned backing key failed");
        }
    }

    /// The store of a CloudHSM key, after its request quota.
    fn cloudhsm_store<'k>(&self, key: &'k LoadedKey) -> KmsResult<&'k LoadedStore> {
        let store = key.store.as_ref().ok_or_else(|| {
            KmsError::new(
                Exception::KMSInvalidState,
                format!("{} is unavailable.", key.arn()),
            )
        })?;
        self.throttle.take(&store.row.id)?;
        Ok(store)
    }

    /// `GenerateRandom`: from the OS CSPRNG, or with the `CustomKeyStoreId` of an AWS CloudHSM
    /// key store, from that store's HSMs.
    pub async fn generate_random(
        &self,
        ctx: &RequestContext,
        req: GenerateRandomRequest,
    ) -> KmsResult<GenerateRandomResponse> {
        super::recipient::refuse_recipient(req.recipient.as_ref())?;
        let n = match req.number_of_bytes {
            Some(n) if (1..=1024).contains(&n) => n as usize,
            Some(n) => {
                return Err(KmsError::new(Exception::Validation, format!(
                    "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024"
                )))
            }
            None => {
                return Err(KmsError::new(Exception::Validation,
                    "1 validation error detected: Value null at 'numberOfBytes' failed to satisfy constraint: Member must not be null"
                        .into(),
                ))
            }
        };
        let Some(store_id) = req.custom_key_store_id.as_deref() else {
            return Ok(GenerateRandomResponse {
                plaintext: Some(Blob::from(
                    keyhold_crypto::random_bytes(n).expose().to_vec(),
                )),
                ..Default::default()
            });
        };
        let (store, hsm, target) = self
            .connected_cloudhsm_store(ctx, store_id, || {
                format!("GenerateRandom is not supported with custom key store {store_id}: only AWS CloudHSM key stores generate random bytes.")
            })
            .await?;
        let bytes = self
            .hsm_op(&store, || hsm.generate_random(&target, n))
            .await
            .map_err(|f| {
                tracing::warn!(custom_key_store_id = %store_id, failure = %f, "GenerateRandom in the cluster failed");
                match f {
                    HsmKeyFailure::NotConnected { .. } | HsmKeyFailure::Unavailable { .. } => {
                        invalid_state(format!(
                            "Custom key store {store_id} cannot reach its AWS CloudHSM cluster {}.",
                            target.cluster_id
                        ))
                    }
                    other => KmsError::internal(std::io::Error::other(other.to_string())),
                }
            })?;
        if bytes.len() != n {
            return Err(KmsError::internal(std::io::Error::other(
                "the HSM returned the wrong number of random bytes",
            )));
        }
        Ok(GenerateRandomResponse {
            plaintext: Some(Blob::from(bytes)),
            ..Default::default()
        })
    }
}

/// The holder of keys in AWS CloudHSM key stores: AES-GCM inside the cluster's HSM, under the
/// key's non-extractable backing key.
pub(crate) struct CloudHsmHolder;

#[async_trait]
impl KeyHolder for CloudHsmHolder {
    /// Encrypts inside the HSM under `key`'s backing key; the blob bytes.
    async fn seal(&self, keys: &Keys, c: &CryptoCall<'_>, plaintext: &[u8]) -> KmsResult<Vec<u8>> {
        let (key, context, operation) = (c.key, c.context, c.operation);
        let store = keys.cloudhsm_store(key)?;
        let arn = key.arn();
        let target = keys.target_of(&arn, store)?;
        let hsm = keys.custom_key_stores.hsm_clusters().ok_or_else(|| {
            KmsError::new(Exception::KMSInvalidState, format!("{arn} is unavailable."))
        })?;
        let r = &key.row;
        let mut blob = CiphertextBlob::new_cloudhsm(
            &r.account_id,
            &r.region,
            &r.key_id,
            &key.doc.current_material_id,
        );
        let aad = associated_data(&blob.header(), context);
        let out = keys
            .hsm_op(store, || hsm.encrypt(&target, &arn, &aad, plaintext))
            .await
            .map_err(|f| hsm_failure(&arn, &store.row.id, operation, &f))?;
        blob.iv = out.iv;
        blob.ciphertext = out.sealed;
        Ok(blob.to_bytes())
    }

    /// Reverses [`CloudHsmHolder::seal`].
    async fn open(
        &self,
        keys: &Keys,
        c: &CryptoCall<'_>,
        blob: &CiphertextBlob,
    ) -> KmsResult<SecretBytes> {
        let (key, context, operation) = (c.key, c.context, c.operation);
        if blob.kind != BlobKind::CloudHsmAesGcm || blob.material_id != key.doc.current_material_id
        {
            return Err(KmsError::new(Exception::InvalidCiphertext, String::new()));
        }
        let store = keys.cloudhsm_store(key)?;
        let arn = key.arn();
        let target = keys.target_of(&arn, store)?;
        let hsm = keys.custom_key_stores.hsm_clusters().ok_or_else(|| {
            KmsError::new(Exception::KMSInvalidState, format!("{arn} is unavailable."))
        })?;
        let aad = associated_data(&blob.header(), context);
        keys.hsm_op(store, || {
            hsm.decrypt(&target, &arn, &blob.iv, &aad, &blob.ciphertext)
        })
        .await
        .map_err(|f| hsm_failure(&arn, &store.row.id, operation, &f))
    }

    fn reports_key_material_id(&self) -> bool {
        false
    }

    /// Destroys the key's backing key in the HSM.
    async fn key_deleted(&self, keys: &Keys, key: &LoadedKey) {
        keys.destroy_backing_key(key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsm_failures_become_aws_exceptions() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k";
        let name = |f: HsmKeyFailure| hsm_failure(arn, "cks-1", "Encrypt", &f).exception_name();
        assert_eq!(
            name(HsmKeyFailure::InvalidCiphertext),
            "InvalidCiphertextException"
        );
        assert_eq!(name(HsmKeyFailure::KeyNotFound), "KMSInvalidStateException");
        assert_eq!(
            name(HsmKeyFailure::Unavailable { detail: "x".into() }),
            "KMSInvalidStateException"
        );
        assert_eq!(
            name(HsmKeyFailure::NotConnected { detail: "x".into() }),
            "KMSInvalidStateException"
        );
        assert_eq!(name(HsmKeyFailure::Busy), "KMSInternalException");
    }
}
