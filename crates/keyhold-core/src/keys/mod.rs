//! KMS keys: creation, description, listing, cryptographic operations, and the stored form of
//! a key.
//!
//! * `aliases`: CreateAlias, UpdateAlias, DeleteAlias, ListAliases, and alias resolution;
//!   `aws_managed`: the AWS managed keys behind `alias/aws/<service>`, created on first use.
//! * `create`: CreateKey, in Keyhold's default key store and in external key stores.
//! * `crypto_ops`: Encrypt and Decrypt; `data_keys`: GenerateDataKey(WithoutPlaintext) and
//!   ReEncrypt; `data_key_pairs`: GenerateDataKeyPair(WithoutPlaintext).
//! * `asymmetric`: Sign, Verify, GetPublicKey, DeriveSharedSecret, RSA encryption and the
//!   generation of asymmetric and HMAC key material; `mac`: GenerateMac and VerifyMac.
//! * `xks`: double encryption through an XKS proxy for keys in external key stores.
//! * `cloudhsm`: keys in AWS CloudHSM key stores (AES-GCM inside the HSM), and GenerateRandom.
//! * `manage`: EnableKey, DisableKey, UpdateKeyDescription, tags, reading the key policy and
//!   the rotation status.
//! * `policy`: PutKeyPolicy and the checks a policy passes before it is stored.
//! * `rotation`: automatic and on-demand rotation of key material, ListKeyRotations.
//! * `deletion`: ScheduleKeyDeletion, CancelKeyDeletion and completing scheduled deletions.
//! * `multi_region`: multi-Region keys — ReplicateKey, UpdatePrimaryRegion, the
//!   `MultiRegionConfiguration`, and copying the shared properties from primary to replicas.
//! * `import`: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial and the
//!   expiry of imported material; `imported`: what a key records about its imported
//!   materials and the rules that read it; `import_token`: sealed import tokens.
//! * `holder`: the [`KeyHolder`](holder) of each origin — where material lives and where
//!   encryption happens; operations never branch on origin.
//! * `specs`: key spec → usages and algorithms, as data; `states`: the key-state table (which
//!   state lets which operation family through, and with which exception the rest are refused).
//! * `last_usage`: GetKeyLastUsage, recorded in memory and written in batches.
//! * `throttle`: the request quota per custom key store.
//! * `seeded`: keys with given ids (and, for development, given material) from a seed file.
//! * `key_cache`: key records kept in memory for the cryptographic operations (changes made
//!   through this node visible at once, through another node within a configurable TTL).
//!
//! A key is stored as a [`StoredKey`] row whose `doc` is a [`KeyDoc`] in JSON. Key material
//! lives in separate rows, wrapped by the root key with associated data naming the key and the
//! material, so the database alone never reveals a key.

mod aliases;
mod asymmetric;
mod aws_managed;
mod cloudhsm;
mod create;
mod crypto_ops;
mod data_key_pairs;
mod data_keys;
mod deletion;
#[cfg(test)]
mod deletion_tests;
mod grant_ops;
mod grant_rules;
mod grants;
mod holder;
mod import;
#[cfg(test)]
mod import_tests;
mod import_token;
mod imported;
mod key_cache;
#[cfg(test)]
mod key_cache_tests;
mod last_usage;
mod load;
mod mac;
mod manage;
mod multi_region;
mod multi_region_sync;
#[cfg(test)]
mod multi_region_sync_tests;
#[cfg(test)]
mod multi_region_tests;
mod policy;
mod recipient;
mod resolve;
mod rotation;
#[cfg(test)]
mod rotation_tests;
mod seeded;
pub mod specs;
pub mod states;
#[cfg(test)]
mod test_fixture;
mod throttle;
mod xks;

use keyhold_kms_model::Exception;
use std::sync::Arc;

