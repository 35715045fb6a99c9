//! Multi-Region keys: `CreateKey` with `MultiRegion`, `ReplicateKey`, `UpdatePrimaryRegion`,
//! the `MultiRegionConfiguration` of `DescribeKey`, and keeping the shared properties of related
//! keys shared.
//!
//! Related keys are ordinary key rows with the same `mrk-` key id in different Regions of one
//! account. Each carries a [`MULTI_REGION_INDEX`] entry whose value is that key id, so the set
//! is found with one index lookup and can never list a key that is gone (the entry goes with
//! the row). Each document records the primary's Region and whether it is a replica
//! ([`MultiRegionDoc`]). Every related key holds its own copy of every key material, wrapped
//! by the root key under associated data naming its own Region; ciphertexts name the material
//! they were made with, so a ciphertext made in one Region decrypts in every related Region.
//!
//! The shared properties (key spec, usage, origin, material, automatic rotation setting and
//! rotations) are set on the primary key and copied to the replicas right after each change
//! ([`Keys::sync_replicas`]): materials first, then the replica's document under
//! compare-and-set (`multi_region_sync.rs`, which also repairs a copy that failed; imported
//! material is never copied, as AWS). Keyhold completes replication and primary updates within the request, so
//! replicas are returned `Enabled` (AWS shows `Creating` and `Updating` for a few seconds); a
//! replica whose copy was interrupted by a crash stays `Creating`, as AWS shows it.

use keyhold_kms_model::enums::{KeyState, MultiRegionKeyType, OriginType};
use keyhold_kms_model::shapes::{
    KeyMetadata, MultiRegionConfiguration, MultiRegionKey, ReplicateKeyRequest,
    ReplicateKeyResponse, UpdatePrimaryRegionRequest,
};
use keyhold_kms_model::Exception;
use serde::{Deserialize, Serialize};

use super::crypto_ops::describe_state;
use super::{default_key_policy, KeyDoc, Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::{IndexHit, IndexOwner, StoreError, StoredKey, KEY_ID_SCOPE};

/// The index of multi-Region keys by their shared key id.
pub const MULTI_REGION_INDEX: &str = "multi-region-key";
/// Index entries read per page when listing a set of related keys.
const PAGE: u32 = 100;
/// How often a replica's document write is retried when it changed meanwhile.
const WRITE_ATTEMPTS: usize = 8;

/// A multi-Region key's place in its set of related keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MultiRegionDoc {
    /// The key id every related key shares (the value of its [`MULTI_REGION_INDEX`] entry).
    pub key_id: String,
    /// The Region of the primary key.
    pub primary_region: String,
    /// True for a replica key, false for the primary key.
    #[serde(default)]
    pub replica: bool,
    /// On a primary key: its shared properties changed and some replica may not have the
    /// change yet (`multi_region_sync`); the due-work sweep copies it again until cleared.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync_due: bool,
}

/// A new multi-Region key id: `mrk-` and 32 lowercase hex digits, as AWS's.
pub(super) fn new_key_id() -> String {
    let hex: String = keyhold_crypto::random_bytes(16)
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("mrk-{hex}")
}

/// The materials a key's document refers to, oldest first: the first material and the one
/// each rotation made current.
pub(super) fn material_ids(doc: &KeyDoc) -> Vec<String> {
    let first = doc
        .rotations
        .first()
        .map_or(&doc.current_material_id, |r| &r.previous_material_id);
    let mut ids: Vec<String> = std::iter::once(first.clone())
        .chain(doc.rotations.iter().map(|r| r.material_id.clone()))
        .filter(|id| !id.is_empty())
        .collect();
    ids.dedup();
    ids
}

/// The `MultiRegionConfiguration` of a key of the set `mrk` in `account`, whose related keys
/// live in `regions`.
pub(super) fn configuration(
    account: &str,
    mrk: &MultiRegionDoc,
    regions: &[String],
) -> MultiRegionConfiguration {
    let entry = |region: &str| MultiRegionKey {
        arn: Some(crate::arn::key_arn(region, account, &mrk.key_id)),
        region: Some(region.to_string()),
    };
    MultiRegionConfiguration {
        multi_region_key_type: Some(if mrk.replica {
            MultiRegionKeyType::Replica
        } else {
            MultiRegionKeyType::Primary
        }),
        primary_key: Some(entry(&mrk.primary_region)),
        replica_keys: Some(
            regions
                .iter()
                .filter(|r| **r != mrk.primary_region)
                .map(|r| entry(r))
                .collect(),
        ),
    }
}

