//! `CreateKey`: keys in Keyhold's default key store (with Keyhold's material or, with
//! `Origin: EXTERNAL`, none until material is imported), in external key stores and in AWS
//! CloudHSM key stores.

use keyhold_kms_model::enums::{
    ConnectionStateType, CustomKeyStoreType, KeyManagerType, KeySpec, KeyState, KeyUsageType,
    OriginType,
};
use keyhold_kms_model::shapes::{CreateKeyRequest, CreateKeyResponse};
use keyhold_kms_model::Exception;

use super::{default_key_policy, new_material_id, KeyDoc, Keys, LoadedKey};
use crate::context::RequestContext;
use crate::custom_key_stores::LoadedStore;
use crate::error::{KmsError, KmsResult};
use crate::ports::xks::{msg, XksKeyCall, XksKeyRequestMetadata};
use crate::ports::{StoreError, StoredKey, UniqueClaim};

/// The metadata store's claim scope making an `XksKeyId` unique within its key store.
const XKS_KEY_ID_SCOPE: &str = "xks-key-id";

fn xks_invalid_configuration(message: String) -> KmsError {
    KmsError::new(Exception::XksKeyInvalidConfiguration, message)
}

impl Keys {
    /// `CreateKey`.
    pub async fn create_key(
        &self,
        ctx: &RequestContext,
        req: CreateKeyRequest,
    ) -> KmsResult<CreateKeyResponse> {
        let key_spec = match (req.key_spec, req.customer_master_key_spec) {
            (Some(_), Some(_)) => {
                return Err(KmsError::new(Exception::Validation,
                    "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec parameter instead."
                        .into(),
                ))
            }
            (Some(s), None) => s,
            (None, Some(c)) => KeySpec::try_from(c.as_str())
                .map_err(|_| KmsError::new(Exception::Validation, format!("Unknown CustomerMasterKeySpec {c}")))?,
            (None, None) => KeySpec::SymmetricDefault,
        };
        let key_usage = req.key_usage.unwrap_or(KeyUsageType::EncryptDecrypt);
        let origin = req.origin.unwrap_or(OriginType::AwsKms);
        let spec_info = super::specs::key_spec_info(key_spec);
        if !spec_info.allows(key_usage) {
            return Err(KmsError::new(
                Exception::Validation,
                format!("KeyUsage {key_usage} is not compatible with KeySpec {key_spec}"),
            ));
        }
        if req.xks_key_id.is_some() && origin != OriginType::ExternalKeyStore {
            return Err(KmsError::new(
                Exception::Validation,
                "XksKeyId is only valid with Origin EXTERNAL_KEY_STORE".into(),
            ));
        }
        let xks = if origin == OriginType::ExternalKeyStore {
            let (Some(store_id), Some(xks_key_id)) = (
                req.custom_key_store_id.as_deref(),
                req.xks_key_id.as_deref(),
            ) else {
                return Err(KmsError::new(
                    Exception::Validation,
                    "CustomKeyStoreId and XksKeyId are required when Origin is EXTERNAL_KEY_STORE"
                        .into(),
                ));
            };
            if key_spec != KeySpec::SymmetricDefault {
                return Err(KmsError::new(Exception::UnsupportedOperation, format!(
                    "KeySpec {key_spec} is not supported for KMS keys in a custom key store. Only SYMMETRIC_DEFAULT keys can be created in a custom key store."
                )));
            }
            if req.multi_region == Some(true) {
                return Err(KmsError::new(
                    Exception::UnsupportedOperation,
                    "You cannot create a multi-Region key in a custom key store.".into(),
                ));
            }
            Some(self.check_external_key(ctx, store_id, xks_key_id).await?)
        } else {
            None
        };
        let cloudhsm = if origin == OriginType::AwsCloudhsm {
            let Some(store_id) = req.custom_key_store_id.as_deref() else {
                return Err(KmsError::new(
                    Exception::Validation,
                    "CustomKeyStoreId is required when Origin is AWS_CLOUDHSM".into(),
                ));
            };
            if key_spec != KeySpec::SymmetricDefault {
                return Err(KmsError::new(Exception::UnsupportedOperation, format!(
                    "KeySpec {key_spec} is not supported for KMS keys in a custom key store. Only SYMMETRIC_DEFAULT keys can be created in a custom key store."
                )));
            }
            if req.multi_region == Some(true) {
                return Err(KmsError::new(
                    Exception::UnsupportedOperation,
                    "You cannot create a multi-Region key in a custom key store.".into(),
                ));
            }
            Some(self.check_cloudhsm_store(ctx, store_id).await?)
        } else {
            None
        };
        // AWS offers SM2 only in the China Regions; elsewhere it answers this (the message
        // as AWS gives it in us-east-1).
        if key_spec == KeySpec::Sm2 && !crate::arn::is_china_region(&ctx.region) {
            return Err(KmsError::new(
                Exception::UnsupportedOperation,
                format!("KeySpec {key_spec} is not supported in this Region"),
            ));
        }
        if !spec_info.implemented {
            return Err(KmsError::new(Exception::UnsupportedOperation, format!(
                "Keyhold does not support KeySpec {key_spec} yet; only SYMMETRIC_DEFAULT keys can be created"
            )));
        }
        let external = origin == OriginType::External;
        if external {
            if req.custom_key_store_id.is_some() {
                return Err(KmsError::new(
                    Exception::UnsupportedOperation,
                    "You cannot import key material into a KMS key in a custom key store. Origin EXTERNAL is not valid with CustomKeyStoreId."
                        .into(),
                ));
            }
            if !super::imported::importable(key_spec) {
                return Err(KmsError::new(
                    Exception::UnsupportedOperation,
                    format!("KeySpec {key_spec} is not supported for KMS keys with imported key material (Origin EXTERNAL)."),
                ));
            }
        }
        if xks.is_none()
            && cloudhsm.is_none()
            && !external
            && (origin != OriginType::AwsKms || req.custom_key_store_id.is_some())
        {
            return Err(KmsError::new(Exception::UnsupportedOperation, format!(
                "Keyhold does not support Origin {origin} for CreateKey yet, nor CustomKeyStoreId without Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE"
            )));
        }
        let multi_region = req.multi_region == Some(true);
        let req_tags = req.tags.unwrap_or_default();
        super::manage::check_tags(&req_tags)?;
        if let Some(policy) = &req.policy {
            super::policy::check_policy(
                ctx,
                policy,
                req.bypass_policy_lockout_safety_check == Some(true),
            )?;
        }
        let tags: Vec<(String, String)> = req_tags
            .into_iter()
            .map(|t| (t.tag_key, t.tag_value))
            .collect();

        let key_id = if multi_region {
            super::multi_region::new_key_id()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        // A key for imported material has none until the first import.
        let material_id = if external {
            String::new()
        } else {
            new_material_id()
        };
        let created = self.now_seconds();
        let doc = KeyDoc {
            description: req.description.unwrap_or_default(),
            key_usage,
            key_spec,
            origin,
            key_manager: KeyManagerType::Customer,
            key_state: if external {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            },
            creation_date: created,
            deletion_date: None,
            pending_deletion_window_in_days: None,
            multi_region,
            current_material_id: material_id.clone(),
            policy: req
                .policy
                .unwrap_or_else(|| default_key_policy(&ctx.account_id)),
            tags,
            xks_key_id: req.xks_key_id.clone().filter(|_| xks.is_some()),
            rotation: None,
            rotations: Vec::new(),
            imported: Vec::new(),
            mrk: multi_region.then(|| super::MultiRegionDoc {
                key_id: key_id.clone(),
                primary_region: ctx.region.clone(),
                replica: false,
                sync_due: false,
            }),
        };
        let arn = crate::arn::key_arn(&ctx.region, &ctx.account_id, &key_id);
        // Keys in AWS CloudHSM key stores: the backing key, in the cluster, labelled with the
        // ARN; Keyhold holds no material for them.
        if let Some(store) = &cloudhsm {
            self.create_backing_key(store, &arn).await?;
        }
        let store = xks.or(cloudhsm);
        // Keys in external key stores get Keyhold-held material too: the inner layer of
        // double encryption.
        let row = StoredKey {
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            key_id: key_id.clone(),
            custom_key_store_id: store.as_ref().map(|s| s.row.id.clone()),
            created_at_ms: (created * 1000.0) as i64,
            version: 1,
            doc: serde_json::to_string(&doc).map_err(KmsError::internal)?,
        };
        let mat = if external {
            None
        } else {
            let material = self.generate_key_material(key_spec).await?;
            Some(self.material_row(&row, &material_id, row.created_at_ms, &material)?)
        };
        let claims: Vec<UniqueClaim> = match (&store, &doc.xks_key_id) {
            (Some(store), Some(xks_key_id)) => vec![UniqueClaim::exclusive(
                XKS_KEY_ID_SCOPE,
                format!(
                    "{}/{}/{}/{xks_key_id}",
                    ctx.account_id, ctx.region, store.row.id
                ),
            )],
            _ => Vec::new(),
        };
        let is_cloudhsm = origin == OriginType::AwsCloudhsm;
        let inserted = self
            .store
            .insert_key(
                &row,
                mat.as_ref().filter(|_| !is_cloudhsm),
                &claims,
                &super::indexes_of(&doc),
            )
            .await;
        if inserted.is_err() && is_cloudhsm {
            if let Some(s) = &store {
                self.discard_backing_key(s, &arn).await;
            }
        }
        match inserted {
            Ok(()) => {}
            Err(StoreError::Conflict { scope }) if scope == XKS_KEY_ID_SCOPE => {
                return Err(KmsError::new(Exception::XksKeyAlreadyInUse, format!(
                        "The external key {} is already associated with a KMS key in custom key store {}.",
                        doc.xks_key_id.as_deref().unwrap_or_default(),
                        row.custom_key_store_id.as_deref().unwrap_or_default()
                    )))
            }
            Err(e) => return Err(e.into()),
        }
        let loaded = LoadedKey { row, doc, store };
        Ok(CreateKeyResponse {
            key_metadata: Some(self.full_metadata(&loaded).await?),
        })
    }

    /// The checks CreateKey makes for a key in an external key store: the store exists, is an
    /// external key store and is CONNECTED, and its proxy reports the external key as an
    /// enabled AES_256 key that encrypts and decrypts. Returns the store.
    async fn check_external_key(
        &self,
        ctx: &RequestContext,
        store_id: &str,
        xks_key_id: &str,
    ) -> KmsResult<LoadedStore> {
        let store = self
            .custom_key_stores
            .load(&ctx.account_id, &ctx.region, store_id)
            .await?;
        if store.store_type()? != CustomKeyStoreType::ExternalKeyStore {
            return Err(KmsError::new(Exception::UnsupportedOperation, format!(
                "Custom key store {store_id} is not an external key store; use Origin AWS_CLOUDHSM for keys in an AWS CloudHSM key store."
            )));
        }
        if store.state()? != ConnectionStateType::Connected {
            return Err(crate::custom_key_stores::invalid_state(
                msg::NOT_CONNECTED.to_string(),
            ));
        }
        let target = self.custom_key_stores.xks_target(&store)?;
        let metadata = XksKeyRequestMetadata {
            aws_principal_arn: ctx.principal_arn.clone(),
            kms_key_arn: None,
            kms_operation: "CreateKey".into(),
            kms_request_id: ctx.request_id.clone(),
        };
        let answer = self
            .custom_key_stores
            .connector()
            .get_key_metadata(XksKeyCall::new(&target, xks_key_id, &metadata))
            .await
            .map_err(|f| {
                tracing::warn!(custom_key_store_id = %store_id, failure = %f, "GetKeyMetadata failed during CreateKey");
                KmsError::new(f.create_key_exception(), f.kms_message().to_string())
            })?;
        if answer.key_spec != "AES_256" {
            return Err(xks_invalid_configuration(format!(
                "The key spec of the external key must be AES_256. The key spec of specified external key is {}.",
                answer.key_spec
            )));
        }
        if answer.key_status != "ENABLED" {
            return Err(xks_invalid_configuration(format!(
                "The status of the external key must be ENABLED. The status of specified external key is {}.",
                answer.key_status
            )));
        }
        let has = |u: &str| answer.key_usage.iter().any(|k| k == u);
        if !(has("ENCRYPT") && has("DECRYPT")) {
            return Err(xks_invalid_configuration(format!(
                "The key usage of the external key must include ENCRYPT and DECRYPT. The key use of specified external key is {}.",
                answer.key_usage.join(", ")
            )));
        }
        Ok(store)
    }
}