use keyhold_crypto::{RootKey, SecretBytes};
use keyhold_kms_model::enums::{
    ConnectionStateType, CustomerMasterKeySpec, KeyManagerType, KeySpec, KeyState, KeyUsageType,
    OriginType,
};
use keyhold_kms_model::shapes::{
    DescribeKeyRequest, DescribeKeyResponse, KeyListEntry, KeyMetadata, ListKeysRequest,
    ListKeysResponse, XksKeyConfigurationType,
};
use keyhold_kms_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::custom_key_stores::{CustomKeyStores, LoadedStore};
use crate::error::{KmsError, KmsResult};
use crate::paging::Paging;
use crate::ports::clock::Clock;
use crate::ports::{IndexEntry, MetadataStore, StoredKey, StoredKeyMaterial};

pub use deletion::DELETION_DUE_INDEX;
pub use grant_ops::MAX_GRANTS_PER_KEY;
pub(crate) use grants::GrantDoc;
pub use grants::{GRANT_KIND, GRANT_RETIRING_INDEX};
pub use import::PARAMETERS_VALIDITY_MS;
pub use imported::{ImportedMaterial, MATERIAL_EXPIRY_INDEX};
pub use last_usage::KEY_USAGE_KIND;
pub use multi_region::{MultiRegionDoc, MULTI_REGION_INDEX};
pub use policy::{check_policy, LOCKOUT_MESSAGE};
pub use resolve::KeyRef;

/// Default bound on how long a key or custom key store change made through another node
/// sharing the metadata store may go unseen by this node's cryptographic operations.
pub const DEFAULT_RECORD_CACHE_TTL: std::time::Duration = key_cache::DEFAULT_KEY_CACHE_TTL;
pub use rotation::ROTATION_DUE_INDEX;
pub use seeded::{is_valid_key_id, SeedKey, SeedOutcome};

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
    /// `XksKeyId`: the external key of a key in an external key store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks_key_id: Option<String>,
    /// Automatic rotation, while enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<rotation::AutoRotation>,
    /// Completed rotations, oldest first (the first material is not one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<rotation::RotationRecord>,
    /// Keys with imported material (`Origin: EXTERNAL`): every material imported, in import
    /// order. Until the first import the key has none and `current_material_id` is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imported: Vec<ImportedMaterial>,
    /// Multi-Region keys: the key's place in its set of related keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrk: Option<MultiRegionDoc>,
}

/// The index entries a key row carries, derived from its document alone so that every write
/// of the document writes them too: [`DELETION_DUE_INDEX`] while the key is pending
/// deletion, [`ROTATION_DUE_INDEX`] while automatic rotation is enabled, one
/// [`MATERIAL_EXPIRY_INDEX`] entry per imported material that expires; for multi-Region keys
/// a [`MULTI_REGION_INDEX`] entry naming the shared key id, rotation entries on the primary key
/// only, and a deletion entry due at once while a primary waits for its replicas' deletion
/// (`PendingReplicaDeletion`), so that every sweep checks whether they are gone.
pub(crate) fn indexes_of(doc: &KeyDoc) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    if let (KeyState::PendingDeletion, Some(date)) = (doc.key_state, doc.deletion_date) {
        out.push(IndexEntry::new(
            DELETION_DUE_INDEX,
            deletion::due_value((date * 1000.0) as i64),
        ));
    }
    if doc.key_state == KeyState::PendingReplicaDeletion {
        out.push(IndexEntry::new(DELETION_DUE_INDEX, deletion::due_value(0)));
    }
    if let Some(m) = &doc.mrk {
        out.push(IndexEntry::new(MULTI_REGION_INDEX, m.key_id.clone()));
        if m.sync_due && !m.replica {
            out.push(IndexEntry::new(
                multi_region_sync::REPLICA_SYNC_INDEX,
                multi_region_sync::SYNC_DUE,
            ));
        }
    }
    let replica = doc.mrk.as_ref().is_some_and(|m| m.replica);
    if let Some(r) = doc.rotation.as_ref().filter(|_| !replica) {
        out.push(IndexEntry::new(
            ROTATION_DUE_INDEX,
            deletion::due_value((r.next_rotation_date * 1000.0) as i64),
        ));
    }
    out.extend(doc.material_expiries().map(|t| {
        IndexEntry::new(
            MATERIAL_EXPIRY_INDEX,
            deletion::due_value((t * 1000.0) as i64),
        )
    }));
    out
}

