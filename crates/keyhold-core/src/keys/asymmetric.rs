//! Asymmetric keys: `Sign`, `Verify`, `GetPublicKey`, `DeriveSharedSecret`, RSA-OAEP and
//! SM2PKE encryption for `Encrypt`/`Decrypt`/`ReEncrypt`, and the generation of asymmetric
//! and HMAC key material.
//!
//! AWS offers these key specs only for keys whose material KMS holds (generated, or imported
//! with `Origin: EXTERNAL`), so their material is a Keyhold key-material row like a symmetric
//! key's — the private key as PKCS#8 DER (an HMAC key as its bytes), wrapped by the root key —
//! and the cryptography is `keyhold_crypto::asym`.
//! Key generation runs on blocking threads, at most [`MAX_CONCURRENT_KEYGEN`] at a time.

use keyhold_crypto::asym::{self, AsymError, MessageType as AsymMessageType, OaepAlgorithm};
use keyhold_crypto::SecretBytes;
use keyhold_kms_model::enums::{
    CustomerMasterKeySpec, EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec,
    KeyUsageType, MessageType, SigningAlgorithmSpec,
};
use keyhold_kms_model::shapes::{
    DeriveSharedSecretRequest, DeriveSharedSecretResponse, GetPublicKeyRequest,
    GetPublicKeyResponse, SignRequest, SignResponse, VerifyRequest, VerifyResponse,
};
use keyhold_kms_model::{Blob, Exception};

use super::crypto_ops::{dry_run, require_usable};
use super::specs::{self, key_spec_info};
use super::{Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};

/// Asymmetric key generations running at once (each holds a blocking thread).
pub const MAX_CONCURRENT_KEYGEN: usize = 2;

/// A cryptography failure as the caller sees it: input that does not fit the algorithm is
/// `ValidationException`, a ciphertext that does not decrypt `InvalidCiphertextException`, a
/// stored key that does not parse an internal error.
pub(super) fn asym_error(e: AsymError) -> KmsError {
    match e {
        AsymError::DecryptFailed => KmsError::new(Exception::InvalidCiphertext, String::new()),
        AsymError::InvalidPrivateKey(_) => KmsError::internal(e),
        AsymError::DigestLength { .. }
        | AsymError::Unsupported(_)
        | AsymError::PlaintextTooLong { .. }
        | AsymError::InvalidPublicKey(_) => KmsError::new(Exception::Validation, e.to_string()),
    }
}

/// AWS's refusal of a key whose usage is not the operation's.
pub(super) fn require_usage(
    key: &LoadedKey,
    usage: KeyUsageType,
    operation: &str,
) -> KmsResult<()> {
    if key.doc.key_usage == usage {
        return Ok(());
    }
    Err(KmsError::new(
        Exception::InvalidKeyUsage,
        format!(
            "{} key usage is {} which is not valid for {operation}.",
            key.arn(),
            key.doc.key_usage
        ),
    ))
}

fn incompatible(algorithm: &str, key: &LoadedKey) -> KmsError {
    KmsError::new(
        Exception::InvalidKeyUsage,
        format!(
            "Algorithm {algorithm} is incompatible with key spec {}.",
            key.doc.key_spec
        ),
    )
}

fn asymmetric_spec(key: &LoadedKey) -> KmsResult<asym::AsymmetricSpec> {
    specs::asymmetric(key.doc.key_spec).ok_or_else(|| {
        KmsError::new(
            Exception::UnsupportedOperation,
            format!("{} is not an asymmetric KMS key.", key.arn()),
        )
    })
}

fn message_type(t: Option<MessageType>) -> AsymMessageType {
    match t.unwrap_or(MessageType::Raw) {
        MessageType::Raw => AsymMessageType::Raw,
        MessageType::Digest => AsymMessageType::Digest,
        MessageType::ExternalMu => AsymMessageType::ExternalMu,
    }
}

/// Whether ciphertexts of `algorithm` are raw public-key ciphertexts (RSAES-OAEP, SM2PKE)
/// rather than Keyhold blobs: such requests need the KeyId and the algorithm.
pub(super) fn is_raw_asymmetric(algorithm: EncryptionAlgorithmSpec) -> bool {
    oaep(algorithm).is_some() || algorithm == EncryptionAlgorithmSpec::Sm2pke
}

/// The OAEP variant of an encryption algorithm (`None` for the others).
pub(super) fn oaep(algorithm: EncryptionAlgorithmSpec) -> Option<OaepAlgorithm> {
    match algorithm {
        EncryptionAlgorithmSpec::RsaesOaepSha1 => Some(OaepAlgorithm::Sha1),
        EncryptionAlgorithmSpec::RsaesOaepSha256 => Some(OaepAlgorithm::Sha256),
        _ => None,
    }
}

impl Keys {
    /// New key material for a key of `spec`: 32 random bytes for symmetric keys, an HMAC key
    /// of the spec's length, or a private key generated on a blocking thread.
    pub(super) async fn generate_key_material(&self, spec: KeySpec) -> KmsResult<SecretBytes> {
        if let Some(mac) = specs::hmac(spec) {
            return Ok(keyhold_crypto::random_bytes(mac.key_len()));
        }
        let Some(asym_spec) = specs::asymmetric(spec) else {
            return Ok(keyhold_crypto::random_bytes(32));
        };
        self.keygen(move || asym::generate(asym_spec)).await
    }

