//! `GenerateDataKey`, `GenerateDataKeyWithoutPlaintext` and `ReEncrypt`.

use keyhold_kms_model::Exception;
use std::collections::BTreeMap;

use keyhold_kms_model::enums::{DataKeySpec, EncryptionAlgorithmSpec};
use keyhold_kms_model::shapes::{
    GenerateDataKeyRequest, GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextRequest,
    GenerateDataKeyWithoutPlaintextResponse, ReEncryptRequest, ReEncryptResponse,
};
use keyhold_kms_model::Blob;

use super::crypto_ops::{dry_run, require_symmetric_encryption, require_usable};
use super::{Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};

/// AWS's answer when neither or both of KeySpec and NumberOfBytes are given.
const SPEC_OR_BYTES: &str = "Please specify either number of bytes or key spec.";

/// The data key length in bytes: exactly one of `KeySpec` and `NumberOfBytes` (1–1024, already
/// checked against the model).
fn data_key_len(spec: Option<DataKeySpec>, bytes: Option<i32>) -> KmsResult<usize> {
    match (spec, bytes) {
        (Some(DataKeySpec::Aes256), None) => Ok(32),
        (Some(DataKeySpec::Aes128), None) => Ok(16),
        (None, Some(n)) if (1..=1024).contains(&n) => Ok(n as usize),
        (None, Some(n)) => Err(KmsError::new(Exception::Validation, format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        ))),
        _ => Err(KmsError::new(Exception::Validation, SPEC_OR_BYTES.into())),
    }
}

impl Keys {
    /// The common part of both GenerateDataKey operations: the key, checked, and the
    /// ciphertext blob of a fresh data key, which is returned too.
    #[allow(clippy::too_many_arguments)]
    async fn generate(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        spec: Option<DataKeySpec>,
        bytes: Option<i32>,
        context: Option<BTreeMap<String, String>>,
        dry: Option<bool>,
        operation: &str,
    ) -> KmsResult<(LoadedKey, keyhold_crypto::SecretBytes, Vec<u8>)> {
        let len = data_key_len(spec, bytes)?;
        let action = if operation == "GenerateDataKey" {
            KeyAction::GenerateDataKey
        } else {
            KeyAction::GenerateDataKeyWithoutPlaintext
        };
        let access = Access::new(action).with_context(context.as_ref());
        let key = self.load_for_use(ctx, key_id, &access).await?;
        require_usable(&key)?;
        require_symmetric_encryption(&key, None, operation)?;
        if dry == Some(true) {
            return Err(dry_run());
        }
        let data_key = keyhold_crypto::random_bytes(len);
        let context = context.unwrap_or_default();
        let blob = self
            .seal(ctx, &key, &context, data_key.expose(), operation)
            .await?;
        Ok((key, data_key, blob))
    }