/// Operations that take a key id or key ARN only refuse an alias with AWS's
/// `NotFoundException` "Invalid keyId alias/x".
pub(crate) fn refuse_alias(ctx: &RequestContext, key_ref: &str) -> KmsResult<()> {
    if let KeyRef::Alias { .. } = KeyRef::parse(ctx, key_ref)? {
        return Err(KmsError::new(
            Exception::NotFound,
            format!("Invalid keyId {key_ref}"),
        ));
    }
    Ok(())
}

/// Identity of one key material: (account, Region, key id, material id).
type MaterialId = (String, String, String, String);

/// ListKeys paging: AWS's default and maximum `Limit`; markers name the last key id.
const LIST_KEYS_PAGING: Paging = Paging {
    kind: "k1",
    default_limit: 100,
    max_limit: 1000,
};

/// Most unwrapped materials kept in memory before the cache is emptied.
const MATERIAL_CACHE_LIMIT: usize = 10_000;

/// The KMS key operations of one Keyhold instance.
pub struct Keys {
    /// The metadata store, with the writes of key records intercepted for the key cache.
    store: key_cache::KeyRecords,
    root_key: Arc<RootKey>,
    /// Custom key stores: connection state and proxy targets of the stores keys live in.
    custom_key_stores: CustomKeyStores,
    /// Request quota per custom key store.
    throttle: throttle::Throttle,
    /// Unwrapped key materials. A material never changes once written, so caching it saves a
    /// database read and an unwrap per cryptographic call; whether the key may still use it
    /// (state, deletion) is decided by the key record (see `key_cache` for how fresh that is).
    /// Entries are zeroized when evicted or dropped.
    material_cache: std::sync::RwLock<std::collections::HashMap<MaterialId, SecretBytes>>,
    /// The domain clock (creation and deletion dates), the custom key stores' own.
    clock: Arc<dyn Clock>,
    /// Last uses recorded since the last flush (`last_usage`).
    usage: last_usage::UsageTable,
    /// Bounds concurrent asymmetric key generation (RSA-4096 takes long), which runs on
    /// blocking threads so that a burst of CreateKey cannot starve other requests.
    keygen: tokio::sync::Semaphore,
    /// Parsed key policies, so that authorization does not parse JSON per request.
    pub(crate) policies: crate::authz::PolicyCache,
}

/// AWS's default key policy for a key created without one.
pub fn default_key_policy(account_id: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"arn:aws:iam::{account_id}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
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

/// A loaded key: its row and parsed document, and for a key in a custom key store, that
/// store as it was when the key was loaded.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The row.
    pub row: StoredKey,
    /// The parsed document.
    pub doc: KeyDoc,
    /// The custom key store the key lives in (`None` for other keys, or if it is gone).
    pub store: Option<LoadedStore>,
}

impl LoadedKey {
    /// The key ARN.
    pub fn arn(&self) -> String {
        crate::arn::key_arn(&self.row.region, &self.row.account_id, &self.row.key_id)
    }

    /// The connection state of the key's custom key store (`None` for keys not in one; a
    /// missing store counts as disconnected).
    pub fn store_state(&self) -> Option<ConnectionStateType> {
        self.row.custom_key_store_id.as_ref()?;
        Some(
            self.store
                .as_ref()
                .and_then(|s| s.state().ok())
                .unwrap_or(ConnectionStateType::Disconnected),
        )
    }

    /// The key state callers see: `Unavailable` while the key's custom key store is not
    /// `CONNECTED` (unless the key is pending deletion); otherwise the stored state, which
    /// therefore comes back by itself on reconnect.
    pub fn key_state(&self) -> KeyState {
        match self.store_state() {
            Some(s)
                if s != ConnectionStateType::Connected
                    && self.doc.key_state != KeyState::PendingDeletion =>
            {
                KeyState::Unavailable
            }
            _ => self.doc.key_state,
        }
    }

