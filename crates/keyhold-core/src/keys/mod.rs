//! KMS keys: creation, description, listing, and the stored form of a key.
//!
//! A key is stored as a [`StoredKey`] row whose `doc` is a [`KeyDoc`] in JSON. Key material
//! lives in separate rows, wrapped by the root key with associated data naming the key and the
//! material, so the database alone never reveals a key.

mod crypto_ops;
mod resolve;

use std::sync::Arc;

use keyhold_crypto::{RootKey, SecretBytes};
use keyhold_kms_model::enums::{
    CustomerMasterKeySpec, EncryptionAlgorithmSpec, ExpirationModelType, KeyManagerType, KeySpec,
    KeyState, KeyUsageType, OriginType,
};
use keyhold_kms_model::shapes::{
    CreateKeyRequest, CreateKeyResponse, DescribeKeyRequest, DescribeKeyResponse, KeyListEntry,
    KeyMetadata, ListKeysRequest, ListKeysResponse, Tag,
};
use keyhold_kms_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::{MetadataStore, StoredKey, StoredKeyMaterial};

pub use resolve::KeyRef;

/// The stored document of a KMS key: its metadata, never its material.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyDoc {
    /// Description given at creation or by UpdateKeyDescription.
    pub description: String,
    /// Key usage.
    pub key_usage: KeyUsageType,
    /// Key spec.
    pub key_spec: KeySpec,
    /// Origin of the key material.
    pub origin: OriginType,
    /// Customer or AWS managed.
    pub key_manager: KeyManagerType,
    /// Current state.
    pub key_state: KeyState,
    /// Creation time, seconds since the epoch.
    pub creation_date: f64,
    /// When a scheduled deletion completes.
    #[serde(default)]
    pub deletion_date: Option<f64>,
    /// Waiting period of a scheduled deletion.
    #[serde(default)]
    pub pending_deletion_window_in_days: Option<i32>,
    /// Multi-Region key.
    #[serde(default)]
    pub multi_region: bool,
    /// The key material used for new encryptions.
    pub current_material_id: String,
    /// The key policy document.
    pub policy: String,
    /// Tags in creation order.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// Identity of one key material: (account, Region, key id, material id).
type MaterialId = (String, String, String, String);

/// Most unwrapped materials kept in memory before the cache is emptied.
const MATERIAL_CACHE_LIMIT: usize = 10_000;

/// The KMS key operations of one Keyhold instance.
pub struct Keys {
    store: Arc<dyn MetadataStore>,
    root_key: Arc<RootKey>,
    /// Unwrapped key materials. A material never changes once written, so caching it saves a
    /// database read and an unwrap per cryptographic call; the key row (state, deletion) is
    /// still read on every call, so a disabled or deleted key stops working at once.
    /// Entries are zeroized when evicted or dropped.
    material_cache: std::sync::RwLock<std::collections::HashMap<MaterialId, SecretBytes>>,
}

/// AWS's default key policy for a key created without one.
pub fn default_key_policy(account_id: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"arn:aws:iam::{account_id}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}

fn now_seconds() -> f64 {
    let now = time::OffsetDateTime::now_utc();
    // Millisecond precision, as AWS returns.
    (now.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0
}

/// The associated data binding wrapped key material to its row.
pub(crate) fn material_aad(
    account: &str,
    region: &str,
    key_id: &str,
    material_id: &str,
) -> Vec<u8> {
    format!("keyhold/key-material/v1/{account}/{region}/{key_id}/{material_id}").into_bytes()
}

/// A loaded key: its row and parsed document.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The row.
    pub row: StoredKey,
    /// The parsed document.
    pub doc: KeyDoc,
}

impl LoadedKey {
    /// The key ARN.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            self.row.region, self.row.account_id, self.row.key_id
        )
    }

    /// The wire `KeyMetadata` of this key.
    pub fn metadata(&self) -> KeyMetadata {
        let d = &self.doc;
        let symmetric = d.key_spec == KeySpec::SymmetricDefault;
        KeyMetadata {
            aws_account_id: Some(self.row.account_id.clone()),
            key_id: self.row.key_id.clone(),
            arn: Some(self.arn()),
            creation_date: Some(Timestamp(d.creation_date)),
            enabled: Some(d.key_state == KeyState::Enabled),
            description: Some(d.description.clone()),
            key_usage: Some(d.key_usage),
            key_state: Some(d.key_state),
            deletion_date: d.deletion_date.map(Timestamp),
            origin: Some(d.origin),
            key_manager: Some(d.key_manager),
            customer_master_key_spec: CustomerMasterKeySpec::try_from(d.key_spec.as_str()).ok(),
            key_spec: Some(d.key_spec),
            encryption_algorithms: symmetric
                .then(|| vec![EncryptionAlgorithmSpec::SymmetricDefault]),
            multi_region: Some(d.multi_region),
            pending_deletion_window_in_days: d.pending_deletion_window_in_days,
            expiration_model: (d.origin == OriginType::External)
                .then_some(ExpirationModelType::KeyMaterialDoesNotExpire),
            current_key_material_id: symmetric.then(|| d.current_material_id.clone()),
            ..Default::default()
        }
    }
}

