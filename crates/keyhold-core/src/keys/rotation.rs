//! Rotation of key material: `EnableKeyRotation`, `DisableKeyRotation`,
//! `GetKeyRotationStatus`, `RotateKeyOnDemand`, `ListKeyRotations`, and the sweep that
//! rotates keys whose automatic rotation falls due.
//!
//! A rotation writes a new material row, then makes it the key's current material in one
//! compare-and-set of the key's document; older materials stay, so ciphertexts made under them
//! keep decrypting (each ciphertext names its material). While automatic rotation is enabled
//! the key row carries a [`ROTATION_DUE_INDEX`] entry with its next rotation date, written in
//! the same compare-and-set as the document ([`super::indexes_of`]), so the sweep finds due keys
//! across accounts in date order, after a restart too, on whichever node runs it. The sweep
//! reads time from the clock port, so tests move time instead of waiting a year.

use keyhold_kms_model::enums::{
    IncludeKeyMaterial, KeyManagerType, KeyMaterialState, KeySpec, KeyState, OriginType,
    RotationType,
};
use keyhold_kms_model::shapes::{
    DisableKeyRotationRequest, EnableKeyRotationRequest, GetKeyRotationStatusRequest,
    GetKeyRotationStatusResponse, ListKeyRotationsRequest, ListKeyRotationsResponse,
    RotateKeyOnDemandRequest, RotateKeyOnDemandResponse, RotationsListEntry,
};
use keyhold_kms_model::{Exception, Timestamp};
use serde::{Deserialize, Serialize};

use super::manage::require_customer_managed;
use super::states::KeyOperationFamily;
use super::{new_material_id, Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::paging::Paging;

/// The index of keys with automatic rotation enabled, by next rotation date (zero-padded
/// milliseconds, as the deletion index).
pub const ROTATION_DUE_INDEX: &str = "rotation-due";
/// AWS's default `RotationPeriodInDays`.
pub const DEFAULT_ROTATION_PERIOD_DAYS: i32 = 365;
/// AWS's quota of on-demand rotations per key (25 in the pinned model's documentation of
/// RotateKeyOnDemand and in the developer guide; older pages say 10).
pub const MAX_ON_DEMAND_ROTATIONS: usize = 25;
const DAY_SECONDS: f64 = 86_400.0;

/// ListKeyRotations paging: markers name the last material id returned.
const LIST_ROTATIONS_PAGING: Paging = Paging {
    kind: "r1",
    default_limit: 100,
    max_limit: 1000,
};

/// Automatic rotation of a key, while enabled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutoRotation {
    /// `RotationPeriodInDays`.
    pub period_days: i32,
    /// When the next automatic rotation is due, seconds since the epoch.
    pub next_rotation_date: f64,
    /// When automatic rotation was (last) enabled: the base of the schedule until the first
    /// automatic rotation.
    pub enabled_date: f64,
}

/// One completed rotation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RotationRecord {
    /// The material the rotation made current.
    pub material_id: String,
    /// The material that was current before.
    pub previous_material_id: String,
    /// When it completed, seconds since the epoch.
    pub date: f64,
    /// Automatic or on demand.
    pub kind: RotationType,
}

/// Refuses keys whose material KMS cannot rotate, with `UnsupportedOperationException`:
/// keys in custom key stores and keys that are not symmetric encryption keys; with
/// `automatic`, also keys with imported material, which rotate only on demand (to material
/// imported for the rotation, `import.rs`) and never automatically.
fn require_rotatable(key: &LoadedKey, operation: &str, automatic: bool) -> KmsResult<()> {
    let arn = key.arn();
    let unsupported = |why: String| Err(KmsError::new(Exception::UnsupportedOperation, why));
    if key.row.custom_key_store_id.is_some() {
        return unsupported(format!(
            "{arn} is in a custom key store. {operation} is not supported for KMS keys in a custom key store."
        ));
    }
    if key.doc.key_spec != KeySpec::SymmetricDefault {
        return unsupported(format!(
            "{arn} key spec is {} which is not valid for {operation}. Only symmetric encryption KMS keys can be rotated.",
            key.doc.key_spec
        ));
    }
    let imported = key.doc.origin == OriginType::External;
    if key.doc.origin != OriginType::AwsKms && (automatic || !imported) {
        return unsupported(format!(
            "{arn} origin is {} which is not valid for this operation.",
            key.doc.origin
        ));
    }
    Ok(())
}

