//! Imported key material: `GetParametersForImport`, `ImportKeyMaterial`,
//! `DeleteImportedKeyMaterial`, on-demand rotation to imported material, and the sweep that
//! deletes material whose `ValidTo` has passed.
//!
//! A key created with `Origin: EXTERNAL` has no material and is `PendingImport`.
//! GetParametersForImport makes a fresh RSA wrapping key pair (on a blocking thread) and
//! returns its public key with an import token sealing the private key (`import_token.rs`).
//! ImportKeyMaterial unwraps the material, checks it against the key spec and records it
//! (`imported.rs`): the material row and the key document change in one transaction, and a
//! material that expires gives the key an [`MATERIAL_EXPIRY_INDEX`] entry (derived in
//! `indexes_of`) that the sweep walks in due order on the clock port, as the rotation sweep
//! does.

use keyhold_crypto::import::{self, ImportError, WrappingAlgorithm, WrappingKeySpec};
use keyhold_kms_model::enums::{AlgorithmSpec, ImportType, KeySpec, OriginType, RotationType};
use keyhold_kms_model::shapes::{
    DeleteImportedKeyMaterialRequest, DeleteImportedKeyMaterialResponse,
    GetParametersForImportRequest, GetParametersForImportResponse, ImportKeyMaterialRequest,
    ImportKeyMaterialResponse,
};
use keyhold_kms_model::{Blob, Exception, Timestamp};

use super::import_token::{self, ImportParameters, TokenError};
use super::imported::{checked_material, valid_to_of, ImportedMaterial, MATERIAL_EXPIRY_INDEX};
use super::manage::require_state;
use super::manage::MaterialChange;
use super::multi_region_sync::{adopt_pending_material, adopt_primary_materials};
use super::rotation::RotationRecord;
use super::states::KeyOperationFamily;
use super::{KeyDoc, Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};

/// How long an import token and its public key are valid: 24 hours.
pub const PARAMETERS_VALIDITY_MS: i64 = 24 * 3_600 * 1_000;

/// AWS's refusal of an import operation on a key whose material cannot be imported.
fn require_external(key: &LoadedKey) -> KmsResult<()> {
    if key.doc.origin == OriginType::External {
        return Ok(());
    }
    Err(KmsError::new(
        Exception::UnsupportedOperation,
        format!(
            "{} origin is {} which is not valid for this operation.",
            key.arn(),
            key.doc.origin
        ),
    ))
}

/// The wrapping algorithm and key spec of a GetParametersForImport request. AWS no longer
/// accepts `RSAES_PKCS1_V1_5`, and offers the SM2 wrapping key (with `SM2PKE`) only in the
/// China Regions, which Keyhold does not serve.
fn wrapping(
    algorithm: AlgorithmSpec,
    spec: keyhold_kms_model::enums::WrappingKeySpec,
) -> KmsResult<(WrappingAlgorithm, WrappingKeySpec)> {
    let invalid = |m: String| Err(KmsError::new(Exception::Validation, m));
    if algorithm == AlgorithmSpec::RsaesPkcs1V15 {
        return invalid(
            "The RSAES_PKCS1_V1_5 wrapping algorithm is not supported. Use RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256."
                .into(),
        );
    }
    let (Some(a), Some(s)) = (
        WrappingAlgorithm::from_aws_name(algorithm.as_str()),
        WrappingKeySpec::from_aws_name(spec.as_str()),
    ) else {
        return invalid(format!(
            "The {} wrapping key spec and the SM2PKE wrapping algorithm are supported only in China Regions; {algorithm} with {spec} is not supported in this Region.",
            keyhold_kms_model::enums::WrappingKeySpec::Sm2
        ));
    };
    Ok((a, s))
}

impl Keys {
    /// `GetParametersForImport`.
    pub async fn get_parameters_for_import(
        &self,
        ctx: &RequestContext,
        req: GetParametersForImportRequest,
    ) -> KmsResult<GetParametersForImportResponse> {
        let access = Access::new(KeyAction::GetParametersForImport)
            .with_fact("kms:WrappingAlgorithm", req.wrapping_algorithm.as_str())
            .with_fact("kms:WrappingKeySpec", req.wrapping_key_spec.as_str());
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        require_external(&key)?;
        require_state(&key, KeyOperationFamily::ImportMaterial)?;
        let (algorithm, spec) = wrapping(req.wrapping_algorithm, req.wrapping_key_spec)?;
        let private_key = self
            .keygen(move || import::generate_wrapping_key(spec))
            .await?;
        let public_key =
            import::wrapping_public_key(spec, private_key.expose()).map_err(KmsError::internal)?;
        let expires_at_ms = self
            .clock
            .now_millis()
            .saturating_add(PARAMETERS_VALIDITY_MS);
        let params = ImportParameters {
            algorithm,
            spec,
            expires_at_ms,
            private_key,
        };
        let token = import_token::seal(&self.root_key, key_identity(&key), &params)
            .map_err(KmsError::internal)?;
        Ok(GetParametersForImportResponse {
            key_id: Some(key.arn()),
            import_token: Some(Blob::from(token)),
            public_key: Some(Blob::from(public_key)),
            parameters_valid_to: Some(Timestamp(expires_at_ms as f64 / 1000.0)),
        })
    }