/// `ctx` as if the request had been made in `region` (same caller).
fn in_region(ctx: &RequestContext, region: &str) -> RequestContext {
    let mut c = ctx.clone();
    c.region = region.to_string();
    c
}

fn unsupported(message: String) -> KmsError {
    KmsError::new(Exception::UnsupportedOperation, message)
}

/// The multi-Region part of `key`, refusing single-Region keys.
fn require_multi_region(key: &LoadedKey) -> KmsResult<&MultiRegionDoc> {
    key.doc
        .mrk
        .as_ref()
        .ok_or_else(|| unsupported(format!("{} is not a multi-Region key.", key.arn())))
}

/// Refuses a multi-Region replica key for `operation`, which only its primary key accepts
/// (the shared properties are changed on the primary key).
pub(super) fn refuse_replica(key: &LoadedKey, operation: &str) -> KmsResult<()> {
    if key.doc.mrk.as_ref().is_some_and(|m| m.replica) {
        return Err(unsupported(format!(
            "{} is a multi-Region replica key. {operation} is supported only on its primary key.",
            key.arn()
        )));
    }
    Ok(())
}

/// The `Enabled` state UpdatePrimaryRegion requires of both keys.
fn require_enabled(key: &LoadedKey) -> KmsResult<()> {
    match key.key_state() {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::new(
            Exception::Disabled,
            format!("{} is disabled.", key.arn()),
        )),
        other => Err(KmsError::new(
            Exception::KMSInvalidState,
            format!("{} is {}.", key.arn(), describe_state(other)),
        )),
    }
}