impl Keys {
    /// `EnableKeyRotation`. Enabling again with another period keeps the schedule's base (the
    /// last automatic rotation, or when rotation was enabled) and moves the next date.
    pub async fn enable_key_rotation(
        &self,
        ctx: &RequestContext,
        req: EnableKeyRotationRequest,
    ) -> KmsResult<()> {
        let period = req
            .rotation_period_in_days
            .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
        let now = self.now_seconds();
        let key = self
            .change_key(
                ctx,
                &req.key_id,
                &Access::new(KeyAction::EnableKeyRotation).with_fact(
                    "kms:RotationPeriodInDays",
                    req.rotation_period_in_days
                        .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS)
                        .to_string(),
                ),
                KeyOperationFamily::Describe,
                |key, doc| {
                    refuse_imported_first(key, "EnableKeyRotation")?;
                    super::manage::require_state(key, KeyOperationFamily::ManageRotation)?;
                    require_customer_managed(key)?;
                    require_rotatable(key, "EnableKeyRotation", true)?;
                    super::multi_region::refuse_replica(key, "EnableKeyRotation")?;
                    let base = match &doc.rotation {
                        Some(r) => doc
                            .rotations
                            .iter()
                            .rev()
                            .find(|x| x.kind == RotationType::Automatic && x.date >= r.enabled_date)
                            .map_or(r.enabled_date, |x| x.date),
                        None => now,
                    };
                    let enabled_date = doc.rotation.as_ref().map_or(now, |r| r.enabled_date);
                    doc.rotation = Some(AutoRotation {
                        period_days: period,
                        next_rotation_date: base + f64::from(period) * DAY_SECONDS,
                        enabled_date,
                    });
                    Ok(())
                },
            )
            .await?;
        self.sync_replicas(&key).await;
        Ok(())
    }

    /// `DisableKeyRotation`.
    pub async fn disable_key_rotation(
        &self,
        ctx: &RequestContext,
        req: DisableKeyRotationRequest,
    ) -> KmsResult<()> {
        let key = self
            .change_key(
                ctx,
                &req.key_id,
                &Access::new(KeyAction::DisableKeyRotation),
                KeyOperationFamily::Describe,
                |key, doc| {
                    refuse_imported_first(key, "DisableKeyRotation")?;
                    super::manage::require_state(key, KeyOperationFamily::ManageRotation)?;
                    require_customer_managed(key)?;
                    require_rotatable(key, "DisableKeyRotation", true)?;
                    super::multi_region::refuse_replica(key, "DisableKeyRotation")?;
                    doc.rotation = None;
                    Ok(())
                },
            )
            .await?;
        self.sync_replicas(&key).await;
        Ok(())
    }

    /// `GetKeyRotationStatus`. A key pending deletion reports false, as AWS does (its setting
    /// comes back if the deletion is cancelled); keys that cannot rotate report false.
    /// On-demand rotations complete within the request, so none is ever in progress.
    pub async fn get_key_rotation_status(
        &self,
        ctx: &RequestContext,
        req: GetKeyRotationStatusRequest,
    ) -> KmsResult<GetKeyRotationStatusResponse> {
        let access = Access::new(KeyAction::GetKeyRotationStatus);
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        let rotation = key
            .doc
            .rotation
            .as_ref()
            .filter(|_| key.doc.key_state != KeyState::PendingDeletion);
        Ok(GetKeyRotationStatusResponse {
            key_rotation_enabled: Some(rotation.is_some()),
            key_id: Some(key.arn()),
            rotation_period_in_days: rotation.map(|r| r.period_days),
            next_rotation_date: rotation.map(|r| Timestamp(r.next_rotation_date)),
            on_demand_rotation_start_date: None,
        })
    }

    /// `RotateKeyOnDemand`: rotates now, within AWS's quota of on-demand rotations per key;
    /// the automatic schedule is unchanged.
    pub async fn rotate_key_on_demand(
        &self,
        ctx: &RequestContext,
        req: RotateKeyOnDemandRequest,
    ) -> KmsResult<RotateKeyOnDemandResponse> {
        let access = Access::new(KeyAction::RotateKeyOnDemand);
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        check_on_demand(&key)?;
        let key = if key.doc.origin == OriginType::External {
            self.rotate_to_imported(ctx, &key).await?
        } else {
            self.rotate(ctx, &key, RotationType::OnDemand).await?
        };
        Ok(RotateKeyOnDemandResponse {
            key_id: Some(key.row.key_id.clone()),
        })
    }

    /// Writes a new material for `key` and makes it current (rechecking, under
    /// compare-and-set, what `kind` requires); returns the key as written.
    async fn rotate(
        &self,
        ctx: &RequestContext,
        key: &LoadedKey,
        kind: RotationType,
    ) -> KmsResult<LoadedKey> {
        let material_id = new_material_id();
        let now = self.now_seconds();
        let material = self.new_material(&key.row, &material_id, (now * 1000.0) as i64)?;
        self.store.insert_key_material(&material).await?;
        // If the key changed meanwhile so that it may no longer rotate, the material row
        // stays unused; it is wrapped like every material and deleted with the key.
        // The sweep skips keys that are not enabled before it gets here, so both kinds use the
        // rotation row of the key-state table.
        let key = self
            .change_key(
                ctx,
                &key.row.key_id,
                &Access::new(KeyAction::RotateKeyOnDemand),
                KeyOperationFamily::ManageRotation,
                |k, doc| {
                    match kind {
                        RotationType::OnDemand => check_on_demand(k)?,
                        RotationType::Automatic => {
                            require_rotatable(k, "rotation", true)?;
                            if doc.rotation.is_none() {
                                return Err(KmsError::new(
                                    Exception::KMSInvalidState,
                                    format!(
                                        "{} no longer has automatic rotation enabled.",
                                        k.arn()
                                    ),
                                ));
                            }
                        }
                    }
                    doc.rotations.push(RotationRecord {
                        material_id: material_id.clone(),
                        previous_material_id: doc.current_material_id.clone(),
                        date: now,
                        kind,
                    });
                    doc.current_material_id.clone_from(&material_id);
                    if let (RotationType::Automatic, Some(r)) = (kind, doc.rotation.as_mut()) {
                        r.next_rotation_date = now + f64::from(r.period_days) * DAY_SECONDS;
                    }
                    Ok(())
                },
            )
            .await?;
        self.sync_replicas(&key).await;
        Ok(key)
    }

    /// `ListKeyRotations`: the completed rotations, oldest first (with `ALL_KEY_MATERIAL`,
    /// the first material before them), paged by material id.
    pub async fn list_key_rotations(
        &self,
        ctx: &RequestContext,
        req: ListKeyRotationsRequest,
    ) -> KmsResult<ListKeyRotationsResponse> {
        let size = LIST_ROTATIONS_PAGING.page_size(req.limit);
        let after = LIST_ROTATIONS_PAGING.decode(req.marker.as_deref())?;
        let access = Access::new(KeyAction::ListKeyRotations);
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        require_rotatable(&key, "ListKeyRotations", false)?;
        let doc = &key.doc;
        let state = |id: &str| {
            if id == doc.current_material_id {
                KeyMaterialState::Current
            } else {
                KeyMaterialState::NonCurrent
            }
        };
        let mut entries = Vec::new();
        let all = req.include_key_material == Some(IncludeKeyMaterial::AllKeyMaterial);
        let first = doc
            .rotations
            .first()
            .map_or(&doc.current_material_id, |r| &r.previous_material_id);
        // A key awaiting its first imported material has none to list.
        if all && !first.is_empty() {
            entries.push(RotationsListEntry {
                key_id: Some(key.row.key_id.clone()),
                key_material_id: Some(first.clone()),
                key_material_state: Some(state(first)),
                ..Default::default()
            });
        }
        entries.extend(doc.rotations.iter().map(|r| RotationsListEntry {
            key_id: Some(key.row.key_id.clone()),
            key_material_id: Some(r.material_id.clone()),
            key_material_state: Some(state(&r.material_id)),
            rotation_date: Some(Timestamp(r.date)),
            rotation_type: Some(r.kind),
            ..Default::default()
        }));
        if doc.origin == OriginType::External {
            super::imported::annotate_rotations(doc, &key.row.key_id, &mut entries, all);
            let waiting = self.pending_replica_imports(&key).await?;
            for e in entries.iter_mut() {
                if waiting
                    .iter()
                    .any(|(id, _)| e.key_material_id.as_deref() == Some(id))
                {
                    e.key_material_state =
                        Some(KeyMaterialState::PendingMultiRegionImportAndRotation);
                }
            }
        }
        let start = match after {
            None => 0,
            Some(last) => entries
                .iter()
                .position(|e| e.key_material_id.as_deref() == Some(last.as_str()))
                .map(|i| i + 1)
                .ok_or_else(crate::paging::invalid_marker)?,
        };
        let rest: Vec<RotationsListEntry> = entries.into_iter().skip(start).collect();
        let page = LIST_ROTATIONS_PAGING.page(rest, size, |e| {
            e.key_material_id.as_deref().unwrap_or_default()
        });
        Ok(ListKeyRotationsResponse {
            rotations: Some(page.items),
            next_marker: page.next_marker,
            truncated: Some(page.truncated),
        })
    }

    /// Rotates every key whose automatic rotation is due and that is enabled (a disabled key
    /// stays due and rotates once it is enabled again, as in AWS); returns how many rotated.
    pub async fn complete_due_rotations(&self) -> KmsResult<usize> {
        let now = super::deletion::due_value(self.clock.now_millis());
        let mut rotated = 0;
        for (account, region, key_id) in self.due_keys(ROTATION_DUE_INDEX, Some(&now)).await? {
            let ctx = RequestContext::new(&account, &region, "keyhold-rotation-sweep");
            let Ok(key) = self.load_unauthorized(&ctx, &key_id).await else {
                continue;
            };
            if key.key_state() != KeyState::Enabled || key.doc.rotation.is_none() {
                continue;
            }
            match self.rotate(&ctx, &key, RotationType::Automatic).await {
                Ok(k) => {
                    rotated += 1;
                    tracing::info!(key_arn = %k.arn(), key_material_id = %k.doc.current_material_id, "automatic key rotation completed");
                }
                Err(e) => {
                    tracing::warn!(key_arn = %key.arn(), error = %e, "automatic key rotation failed; retried at the next sweep")
                }
            }
        }
        Ok(rotated)
    }
}

