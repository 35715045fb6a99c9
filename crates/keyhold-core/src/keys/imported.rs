//! What a key with imported key material (`Origin: EXTERNAL`) records about its materials, and
//! the rules that read it: which key state the materials put the key in, what DescribeKey and
//! ListKeyRotations show, which material a key spec accepts, and the `ExpirationModel` /
//! `ValidTo` rules of ImportKeyMaterial. The operations are in `import.rs`.
//!
//! Each material ever imported into the key is one [`ImportedMaterial`] in the key's document,
//! in import order; its bytes are an ordinary key-material row (wrapped by the root key), which
//! exists exactly while the entry says `imported` — both are written in one transaction
//! (`MetadataStore::update_key_and_materials`). An entry stays when its material is deleted or
//! expires, so the key remembers the material it must get back, and ciphertexts naming it
//! decrypt again once the same material is reimported (its id is derived from the material,
//! `keyhold_crypto::import::material_id`).

use keyhold_kms_model::enums::{
    ExpirationModelType, ImportState, KeyMaterialState, KeySpec, KeyState,
};
use keyhold_kms_model::shapes::RotationsListEntry;
use keyhold_kms_model::{Exception, Timestamp};
use serde::{Deserialize, Serialize};

use super::KeyDoc;
use crate::error::{KmsError, KmsResult};

/// The index of keys with imported material that expires, by `ValidTo` (zero-padded
/// milliseconds, as the other due-time indexes); one entry per expiring material.
pub const MATERIAL_EXPIRY_INDEX: &str = "import-expiry-due";
/// The latest `ValidTo` AWS accepts: 365 days from the request.
pub const MAX_VALID_TO_SECONDS: f64 = 365.0 * 86_400.0;

/// One key material imported into a key (or pending import again).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportedMaterial {
    /// The material's id (64 hex characters), the id its ciphertexts name.
    pub material_id: String,
    /// `KeyMaterialDescription`, kept across reimports that do not give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the material is in Keyhold now (`ImportState` `IMPORTED`): its row exists.
    pub imported: bool,
    /// While imported: when it expires (`ValidTo`, seconds since the epoch); `None` for
    /// `KEY_MATERIAL_DOES_NOT_EXPIRE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<f64>,
    /// Imported as new material for an on-demand rotation that has not happened yet
    /// (`PENDING_ROTATION`): not yet permanently associated with the key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_rotation: bool,
}

impl ImportedMaterial {
    /// `ExpirationModel` and `ValidTo` of the current import (`None` while not imported).
    fn expiration(&self) -> Option<(ExpirationModelType, Option<f64>)> {
        let expiration = match self.valid_to {
            Some(t) => (ExpirationModelType::KeyMaterialExpires, Some(t)),
            None => (ExpirationModelType::KeyMaterialDoesNotExpire, None),
        };
        self.imported.then_some(expiration)
    }
}

impl KeyDoc {
    /// The imported material `material_id`, if the key has it.
    pub(crate) fn imported_material(&self, material_id: &str) -> Option<&ImportedMaterial> {
        self.imported.iter().find(|m| m.material_id == material_id)
    }

    /// Whether the key waits for material to be (re)imported before it can be used: it has
    /// none yet, or a material permanently associated with it is missing.
    pub(crate) fn awaits_import(&self) -> bool {
        !self.imported.iter().any(|m| !m.pending_rotation)
            || self
                .imported
                .iter()
                .any(|m| !m.pending_rotation && !m.imported)
    }

    /// The key state after the materials changed: `PendingImport` while material is missing,
    /// `Enabled` once the last missing material is back; a key pending deletion (or disabled
    /// with all its material) keeps its state.
    pub(crate) fn settle_import_state(&mut self) {
        match (self.key_state, self.awaits_import()) {
            (KeyState::Enabled | KeyState::Disabled, true) => {
                self.key_state = KeyState::PendingImport
            }
            (KeyState::PendingImport, false) => self.key_state = KeyState::Enabled,
            _ => {}
        }
    }

    /// `ExpirationModel` and `ValidTo` of DescribeKey for a key with imported material: the
    /// earliest expiry of the material permanently associated with it, `DOES_NOT_EXPIRE` when
    /// none of it expires, nothing while none of it is imported.
    pub(crate) fn import_expiration(&self) -> Option<(ExpirationModelType, Option<f64>)> {
        let imported: Vec<_> = self
            .imported
            .iter()
            .filter(|m| !m.pending_rotation)
            .filter_map(ImportedMaterial::expiration)
            .collect();
        let earliest = imported
            .iter()
            .filter_map(|(_, t)| *t)
            .min_by(|a, b| a.total_cmp(b));
        match (earliest, imported.is_empty()) {
            (Some(t), _) => Some((ExpirationModelType::KeyMaterialExpires, Some(t))),
            (None, false) => Some((ExpirationModelType::KeyMaterialDoesNotExpire, None)),
            (None, true) => None,
        }
    }