    /// `GenerateDataKey`.
    pub async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        req: GenerateDataKeyRequest,
    ) -> KmsResult<GenerateDataKeyResponse> {
        super::recipient::refuse_recipient(req.recipient.as_ref())?;
        let (key, data_key, blob) = self
            .generate(
                ctx,
                &req.key_id,
                req.key_spec,
                req.number_of_bytes,
                req.encryption_context,
                req.dry_run,
                "GenerateDataKey",
            )
            .await?;
        Ok(GenerateDataKeyResponse {
            ciphertext_blob: Some(Blob::from(blob)),
            plaintext: Some(Blob::from(data_key.expose().to_vec())),
            key_id: Some(key.arn()),
            ..Default::default()
        })
    }

    /// `GenerateDataKeyWithoutPlaintext`.
    pub async fn generate_data_key_without_plaintext(
        &self,
        ctx: &RequestContext,
        req: GenerateDataKeyWithoutPlaintextRequest,
    ) -> KmsResult<GenerateDataKeyWithoutPlaintextResponse> {
        let (key, _data_key, blob) = self
            .generate(
                ctx,
                &req.key_id,
                req.key_spec,
                req.number_of_bytes,
                req.encryption_context,
                req.dry_run,
                "GenerateDataKeyWithoutPlaintext",
            )
            .await?;
        Ok(GenerateDataKeyWithoutPlaintextResponse {
            ciphertext_blob: Some(Blob::from(blob)),
            key_id: Some(key.arn()),
            ..Default::default()
        })
    }

    /// `ReEncrypt`: decrypts under the key the blob names (which must be `SourceKeyId` when
    /// given; an RSA source is named by `SourceKeyId`) and encrypts under `DestinationKeyId`,
    /// without the plaintext leaving Keyhold.
    pub async fn re_encrypt(
        &self,
        ctx: &RequestContext,
        req: ReEncryptRequest,
    ) -> KmsResult<ReEncryptResponse> {
        let Some(ciphertext) = req.ciphertext_blob else {
            return Err(KmsError::new(Exception::Validation,
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"
                    .into(),
            ));
        };
        // Either side may be an RSA key: its ciphertext is raw OAEP output (the source then
        // needs SourceKeyId, as AWS requires), and it takes no encryption context.
        let source_oaep = req
            .source_encryption_algorithm
            .filter(|a| super::asymmetric::is_raw_asymmetric(*a));
        let destination_oaep = req
            .destination_encryption_algorithm
            .filter(|a| super::asymmetric::is_raw_asymmetric(*a));
        let (parsed, source) =
            match (source_oaep, req.source_key_id.as_deref()) {
                (Some(_), Some(key_ref)) => (
                    None,
                    self.load_for_use(ctx, key_ref, &Access::new(KeyAction::ReEncryptFrom))
                        .await?,
                ),
                (Some(_), None) => return Err(KmsError::new(
                    Exception::Validation,
                    "SourceKeyId is required when the source encryption algorithm is asymmetric."
                        .into(),
                )),
                (None, requested) => {
                    let access = Access::new(KeyAction::ReEncryptFrom)
                        .with_context(req.source_encryption_context.as_ref());
                    let (parsed, key) = self
                        .load_blob_key(ctx, ciphertext.as_bytes(), requested, &access)
                        .await?;
                    (Some(parsed), key)
                }
            };
        let mut access = Access::new(KeyAction::ReEncryptTo);
        if destination_oaep.is_none() {
            access = access.with_context(req.destination_encryption_context.as_ref());
        }
        let destination = self
            .load_for_use(ctx, &req.destination_key_id, &access)
            .await?;
        require_usable(&source)?;
        require_symmetric_encryption(&source, req.source_encryption_algorithm, "ReEncrypt")?;
        require_usable(&destination)?;
        require_symmetric_encryption(
            &destination,
            req.destination_encryption_algorithm,
            "ReEncrypt",
        )?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let source_context = req.source_encryption_context.unwrap_or_default();
        let plaintext = match (&parsed, source_oaep) {
            (Some(parsed), _) => {
                self.open(ctx, &source, parsed, &source_context, "ReEncrypt")
                    .await?
            }
            (None, Some(algorithm)) => {
                self.asym_decrypt(
                    &source,
                    algorithm,
                    !source_context.is_empty(),
                    ciphertext.as_bytes(),
                )
                .await?
            }
            (None, None) => return Err(KmsError::new(Exception::InvalidCiphertext, String::new())),
        };
        let destination_context = req.destination_encryption_context.unwrap_or_default();
        let blob = match destination_oaep {
            Some(algorithm) => {
                let out = self
                    .asym_encrypt(
                        &destination,
                        algorithm,
                        !destination_context.is_empty(),
                        plaintext.expose(),
                    )
                    .await?;
                self.record_use(ctx, &destination, "ReEncrypt");
                out
            }
            None => {
                self.seal(
                    ctx,
                    &destination,
                    &destination_context,
                    plaintext.expose(),
                    "ReEncrypt",
                )
                .await?
            }
        };
        if source_oaep.is_some() {
            self.record_use(ctx, &source, "ReEncrypt");
        }
        Ok(ReEncryptResponse {
            ciphertext_blob: Some(Blob::from(blob)),
            source_key_id: Some(source.arn()),
            key_id: Some(destination.arn()),
            source_encryption_algorithm: Some(
                source_oaep.unwrap_or(EncryptionAlgorithmSpec::SymmetricDefault),
            ),
            destination_encryption_algorithm: Some(
                destination_oaep.unwrap_or(EncryptionAlgorithmSpec::SymmetricDefault),
            ),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_of_spec_and_bytes() {
        assert_eq!(data_key_len(Some(DataKeySpec::Aes256), None).unwrap(), 32);
        assert_eq!(data_key_len(Some(DataKeySpec::Aes128), None).unwrap(), 16);
        assert_eq!(data_key_len(None, Some(1)).unwrap(), 1);
        assert_eq!(data_key_len(None, Some(1024)).unwrap(), 1024);
        for (s, b) in [(None, None), (Some(DataKeySpec::Aes256), Some(32))] {
            let e = data_key_len(s, b).unwrap_err();
            assert_eq!(e.exception_name(), "ValidationException");
            assert_eq!(e.to_string(), SPEC_OR_BYTES);
        }
        assert!(data_key_len(None, Some(1025)).is_err());
    }
}
