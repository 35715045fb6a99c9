//! The AWS_CLOUDHSM half of Create and Connect: the cluster checks CreateCustomKeyStore makes,
//! and the real connection attempt of the worker.

use keyhold_kms_model::enums::{ConnectionErrorCodeType, ConnectionStateType};
use keyhold_kms_model::Exception;

use crate::error::{KmsError, KmsResult};
use keyhold_crypto::SecretBytes;

use crate::ports::cloudhsm::{CloudHsmFailure, HsmClusters, HsmTarget};

use super::model::{unwrap_secret, wrap_secret, CloudHsmDoc, LoadedStore, SecretKind, StoreKind};
use super::worker::{Outcome, UNWRAP_CREDENTIAL_FAILED};
use super::CustomKeyStores;

/// The cluster state CreateCustomKeyStore requires.
const ACTIVE: &str = "ACTIVE";
/// A deleted cluster's state.
const DELETED: &str = "DELETED";

fn other(name: Exception, message: String) -> KmsError {
    KmsError::new(name, message)
}

/// A failed cluster lookup: a node without CloudHSM finds no cluster and says why; anything
/// else is internal.
fn lookup_failed(cluster_id: &str, failure: CloudHsmFailure) -> KmsError {
    match failure {
        CloudHsmFailure::Unavailable { detail } => other(
            Exception::CloudHsmClusterNotFound,
            format!("AWS CloudHSM cluster {cluster_id} not found: {detail}."),
        ),
        f => KmsError::internal(std::io::Error::other(f.to_string())),
    }
}

/// Compares certificates ignoring line endings and surrounding whitespace.
fn same_certificate(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    norm(a) == norm(b)
}

impl CustomKeyStores {
    /// CreateCustomKeyStore's checks of the cluster, in AWS's order: it exists, is `ACTIVE`,
    /// has two active HSMs in different availability zones, and its trust anchor matches.
    /// (That no other store uses it is the cluster claim, checked atomically at insert.)
    /// Without a cluster port there is nothing to check (unit tests); the server always sets
    /// one, which refuses every cluster when CloudHSM is off.
    pub(crate) async fn check_cloudhsm_cluster(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
        trust_anchor: &str,
    ) -> KmsResult<()> {
        let Some(hsm) = self.hsm_clusters() else {
            return Ok(());
        };
        let facts = hsm
            .cluster_facts(account, region, cluster_id)
            .await
            .map_err(|e| lookup_failed(cluster_id, e))?
            .ok_or_else(|| {
                other(
                    Exception::CloudHsmClusterNotFound,
                    format!("AWS CloudHSM cluster {cluster_id} not found."),
                )
            })?;
        if facts.state == DELETED {
            return Err(other(
                Exception::CloudHsmClusterNotFound,
                format!("AWS CloudHSM cluster {cluster_id} not found."),
            ));
        }
        if facts.state != ACTIVE {
            return Err(other(
                Exception::CloudHsmClusterNotActive,
                format!(
                    "AWS CloudHSM cluster {cluster_id} is not active (state {}).",
                    facts.state
                ),
            ));
        }
        let mut zones = facts.active_hsm_zones.clone();
        zones.sort();
        zones.dedup();
        if facts.active_hsm_zones.len() < 2 || zones.len() < 2 {
            return Err(other(
                Exception::CloudHsmClusterInvalidConfiguration,
                format!(
                    "AWS CloudHSM cluster {cluster_id} must contain at least two active HSMs, \
                     each in a different Availability Zone."
                ),
            ));
        }
        match &facts.trust_anchor {
            Some(anchor) if same_certificate(anchor, trust_anchor) => Ok(()),
            _ => Err(other(
                Exception::IncorrectTrustAnchor,
                format!(
                    "The trust anchor certificate does not match the trust anchor of \
                     AWS CloudHSM cluster {cluster_id}."
                ),
            )),
        }
    }