/// AWS refuses Enable/DisableKeyRotation on a key with imported material whatever its state
/// (a key pending import included): checked before the key state.
fn refuse_imported_first(key: &LoadedKey, operation: &str) -> KmsResult<()> {
    if key.doc.origin == OriginType::External {
        return require_rotatable(key, operation, true);
    }
    Ok(())
}

/// What RotateKeyOnDemand requires of a key besides its state: customer managed, rotatable,
/// and within the on-demand quota.
pub(super) fn check_on_demand(key: &LoadedKey) -> KmsResult<()> {
    super::manage::require_state(key, KeyOperationFamily::ManageRotation)?;
    super::multi_region::refuse_replica(key, "RotateKeyOnDemand")?;
    if key.doc.key_manager == KeyManagerType::Aws {
        return require_customer_managed(key);
    }
    require_rotatable(key, "RotateKeyOnDemand", false)?;
    let done = key
        .doc
        .rotations
        .iter()
        .filter(|r| r.kind == RotationType::OnDemand)
        .count();
    if done >= MAX_ON_DEMAND_ROTATIONS {
        return Err(KmsError::new(
            Exception::LimitExceeded,
            format!(
                "{} has reached the limit of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations.",
                key.arn()
            ),
        ));
    }
    Ok(())
}