    /// Runs `work` (key generation) on a blocking thread, at most
    /// [`MAX_CONCURRENT_KEYGEN`] at a time.
    pub(super) async fn keygen<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AsymError> + Send + 'static,
    ) -> KmsResult<T> {
        let _permit = self.keygen.acquire().await.map_err(KmsError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(KmsError::internal)?
            .map_err(asym_error)
    }

    /// The private key (or HMAC key) of `key`: its current material.
    pub(super) async fn private_key(&self, key: &LoadedKey) -> KmsResult<SecretBytes> {
        self.material(key, &key.doc.current_material_id)
            .await?
            .ok_or_else(|| KmsError::internal(std::io::Error::other("key material missing")))
    }

    /// `Sign`.
    pub async fn sign(&self, ctx: &RequestContext, req: SignRequest) -> KmsResult<SignResponse> {
        let access = Access::new(KeyAction::Sign)
            .with_fact(
                "kms:MessageType",
                req.message_type.unwrap_or_default().as_str(),
            )
            .with_fact("kms:SigningAlgorithm", req.signing_algorithm.as_str());
        let key = self.load_for_use(ctx, &req.key_id, &access).await?;
        require_usable(&key)?;
        require_usage(&key, KeyUsageType::SignVerify, "Sign")?;
        let algorithm = self.signing_algorithm(&key, req.signing_algorithm)?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let private = self.private_key(&key).await?;
        let spec = asymmetric_spec(&key)?;
        let signature = asym::sign(
            spec,
            private.expose(),
            algorithm,
            message_type(req.message_type),
            req.message.as_bytes(),
        )
        .map_err(asym_error)?;
        self.record_use(ctx, &key, "Sign");
        Ok(SignResponse {
            key_id: Some(key.arn()),
            signature: Some(Blob::from(signature)),
            signing_algorithm: Some(req.signing_algorithm),
        })
    }

    /// `Verify`: a signature that does not verify is `KMSInvalidSignatureException`.
    pub async fn verify(
        &self,
        ctx: &RequestContext,
        req: VerifyRequest,
    ) -> KmsResult<VerifyResponse> {
        let access = Access::new(KeyAction::Verify)
            .with_fact(
                "kms:MessageType",
                req.message_type.unwrap_or_default().as_str(),
            )
            .with_fact("kms:SigningAlgorithm", req.signing_algorithm.as_str());
        let key = self.load_for_use(ctx, &req.key_id, &access).await?;
        require_usable(&key)?;
        require_usage(&key, KeyUsageType::SignVerify, "Verify")?;
        let algorithm = self.signing_algorithm(&key, req.signing_algorithm)?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let private = self.private_key(&key).await?;
        let spec = asymmetric_spec(&key)?;
        let valid = asym::verify(
            spec,
            private.expose(),
            algorithm,
            message_type(req.message_type),
            req.message.as_bytes(),
            req.signature.as_bytes(),
        )
        .map_err(asym_error)?;
        if !valid {
            return Err(KmsError::new(Exception::KMSInvalidSignature, String::new()));
        }
        self.record_use(ctx, &key, "Verify");
        Ok(VerifyResponse {
            key_id: Some(key.arn()),
            signature_valid: Some(true),
            signing_algorithm: Some(req.signing_algorithm),
        })
    }

    /// The signing algorithm `requested`, if the key's spec offers it.
    fn signing_algorithm(
        &self,
        key: &LoadedKey,
        requested: SigningAlgorithmSpec,
    ) -> KmsResult<asym::SigningAlgorithm> {
        if !key_spec_info(key.doc.key_spec).signing.contains(&requested) {
            return Err(incompatible(requested.as_str(), key));
        }
        asym::SigningAlgorithm::from_aws_name(requested.as_str())
            .ok_or_else(|| incompatible(requested.as_str(), key))
    }

    /// `GetPublicKey`: the public key as DER SubjectPublicKeyInfo, with the key's usage and
    /// algorithms so that it can be used offline.
    pub async fn get_public_key(
        &self,
        ctx: &RequestContext,
        req: GetPublicKeyRequest,
    ) -> KmsResult<GetPublicKeyResponse> {
        let access = Access::new(KeyAction::GetPublicKey);
        let key = self.load_for_use(ctx, &req.key_id, &access).await?;
        let spec = asymmetric_spec(&key)?;
        require_usable(&key)?;
        let private = self.private_key(&key).await?;
        let public = asym::public_key_der(spec, private.expose()).map_err(asym_error)?;
        let info = key_spec_info(key.doc.key_spec);
        let usage = key.doc.key_usage;
        Ok(GetPublicKeyResponse {
            key_id: Some(key.arn()),
            public_key: Some(Blob::from(public)),
            customer_master_key_spec: CustomerMasterKeySpec::try_from(key.doc.key_spec.as_str())
                .ok(),
            key_spec: Some(key.doc.key_spec),
            key_usage: Some(usage),
            encryption_algorithms: super::non_empty(info.encryption_algorithms(usage)),
            signing_algorithms: super::non_empty(info.signing_algorithms(usage)),
            key_agreement_algorithms: super::non_empty(info.key_agreement_algorithms(usage)),
        })
    }

    /// `DeriveSharedSecret`: ECDH between the key's private key and the caller's public key,
    /// returning the raw shared secret, as AWS does without a `Recipient` (a `Recipient` is
    /// refused: see `recipient`).
    pub async fn derive_shared_secret(
        &self,
        ctx: &RequestContext,
        req: DeriveSharedSecretRequest,
    ) -> KmsResult<DeriveSharedSecretResponse> {
        super::recipient::refuse_recipient(req.recipient.as_ref())?;
        let access = Access::new(KeyAction::DeriveSharedSecret).with_fact(
            "kms:KeyAgreementAlgorithm",
            req.key_agreement_algorithm.as_str(),
        );
        let key = self.load_for_use(ctx, &req.key_id, &access).await?;
        require_usable(&key)?;
        require_usage(&key, KeyUsageType::KeyAgreement, "DeriveSharedSecret")?;
        if !key_spec_info(key.doc.key_spec)
            .key_agreement
            .contains(&req.key_agreement_algorithm)
        {
            return Err(incompatible(req.key_agreement_algorithm.as_str(), &key));
        }
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let spec = asymmetric_spec(&key)?;
        let private = self.private_key(&key).await?;
        let secret =
            asym::ecdh(spec, private.expose(), req.public_key.as_bytes()).map_err(asym_error)?;
        self.record_use(ctx, &key, "DeriveSharedSecret");
        Ok(DeriveSharedSecretResponse {
            key_id: Some(key.arn()),
            shared_secret: Some(Blob::from(secret.expose().to_vec())),
            ciphertext_for_recipient: None,
            key_agreement_algorithm: Some(KeyAgreementAlgorithmSpec::Ecdh),
            key_origin: Some(key.doc.origin),
        })
    }

    /// Public-key encryption for `Encrypt` (and ReEncrypt's destination) with an RSA key
    /// (RSAES-OAEP) or an SM2 key (SM2PKE); `algorithm` is already checked against the spec.
    /// The ciphertext is what AWS returns — raw OAEP output, or SM2PKE's ASN.1 C1C3C2 — so
    /// data encrypted offline with the public key decrypts too. AWS takes no encryption
    /// context with asymmetric keys.
    pub(super) async fn asym_encrypt(
        &self,
        key: &LoadedKey,
        algorithm: EncryptionAlgorithmSpec,
        has_context: bool,
        plaintext: &[u8],
    ) -> KmsResult<Vec<u8>> {
        let (spec, scheme) = self.asym_parts(key, algorithm, has_context)?;
        let private = self.private_key(key).await?;
        match scheme {
            Scheme::Oaep(oaep) => asym::rsa_encrypt(spec, private.expose(), oaep, plaintext),
            #[cfg(feature = "sm2")]
            Scheme::Sm2pke => asym::sm2_encrypt(spec, private.expose(), plaintext),
        }
        .map_err(asym_error)
    }

    /// Public-key decryption for `Decrypt` (and ReEncrypt's source) with an RSA or SM2 key.
    pub(super) async fn asym_decrypt(
        &self,
        key: &LoadedKey,
        algorithm: EncryptionAlgorithmSpec,
        has_context: bool,
        ciphertext: &[u8],
    ) -> KmsResult<SecretBytes> {
        let (spec, scheme) = self.asym_parts(key, algorithm, has_context)?;
        let private = self.private_key(key).await?;
        match scheme {
            Scheme::Oaep(oaep) => asym::rsa_decrypt(spec, private.expose(), oaep, ciphertext),
            #[cfg(feature = "sm2")]
            Scheme::Sm2pke => asym::sm2_decrypt(spec, private.expose(), ciphertext),
        }
        .map_err(asym_error)
    }

    fn asym_parts(
        &self,
        key: &LoadedKey,
        algorithm: EncryptionAlgorithmSpec,
        has_context: bool,
    ) -> KmsResult<(asym::AsymmetricSpec, Scheme)> {
        if has_context {
            return Err(KmsError::new(
                Exception::Validation,
                "EncryptionContext is not supported with asymmetric KMS keys.".into(),
            ));
        }
        let spec = asymmetric_spec(key)?;
        if let Some(oaep) = oaep(algorithm) {
            return Ok((spec, Scheme::Oaep(oaep)));
        }
        #[cfg(feature = "sm2")]
        if algorithm == EncryptionAlgorithmSpec::Sm2pke && spec.is_sm2() {
            return Ok((spec, Scheme::Sm2pke));
        }
        Err(incompatible(algorithm.as_str(), key))
    }
}

/// The public-key encryption scheme of an asymmetric encryption algorithm.
#[derive(Debug, Clone, Copy)]
enum Scheme {
    /// RSAES-OAEP.
    Oaep(OaepAlgorithm),
    /// SM2PKE.
    #[cfg(feature = "sm2")]
    Sm2pke,
}