impl Keys {
    /// Keys backed by `store`, with material wrapped by `root_key`.
    pub fn new(store: Arc<dyn MetadataStore>, root_key: Arc<RootKey>) -> Self {
        Self {
            store,
            root_key,
            material_cache: Default::default(),
        }
    }

    /// `CreateKey`.
    pub async fn create_key(
        &self,
        ctx: &RequestContext,
        req: CreateKeyRequest,
    ) -> KmsResult<CreateKeyResponse> {
        let key_spec = match (req.key_spec, req.customer_master_key_spec) {
            (Some(_), Some(_)) => {
                return Err(KmsError::Validation(
                    "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec parameter instead."
                        .into(),
                ))
            }
            (Some(s), None) => s,
            (None, Some(c)) => KeySpec::try_from(c.as_str())
                .map_err(|_| KmsError::Validation(format!("Unknown CustomerMasterKeySpec {c}")))?,
            (None, None) => KeySpec::SymmetricDefault,
        };
        let key_usage = req.key_usage.unwrap_or(KeyUsageType::EncryptDecrypt);
        let origin = req.origin.unwrap_or(OriginType::AwsKms);
        if key_spec == KeySpec::SymmetricDefault && key_usage != KeyUsageType::EncryptDecrypt {
            return Err(KmsError::Validation(format!(
                "KeyUsage {key_usage} is not compatible with KeySpec {key_spec}"
            )));
        }
        if key_spec != KeySpec::SymmetricDefault {
            return Err(KmsError::UnsupportedOperation(format!(
                "Keyhold does not support KeySpec {key_spec} yet; only SYMMETRIC_DEFAULT keys can be created"
            )));
        }
        if origin != OriginType::AwsKms || req.custom_key_store_id.is_some() {
            return Err(KmsError::UnsupportedOperation(format!(
                "Keyhold does not support Origin {origin} or custom key stores for CreateKey yet"
            )));
        }
        if req.xks_key_id.is_some() {
            return Err(KmsError::Validation(
                "XksKeyId is only valid with Origin EXTERNAL_KEY_STORE".into(),
            ));
        }
        if req.multi_region == Some(true) {
            return Err(KmsError::UnsupportedOperation(
                "Keyhold does not support multi-Region keys yet".into(),
            ));
        }
        let mut tags = Vec::new();
        for Tag { tag_key, tag_value } in req.tags.unwrap_or_default() {
            if tag_key.starts_with("aws:") {
                return Err(KmsError::Tag(
                    "Tags beginning with aws: are reserved".into(),
                ));
            }
            if tags.iter().any(|(k, _): &(String, String)| *k == tag_key) {
                return Err(KmsError::Tag(format!("Duplicate tag key {tag_key}")));
            }
            tags.push((tag_key, tag_value));
        }

        let key_id = uuid::Uuid::new_v4().to_string();
        let material_id = new_material_id();
        let created = now_seconds();
        let doc = KeyDoc {
            description: req.description.unwrap_or_default(),
            key_usage,
            key_spec,
            origin,
            key_manager: KeyManagerType::Customer,
            key_state: KeyState::Enabled,
            creation_date: created,
            deletion_date: None,
            pending_deletion_window_in_days: None,
            multi_region: false,
            current_material_id: material_id.clone(),
            policy: req
                .policy
                .unwrap_or_else(|| default_key_policy(&ctx.account_id)),
            tags,
        };
        let material = keyhold_crypto::random_bytes(32);
        let wrapped = self.root_key.wrap(
            &material_aad(&ctx.account_id, &ctx.region, &key_id, &material_id),
            material.expose(),
        );
        let row = StoredKey {
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            key_id: key_id.clone(),
            custom_key_store_id: None,
            created_at_ms: (created * 1000.0) as i64,
            version: 1,
            doc: serde_json::to_string(&doc).map_err(KmsError::internal)?,
        };
        let mat = StoredKeyMaterial {
            account_id: row.account_id.clone(),
            region: row.region.clone(),
            key_id: key_id.clone(),
            material_id,
            created_at_ms: row.created_at_ms,
            wrapped,
        };
        self.store.insert_key(&row, Some(&mat), &[]).await?;
        let loaded = LoadedKey { row, doc };
        Ok(CreateKeyResponse {
            key_metadata: Some(loaded.metadata()),
        })
    }

