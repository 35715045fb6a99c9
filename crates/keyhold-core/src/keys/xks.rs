//! Double encryption for keys in external key stores.
//!
//! Encrypt: the plaintext is sealed with AES-256-GCM under the KMS key's Keyhold-held material
//! (AAD: blob header and encryption context), then that inner ciphertext goes to the proxy's
//! Encrypt (`AES_GCM`) with AAD binding the blob header, the encryption context and the inner
//! IV, asking for a SHA-256 ciphertext data integrity value, which is verified. The blob
//! embeds the proxy's IV, tag and `ciphertextMetadata`. Decrypt reverses both layers, sending
//! the proxy the same AAD bytes.
//!
//! Every proxy failure is `KMSInvalidStateException` with the message AWS uses for its cause.

use async_trait::async_trait;
use keyhold_kms_model::Exception;
use std::collections::BTreeMap;
use std::sync::Arc;

use keyhold_crypto::blob::associated_data;
use keyhold_crypto::{CiphertextBlob, SecretBytes, XksLayer};
use sha2::{Digest, Sha256};

use super::holder::{CryptoCall, KeyHolder};
use super::{Keys, LoadedKey};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::xks::{
    msg, XksDecryptInput, XksEncryptInput, XksFailure, XksKeyCall, XksKeyRequestMetadata, XksTarget,
};

/// Largest `ciphertextMetadata` KMS accepts from a proxy.
const MAX_CIPHERTEXT_METADATA: usize = 20;

fn invalid_state(message: &str) -> KmsError {
    KmsError::new(Exception::KMSInvalidState, message.to_string())
}

/// The AAD sent to the proxy: blob header, encryption context, inner IV.
fn outer_aad(blob: &CiphertextBlob, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = associated_data(&blob.header(), context);
    aad.extend_from_slice(&blob.iv);
    aad
}

/// `SHA-256(aad || ciphertextMetadata || iv || ciphertext || tag)` (XKS Appendix C).
fn cdiv(aad: &[u8], layer: &XksLayer, ciphertext: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [aad, &layer.metadata, &layer.iv, ciphertext, &layer.tag] {
        h.update(part);
    }
    h.finalize().to_vec()
}

/// Compares without an early exit.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Call {
    target: Arc<XksTarget>,
    external_key_id: String,
    metadata: XksKeyRequestMetadata,
}

impl Call {
    /// The call as connectors take it.
    fn key_call(&self) -> XksKeyCall<'_> {
        XksKeyCall::new(&self.target, &self.external_key_id, &self.metadata)
    }
}

impl Keys {
    /// Everything needed to call the proxy for `key`, after the store's request quota.
    fn xks_call(&self, ctx: &RequestContext, key: &LoadedKey, operation: &str) -> KmsResult<Call> {
        let store = key
            .store
            .as_ref()
            .ok_or_else(|| invalid_state(msg::NOT_CONNECTED))?;
        self.throttle.take(&store.row.id)?;
        let external_key_id = key.doc.xks_key_id.clone().ok_or_else(|| {
            KmsError::internal(std::io::Error::other(format!(
                "key {} in an external key store has no XksKeyId",
                key.row.key_id
            )))
        })?;
        Ok(Call {
            target: self.custom_key_stores.xks_target(store)?,
            external_key_id,
            metadata: XksKeyRequestMetadata {
                aws_principal_arn: ctx.principal_arn.clone(),
                kms_key_arn: Some(key.arn()),
                kms_operation: operation.to_string(),
                kms_request_id: ctx.request_id.clone(),
            },
        })
    }
}

/// The holder of keys in external key stores: Keyhold's layer, then the proxy's.
pub(crate) struct XksHolder;