    /// UpdateCustomKeyStore to another cluster: it must exist and share the backup lineage of
    /// the store's cluster (`CloudHsmClusterNotRelatedException`), and be active with two HSMs
    /// in different zones (the new cluster's trust anchor is not given, so not compared).
    pub(crate) async fn check_related_cluster(
        &self,
        account: &str,
        region: &str,
        current: &str,
        new: &str,
    ) -> KmsResult<()> {
        let Some(hsm) = self.hsm_clusters() else {
            return Ok(());
        };
        let facts = |id: &str| {
            let (hsm, id) = (hsm.clone(), id.to_string());
            async move {
                hsm.cluster_facts(account, region, &id)
                    .await
                    .map_err(|e| lookup_failed(&id, e))
            }
        };
        let new_facts = facts(new).await?;
        let Some(new_facts) = new_facts.filter(|f| f.state != DELETED) else {
            return Err(other(
                Exception::CloudHsmClusterNotFound,
                format!("AWS CloudHSM cluster {new} not found."),
            ));
        };
        let related = facts(current)
            .await?
            .is_some_and(|old| old.lineage == new_facts.lineage);
        if !related {
            return Err(other(
 Exception::CloudHsmClusterNotRelated,
                format!(
                    "AWS CloudHSM cluster {new} does not share a backup history with cluster {current}."
                ),
            ));
        }
        let anchor = new_facts.trust_anchor.clone().unwrap_or_default();
        self.check_cloudhsm_cluster(account, region, new, &anchor)
            .await
    }

    /// Tries to connect a `CONNECTING` AWS_CLOUDHSM store: logs in as `kmsuser` with the stored
    /// password and maps the typed cause of a failure to its code.
    pub(crate) async fn cloudhsm_connect_outcome(
        &self,
        s: &LoadedStore,
        doc: &CloudHsmDoc,
    ) -> Outcome {
        let failed = |c, cause: String| (ConnectionStateType::Failed, Some(c), Some(cause));
        let Some(hsm) = self.hsm_clusters() else {
            // No clusters configured: none with the store's id can be found.
            return failed(
                ConnectionErrorCodeType::ClusterNotFound,
                format!(
                    "cluster {} not found: CloudHSM clusters are not configured on this node",
                    doc.cluster_id
                ),
            );
        };
        let password = match unwrap_secret(
            &self.inner.root_key,
            &s.row,
            SecretKind::KmsUserPassword,
            &doc.wrapped_password,
        ) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(custom_key_store_id = %s.row.id, error = %e, "cannot unwrap the kmsuser password");
                return failed(
                    ConnectionErrorCodeType::InternalError,
                    UNWRAP_CREDENTIAL_FAILED.to_string(),
                );
            }
        };
        match hsm
            .connect(&s.row.account_id, &s.row.region, &doc.cluster_id, &password)
            .await
        {
            Ok(()) => self.rotate_password(s, doc, &*hsm, &password).await,
            Err(f) => {
                tracing::warn!(custom_key_store_id = %s.row.id, cluster_id = %doc.cluster_id, failure = %f, "connecting to the CloudHSM cluster failed");
                failed(code_of(&f), f.cause_sentence(&doc.cluster_id))
            }
        }
    }
}

impl CustomKeyStores {
    /// The cluster of an AWS_CLOUDHSM store, as a key-operation target.
    pub(crate) fn hsm_target(s: &LoadedStore) -> Option<HsmTarget> {
        s.doc.cloud_hsm().map(|c| HsmTarget {
            account: s.row.account_id.clone(),
            region: s.row.region.clone(),
            cluster_id: c.cluster_id.clone(),
        })
    }

    /// Opens the `kmsuser` session pool of a store's cluster with the stored password (when
    /// the store becomes `CONNECTED`, and on demand when a key operation finds none, e.g.
    /// after a restart).
    pub(crate) async fn open_cloudhsm_sessions(
        &self,
        s: &LoadedStore,
    ) -> Result<(), CloudHsmFailure> {
        let internal = |detail: String| CloudHsmFailure::Internal { detail };
        let hsm = self
            .hsm_clusters()
            .ok_or(CloudHsmFailure::ClusterNotFound)?;
        let (Some(doc), Some(target)) = (s.doc.cloud_hsm(), Self::hsm_target(s)) else {
            return Err(internal(format!(
                "custom key store {} has no cluster",
                s.row.id
            )));
        };
        let password = unwrap_secret(
            &self.inner.root_key,
            &s.row,
            SecretKind::KmsUserPassword,
            &doc.wrapped_password,
        )
        .map_err(|e| internal(e.to_string()))?;
        hsm.open_key_sessions(&target, &password).await
    }