impl Keys {
    /// The Regions of the keys related to multi-Region key `key_id` in `account` (its own
    /// included), sorted.
    pub(super) async fn related_regions(
        &self,
        account: &str,
        key_id: &str,
    ) -> KmsResult<Vec<String>> {
        let mut after: Option<IndexHit> = None;
        let mut out = Vec::new();
        loop {
            let page = self
                .store
                .list_index(
                    MULTI_REGION_INDEX,
                    key_id,
                    Some(key_id),
                    after.as_ref(),
                    PAGE,
                )
                .await?;
            for hit in &page {
                if let IndexOwner::Key {
                    account_id,
                    region,
                    key_id: id,
                } = &hit.owner
                {
                    if account_id == account && id == key_id {
                        out.push(region.clone());
                    }
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
            after = page.into_iter().last();
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The wire `KeyMetadata` of `key` with its `MultiRegionConfiguration`.
    pub(crate) async fn full_metadata(&self, key: &LoadedKey) -> KmsResult<KeyMetadata> {
        let mut m = key.metadata();
        if let Some(mrk) = &key.doc.mrk {
            let regions = self
                .related_regions(&key.row.account_id, &mrk.key_id)
                .await?;
            m.multi_region_configuration = Some(configuration(&key.row.account_id, mrk, &regions));
        }
        Ok(m)
    }

    /// `ReplicateKey`: a replica of a multi-Region primary key in another Region of the same
    /// account, with the primary's shared properties and material; its own description, tags
    /// and policy (the given one, or the default key policy).
    pub async fn replicate_key(
        &self,
        ctx: &RequestContext,
        req: ReplicateKeyRequest,
    ) -> KmsResult<ReplicateKeyResponse> {
        let region = req.replica_region.clone();
        let access =
            Access::new(KeyAction::ReplicateKey).with_fact("kms:ReplicaRegion", region.clone());
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        let mrk = require_multi_region(&key)?.clone();
        if mrk.replica {
            return Err(unsupported(format!(
                "{} is a multi-Region replica key. Only a multi-Region primary key can be replicated.",
                key.arn()
            )));
        }
        match key.key_state() {
            KeyState::Enabled | KeyState::Disabled => {}
            // A primary awaiting its imported material can be replicated: the replica awaits
            // the same material (unconfirmed against AWS's key-state table).
            KeyState::PendingImport if key.doc.origin == OriginType::External => {}
            other => {
                return Err(KmsError::new(
                    Exception::KMSInvalidState,
                    format!("{} is {}.", key.arn(), describe_state(other)),
                ))
            }
        }
        if region == key.row.region {
            return Err(KmsError::new(
                Exception::Validation,
                format!(
                    "ReplicaRegion {region} is the Region of the primary key {}. A replica key must be in a different Region.",
                    key.arn()
                ),
            ));
        }
        // IAM in the replica Region: creating the replica is a CreateKey there.
        let rctx = in_region(ctx, &region);
        let now = self.now_seconds();
        crate::authz::authorize_account_action(
            &rctx,
            "kms:CreateKey",
            now,
            &[("kms:MultiRegion", "true".to_string())],
        )?;
        let tags = req.tags.unwrap_or_default();
        super::manage::check_tags(&tags)?;
        if !tags.is_empty() {
            crate::authz::authorize_account_action(&rctx, "kms:TagResource", now, &[])?;
        }
        if let Some(policy) = &req.policy {
            super::policy::check_policy(
                &rctx,
                policy,
                req.bypass_policy_lockout_safety_check == Some(true),
            )?;
        }
        let mut doc = key.doc.clone();
        doc.description = req.description.unwrap_or_default();
        doc.policy = req
            .policy
            .unwrap_or_else(|| default_key_policy(&key.row.account_id));
        doc.tags = tags
            .iter()
            .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
            .collect();
        doc.key_state = KeyState::Creating;
        doc.creation_date = now;
        doc.deletion_date = None;
        doc.pending_deletion_window_in_days = None;
        doc.mrk = Some(MultiRegionDoc {
            replica: true,
            sync_due: false,
            ..mrk
        });
        // Imported material is not copied: the replica learns which materials are the key's
        // and waits, `PendingImport`, for the same material to be imported into it.
        let imported = doc.origin == OriginType::External;
        if imported {
            doc.imported.clear();
            super::multi_region_sync::adopt_primary_materials(&mut doc, &key.doc);
        }
        let created_ms = (now * 1000.0) as i64;
        let mut row = StoredKey {
            account_id: key.row.account_id.clone(),
            region: region.clone(),
            key_id: key.row.key_id.clone(),
            custom_key_store_id: None,
            created_at_ms: created_ms,
            version: 1,
            doc: serde_json::to_string(&doc).map_err(KmsError::internal)?,
        };
        let first = if imported {
            None
        } else {
            let current = self
                .material(&key, &doc.current_material_id)
                .await?
                .ok_or_else(|| KmsError::internal(MissingSharedMaterial))?;
            Some(self.material_row(&row, &doc.current_material_id, created_ms, &current)?)
        };
        match self
            .store
            .insert_key(&row, first.as_ref(), &[], &super::indexes_of(&doc))
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict { scope }) if scope == KEY_ID_SCOPE => {
                return Err(KmsError::new(
                    Exception::AlreadyExists,
                    format!(
                        "Replica key {} already exists.",
                        crate::arn::key_arn(&region, &row.account_id, &row.key_id)
                    ),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        // The older materials, then `Enabled`: a crash in between leaves the replica `Creating`.
        if !imported {
            self.copy_materials(&key, &row, &material_ids(&key.doc))
                .await?;
        }
        doc.key_state = KeyState::Enabled;
        if imported {
            doc.settle_import_state();
        }
        row.version += 1;
        row.doc = serde_json::to_string(&doc).map_err(KmsError::internal)?;
        self.store
            .update_key(&row, Some(&super::indexes_of(&doc)))
            .await?;
        let replica = LoadedKey {
            row,
            doc,
            store: None,
        };
        // A rotation of the primary that raced with the copy reaches the replica now.
        if let Ok(primary) = self.load_unauthorized(ctx, &key.row.key_id).await {
            self.sync_replica(&primary, &region).await?;
        }
        tracing::info!(key_arn = %replica.arn(), primary_arn = %key.arn(), "multi-Region replica key created");
        Ok(ReplicateKeyResponse {
            replica_key_metadata: Some(self.full_metadata(&replica).await?),
            replica_policy: Some(replica.doc.policy.clone()),
            replica_tags: Some(tags),
        })
    }

    /// Copies the materials `ids` of `from` to the key of `to` (re-wrapped under its own
    /// associated data); a material already there is kept.
    pub(super) async fn copy_materials(
        &self,
        from: &LoadedKey,
        to: &StoredKey,
        ids: &[String],
    ) -> KmsResult<()> {
        let now_ms = (self.now_seconds() * 1000.0) as i64;
        for id in ids {
            let material = self
                .material(from, id)
                .await?
                .ok_or_else(|| KmsError::internal(MissingSharedMaterial))?;
            match self
                .store
                .insert_key_material(&self.material_row(to, id, now_ms, &material)?)
                .await
            {
                Ok(()) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `UpdatePrimaryRegion`: the replica in `PrimaryRegion` becomes the primary key and the
    /// primary becomes a replica; every related key records the new primary Region.
    pub async fn update_primary_region(
        &self,
        ctx: &RequestContext,
        req: UpdatePrimaryRegionRequest,
    ) -> KmsResult<()> {
        let target = req.primary_region.clone();
        let access = Access::new(KeyAction::UpdatePrimaryRegion)
            .with_fact("kms:PrimaryRegion", target.clone());
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        let mrk = require_multi_region(&key)?.clone();
        if mrk.replica {
            return Err(unsupported(format!(
                "{} is not a multi-Region primary key. Call UpdatePrimaryRegion on the primary key in {}.",
                key.arn(),
                mrk.primary_region
            )));
        }
        require_enabled(&key)?;
        if target == key.row.region {
            return Err(unsupported(format!(
                "{} is already the primary key in {target}.",
                key.arn()
            )));
        }
        // The caller also needs kms:UpdatePrimaryRegion on the replica, in its Region.
        let rctx = in_region(ctx, &target);
        let replica = self.load_unauthorized(&rctx, &key.row.key_id).await?;
        self.authorize(&rctx, &replica, &access, None).await?;
        require_enabled(&replica)?;
        let regions = self
            .related_regions(&key.row.account_id, &mrk.key_id)
            .await?;
        // The new primary first, so that at every moment the set has a primary.
        let order = std::iter::once(target.clone())
            .chain(std::iter::once(key.row.region.clone()))
            .chain(
                regions
                    .into_iter()
                    .filter(|r| *r != target && *r != key.row.region),
            );
        for region in order {
            self.set_primary_region(&key.row.account_id, &region, &key.row.key_id, &target)
                .await?;
        }
        tracing::info!(key_id = %key.row.key_id, from = %key.row.region, to = %target, "primary Region updated");
        Ok(())
    }

    /// Records `primary_region` in the related key in `region` (compare-and-set, retried).
    async fn set_primary_region(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        primary_region: &str,
    ) -> KmsResult<()> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some(mut row) = self.store.get_key(account, region, key_id).await? else {
                return Ok(());
            };
            let mut doc: KeyDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
            let Some(m) = doc.mrk.as_mut() else {
                return Ok(());
            };
            m.primary_region = primary_region.to_string();
            m.replica = region != primary_region;
            row.version += 1;
            row.doc = serde_json::to_string(&doc).map_err(KmsError::internal)?;
            match self
                .store
                .update_key(&row, Some(&super::indexes_of(&doc)))
                .await
            {
                Ok(()) | Err(StoreError::NotFound) => return Ok(()),
                Err(StoreError::VersionMismatch) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(KmsError::internal(std::io::Error::other(
            "a related key kept changing while the primary Region was being updated",
        )))
    }

    /// Whether ScheduleKeyDeletion of `key` must wait for replicas: it is a multi-Region
    /// primary key with at least one replica.
    pub(super) async fn has_replicas(&self, key: &LoadedKey) -> KmsResult<bool> {
        let Some(mrk) = key.doc.mrk.as_ref().filter(|m| !m.replica) else {
            return Ok(false);
        };
        let regions = self
            .related_regions(&key.row.account_id, &mrk.key_id)
            .await?;
        Ok(regions.iter().any(|r| *r != key.row.region))
    }

    /// Moves every key related to `key_id` that is `PendingReplicaDeletion` and has no
    /// replica left to `PendingDeletion`, its waiting period starting now. Run by the
    /// deletion sweep and after each deletion of a multi-Region key.
    pub(super) async fn settle_replica_deletions(
        &self,
        account: &str,
        key_id: &str,
    ) -> KmsResult<()> {
        let regions = self.related_regions(account, key_id).await?;
        for region in &regions {
            for _ in 0..WRITE_ATTEMPTS {
                let Some(mut row) = self.store.get_key(account, region, key_id).await? else {
                    break;
                };
                let mut doc: KeyDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
                if doc.key_state != KeyState::PendingReplicaDeletion
                    || regions.iter().any(|r| r != region)
                {
                    break;
                }
                let days = doc.pending_deletion_window_in_days.unwrap_or(30);
                doc.key_state = KeyState::PendingDeletion;
                doc.deletion_date = Some(self.now_seconds() + f64::from(days) * 86_400.0);
                row.version += 1;
                row.doc = serde_json::to_string(&doc).map_err(KmsError::internal)?;
                match self
                    .store
                    .update_key(&row, Some(&super::indexes_of(&doc)))
                    .await
                {
                    Ok(()) => {
                        tracing::info!(key_id = %key_id, region = %region, "the last replica key is deleted: the primary key's waiting period begins");
                        break;
                    }
                    Err(StoreError::VersionMismatch) => continue,
                    Err(StoreError::NotFound) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

/// A material of the primary key is missing from the store: the database is inconsistent.
#[derive(Debug, thiserror::Error)]
#[error("a key material of the multi-Region primary key is missing from the store")]
struct MissingSharedMaterial;
