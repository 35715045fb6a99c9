//! `Encrypt` and `Decrypt`, and the sealing and opening of ciphertext blobs shared by every
//! cryptographic operation: Keyhold-held AES-GCM, plus the XKS proxy's layer for keys in
//! external key stores.

use keyhold_kms_model::Exception;
use std::collections::BTreeMap;

use keyhold_crypto::blob::associated_data;
use keyhold_crypto::{Aes256Gcm, CiphertextBlob};
use keyhold_kms_model::enums::{
    ConnectionStateType, EncryptionAlgorithmSpec, KeyState, KeyUsageType,
};
use keyhold_kms_model::shapes::{DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse};
use keyhold_kms_model::Blob;

use super::asymmetric::is_raw_asymmetric;
use super::grants::check_grant_tokens;
use super::holder::{holder_of, CryptoCall};
use super::states::{state_check, KeyOperationFamily, StateCheck};
use super::{Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::xks::msg;

/// AWS's message for a DryRun request that would have succeeded.
const DRY_RUN_MESSAGE: &str = "The request would have succeeded, but the DryRun option is set.";

pub(crate) fn dry_run() -> KmsError {
    KmsError::new(Exception::DryRunOperation, DRY_RUN_MESSAGE.into())
}

/// The key-state checks every cryptographic operation makes, with AWS's messages. A key whose
/// custom key store is not CONNECTED is `Unavailable`: "<arn> is unavailable." when the store
/// is DISCONNECTED (and for AWS CloudHSM key stores in every state), the XKS specification's
/// "not connected" message for external key stores in the other states.
pub(crate) fn require_usable(key: &LoadedKey) -> KmsResult<()> {
    let state = key.key_state();
    let StateCheck::Refused(exception) = state_check(KeyOperationFamily::Cryptographic, state)
    else {
        return Ok(());
    };
    let message = match state {
        KeyState::Unavailable
            if key.is_xks()
                && key
                    .store_state()
                    .is_some_and(|s| s != ConnectionStateType::Disconnected) =>
        {
            msg::NOT_CONNECTED.to_string()
        }
        other => format!("{} is {}.", key.arn(), describe_state(other)),
    };
    Err(KmsError::new(exception, message))
}

/// A key state as AWS's messages word it ("<arn> is pending import.").
pub(super) fn describe_state(state: KeyState) -> &'static str {
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

pub(crate) fn require_symmetric_encryption(
    key: &LoadedKey,
    algorithm: Option<EncryptionAlgorithmSpec>,
    operation: &str,
) -> KmsResult<()> {
    if key.doc.key_usage != KeyUsageType::EncryptDecrypt {
        return Err(KmsError::new(
            Exception::InvalidKeyUsage,
            format!(
                "{} key usage is {} which is not valid for {operation}.",
                key.arn(),
                key.doc.key_usage
            ),
        ));
    }
    // AWS's default algorithm is SYMMETRIC_DEFAULT, valid only for symmetric keys.
    let allowed = super::specs::key_spec_info(key.doc.key_spec).encryption;
    match algorithm.unwrap_or(EncryptionAlgorithmSpec::SymmetricDefault) {
        a if allowed.contains(&a) => Ok(()),
        other => Err(KmsError::new(
            Exception::InvalidKeyUsage,
            format!(
                "Algorithm {other} is incompatible with key spec {}.",
                key.doc.key_spec
            ),
        )),
    }
}

impl Keys {
    /// `Encrypt`.
    pub async fn encrypt(
        &self,
        ctx: &RequestContext,
        req: EncryptRequest,
    ) -> KmsResult<EncryptResponse> {
        check_grant_tokens(req.grant_tokens.as_ref())?;
        let mut access = Access::new(KeyAction::Encrypt)
            .with_context(req.encryption_context.as_ref())
            .with_fact(
                "kms:EncryptionAlgorithm",
                req.encryption_algorithm
                    .unwrap_or(EncryptionAlgorithmSpec::SymmetricDefault)
                    .as_str(),
            );
        if req.encryption_algorithm.is_some_and(is_raw_asymmetric) {
            access.encryption_context = None;
        }
        let key = self.load_for_use(ctx, &req.key_id, &access).await?;
        require_usable(&key)?;
        require_symmetric_encryption(&key, req.encryption_algorithm, "Encrypt")?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        if let Some(algorithm) = req.encryption_algorithm.filter(|a| is_raw_asymmetric(*a)) {
            let has_context = req
                .encryption_context
                .as_ref()
                .is_some_and(|c| !c.is_empty());
            let ciphertext = self
                .asym_encrypt(&key, algorithm, has_context, req.plaintext.as_bytes())
                .await?;
            self.record_use(ctx, &key, "Encrypt");
            return Ok(EncryptResponse {
                ciphertext_blob: Some(Blob::from(ciphertext)),
                key_id: Some(key.arn()),
                encryption_algorithm: Some(algorithm),
            });
        }
        let context = req.encryption_context.unwrap_or_default();
        let blob = self
            .seal(ctx, &key, &context, req.plaintext.as_bytes(), "Encrypt")
            .await?;
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
            return Err(KmsError::new(Exception::Validation,
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"
                    .into(),
            ));
        };
        check_grant_tokens(req.grant_tokens.as_ref())?;
        super::recipient::refuse_recipient(req.recipient.as_ref())?;
        // Asymmetric ciphertexts are raw RSA-OAEP output, not Keyhold blobs: AWS needs the
        // KeyId and the algorithm for them.
        if let (Some(key_ref), Some(algorithm)) = (
            req.key_id.as_deref(),
            req.encryption_algorithm.filter(|a| is_raw_asymmetric(*a)),
        ) {
            let access = Access::new(KeyAction::Decrypt)
                .with_fact("kms:EncryptionAlgorithm", algorithm.as_str());
            let key = self.load_for_use(ctx, key_ref, &access).await?;
            require_usable(&key)?;
            require_symmetric_encryption(&key, Some(algorithm), "Decrypt")?;
            if req.dry_run == Some(true) {
                return Err(dry_run());
            }
            let has_context = req
                .encryption_context
                .as_ref()
                .is_some_and(|c| !c.is_empty());
            let plaintext = self
                .asym_decrypt(&key, algorithm, has_context, ciphertext.as_bytes())
                .await?;
            self.record_use(ctx, &key, "Decrypt");
            return Ok(DecryptResponse {
                key_id: Some(key.arn()),
                plaintext: Some(Blob::from(plaintext.expose().to_vec())),
                encryption_algorithm: Some(algorithm),
                ..Default::default()
            });
        }
        let access = Access::new(KeyAction::Decrypt)
            .with_context(req.encryption_context.as_ref())
            .with_fact("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
        let (parsed, key) = self
            .load_blob_key(ctx, ciphertext.as_bytes(), req.key_id.as_deref(), &access)
            .await?;
        require_usable(&key)?;
        require_symmetric_encryption(&key, req.encryption_algorithm, "Decrypt")?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let context = req.encryption_context.unwrap_or_default();
        let plaintext = self.open(ctx, &key, &parsed, &context, "Decrypt").await?;
        Ok(DecryptResponse {
            key_id: Some(key.arn()),
            plaintext: Some(Blob::from(plaintext.expose().to_vec())),
            encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault),
            key_material_id: holder_of(key.doc.origin)
                .reports_key_material_id()
                .then_some(parsed.material_id),
            ..Default::default()
        })
    }

    /// Parses a ciphertext blob and loads the key it names; a blob that does not parse or
    /// names a missing key is `InvalidCiphertextException`, a `requested` key that is not
    /// that key is `IncorrectKeyException`.
    pub(crate) async fn load_blob_key(
        &self,
        ctx: &RequestContext,
        ciphertext: &[u8],
        requested: Option<&str>,
        access: &Access<'_>,
    ) -> KmsResult<(CiphertextBlob, LoadedKey)> {
        let parsed = CiphertextBlob::parse(ciphertext)
            .map_err(|_| KmsError::new(Exception::InvalidCiphertext, String::new()))?;
        // A multi-Region key's ciphertext decrypts with the related key in the caller's Region:
        // every related key holds the same materials under the same ids.
        let region = if parsed.key_id.starts_with("mrk-") {
            &ctx.region
        } else {
            &parsed.region
        };
        let blob_key = crate::arn::key_arn(region, &parsed.account_id, &parsed.key_id);
        let key = self
            .load(ctx, &blob_key, access)
            .await
            .map_err(|e| match e {
                // A blob naming a key that is not there is not a valid ciphertext for this caller.
                e if e.is(Exception::NotFound) => {
                    KmsError::new(Exception::InvalidCiphertext, String::new())
                }
                other => other,
            })?;
        if let Some(requested) = requested {
            let wanted = self.load_unauthorized(ctx, requested).await?;
            if wanted.arn() != key.arn() {
                return Err(KmsError::new(Exception::IncorrectKey,
                    "The key ID in the request does not identify a CMK that can perform this operation."
                        .into(),
                ));
            }
        }
        Ok((parsed, key))
    }

    /// Encrypts `plaintext` under `key` with the key's holder ([`holder_of`]); returns the
    /// blob bytes. `operation` is the KMS operation being served.
    pub(crate) async fn seal(
        &self,
        ctx: &RequestContext,
        key: &LoadedKey,
        context: &BTreeMap<String, String>,
        plaintext: &[u8],
        operation: &str,
    ) -> KmsResult<Vec<u8>> {
        let call = CryptoCall {
            ctx,
            key,
            context,
            operation,
        };
        let sealed = holder_of(key.doc.origin)
            .seal(self, &call, plaintext)
            .await?;
        self.record_use(ctx, key, operation);
        Ok(sealed)
    }

    /// Decrypts a parsed blob made by [`Keys::seal`] for `key`.
    pub(crate) async fn open(
        &self,
        ctx: &RequestContext,
        key: &LoadedKey,
        blob: &CiphertextBlob,
        context: &BTreeMap<String, String>,
        operation: &str,
    ) -> KmsResult<keyhold_crypto::SecretBytes> {
        let call = CryptoCall {
            ctx,
            key,
            context,
            operation,
        };
        let opened = holder_of(key.doc.origin).open(self, &call, blob).await?;
        self.record_use(ctx, key, operation);
        Ok(opened)
    }

    /// The Keyhold AES-GCM layer: seals under the key's current material with the blob's
    /// header and the context as AAD, sets `blob.iv`, returns ciphertext and tag.
    pub(crate) async fn seal_inner(
        &self,
        key: &LoadedKey,
        blob: &mut CiphertextBlob,
        context: &BTreeMap<String, String>,
        plaintext: &[u8],
    ) -> KmsResult<Vec<u8>> {
        let material = self
            .material(key, &blob.material_id)
            .await?
            .ok_or_else(|| KmsError::internal(MissingMaterial))?;
        let aead = Aes256Gcm::new(material.expose()).map_err(KmsError::internal)?;
        let aad = associated_data(&blob.header(), context);
        let (iv, ct) = aead.seal(&aad, plaintext).map_err(KmsError::internal)?;
        blob.iv = iv.to_vec();
        Ok(ct)
    }

    /// Opens the Keyhold AES-GCM layer `sealed` (ciphertext and tag) of `blob`; `None` when
    /// it does not authenticate or its material is unknown.
    pub(crate) async fn open_inner(
        &self,
        key: &LoadedKey,
        blob: &CiphertextBlob,
        context: &BTreeMap<String, String>,
        sealed: &[u8],
    ) -> KmsResult<Option<keyhold_crypto::SecretBytes>> {
        let Some(material) = self.material(key, &blob.material_id).await? else {
            return Ok(None);
        };
        let aead = Aes256Gcm::new(material.expose()).map_err(KmsError::internal)?;
        let aad = associated_data(&blob.header(), context);
        Ok(aead.open(&blob.iv, &aad, sealed).ok())
    }
}

/// A key's current material row is missing: the database is inconsistent.
#[derive(Debug, thiserror::Error)]
#[error("the key's current key material is missing from the store")]
struct MissingMaterial;