    /// `ImportKeyMaterial`.
    pub async fn import_key_material(
        &self,
        ctx: &RequestContext,
        req: ImportKeyMaterialRequest,
    ) -> KmsResult<ImportKeyMaterialResponse> {
        let now_ms = self.clock.now_millis();
        let now = now_ms as f64 / 1000.0;
        let mut access = Access::new(KeyAction::ImportKeyMaterial);
        if let Some(model) = req.expiration_model {
            access = access.with_fact("kms:ExpirationModel", model.as_str());
        }
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        require_external(&key)?;
        require_state(&key, KeyOperationFamily::ImportMaterial)?;
        let symmetric = key.doc.key_spec == KeySpec::SymmetricDefault;
        if !symmetric
            && (req.import_type.is_some()
                || req.key_material_id.is_some()
                || req.key_material_description.is_some())
        {
            return Err(KmsError::new(Exception::Validation, format!(
                "ImportType, KeyMaterialId and KeyMaterialDescription are valid only for symmetric encryption KMS keys; {} key spec is {}.",
                key.arn(),
                key.doc.key_spec
            )));
        }
        if req.import_type == Some(ImportType::NewKeyMaterial) && req.key_material_id.is_some() {
            return Err(KmsError::new(
                Exception::Validation,
                "You cannot specify a KeyMaterialId when ImportType is NEW_KEY_MATERIAL.".into(),
            ));
        }
        let valid_to = valid_to_of(req.expiration_model, req.valid_to, now)?;
        let params = import_token::open(
            &self.root_key,
            key_identity(&key),
            req.import_token.as_bytes(),
            now_ms,
        )
        .map_err(|e| match e {
            TokenError::Invalid => KmsError::new(
                Exception::InvalidImportToken,
                format!("The import token is invalid or is associated with a KMS key other than {}.", key.arn()),
            ),
            TokenError::Expired => KmsError::new(
                Exception::ExpiredImportToken,
                "The import token has expired. Use GetParametersForImport to get a new import token and public key.".into(),
            ),
        })?;
        let material = import::unwrap_key_material(
            params.spec,
            params.private_key.expose(),
            params.algorithm,
            req.encrypted_key_material.as_bytes(),
        )
        .map_err(|e| match e {
            ImportError::Unwrap => KmsError::new(Exception::InvalidCiphertext, String::new()),
            ImportError::WrappingKey(e) => KmsError::internal(e),
        })?;
        let material = checked_material(key.doc.key_spec, material)?;
        let material_id = import::material_id(material.expose(), &material_binding(&key));
        // A replica takes only material its primary key has (`multi_region_sync`).
        let primary = match key.doc.mrk.as_ref().filter(|m| m.replica) {
            Some(mrk) => {
                if req.import_type == Some(ImportType::NewKeyMaterial) {
                    return Err(KmsError::new(Exception::UnsupportedOperation, format!(
                        "{} is a multi-Region replica key. Import new key material into its primary key in {}, then import the same key material into this key with ImportType EXISTING_KEY_MATERIAL.",
                        key.arn(),
                        mrk.primary_region
                    )));
                }
                self.primary_doc(&key, mrk).await?
            }
            None => None,
        };
        if req
            .key_material_id
            .as_deref()
            .is_some_and(|id| id != material_id)
        {
            return Err(not_the_same_material(&key));
        }
        let import_type = req.import_type;
        let description = req.key_material_description.clone();
        let written = self
            .change_materials(ctx, &req.key_id, Some(&access), KeyOperationFamily::ImportMaterial, |k, doc| {
                require_external(k)?;
                let mut change = MaterialChange::default();
                if let Some(primary) = &primary {
                    change.remove = adopt_primary_materials(doc, primary);
                    adopt_pending_material(doc, primary, &material_id);
                }
                let first = doc.imported.is_empty();
                let new = match import_type {
                    Some(t) => t == ImportType::NewKeyMaterial,
                    None => first && primary.is_none(),
                };
                let position = doc.imported.iter().position(|m| m.material_id == material_id);
                match (new, position) {
                    (true, Some(_)) => {
                        return Err(KmsError::new(Exception::IncorrectKeyMaterial, format!(
                            "The key material {material_id} is already associated with {}; import it with ImportType EXISTING_KEY_MATERIAL.",
                            k.arn()
                        )))
                    }
                    (false, None) => return Err(not_the_same_material(k)),
                    (true, None) => {
                        if let Some(pending) = doc.imported.iter().find(|m| m.pending_rotation) {
                            return Err(KmsError::new(Exception::KMSInvalidState, format!(
                                "New key material (id: {material_id}) cannot be imported into KMS key {}, because another key material (id: {}) is pending rotation.",
                                k.row.key_id, pending.material_id
                            )));
                        }
                        doc.imported.push(ImportedMaterial {
                            material_id: material_id.clone(),
                            description: description.clone(),
                            imported: true,
                            valid_to,
                            pending_rotation: !first,
                        });
                        if first {
                            doc.current_material_id.clone_from(&material_id);
                        }
                        change.add = Some(self.material_row(&k.row, &material_id, now_ms, &material)?);
                    }
                    (false, Some(i)) => {
                        let entry = &mut doc.imported[i];
                        if !entry.imported {
                            change.add =
                                Some(self.material_row(&k.row, &material_id, now_ms, &material)?);
                        }
                        entry.imported = true;
                        entry.valid_to = valid_to;
                        if description.is_some() {
                            entry.description.clone_from(&description);
                        }
                    }
                }
                doc.settle_import_state();
                Ok(change)
            })
            .await?;
        tracing::info!(key_arn = %written.arn(), key_material_id = %material_id, expires = valid_to.is_some(), "key material imported");
        self.sync_replicas(&written).await;
        Ok(ImportKeyMaterialResponse {
            key_id: Some(written.arn()),
            key_material_id: symmetric.then_some(material_id),
        })
    }