    /// True for a key in an external key store.
    pub fn is_xks(&self) -> bool {
        self.doc.origin == OriginType::ExternalKeyStore
    }

    /// True for a key in an AWS CloudHSM key store.
    pub fn is_cloudhsm(&self) -> bool {
        self.doc.origin == OriginType::AwsCloudhsm
    }

    /// The wire `KeyMetadata` of this key.
    pub fn metadata(&self) -> KeyMetadata {
        let d = &self.doc;
        let symmetric = d.key_spec == KeySpec::SymmetricDefault;
        let info = specs::key_spec_info(d.key_spec);
        let algorithms = info.encryption_algorithms(d.key_usage);
        let state = self.key_state();
        let own_material = matches!(d.origin, OriginType::AwsKms | OriginType::External);
        let expiration = (d.origin == OriginType::External)
            .then(|| d.import_expiration())
            .flatten();
        KeyMetadata {
            aws_account_id: Some(self.row.account_id.clone()),
            key_id: self.row.key_id.clone(),
            arn: Some(self.arn()),
            creation_date: Some(Timestamp(d.creation_date)),
            enabled: Some(state == KeyState::Enabled),
            description: Some(d.description.clone()),
            key_usage: Some(d.key_usage),
            key_state: Some(state),
            deletion_date: d.deletion_date.map(Timestamp),
            origin: Some(d.origin),
            key_manager: Some(d.key_manager),
            customer_master_key_spec: CustomerMasterKeySpec::try_from(d.key_spec.as_str()).ok(),
            key_spec: Some(d.key_spec),
            encryption_algorithms: (!algorithms.is_empty()).then(|| algorithms.to_vec()),
            signing_algorithms: non_empty(info.signing_algorithms(d.key_usage)),
            mac_algorithms: non_empty(info.mac_algorithms(d.key_usage)),
            key_agreement_algorithms: non_empty(info.key_agreement_algorithms(d.key_usage)),
            multi_region: Some(d.multi_region),
            pending_deletion_window_in_days: d.pending_deletion_window_in_days,
            expiration_model: expiration.map(|(model, _)| model),
            valid_to: expiration.and_then(|(_, t)| t).map(Timestamp),
            // A key awaiting its first import has no material yet.
            current_key_material_id: (symmetric
                && own_material
                && !d.current_material_id.is_empty())
            .then(|| d.current_material_id.clone()),
            custom_key_store_id: self.row.custom_key_store_id.clone(),
            cloud_hsm_cluster_id: if self.is_cloudhsm() {
                self.store
                    .as_ref()
                    .and_then(|s| s.doc.cloud_hsm())
                    .map(|c| c.cluster_id.clone())
            } else {
                None
            },
            xks_key_configuration: d.xks_key_id.as_ref().map(|id| XksKeyConfigurationType {
                id: Some(id.clone()),
            }),
            ..Default::default()
        }
    }
}