#[async_trait]
impl KeyHolder for XksHolder {
    /// Double-encrypts `plaintext` for a key in an external key store; the blob bytes.
    async fn seal(&self, keys: &Keys, c: &CryptoCall<'_>, plaintext: &[u8]) -> KmsResult<Vec<u8>> {
        let (key, context, operation) = (c.key, c.context, c.operation);
        let call = keys.xks_call(c.ctx, key, operation)?;
        let r = &key.row;
        let mut blob = CiphertextBlob::new_xks(
            &r.account_id,
            &r.region,
            &r.key_id,
            &key.doc.current_material_id,
        );
        let inner = keys.seal_inner(key, &mut blob, context, plaintext).await?;
        let aad = outer_aad(&blob, context);
        let input = XksEncryptInput {
            plaintext: inner,
            aad,
            request_cdiv: true,
        };
        let out = keys
            .custom_key_stores
            .connector()
            .encrypt(call.key_call(), &input)
            .await
            .map_err(|f| proxy_failure(key, operation, &f))?;
        let well_formed = matches!(out.iv.len(), 12 | 16)
            && out.tag.len() == keyhold_crypto::aead::TAG_LEN
            && out.ciphertext.len() == input.plaintext.len()
            && out.ciphertext_metadata.len() <= MAX_CIPHERTEXT_METADATA;
        let Some(returned_cdiv) = out.cdiv.as_deref().filter(|_| well_formed) else {
            tracing::warn!(key_id = %r.key_id, operation, "the XKS proxy's Encrypt answer is malformed");
            return Err(invalid_state(msg::CANNOT_INTERPRET));
        };
        let layer = XksLayer {
            iv: out.iv.clone(),
            tag: out.tag.clone(),
            metadata: out.ciphertext_metadata.clone(),
        };
        if !same(returned_cdiv, &cdiv(&input.aad, &layer, &out.ciphertext)) {
            tracing::warn!(key_id = %r.key_id, operation, "the XKS proxy's ciphertext data integrity value does not match");
            return Err(invalid_state(msg::PROXY_RETURNED_INVALID_CIPHERTEXT));
        }
        blob.ciphertext = out.ciphertext;
        blob.xks = Some(layer);
        Ok(blob.to_bytes())
    }

    /// Reverses [`XksHolder::seal`].
    async fn open(
        &self,
        keys: &Keys,
        c: &CryptoCall<'_>,
        blob: &CiphertextBlob,
    ) -> KmsResult<SecretBytes> {
        let (key, context, operation) = (c.key, c.context, c.operation);
        let Some(layer) = blob
            .xks
            .as_ref()
            .filter(|_| blob.kind == keyhold_crypto::blob::BlobKind::XksDouble)
        else {
            return Err(KmsError::new(Exception::InvalidCiphertext, String::new()));
        };
        let call = keys.xks_call(c.ctx, key, operation)?;
        let input = XksDecryptInput {
            ciphertext: blob.ciphertext.clone(),
            iv: layer.iv.clone(),
            tag: layer.tag.clone(),
            ciphertext_metadata: layer.metadata.clone(),
            aad: outer_aad(blob, context),
        };
        let inner = keys
            .custom_key_stores
            .connector()
            .decrypt(call.key_call(), &input)
            .await
            .map_err(|f| proxy_failure(key, operation, &f))?;
        let rejected = || {
            tracing::warn!(key_id = %key.row.key_id, operation, "the plaintext the XKS proxy returned does not decrypt");
            invalid_state(msg::PROXY_RETURNED_INVALID_CIPHERTEXT)
        };
        if inner.expose().len() != blob.ciphertext.len() {
            return Err(rejected());
        }
        keys.open_inner(key, blob, context, inner.expose())
            .await?
            .ok_or_else(rejected)
    }

    fn reports_key_material_id(&self) -> bool {
        false
    }
}

/// `KMSInvalidStateException` with AWS's message for a proxy failure during `operation`.
fn proxy_failure(key: &LoadedKey, operation: &str, f: &XksFailure) -> KmsError {
    tracing::warn!(
        key_id = %key.row.key_id,
        custom_key_store_id = key.row.custom_key_store_id.as_deref().unwrap_or(""),
        operation,
        failure = %f,
        "XKS proxy call failed"
    );
    invalid_state(f.kms_message())
}
