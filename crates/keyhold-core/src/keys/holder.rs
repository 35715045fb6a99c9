//! Key holders: where a KMS key's material lives and where its cryptography happens.
//!
//! Every origin has one holder, chosen in one table ([`holder_of`]):
//! * `AWS_KMS` and `EXTERNAL` (imported) keys: [`LocalHolder`], Keyhold's own AES-256-GCM
//!   under material wrapped by the root key (`crypto_ops.rs`);
//! * `EXTERNAL_KEY_STORE`: [`super::xks::XksHolder`], double encryption through the store's
//!   XKS proxy;
//! * `AWS_CLOUDHSM`: [`super::cloudhsm::CloudHsmHolder`], AES-GCM inside the store's HSM.
//!
//! Operations (Encrypt, Decrypt, GenerateDataKey, ReEncrypt) ask the holder and never branch on
//! origin themselves. Asymmetric and HMAC keys (Sign, GenerateMac, DeriveSharedSecret, RSA
//! encryption: `asymmetric.rs`, `mac.rs`) do not go through holders: AWS offers those specs
//! only with material KMS holds, so they always use the local material row. A new kind of
//! holder is a new `impl KeyHolder` and one line in [`holder_of`]; a new cryptographic
//! capability is a new trait method, which the compiler then asks of every holder.

use std::collections::BTreeMap;

use async_trait::async_trait;
use keyhold_crypto::blob::BlobKind;
use keyhold_crypto::{CiphertextBlob, SecretBytes};
use keyhold_kms_model::enums::OriginType;
use keyhold_kms_model::Exception;

use super::{Keys, LoadedKey};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};

/// One cryptographic call on a key: who asks, which key, the encryption context, and the KMS
/// operation being served (reported to XKS proxies and in logs).
pub(crate) struct CryptoCall<'a> {
    /// The caller.
    pub ctx: &'a RequestContext,
    /// The key, loaded and checked usable.
    pub key: &'a LoadedKey,
    /// The encryption context (bound as associated data).
    pub context: &'a BTreeMap<String, String>,
    /// e.g. `"Encrypt"`.
    pub operation: &'a str,
}

/// Where a key's material lives; what every cryptographic operation asks of it.
#[async_trait]
pub(crate) trait KeyHolder: Send + Sync {
    /// Encrypts `plaintext` for `call.key`; the ciphertext blob bytes.
    async fn seal(
        &self,
        keys: &Keys,
        call: &CryptoCall<'_>,
        plaintext: &[u8],
    ) -> KmsResult<Vec<u8>>;

    /// Decrypts a parsed blob made by [`KeyHolder::seal`] for `call.key`.
    async fn open(
        &self,
        keys: &Keys,
        call: &CryptoCall<'_>,
        blob: &CiphertextBlob,
    ) -> KmsResult<SecretBytes>;

    /// Whether Decrypt reports the `KeyMaterialId` of the material used (AWS does for
    /// material KMS holds, not for keys in custom key stores).
    fn reports_key_material_id(&self) -> bool;

    /// Called once a scheduled deletion has removed `key`'s record: the holder releases what
    /// it keeps outside the metadata store (best effort, as AWS; failures are logged).
    /// Material in the metadata store goes with the record, so the default does nothing.
    async fn key_deleted(&self, keys: &Keys, key: &LoadedKey) {
        let _ = (keys, key);
    }
}

/// The holder of keys of `origin`: the one place that maps origins to holders.
pub(crate) fn holder_of(origin: OriginType) -> &'static dyn KeyHolder {
    match origin {
        OriginType::AwsKms | OriginType::External => &LocalHolder,
        OriginType::ExternalKeyStore => &super::xks::XksHolder,
        OriginType::AwsCloudhsm => &super::cloudhsm::CloudHsmHolder,
    }
}

/// Keys whose material Keyhold holds, wrapped by the root key.
pub(crate) struct LocalHolder;

#[async_trait]
impl KeyHolder for LocalHolder {
    async fn seal(
        &self,
        keys: &Keys,
        call: &CryptoCall<'_>,
        plaintext: &[u8],
    ) -> KmsResult<Vec<u8>> {
        let r = &call.key.row;
        let mut blob = CiphertextBlob::new_keyhold(
            &r.account_id,
            &r.region,
            &r.key_id,
            &call.key.doc.current_material_id,
        );
        blob.ciphertext = keys
            .seal_inner(call.key, &mut blob, call.context, plaintext)
            .await?;
        Ok(blob.to_bytes())
    }

    async fn open(
        &self,
        keys: &Keys,
        call: &CryptoCall<'_>,
        blob: &CiphertextBlob,
    ) -> KmsResult<SecretBytes> {
        if blob.kind != BlobKind::KeyholdAesGcm {
            return Err(KmsError::new(Exception::InvalidCiphertext, String::new()));
        }
        keys.open_inner(call.key, blob, call.context, &blob.ciphertext)
            .await?
            .ok_or_else(|| KmsError::new(Exception::InvalidCiphertext, String::new()))
    }

    fn reports_key_material_id(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every origin of the model has a holder, and only Keyhold-held material reports its
    /// material id (as AWS does).
    #[test]
    fn every_origin_has_a_holder() {
        for origin in OriginType::ALL {
            let reports = holder_of(*origin).reports_key_material_id();
            let local = matches!(origin, OriginType::AwsKms | OriginType::External);
            assert_eq!(reports, local, "{origin}");
        }
    }
}