impl Keys {
    /// Keys backed by `store`, with material wrapped by `root_key`, living in default or
    /// `custom_key_stores`.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        root_key: Arc<RootKey>,
        custom_key_stores: CustomKeyStores,
    ) -> Self {
        let rate = custom_key_stores.settings().crypto_requests_per_second;
        let clock = custom_key_stores.clock();
        Self {
            clock,
            store: key_cache::KeyRecords::new(store, DEFAULT_RECORD_CACHE_TTL),
            root_key,
            custom_key_stores,
            throttle: throttle::Throttle::new(rate),
            material_cache: Default::default(),
            usage: Default::default(),
            keygen: tokio::sync::Semaphore::new(asymmetric::MAX_CONCURRENT_KEYGEN),
            policies: crate::authz::PolicyCache::default(),
        }
    }

    /// How long a key change made through another node sharing the metadata store may go
    /// unseen by this node's cryptographic operations (zero: read the key on every call).
    /// Changes made through this node are always seen at once.
    pub fn set_key_cache_ttl(&self, ttl: std::time::Duration) {
        self.store.set_ttl(ttl);
        self.custom_key_stores.set_cache_ttl(ttl);
    }

    /// Makes every cached key record look `by` older (tests of the staleness bound).
    #[cfg(test)]
    pub(crate) fn age_key_cache(&self, by: std::time::Duration) {
        self.store.age(by);
    }

    /// Wipes all state (test harnesses), the key cache included.
    pub(crate) async fn reset(&self) -> KmsResult<()> {
        let r = self.store.reset().await.map_err(KmsError::from);
        self.custom_key_stores.clear_cache();
        r
    }

    /// Now, in seconds since the epoch with millisecond precision, as AWS returns dates.
    pub(crate) fn now_seconds(&self) -> f64 {
        self.clock.now_seconds()
    }

    /// `DescribeKey`.
    pub async fn describe_key(
        &self,
        ctx: &RequestContext,
        req: DescribeKeyRequest,
    ) -> KmsResult<DescribeKeyResponse> {
        grants::check_grant_tokens(req.grant_tokens.as_ref())?;
        let access = Access::new(KeyAction::DescribeKey);
        let key = self.load_for_use(ctx, &req.key_id, &access).await?;
        Ok(DescribeKeyResponse {
            key_metadata: Some(self.full_metadata(&key).await?),
        })
    }

    /// `ListKeys`: ordered by key id; the marker is the last key id returned.
    pub async fn list_keys(
        &self,
        ctx: &RequestContext,
        req: ListKeysRequest,
    ) -> KmsResult<ListKeysResponse> {
        let limit = LIST_KEYS_PAGING.page_size(req.limit);
        let after = LIST_KEYS_PAGING.decode(req.marker.as_deref())?;
        let rows = self
            .store
            .list_keys(&ctx.account_id, &ctx.region, after.as_deref(), limit + 1)
            .await?;
        let page = LIST_KEYS_PAGING.page(rows, limit, |r| &r.key_id);
        let keys = page
            .items
            .into_iter()
            .map(|r| KeyListEntry {
                key_arn: Some(crate::arn::key_arn(&r.region, &r.account_id, &r.key_id)),
                key_id: Some(r.key_id),
            })
            .collect();
        Ok(ListKeysResponse {
            keys: Some(keys),
            next_marker: page.next_marker,
            truncated: Some(page.truncated),
        })
    }

    /// A new random AES-256 key material for the key of `row`, as a material row.
    fn new_material(
        &self,
        row: &StoredKey,
        material_id: &str,
        created_at_ms: i64,
    ) -> KmsResult<StoredKeyMaterial> {
        let material = keyhold_crypto::random_bytes(32);
        self.material_row(row, material_id, created_at_ms, &material)
    }

    /// `material` for the key of `row`, wrapped by the root key under the associated data
    /// naming the key and `material_id`, as a material row.
    fn material_row(
        &self,
        row: &StoredKey,
        material_id: &str,
        created_at_ms: i64,
        material: &SecretBytes,
    ) -> KmsResult<StoredKeyMaterial> {
        let wrapped = self
            .root_key
            .wrap(
                &material_aad(&row.account_id, &row.region, &row.key_id, material_id),
                material.expose(),
            )
            .map_err(KmsError::internal)?;
        Ok(StoredKeyMaterial {
            account_id: row.account_id.clone(),
            region: row.region.clone(),
            key_id: row.key_id.clone(),
            material_id: material_id.to_string(),
            created_at_ms,
            wrapped,
        })
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

/// `Some(list)` unless `list` is empty, as AWS omits empty algorithm lists.
fn non_empty<T: Clone>(list: &[T]) -> Option<Vec<T>> {
    (!list.is_empty()).then(|| list.to_vec())
}

/// A new key material id: 64 lowercase hex characters, like AWS's `KeyMaterialId`.
fn new_material_id() -> String {
    keyhold_crypto::random_bytes(32)
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
