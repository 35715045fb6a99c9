//! `Encrypt` and `Decrypt` for symmetric keys whose material Keyhold holds.

use std::collections::BTreeMap;

use keyhold_crypto::blob::{associated_data, BlobKind};
use keyhold_crypto::{Aes256Gcm, CiphertextBlob};
use keyhold_kms_model::enums::{EncryptionAlgorithmSpec, KeyState, KeyUsageType};
use keyhold_kms_model::shapes::{DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse};
use keyhold_kms_model::Blob;

use super::{Keys, LoadedKey};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};

/// AWS's message for a DryRun request that would have succeeded.
const DRY_RUN_MESSAGE: &str = "The request would have succeeded, but the DryRun option is set.";

fn dry_run() -> KmsError {
    KmsError::Other {
        name: "DryRunOperationException",
        message: DRY_RUN_MESSAGE.into(),
    }
}

/// The key-state checks every cryptographic operation makes, with AWS's messages.
pub(crate) fn require_usable(key: &LoadedKey) -> KmsResult<()> {
    match key.doc.key_state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", key.arn()))),
        KeyState::PendingDeletion => Err(KmsError::InvalidState(format!(
            "{} is pending deletion.",
            key.arn()
        ))),
        other => Err(KmsError::InvalidState(format!(
            "{} is {}.",
            key.arn(),
            describe_state(other)
        ))),
    }
}

fn describe_state(state: KeyState) -> &'static str {
    match state {
        KeyState::PendingImport => "pending import",
        KeyState::Unavailable => "unavailable",
        KeyState::Creating => "being created",
        KeyState::Updating => "being updated",
        KeyState::PendingReplicaDeletion => "pending replica deletion",
        KeyState::Enabled => "enabled",
        KeyState::Disabled => "disabled",
        KeyState::PendingDeletion => "pending deletion",
    }
}

fn require_symmetric_encryption(
    key: &LoadedKey,
    algorithm: Option<EncryptionAlgorithmSpec>,
    operation: &str,
) -> KmsResult<()> {
    if key.doc.key_usage != KeyUsageType::EncryptDecrypt {
        return Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {operation}.",
            key.arn(),
            key.doc.key_usage
        )));
    }
    match algorithm {
        None | Some(EncryptionAlgorithmSpec::SymmetricDefault) => Ok(()),
        Some(other) => Err(KmsError::InvalidKeyUsage(format!(
            "Algorithm {other} is incompatible with key spec {}.",
            key.doc.key_spec
        ))),
    }
}

impl Keys {
    /// `Encrypt`.
    pub async fn encrypt(
        &self,
        ctx: &RequestContext,
        req: EncryptRequest,
    ) -> KmsResult<EncryptResponse> {
        let key = self.load(ctx, &req.key_id).await?;
        require_usable(&key)?;
        require_symmetric_encryption(&key, req.encryption_algorithm, "Encrypt")?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let context = req.encryption_context.unwrap_or_default();
        let blob = self.seal(&key, &context, req.plaintext.as_bytes()).await?;
        Ok(EncryptResponse {
            ciphertext_blob: Some(Blob::from(blob)),
            key_id: Some(key.arn()),
            encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault),
        })
    }

    /// `Decrypt`.
    pub async fn decrypt(
        &self,
        ctx: &RequestContext,
        req: DecryptRequest,
    ) -> KmsResult<DecryptResponse> {
        let Some(ciphertext) = req.ciphertext_blob else {
            return Err(KmsError::Validation(
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"
                    .into(),
            ));
        };
        if req.recipient.is_some() {
            return Err(KmsError::UnsupportedOperation(
                "Keyhold does not support Decrypt with a Recipient (Nitro Enclaves attestation) yet".into(),
            ));
        }
        let parsed = CiphertextBlob::parse(ciphertext.as_bytes())
            .map_err(|_| KmsError::InvalidCiphertext(String::new()))?;
        let blob_key = format!(
            "arn:aws:kms:{}:{}:key/{}",
            parsed.region, parsed.account_id, parsed.key_id
        );
        let key = self.load(ctx, &blob_key).await.map_err(|e| match e {
            // A blob naming a key that is not there is not a valid ciphertext for this caller.
            KmsError::NotFound(_) => KmsError::InvalidCiphertext(String::new()),
            other => other,
        })?;
        if let Some(requested) = req.key_id.as_deref() {
            let wanted = self.load(ctx, requested).await?;
            if wanted.arn() != key.arn() {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation."
                        .into(),
                ));
            }
        }
        require_usable(&key)?;
        require_symmetric_encryption(&key, req.encryption_algorithm, "Decrypt")?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let context = req.encryption_context.unwrap_or_default();
        let plaintext = self.open(&key, &parsed, &context).await?;
        Ok(DecryptResponse {
            key_id: Some(key.arn()),
            plaintext: Some(Blob::from(plaintext.expose().to_vec())),
            encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault),
            key_material_id: Some(parsed.material_id),
            ..Default::default()
        })
    }

    /// Encrypts `plaintext` under the key's current material; returns the blob bytes.
    pub(crate) async fn seal(
        &self,
        key: &LoadedKey,
        context: &BTreeMap<String, String>,
        plaintext: &[u8],
    ) -> KmsResult<Vec<u8>> {
        let material_id = &key.doc.current_material_id;
        let material = self
            .material(key, material_id)
            .await?
            .ok_or_else(|| KmsError::internal(MissingMaterial))?;
        let aead = Aes256Gcm::new(material.expose()).map_err(KmsError::internal)?;
        let r = &key.row;
        let mut blob =
            CiphertextBlob::new_keyhold(&r.account_id, &r.region, &r.key_id, material_id);
        let aad = associated_data(&blob.header(), context);
        let (iv, ct) = aead.seal(&aad, plaintext);
        blob.iv = iv.to_vec();
        blob.ciphertext = ct;
        Ok(blob.to_bytes())
    }

    /// Decrypts a parsed blob made by [`Keys::seal`] for `key`.
    pub(crate) async fn open(
        &self,
        key: &LoadedKey,
        blob: &CiphertextBlob,
        context: &BTreeMap<String, String>,
    ) -> KmsResult<keyhold_crypto::SecretBytes> {
        let invalid = || KmsError::InvalidCiphertext(String::new());
        if blob.kind != BlobKind::KeyholdAesGcm {
            return Err(invalid());
        }
        let material = self
            .material(key, &blob.material_id)
            .await?
            .ok_or_else(invalid)?;
        let aead = Aes256Gcm::new(material.expose()).map_err(KmsError::internal)?;
        let aad = associated_data(&blob.header(), context);
        aead.open(&blob.iv, &aad, &blob.ciphertext)
            .map_err(|_| invalid())
    }
}

/// A key's current material row is missing: the database is inconsistent.
#[derive(Debug, thiserror::Error)]
#[error("the key's current key material is missing from the store")]
struct MissingMaterial;