    /// `DescribeKey`.
    pub async fn describe_key(
        &self,
        ctx: &RequestContext,
        req: DescribeKeyRequest,
    ) -> KmsResult<DescribeKeyResponse> {
        let key = self.load(ctx, &req.key_id).await?;
        Ok(DescribeKeyResponse {
            key_metadata: Some(key.metadata()),
        })
    }

    /// `ListKeys`: ordered by key id; the marker is the last key id returned.
    pub async fn list_keys(
        &self,
        ctx: &RequestContext,
        req: ListKeysRequest,
    ) -> KmsResult<ListKeysResponse> {
        let limit = req.limit.unwrap_or(100).clamp(1, 1000) as u32;
        let after = match req.marker.as_deref() {
            None => None,
            Some(m) => Some(decode_marker(m)?),
        };
        let mut rows = self
            .store
            .list_keys(&ctx.account_id, &ctx.region, after.as_deref(), limit + 1)
            .await?;
        let truncated = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_marker = if truncated {
            rows.last().map(|r| encode_marker(&r.key_id))
        } else {
            None
        };
        let keys = rows
            .into_iter()
            .map(|r| KeyListEntry {
                key_arn: Some(format!(
                    "arn:aws:kms:{}:{}:key/{}",
                    r.region, r.account_id, r.key_id
                )),
                key_id: Some(r.key_id),
            })
            .collect();
        Ok(ListKeysResponse {
            keys: Some(keys),
            next_marker,
            truncated: Some(truncated),
        })
    }

    /// Loads the key `key_ref` names (id, ARN, alias name or alias ARN).
    pub async fn load(&self, ctx: &RequestContext, key_ref: &str) -> KmsResult<LoadedKey> {
        let r = KeyRef::parse(ctx, key_ref)?;
        let (account, region, key_id) = match &r {
            KeyRef::Key {
                account_id,
                region,
                key_id,
            } => (account_id, region, key_id),
            KeyRef::Alias { .. } => return Err(KmsError::NotFound(r.not_found_message())),
        };
        let row = self
            .store
            .get_key(account, region, key_id)
            .await?
            .ok_or_else(|| KmsError::NotFound(r.not_found_message()))?;
        if *account != ctx.account_id {
            // Keyhold does not evaluate key policies or grants yet, so no key is usable from
            // another account; AWS answers such calls with AccessDeniedException. Checked after
            // the lookup, so a key that does not exist is NotFound wherever it would live
            // (Decrypt turns that into InvalidCiphertextException).
            return Err(KmsError::Other {
                name: "AccessDeniedException",
                message: format!(
                    "User: {} is not authorized to perform this operation on resource: arn:aws:kms:{region}:{account}:key/{key_id} because no resource-based policy allows it",
                    ctx.principal_arn
                ),
            });
        }
        let doc: KeyDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
        Ok(LoadedKey { row, doc })
    }

    /// Unwraps one material of `key`.
    async fn material(&self, key: &LoadedKey, material_id: &str) -> KmsResult<Option<SecretBytes>> {
        let r = &key.row;
        let id: MaterialId = (
            r.account_id.clone(),
            r.region.clone(),
            r.key_id.clone(),
            material_id.to_string(),
        );
        if let Some(hit) = self
            .material_cache
            .read()
            .ok()
            .and_then(|c| c.get(&id).cloned())
        {
            return Ok(Some(hit));
        }
        let Some(m) = self
            .store
            .get_key_material(&r.account_id, &r.region, &r.key_id, material_id)
            .await?
        else {
            return Ok(None);
        };
        let aad = material_aad(&r.account_id, &r.region, &r.key_id, material_id);
        let material = self
            .root_key
            .unwrap(&aad, &m.wrapped)
            .map_err(KmsError::internal)?;
        if let Ok(mut cache) = self.material_cache.write() {
            if cache.len() >= MATERIAL_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(id, material.clone());
        }
        Ok(Some(material))
    }
}

/// A new key material id: 64 lowercase hex characters, like AWS's `KeyMaterialId`.
fn new_material_id() -> String {
    keyhold_crypto::random_bytes(32)
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encode_marker(key_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("k1:{key_id}"))
}

fn decode_marker(marker: &str) -> KmsResult<String> {
    use base64::Engine;
    let invalid = || KmsError::InvalidMarker("Invalid marker".into());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix("k1:")
        .map(str::to_string)
        .ok_or_else(invalid)
}