    /// The `ValidTo` of each imported material that expires: the values of the key's
    /// [`MATERIAL_EXPIRY_INDEX`] entries.
    pub(crate) fn material_expiries(&self) -> impl Iterator<Item = f64> + '_ {
        self.imported
            .iter()
            .filter(|m| m.imported)
            .filter_map(|m| m.valid_to)
    }
}

/// Adds what ListKeyRotations shows of a key with imported material: `ImportState`,
/// `ExpirationModel`, `ValidTo` and `KeyMaterialDescription` on every entry, and with
/// `ALL_KEY_MATERIAL` the material pending rotation, after the rest.
pub(crate) fn annotate_rotations(
    doc: &KeyDoc,
    key_id: &str,
    entries: &mut Vec<RotationsListEntry>,
    all: bool,
) {
    if all {
        entries.extend(doc.imported.iter().filter(|m| m.pending_rotation).map(|m| {
            RotationsListEntry {
                key_id: Some(key_id.to_string()),
                key_material_id: Some(m.material_id.clone()),
                key_material_state: Some(KeyMaterialState::PendingRotation),
                ..Default::default()
            }
        }));
    }
    for entry in entries.iter_mut() {
        let Some(m) = entry
            .key_material_id
            .as_deref()
            .and_then(|id| doc.imported_material(id))
        else {
            continue;
        };
        entry.import_state = Some(if m.imported {
            ImportState::Imported
        } else {
            ImportState::PendingImport
        });
        entry.key_material_description = m.description.clone();
        if let Some((model, valid_to)) = m.expiration() {
            entry.expiration_model = Some(model);
            entry.valid_to = valid_to.map(Timestamp);
        }
    }
}

