//! Seeded keys: keys created at start-up from a seed file (`keyhold serve --seed`) with an id
//! the file gives and, for development only, key material the file gives, so that test
//! environments are reproducible (the same key ARNs, and with given material ciphertexts that
//! decrypt on any server seeded with the same file).
//!
//! Creation is idempotent by key id: a key that already exists is left exactly as it is.

use keyhold_crypto::SecretBytes;
use keyhold_kms_model::enums::{KeyManagerType, KeySpec, KeyState, KeyUsageType, OriginType};
use keyhold_kms_model::shapes::Tag;
use keyhold_kms_model::Exception;
use sha2::Digest as _;

use super::{default_key_policy, new_material_id, KeyDoc, Keys, MultiRegionDoc};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::{StoreError, StoredKey, KEY_ID_SCOPE};

/// A key to create with a given id, in Keyhold's default key store.
#[derive(Debug, Clone)]
pub struct SeedKey {
    /// The key id: a lowercase UUID, or `mrk-` and 32 lowercase hex digits for a multi-Region
    /// (primary) key.
    pub key_id: String,
    /// The description.
    pub description: String,
    /// The key spec.
    pub key_spec: KeySpec,
    /// The key usage.
    pub key_usage: KeyUsageType,
    /// The key policy; the default key policy when `None`.
    pub policy: Option<String>,
    /// Tags set at creation.
    pub tags: Vec<Tag>,
    /// Given key material (development only; the caller decides whether it is allowed):
    /// 32 bytes for SYMMETRIC_DEFAULT, the spec's key length for HMAC keys. `None`: random.
    /// `Debug` shows only its length.
    pub material: Option<SecretBytes>,
}

/// What [`Keys::create_seeded_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOutcome {
    /// The key was created.
    Created,
    /// A key with this id already existed and was left as it is.
    AlreadyExists,
}

/// Whether `id` is a key id AWS could have made: a lowercase hyphenated UUID, or `mrk-` and
/// 32 lowercase hex digits.
pub fn is_valid_key_id(id: &str) -> bool {
    if let Some(hex) = id.strip_prefix("mrk-") {
        return hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    }
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

/// The material id of given material: derived from the key's identity, so that every server
/// seeded with the same file names the material alike and accepts the others' ciphertexts
/// (a ciphertext names the material that made it). Never derived from the material itself.
fn seeded_material_id(account: &str, region: &str, key_id: &str) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"keyhold seeded key material\0")
        .chain_update(account.as_bytes())
        .chain_update(b"\0")
        .chain_update(region.as_bytes())
        .chain_update(b"\0")
        .chain_update(key_id.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn validation(message: String) -> KmsError {
    KmsError::new(Exception::Validation, message)
}

impl Keys {
    /// Creates `seed` in the account and Region of `ctx` unless a key with its id exists
    /// there (then nothing changes). The material, given or generated, is wrapped by the root
    /// key like any other; it is never stored in plaintext.
    pub async fn create_seeded_key(
        &self,
        ctx: &RequestContext,
        seed: SeedKey,
    ) -> KmsResult<SeedOutcome> {
        if !is_valid_key_id(&seed.key_id) {
            return Err(validation(format!(
                "{:?} is not a valid key id: use a lowercase UUID or mrk- and 32 lowercase hex digits",
                seed.key_id
            )));
        }
        let spec_info = super::specs::key_spec_info(seed.key_spec);
        if !spec_info.allows(seed.key_usage) {
            return Err(validation(format!(
                "KeyUsage {} is not compatible with KeySpec {}",
                seed.key_usage, seed.key_spec
            )));
        }
        if !spec_info.implemented {
            return Err(KmsError::new(
                Exception::UnsupportedOperation,
                format!("Keyhold does not support KeySpec {} yet", seed.key_spec),
            ));
        }
        super::manage::check_tags(&seed.tags)?;
        if let Some(policy) = &seed.policy {
            super::policy::check_policy(ctx, policy, false)?;
        }
        let (material_id, material) = match seed.material {
            Some(m) => {
                let expected = match super::specs::hmac(seed.key_spec) {
                    Some(mac) => mac.key_len(),
                    None if seed.key_spec == KeySpec::SymmetricDefault => 32,
                    None => {
                        return Err(validation(format!(
                            "given key material is supported only for SYMMETRIC_DEFAULT and HMAC keys, not {}",
                            seed.key_spec
                        )))
                    }
                };
                if m.len() != expected {
                    return Err(validation(format!(
                        "key material for a {} key must be {expected} bytes, got {}",
                        seed.key_spec,
                        m.len()
                    )));
                }
                let id = seeded_material_id(&ctx.account_id, &ctx.region, &seed.key_id);
                (id, m)
            }
            None => (
                new_material_id(),
                self.generate_key_material(seed.key_spec).await?,
            ),
        };
        let multi_region = seed.key_id.starts_with("mrk-");
        let created = self.now_seconds();
        let doc = KeyDoc {
            description: seed.description,
            key_usage: seed.key_usage,
            key_spec: seed.key_spec,
            origin: OriginType::AwsKms,
            key_manager: KeyManagerType::Customer,
            key_state: KeyState::Enabled,
            creation_date: created,
            deletion_date: None,
            pending_deletion_window_in_days: None,
            multi_region,
            current_material_id: material_id.clone(),
            policy: seed
                .policy
                .unwrap_or_else(|| default_key_policy(&ctx.account_id)),
            tags: seed
                .tags
                .into_iter()
                .map(|t| (t.tag_key, t.tag_value))
                .collect(),
            xks_key_id: None,
            rotation: None,
            rotations: Vec::new(),
            imported: Vec::new(),
            mrk: multi_region.then(|| MultiRegionDoc {
                key_id: seed.key_id.clone(),
                primary_region: ctx.region.clone(),
                replica: false,
                sync_due: false,
            }),
        };
        let row = StoredKey {
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            key_id: seed.key_id,
            custom_key_store_id: None,
            created_at_ms: (created * 1000.0) as i64,
            version: 1,
            doc: serde_json::to_string(&doc).map_err(KmsError::internal)?,
        };
        let mat = self.material_row(&row, &material_id, row.created_at_ms, &material)?;
        match self
            .store
            .insert_key(&row, Some(&mat), &[], &super::indexes_of(&doc))
            .await
        {
            Ok(()) => Ok(SeedOutcome::Created),
            Err(StoreError::Conflict { scope }) if scope == KEY_ID_SCOPE => {
                Ok(SeedOutcome::AlreadyExists)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids() {
        assert!(is_valid_key_id("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(is_valid_key_id("mrk-1234abcd12ab34cd56ef1234567890ab"));
        assert!(!is_valid_key_id("1234ABCD-12AB-34CD-56EF-1234567890AB"));
        assert!(!is_valid_key_id("1234abcd12ab34cd56ef1234567890ab"));
        assert!(!is_valid_key_id("mrk-1234"));
        assert!(!is_valid_key_id("alias/x"));
    }

    #[test]
    fn material_ids_depend_on_the_key_only() {
        let a = seeded_material_id("111122223333", "us-east-1", "k");
        assert_eq!(a, seeded_material_id("111122223333", "us-east-1", "k"));
        assert_ne!(a, seeded_material_id("111122223333", "us-west-2", "k"));
        assert_eq!(a.len(), 64);
    }
}