    /// `DeleteImportedKeyMaterial`: deletes the current material, or the one named; a key
    /// pending deletion keeps its state, others become `PendingImport` (material pending
    /// rotation is simply dropped: it was never permanently the key's).
    pub async fn delete_imported_key_material(
        &self,
        ctx: &RequestContext,
        req: DeleteImportedKeyMaterialRequest,
    ) -> KmsResult<DeleteImportedKeyMaterialResponse> {
        let requested = req.key_material_id.clone();
        let mut deleted = None;
        let written = self
            .change_materials(
                ctx,
                &req.key_id,
                Some(&Access::new(KeyAction::DeleteImportedKeyMaterial)),
                KeyOperationFamily::DeleteImportedMaterial,
                |k, doc| {
                    require_external(k)?;
                    let target = requested
                        .clone()
                        .unwrap_or_else(|| doc.current_material_id.clone());
                    let Some(i) = doc.imported.iter().position(|m| m.material_id == target) else {
                        if requested.is_some() {
                            return Err(KmsError::new(
                                Exception::NotFound,
                                format!(
                                    "Key material {target} is not associated with {}.",
                                    k.arn()
                                ),
                            ));
                        }
                        // No material was ever imported: nothing to delete.
                        return Ok(MaterialChange::default());
                    };
                    Ok(forget_material(doc, i))
                },
            )
            .await?;
        if let Some(id) = requested.or_else(|| {
            (!written.doc.current_material_id.is_empty())
                .then(|| written.doc.current_material_id.clone())
        }) {
            self.forget_cached_material(&written, &id);
            deleted = Some(id);
        }
        tracing::info!(key_arn = %written.arn(), key_material_id = deleted.as_deref().unwrap_or(""), "imported key material deleted");
        // Material pending rotation deleted from a primary key goes from its replicas too.
        self.sync_replicas(&written).await;
        Ok(DeleteImportedKeyMaterialResponse {
            key_id: Some(written.arn()),
            key_material_id: deleted.filter(|_| written.doc.key_spec == KeySpec::SymmetricDefault),
        })
    }