    /// Closes the `kmsuser` session pool of a store's cluster (at Disconnect).
    pub(crate) async fn close_cloudhsm_sessions(&self, s: &LoadedStore) {
        if let (Some(hsm), Some(target)) = (self.hsm_clusters(), Self::hsm_target(s)) {
            hsm.close_key_sessions(&target).await;
        }
    }

    /// After a successful login, rotates the kmsuser password as AWS KMS does: the token's
    /// PIN changes first, then the store row becomes `CONNECTED` with the new password wrapped
    /// (one compare-and-set). If that write loses a race, the PIN is changed back so the
    /// stored password stays the token's. The worker's own write of `CONNECTED` then finds the
    /// row changed, re-reads it and stops.
    async fn rotate_password(
        &self,
        s: &LoadedStore,
        doc: &CloudHsmDoc,
        hsm: &dyn HsmClusters,
        old: &SecretBytes,
    ) -> Outcome {
        let connected = (ConnectionStateType::Connected, None, None);
        let (account, region, id) = (&s.row.account_id, &s.row.region, &s.row.id);
        let new = new_password();
        // Wrapped before the PIN changes, so a failure here leaves the token as it was.
        let wrapped_password = match wrap_secret(
            &self.inner.root_key,
            account,
            region,
            id,
            SecretKind::KmsUserPassword,
            new.expose(),
        ) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(custom_key_store_id = %id, error = %e, "wrapping the new kmsuser password failed");
                return (
                    ConnectionStateType::Failed,
                    Some(ConnectionErrorCodeType::InternalError),
                    Some(format!("wrapping the new kmsuser password failed: {e}")),
                );
            }
        };
        if let Err(f) = hsm
            .change_password(account, region, &doc.cluster_id, old, &new)
            .await
        {
            tracing::warn!(custom_key_store_id = %id, failure = %f, "rotating the kmsuser password failed");
            return (
                ConnectionStateType::Failed,
                Some(code_of(&f)),
                Some(f.cause_sentence(&doc.cluster_id)),
            );
        }
        let mut next_doc = s.doc.clone();
        next_doc.connection_error_code = None;
        next_doc.kind = StoreKind::CloudHsm(CloudHsmDoc {
            wrapped_password,
            ..doc.clone()
        });
        let written = match s.next_with(ConnectionStateType::Connected, &s.row.name, &next_doc) {
            Ok(next) => self
                .inner
                .store
                .update_custom_key_store(&next, None)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match written {
            Ok(()) => {
                tracing::info!(custom_key_store_id = %id, "custom key store connected; kmsuser password rotated");
                // The row now holds the new password: key operations log in with it.
                if let Some(row) = self
                    .inner
                    .store
                    .get_custom_key_store(account, region, id)
                    .await
                    .ok()
                    .flatten()
                {
                    match LoadedStore::from_row(row) {
                        Ok(now) => {
                            if let Err(f) = self.open_cloudhsm_sessions(&now).await {
                                tracing::warn!(custom_key_store_id = %id, failure = %f, "opening the kmsuser session pool failed; key operations will retry");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(custom_key_store_id = %id, error = %e, "cannot read the connected store back");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(custom_key_store_id = %id, error = %e, "storing the rotated kmsuser password failed; changing it back");
                if let Err(f) = hsm
                    .change_password(account, region, &doc.cluster_id, &new, old)
                    .await
                {
                    tracing::error!(custom_key_store_id = %id, failure = %f, "changing the kmsuser password back failed; the store will report INVALID_CREDENTIALS");
                }
            }
        }
        connected
    }
}

/// A fresh kmsuser password: 32 characters from a 62-letter alphabet (CloudHSM allows 7-32).
fn new_password() -> SecretBytes {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    SecretBytes::new(
        (0..32)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
            .collect(),
    )
}

fn code_of(f: &CloudHsmFailure) -> ConnectionErrorCodeType {
    f.connection_error_code()
}

#[cfg(test)]
mod tests {
    use super::same_certificate;

    #[test]
    fn certificates_compare_without_whitespace_noise() {
        assert!(same_certificate("A\r\nB\r\n", "  A\nB"));
        assert!(!same_certificate("A\nB", "A\nC"));
    }
}
