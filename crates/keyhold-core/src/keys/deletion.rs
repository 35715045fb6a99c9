//! `ScheduleKeyDeletion`, `CancelKeyDeletion`, and the completion of scheduled deletions.
//!
//! A scheduled key is `PendingDeletion` with a `DeletionDate` 7–30 days ahead (it stays so
//! while its custom key store is disconnected). A scheduled key's row carries an entry of the
//! [`DELETION_DUE_INDEX`] (its deletion time, zero-padded milliseconds), written and removed
//! in the same compare-and-set as the key's state, so a sweep finds the due keys across all
//! accounts in date order with `MetadataStore::list_index`, and no crash or lost race can
//! leave the index and the key disagreeing. Completing a deletion
//! removes the key row and its material rows; for a key in an AWS CloudHSM key store, Keyhold
//! then makes a best effort to destroy the backing key in the cluster, as AWS does; an
//! external key is never touched.

use keyhold_kms_model::enums::KeyState;
use keyhold_kms_model::shapes::{
    CancelKeyDeletionRequest, CancelKeyDeletionResponse, ScheduleKeyDeletionRequest,
    ScheduleKeyDeletionResponse,
};
use keyhold_kms_model::Exception;
use keyhold_kms_model::Timestamp;

use super::states::{state_check, KeyOperationFamily, StateCheck};
use super::{KeyDoc, Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::custom_key_stores::CustomKeyStores;
use crate::error::{KmsError, KmsResult};
use crate::ports::{IndexHit, IndexOwner, StoreError};

/// The index of keys pending deletion, by due time: the value is the deletion time in
/// milliseconds since the Unix epoch, zero-padded to 15 digits so byte order is time order.
///
/// Public because the metadata store's schema migration 3 rebuilds it from the key rows
/// (replacing the index documents of earlier releases) and must use the same name and format.
pub const DELETION_DUE_INDEX: &str = "deletion-due";
/// AWS's default waiting period.
const DEFAULT_WINDOW_DAYS: i32 = 30;
/// Index entries read per page by the sweep.
const PAGE: u32 = 200;

/// The value of a due-time index ([`DELETION_DUE_INDEX`], the rotation index) for a time
/// `due_ms` milliseconds after the epoch.
pub(super) fn due_value(due_ms: i64) -> String {
    format!("{due_ms:015}")
}

impl Keys {
    /// `ScheduleKeyDeletion`.
    pub async fn schedule_key_deletion(
        &self,
        ctx: &RequestContext,
        req: ScheduleKeyDeletionRequest,
    ) -> KmsResult<ScheduleKeyDeletionResponse> {
        let days = req.pending_window_in_days.unwrap_or(DEFAULT_WINDOW_DAYS);
        if !(7..=30).contains(&days) {
            return Err(KmsError::new(Exception::Validation, format!(
                "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"
            )));
        }
        let deletion = self.now_seconds() + f64::from(days) * 86_400.0;
        // A multi-Region primary key with replicas waits for their deletion first; its
        // waiting period begins when the last one is deleted. (Read before the write: a
        // replica created meanwhile is seen by the next sweep, which keeps the primary.)
        let waits = match self.load_unauthorized(ctx, &req.key_id).await {
            Ok(k) => self.has_replicas(&k).await?,
            Err(_) => false,
        };
        // Through the shared compare-and-set writer: a concurrent change of the key (a tag,
        // a rotation) is retried, and the deletion-due index entry is written with the state.
        let key = self
            .change_key(
                ctx,
                &req.key_id,
                &Access::new(KeyAction::ScheduleKeyDeletion).with_fact(
                    "kms:ScheduleKeyDeletionPendingWindowInDays",
                    req.pending_window_in_days.unwrap_or(30).to_string(),
                ),
                KeyOperationFamily::ScheduleDeletion,
                |key, doc| {
                    // AWS managed keys are deleted by AWS only.
                    super::manage::require_customer_managed(key)?;
                    if waits {
                        doc.key_state = KeyState::PendingReplicaDeletion;
                        doc.deletion_date = None;
                    } else {
                        doc.key_state = KeyState::PendingDeletion;
                        doc.deletion_date = Some(deletion);
                    }
                    doc.pending_deletion_window_in_days = Some(days);
                    Ok(())
                },
            )
            .await?;
        Ok(ScheduleKeyDeletionResponse {
            key_id: Some(key.arn()),
            deletion_date: key.doc.deletion_date.map(Timestamp),
            key_state: Some(key.doc.key_state),
            pending_window_in_days: Some(days),
        })
    }

    /// `CancelKeyDeletion`: the key becomes `Disabled`, as in AWS (`PendingImport` when its
    /// imported key material is missing).
    pub async fn cancel_key_deletion(
        &self,
        ctx: &RequestContext,
        req: CancelKeyDeletionRequest,
    ) -> KmsResult<CancelKeyDeletionResponse> {
        // The state is checked inside the write (AWS words this refusal its own way), so the
        // family passed to the writer is one that lets every state through.
        let key = self
            .change_key(
                ctx,
                &req.key_id,
                &Access::new(KeyAction::CancelKeyDeletion),
                KeyOperationFamily::Describe,
                |key, doc| {
                    if let StateCheck::Refused(e) =
                        state_check(KeyOperationFamily::CancelDeletion, key.doc.key_state)
                    {
                        return Err(KmsError::new(
                            e,
                            format!("{} is not pending deletion.", key.arn()),
                        ));
                    }
                    // A key whose imported material is missing waits for it again.
                    doc.key_state = if doc.origin == keyhold_kms_model::enums::OriginType::External
                        && doc.awaits_import()
                    {
                        KeyState::PendingImport
                    } else {
                        KeyState::Disabled
                    };
                    doc.deletion_date = None;
                    doc.pending_deletion_window_in_days = None;
                    Ok(())
                },
            )
            .await?;
        Ok(CancelKeyDeletionResponse {
            key_id: Some(key.arn()),
        })
    }

    /// The keys whose entry in the due-time index `index` is at or before `due_by` (every
    /// key in it with `None`), in due order, read page by page: the one walk both background
    /// sweeps (deletions, rotations) make. Entries owned by anything but a key are skipped.
    pub(super) async fn due_keys(
        &self,
        index: &str,
        due_by: Option<&str>,
    ) -> KmsResult<Vec<(String, String, String)>> {
        let mut after: Option<IndexHit> = None;
        let mut due = Vec::new();
        loop {
            let page = self
                .store
                .list_index(index, "", due_by, after.as_ref(), PAGE)
                .await?;
            due.extend(page.iter().filter_map(|hit| match &hit.owner {
                IndexOwner::Key {
                    account_id,
                    region,
                    key_id,
                } => Some((account_id.clone(), region.clone(), key_id.clone())),
                _ => None,
            }));
            if page.len() < PAGE as usize {
                return Ok(due);
            }
            after = page.into_iter().last();
        }
    }

    /// Completes the scheduled deletions that are due (all of them with `all`, the test
    /// hook); returns how many keys were deleted.
    pub async fn complete_pending_deletions(&self, all: bool) -> KmsResult<usize> {
        let now = due_value(self.clock.now_millis());
        let due_by = (!all).then_some(now.as_str());
        let mut deleted = 0;
        // Deleting a key removes its entry, so the walk is read before deleting.
        for (account, region, key_id) in self.due_keys(DELETION_DUE_INDEX, due_by).await? {
            if self.complete_one(&account, &region, &key_id).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Deletes one key that is still pending deletion; true when it was deleted.
    async fn complete_one(&self, account: &str, region: &str, key_id: &str) -> KmsResult<bool> {
        let Some(row) = self.store.get_key(account, region, key_id).await? else {
            return Ok(false);
        };
        let doc: KeyDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
        if doc.key_state == KeyState::PendingReplicaDeletion {
            if let Err(e) = self.settle_replica_deletions(account, key_id).await {
                tracing::warn!(key_id = %key_id, region = %region, error = %e, "checking the replicas of a primary key pending replica deletion failed");
            }
            return Ok(false);
        }
        if doc.key_state != KeyState::PendingDeletion {
            return Ok(false);
        }
        let store = match &row.custom_key_store_id {
            Some(id) => self.custom_key_stores.find(account, region, id).await?,
            None => None,
        };
        let key = LoadedKey { row, doc, store };
        match self.store.delete_key(account, region, key_id).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(key_arn = %key.arn(), origin = %key.doc.origin, "scheduled key deletion completed");
        // A primary key waiting for this replica's deletion may start its waiting period.
        if key.doc.mrk.is_some() {
            if let Err(e) = self.settle_replica_deletions(account, key_id).await {
                tracing::warn!(key_arn = %key.arn(), error = %e, "updating the primary key after a replica's deletion failed; retried by the next sweep");
            }
        }
        // Aliases go with their key, as in AWS.
        self.delete_aliases_of(&key).await;
        self.delete_grants_of(&key).await;
        self.forget_usage(&key).await;
        super::holder::holder_of(key.doc.origin)
            .key_deleted(self, &key)
            .await;
        Ok(true)
    }

    /// Best effort, as AWS: destroys the backing key of a deleted CloudHSM key when its
    /// store is connected (opening its `kmsuser` sessions if needed); a failure is logged.
    pub(super) async fn destroy_backing_key(&self, key: &LoadedKey) {
        let arn = key.arn();
        let Some(store) = key.store.as_ref() else {
            tracing::warn!(key_arn = %arn, "backing key not deleted: the custom key store is gone");
            return;
        };
        if key.store_state() != Some(keyhold_kms_model::enums::ConnectionStateType::Connected) {
            tracing::warn!(key_arn = %arn, custom_key_store_id = %store.row.id, "backing key not deleted: the custom key store is not connected");
            return;
        }
        let (Some(hsm), Some(target)) = (
            self.custom_key_stores.hsm_clusters(),
            CustomKeyStores::hsm_target(store),
        ) else {
            return;
        };
        match self.hsm_op(store, || hsm.destroy_key(&target, &arn)).await {
            Ok(()) => {
                tracing::info!(key_arn = %arn, cluster_id = %target.cluster_id, "backing key destroyed in the cluster");
            }
            Err(f) => {
                tracing::warn!(key_arn = %arn, cluster_id = %target.cluster_id, failure = %f, "destroying the backing key failed");
            }
        }
    }

    /// Completes due deletions and due automatic rotations, deletes expired imported key
    /// material, and copies to replicas the changes of multi-Region primary keys that did not
    /// reach them, every `interval`, forever (spawn it).
    pub async fn run_due_work(&self, interval: std::time::Duration) {
        loop {
            tokio::time::sleep(interval).await;
            if let Err(e) = self.complete_pending_deletions(false).await {
                tracing::warn!(error = %e, "the scheduled key deletion sweep failed");
            }
            if let Err(e) = self.complete_due_rotations().await {
                tracing::warn!(error = %e, "the automatic key rotation sweep failed");
            }
            if let Err(e) = self.complete_material_expirations().await {
                tracing::warn!(error = %e, "the imported key material expiry sweep failed");
            }
            if let Err(e) = self.complete_replica_syncs().await {
                tracing::warn!(error = %e, "the multi-Region replica repair sweep failed");
            }
        }
    }
}