    /// RotateKeyOnDemand for a key with imported material: the material imported for
    /// rotation (`PENDING_ROTATION`) becomes current; there must be one.
    pub(super) async fn rotate_to_imported(
        &self,
        ctx: &RequestContext,
        key: &LoadedKey,
    ) -> KmsResult<LoadedKey> {
        let now = self.now_seconds();
        // A multi-Region primary rotates only once every replica has the new material.
        if let Some((material_id, replica)) = self.pending_replica_imports(key).await?.first() {
            return Err(KmsError::new(Exception::KMSInvalidState, format!(
                "The key material (id: {material_id}) pending rotation in {} has not been imported into its replica key {replica}. Import it there with ImportType EXISTING_KEY_MATERIAL before rotating.",
                key.arn()
            )));
        }
        let written = self
            .change_materials(
                ctx,
                &key.row.key_id,
                Some(&Access::new(KeyAction::RotateKeyOnDemand)),
                KeyOperationFamily::Describe,
                |k, doc| {
                    super::rotation::check_on_demand(k)?;
                    let Some(pending) = doc.imported.iter_mut().find(|m| m.pending_rotation) else {
                        return Err(KmsError::new(
                            Exception::KMSInvalidState,
                            format!(
                                "No available key material pending rotation for the key: {}.",
                                k.arn()
                            ),
                        ));
                    };
                    pending.pending_rotation = false;
                    let material_id = pending.material_id.clone();
                    doc.rotations.push(RotationRecord {
                        material_id: material_id.clone(),
                        previous_material_id: doc.current_material_id.clone(),
                        date: now,
                        kind: RotationType::OnDemand,
                    });
                    doc.current_material_id = material_id;
                    doc.settle_import_state();
                    Ok(MaterialChange::default())
                },
            )
            .await?;
        self.sync_replicas(&written).await;
        Ok(written)
    }

    /// Deletes every imported material whose `ValidTo` has passed by the clock port, as AWS
    /// does when imported material expires; returns how many materials were deleted.
    pub async fn complete_material_expirations(&self) -> KmsResult<usize> {
        let now_ms = self.clock.now_millis();
        let now = now_ms as f64 / 1000.0;
        let due = super::deletion::due_value(now_ms);
        let mut keys = self.due_keys(MATERIAL_EXPIRY_INDEX, Some(&due)).await?;
        // A key with several expired materials has several entries; one pass deletes them all.
        keys.sort();
        keys.dedup();
        let mut expired = 0;
        for (account, region, key_id) in keys {
            let ctx = RequestContext::new(&account, &region, "keyhold-import-expiry-sweep");
            let mut count = 0;
            let outcome = self
                .change_materials(
                    &ctx,
                    &key_id,
                    None,
                    KeyOperationFamily::Describe,
                    |_, doc| {
                        let mut change = MaterialChange::default();
                        count = 0;
                        while let Some(i) = doc
                            .imported
                            .iter()
                            .position(|m| m.imported && m.valid_to.is_some_and(|t| t <= now))
                        {
                            change.remove.extend(forget_material(doc, i).remove);
                            count += 1;
                        }
                        Ok(change)
                    },
                )
                .await;
            match outcome {
                Ok(key) => {
                    expired += count;
                    if count > 0 {
                        tracing::info!(key_arn = %key.arn(), materials = count, "imported key material expired and was deleted");
                    }
                }
                Err(e) => {
                    tracing::warn!(key_id = %key_id, error = %e, "deleting expired key material failed; retried at the next sweep")
                }
            }
        }
        Ok(expired)
    }

    /// Drops a deleted material from this node's cache of unwrapped materials. (Other nodes'
    /// copies are never used: the key cannot be used until the same material is back.)
    fn forget_cached_material(&self, key: &LoadedKey, material_id: &str) {
        let r = &key.row;
        let id = (
            r.account_id.clone(),
            r.region.clone(),
            r.key_id.clone(),
            material_id.to_string(),
        );
        if let Ok(mut cache) = self.material_cache.write() {
            cache.remove(&id);
        }
    }
}

/// Deletes material `i` of `doc`: material pending rotation is dropped altogether, other
/// material is marked pending import (the key remembers it); the key state follows.
fn forget_material(doc: &mut KeyDoc, i: usize) -> MaterialChange {
    let entry = &mut doc.imported[i];
    let mut change = MaterialChange::default();
    if entry.imported {
        change.remove.push(entry.material_id.clone());
    }
    if entry.pending_rotation {
        doc.imported.remove(i);
    } else {
        entry.imported = false;
        entry.valid_to = None;
    }
    doc.settle_import_state();
    change
}

/// `IncorrectKeyMaterialException` for material that is not the key's.
fn not_the_same_material(key: &LoadedKey) -> KmsError {
    KmsError::new(
        Exception::IncorrectKeyMaterial,
        format!(
            "The key material is not the key material previously imported into {}.",
            key.arn()
        ),
    )
}

/// What an imported material's id is bound to besides the material: the key's ARN, or for a
/// multi-Region key its account and shared key id, so that the same material has the same id
/// in every related key (AWS: the id is "based on the KMS key ID and the imported key
/// material").
fn material_binding(key: &LoadedKey) -> String {
    match &key.doc.mrk {
        Some(mrk) => format!("multi-region:{}:{}", key.row.account_id, mrk.key_id),
        None => key.arn(),
    }
}

/// `(account, Region, key id)` of a key, as import tokens are bound to it.
fn key_identity(key: &LoadedKey) -> (&str, &str, &str) {
    (&key.row.account_id, &key.row.region, &key.row.key_id)
}
