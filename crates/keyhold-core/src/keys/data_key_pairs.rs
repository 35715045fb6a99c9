//! `GenerateDataKeyPair` and `GenerateDataKeyPairWithoutPlaintext`: a fresh asymmetric key
//! pair whose private key (PKCS#8 DER) is returned encrypted under a symmetric encryption KMS
//! key — a ciphertext blob like GenerateDataKey's, bound to the encryption context — and, for
//! the first, in plaintext too; the public key is DER SubjectPublicKeyInfo.

use std::collections::BTreeMap;

use keyhold_crypto::asym;
use keyhold_crypto::SecretBytes;
use keyhold_kms_model::enums::DataKeyPairSpec;
use keyhold_kms_model::shapes::{
    GenerateDataKeyPairRequest, GenerateDataKeyPairResponse,
    GenerateDataKeyPairWithoutPlaintextRequest, GenerateDataKeyPairWithoutPlaintextResponse,
};
use keyhold_kms_model::{Blob, Exception};

use super::crypto_ops::{dry_run, require_symmetric_encryption, require_usable};
use super::{Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};

/// A generated pair: the key that encrypts it, the encrypted private key, the private key
/// and the public key.
struct Pair {
    key: LoadedKey,
    blob: Vec<u8>,
    private: SecretBytes,
    public: Vec<u8>,
}

impl Keys {
    async fn generate_pair(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        spec: DataKeyPairSpec,
        context: Option<BTreeMap<String, String>>,
        dry: Option<bool>,
        operation: &str,
    ) -> KmsResult<Pair> {
        let action = if operation == "GenerateDataKeyPair" {
            KeyAction::GenerateDataKeyPair
        } else {
            KeyAction::GenerateDataKeyPairWithoutPlaintext
        };
        let access = Access::new(action)
            .with_context(context.as_ref())
            .with_fact("kms:DataKeyPairSpec", spec.as_str());
        let key = self.load_for_use(ctx, key_id, &access).await?;
        require_usable(&key)?;
        require_symmetric_encryption(&key, None, operation)?;
        // SM2 data key pairs, like SM2 KMS keys, exist only in the China Regions.
        if spec == DataKeyPairSpec::Sm2 && !crate::arn::is_china_region(&ctx.region) {
            return Err(KmsError::new(
                Exception::UnsupportedOperation,
                format!("KeyPairSpec {spec} is not supported in this Region"),
            ));
        }
        let Some(asym_spec) = asym::AsymmetricSpec::from_aws_name(spec.as_str()) else {
            return Err(KmsError::new(
                Exception::UnsupportedOperation,
                format!("Keyhold does not support KeyPairSpec {spec} yet."),
            ));
        };
        if dry == Some(true) {
            return Err(dry_run());
        }
        let (private, public) = self
            .keygen(move || {
                let private = asym::generate(asym_spec)?;
                let public = asym::public_key_der(asym_spec, private.expose())?;
                Ok((private, public))
            })
            .await?;
        let context = context.unwrap_or_default();
        let blob = self
            .seal(ctx, &key, &context, private.expose(), operation)
            .await?;
        Ok(Pair {
            key,
            blob,
            private,
            public,
        })
    }

    /// `GenerateDataKeyPair`.
    pub async fn generate_data_key_pair(
        &self,
        ctx: &RequestContext,
        req: GenerateDataKeyPairRequest,
    ) -> KmsResult<GenerateDataKeyPairResponse> {
        super::recipient::refuse_recipient(req.recipient.as_ref())?;
        let pair = self
            .generate_pair(
                ctx,
                &req.key_id,
                req.key_pair_spec,
                req.encryption_context,
                req.dry_run,
                "GenerateDataKeyPair",
            )
            .await?;
        Ok(GenerateDataKeyPairResponse {
            private_key_ciphertext_blob: Some(Blob::from(pair.blob)),
            private_key_plaintext: Some(Blob::from(pair.private.expose().to_vec())),
            public_key: Some(Blob::from(pair.public)),
            key_id: Some(pair.key.arn()),
            key_pair_spec: Some(req.key_pair_spec),
            ..Default::default()
        })
    }

    /// `GenerateDataKeyPairWithoutPlaintext`.
    pub async fn generate_data_key_pair_without_plaintext(
        &self,
        ctx: &RequestContext,
        req: GenerateDataKeyPairWithoutPlaintextRequest,
    ) -> KmsResult<GenerateDataKeyPairWithoutPlaintextResponse> {
        let pair = self
            .generate_pair(
                ctx,
                &req.key_id,
                req.key_pair_spec,
                req.encryption_context,
                req.dry_run,
                "GenerateDataKeyPairWithoutPlaintext",
            )
            .await?;
        Ok(GenerateDataKeyPairWithoutPlaintextResponse {
            private_key_ciphertext_blob: Some(Blob::from(pair.blob)),
            public_key: Some(Blob::from(pair.public)),
            key_id: Some(pair.key.arn()),
            key_pair_spec: Some(req.key_pair_spec),
            ..Default::default()
        })
    }
}