/// The `ValidTo` of an import under ImportKeyMaterial's rules: `ExpirationModel` defaults to
/// `KEY_MATERIAL_EXPIRES`, which needs a `ValidTo` in the future and at most 365 days away;
/// `KEY_MATERIAL_DOES_NOT_EXPIRE` takes none. `None` means the material does not expire.
pub(crate) fn valid_to_of(
    model: Option<ExpirationModelType>,
    valid_to: Option<Timestamp>,
    now: f64,
) -> KmsResult<Option<f64>> {
    let invalid = |m: &str| Err(KmsError::new(Exception::Validation, m.to_string()));
    match (
        model.unwrap_or(ExpirationModelType::KeyMaterialExpires),
        valid_to,
    ) {
        (ExpirationModelType::KeyMaterialExpires, None) => {
            invalid("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
        }
        (ExpirationModelType::KeyMaterialExpires, Some(Timestamp(t))) if t <= now => {
            invalid("The ValidTo date must be in the future.")
        }
        (ExpirationModelType::KeyMaterialExpires, Some(Timestamp(t)))
            if t > now + MAX_VALID_TO_SECONDS =>
        {
            invalid("The ValidTo date must be no more than 365 days from the request date.")
        }
        (ExpirationModelType::KeyMaterialExpires, Some(Timestamp(t))) => Ok(Some(t)),
        (ExpirationModelType::KeyMaterialDoesNotExpire, Some(_)) => invalid(
            "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE",
        ),
        (ExpirationModelType::KeyMaterialDoesNotExpire, None) => Ok(None),
    }
}

/// Checks imported key material against the key spec and returns it in its stored form:
/// 32 bytes for `SYMMETRIC_DEFAULT`; for `HMAC_<n>` at least n/8 bytes and at most the hash's
/// block size; for asymmetric specs a PKCS#8 private key of the spec (stored canonically).
/// Anything else is `IncorrectKeyMaterialException`.
pub(crate) fn checked_material(
    spec: KeySpec,
    material: keyhold_crypto::SecretBytes,
) -> KmsResult<keyhold_crypto::SecretBytes> {
    let incorrect = || {
        KmsError::new(
            Exception::IncorrectKeyMaterial,
            format!("The key material is not valid for a KMS key with key spec {spec}."),
        )
    };
    if spec == KeySpec::SymmetricDefault {
        return (material.len() == 32)
            .then_some(material)
            .ok_or_else(incorrect);
    }
    if let Some(mac) = super::specs::hmac(spec) {
        let block = match spec {
            KeySpec::Hmac224 | KeySpec::Hmac256 => 64,
            _ => 128,
        };
        return (mac.key_len()..=block)
            .contains(&material.len())
            .then_some(material)
            .ok_or_else(incorrect);
    }
    let asym = super::specs::asymmetric(spec).ok_or_else(incorrect)?;
    keyhold_crypto::asym::import_private_key(asym, material.expose()).map_err(|_| incorrect())
}

/// Whether key material of `spec` can be imported: every spec Keyhold implements but ML-DSA.
pub(crate) fn importable(spec: KeySpec) -> bool {
    super::specs::key_spec_info(spec).implemented
        && !matches!(spec, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyhold_crypto::SecretBytes;

    fn material(
        id: &str,
        imported: bool,
        valid_to: Option<f64>,
        pending: bool,
    ) -> ImportedMaterial {
        ImportedMaterial {
            material_id: id.into(),
            description: None,
            imported,
            valid_to,
            pending_rotation: pending,
        }
    }

    #[test]
    fn valid_to_rules() {
        use ExpirationModelType::*;
        let now = 1_000_000.0;
        let ok = |m, v: Option<f64>| valid_to_of(m, v.map(Timestamp), now);
        assert_eq!(ok(None, Some(now + 10.0)).unwrap(), Some(now + 10.0));
        assert_eq!(ok(Some(KeyMaterialDoesNotExpire), None).unwrap(), None);
        assert_eq!(
            ok(Some(KeyMaterialExpires), Some(now + MAX_VALID_TO_SECONDS)).unwrap(),
            Some(now + MAX_VALID_TO_SECONDS)
        );
        for (m, v) in [
            (None, None),
            (Some(KeyMaterialExpires), None),
            (Some(KeyMaterialExpires), Some(now)),
            (Some(KeyMaterialExpires), Some(now - 1.0)),
            (
                Some(KeyMaterialExpires),
                Some(now + MAX_VALID_TO_SECONDS + 1.0),
            ),
            (Some(KeyMaterialDoesNotExpire), Some(now + 10.0)),
        ] {
            assert!(
                ok(m, v).unwrap_err().is(Exception::Validation),
                "{m:?} {v:?}"
            );
        }
    }

    #[test]
    fn material_per_spec() {
        let ok = |spec, len: usize| checked_material(spec, SecretBytes::new(vec![7; len])).is_ok();
        assert!(ok(KeySpec::SymmetricDefault, 32));
        assert!(!ok(KeySpec::SymmetricDefault, 16));
        assert!(!ok(KeySpec::SymmetricDefault, 33));
        assert!(ok(KeySpec::Hmac224, 28) && ok(KeySpec::Hmac224, 64) && !ok(KeySpec::Hmac224, 27));
        assert!(
            !ok(KeySpec::Hmac256, 65) && ok(KeySpec::Hmac384, 128) && !ok(KeySpec::Hmac512, 63)
        );
        let err =
            checked_material(KeySpec::EccNistP256, SecretBytes::new(vec![1; 138])).unwrap_err();
        assert!(err.is(Exception::IncorrectKeyMaterial));
        assert!(!importable(KeySpec::MlDsa65));
        assert_eq!(importable(KeySpec::Sm2), cfg!(feature = "sm2"));
        assert!(importable(KeySpec::Rsa4096) && importable(KeySpec::Hmac512));
    }

    #[test]
    fn state_and_expiration_follow_the_materials() {
        let mut doc: KeyDoc = serde_json::from_value(serde_json::json!({
            "description": "", "key_usage": "ENCRYPT_DECRYPT", "key_spec": "SYMMETRIC_DEFAULT",
            "origin": "EXTERNAL", "key_manager": "CUSTOMER", "key_state": "PendingImport",
            "creation_date": 1.0, "current_material_id": "", "policy": "{}"
        }))
        .unwrap();
        assert!(doc.awaits_import());
        assert_eq!(doc.import_expiration(), None);
        doc.imported.push(material("a", true, None, false));
        doc.settle_import_state();
        assert_eq!(doc.key_state, KeyState::Enabled);
        assert_eq!(
            doc.import_expiration(),
            Some((ExpirationModelType::KeyMaterialDoesNotExpire, None))
        );
        // Pending rotation material neither blocks the key nor sets its expiry.
        doc.imported.push(material("b", true, Some(5.0), true));
        doc.settle_import_state();
        assert_eq!(doc.key_state, KeyState::Enabled);
        assert_eq!(doc.material_expiries().collect::<Vec<_>>(), [5.0]);
        assert_eq!(
            doc.import_expiration(),
            Some((ExpirationModelType::KeyMaterialDoesNotExpire, None))
        );
        doc.imported[1].pending_rotation = false;
        assert_eq!(
            doc.import_expiration(),
            Some((ExpirationModelType::KeyMaterialExpires, Some(5.0)))
        );
        doc.imported[0].imported = false;
        doc.key_state = KeyState::Disabled;
        doc.settle_import_state();
        assert_eq!(doc.key_state, KeyState::PendingImport);
        doc.key_state = KeyState::PendingDeletion;
        doc.settle_import_state();
        assert_eq!(doc.key_state, KeyState::PendingDeletion);
    }
}
