//! AES-256 keys held by the token and AES-GCM inside it.
//!
//! Keys are addressed by `CKA_LABEL` (the KMS key ARN for CloudHSM key
//! stores, the XKS key id for the proxy). Their handles are cached by label
//! (see [`crate::handles`]): they may change after recovery, labels do not.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{ck, Pkcs11Error};
use crate::lookup::{bool_attr, find_key, find_keys};
use crate::token::Token;

/// GCM IV length: 96 bits, the size GCM is defined for without hashing.
pub const GCM_IV_LEN: usize = 12;
/// GCM tag length: the full 128 bits.
pub const GCM_TAG_LEN: usize = 16;
/// AES-256 key length in bytes.
const AES_256_LEN: u64 = 32;

/// The result of [`Token::aes_gcm_encrypt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmOutput {
    /// The random 96-bit IV used.
    pub iv: [u8; GCM_IV_LEN],
    /// The ciphertext (same length as the plaintext).
    pub ciphertext: Vec<u8>,
    /// The 128-bit authentication tag.
    pub tag: [u8; GCM_TAG_LEN],
}

/// What a key [`Token::generate_aes_key_with_usage`] creates may be used for: its
/// `CKA_ENCRYPT` and `CKA_DECRYPT` attributes. The token enforces them (an
/// operation the key does not allow fails with `CKR_KEY_FUNCTION_NOT_PERMITTED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AesKeyUsage {
    /// `CKA_ENCRYPT`.
    pub encrypt: bool,
    /// `CKA_DECRYPT`.
    pub decrypt: bool,
}

impl AesKeyUsage {
    /// Both encryption and decryption (what [`Token::generate_aes_key`] creates).
    pub const ENCRYPT_DECRYPT: AesKeyUsage = AesKeyUsage {
        encrypt: true,
        decrypt: true,
    };
}

/// What the token reports about a key (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ENCRYPT`.
    pub can_encrypt: bool,
    /// `CKA_DECRYPT`.
    pub can_decrypt: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_VALUE_LEN` in bytes.
    pub value_len: u64,
    /// Whether `C_GetAttributeValue(CKA_VALUE)` would hand out the key
    /// material; must be false for every key Keyhold creates.
    pub value_readable: bool,
}

fn gcm_params<'a>(iv: &'a mut [u8], aad: &'a [u8]) -> Result<GcmParams<'a>, Pkcs11Error> {
    let tag_bits = Ulong::from((GCM_TAG_LEN * 8) as cryptoki_sys::CK_ULONG);
    GcmParams::new(iv, aad, tag_bits).map_err(|_| Pkcs11Error::InvalidArgument("AAD too long"))
}

/// Fills `iv` from the token's RNG, or from the OS CSPRNG when the token has
/// none (some HSM configurations refuse `C_GenerateRandom`).
fn fill_iv(s: &Session, iv: &mut [u8]) -> Result<(), Pkcs11Error> {
    match s.generate_random_slice(iv) {
        Ok(()) => Ok(()),
        Err(CkError::Pkcs11(RvError::FunctionNotSupported | RvError::RandomNoRng, _)) => {
            rand::rngs::OsRng.fill_bytes(iv);
            Ok(())
        }
        Err(e) => Err(ck("C_GenerateRandom")(e)),
    }
}

impl Token {
    /// Creates a persistent AES-256 key that never leaves the token
    /// (`CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, private), usable only to
    /// encrypt and decrypt. Refuses a label already in use.
    ///
    /// Not retried after a device failure: the first attempt may have
    /// created the key, and a retry would then report a duplicate.
    pub fn generate_aes_key(&self, label: &str) -> Result<(), Pkcs11Error> {
        self.generate_aes_key_with_usage(label, AesKeyUsage::ENCRYPT_DECRYPT)
    }

    /// [`Token::generate_aes_key`] with the key's `CKA_ENCRYPT` and
    /// `CKA_DECRYPT` set from `usage` (both false: a key that can do neither,
    /// e.g. one kept for later). Wrapping, signing and derivation stay off.
    pub fn generate_aes_key_with_usage(
        &self,
        label: &str,
        usage: AesKeyUsage,
    ) -> Result<(), Pkcs11Error> {
        if label.is_empty() {
            return Err(Pkcs11Error::InvalidArgument("empty key label"));
        }
        let _guard = self
            .inner
            .create_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.run(false, |s| {
            // Whatever was cached under this label is gone or about to be
            // refused as a duplicate.
            self.forget_key(label);
            if !find_keys(s, label)?.is_empty() {
                return Err(Pkcs11Error::DuplicateKey {
                    label: label.to_string(),
                });
            }
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(Ulong::from(AES_256_LEN as cryptoki_sys::CK_ULONG)),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(usage.encrypt),
                Attribute::Decrypt(usage.decrypt),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
                Attribute::Sign(false),
                Attribute::Verify(false),
                Attribute::Derive(false),
            ];
            let handle = s
                .generate_key(&Mechanism::AesKeyGen, &template)
                .map_err(ck("C_GenerateKey"))?;
            self.remember_key(label, handle);
            Ok(())
        })
    }

    /// Whether a key with this label exists.
    pub fn has_key(&self, label: &str) -> Result<bool, Pkcs11Error> {
        self.run(true, |s| Ok(!find_keys(s, label)?.is_empty()))
    }

    /// The key's usage attributes, read back from the token.
    pub fn key_info(&self, label: &str) -> Result<KeyInfo, Pkcs11Error> {
        self.run(true, |s| self.with_key(s, label, |key| key_info_of(s, key)))
    }

    /// Destroys the key (`C_DestroyObject`). Irreversible.
    pub fn destroy_key(&self, label: &str) -> Result<(), Pkcs11Error> {
        self.run(true, |s| {
            // Looked up afresh: a cached handle might name a key already
            // destroyed elsewhere, and duplicates must be refused.
            let key = find_key(s, label);
            self.forget_key_in(s, label);
            s.destroy_object(key?).map_err(ck("C_DestroyObject"))
        })
    }

    /// AES-256-GCM inside the token with a fresh random 96-bit IV and a
    /// 128-bit tag. A retry after a device failure draws a new IV, so an IV
    /// is never used twice.
    pub fn aes_gcm_encrypt(
        &self,
        label: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<GcmOutput, Pkcs11Error> {
        // The IV is drawn inside the look-up, so a retry on a fresh handle
        // draws a new one too.
        self.run(true, |s| {
            self.with_key(s, label, |key| {
                let mut iv = [0u8; GCM_IV_LEN];
                fill_iv(s, &mut iv)?;
                gcm_encrypt(s, key, iv, aad, plaintext)
            })
        })
    }

    /// [`Token::aes_gcm_encrypt`] followed by the decryption of its output
    /// with the same key, on the same session in one pass (the test
    /// decryption behind an XKS `ciphertextDataIntegrityValue`). The outer
    /// error is the encryption's; the decryption's own failure (say
    /// `CKR_KEY_FUNCTION_NOT_PERMITTED` for an encrypt-only key) comes back
    /// beside the ciphertext, for the caller to judge. A device failure or a
    /// refused handle in either half retries the whole, with a fresh IV.
    #[allow(clippy::type_complexity)]
    pub fn aes_gcm_encrypt_and_decrypt(
        &self,
        label: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(GcmOutput, Result<Zeroizing<Vec<u8>>, Pkcs11Error>), Pkcs11Error> {
        self.run(true, |s| {
            self.with_key(s, label, |key| {
                let mut iv = [0u8; GCM_IV_LEN];
                fill_iv(s, &mut iv)?;
                let out = gcm_encrypt(s, key, iv, aad, plaintext)?;
                let mut input = Vec::with_capacity(out.ciphertext.len() + GCM_TAG_LEN);
                input.extend_from_slice(&out.ciphertext);
                input.extend_from_slice(&out.tag);
                match gcm_decrypt(s, key, &out.iv, aad, &input) {
                    // Recovery (and the stale-handle retry) is the caller's.
                    Err(e) if needs_recovery(&e) => Err(e),
                    back => Ok((out, back)),
                }
            })
        })
    }

    /// AES-256-GCM with an IV the caller drew from its own CSPRNG (the
    /// caller answers for its uniqueness).
    pub fn aes_gcm_encrypt_with_iv(
        &self,
        label: &str,
        iv: [u8; GCM_IV_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<GcmOutput, Pkcs11Error> {
        self.run(true, |s| {
            self.with_key(s, label, |key| gcm_encrypt(s, key, iv, aad, plaintext))
        })
    }

    /// AES-256-GCM decryption inside the token. A wrong key, IV, AAD or tag
    /// fails with the token's `CKR_*` (SoftHSM: `CKR_ENCRYPTED_DATA_INVALID`).
    pub fn aes_gcm_decrypt(
        &self,
        label: &str,
        iv: &[u8; GCM_IV_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; GCM_TAG_LEN],
    ) -> Result<Zeroizing<Vec<u8>>, Pkcs11Error> {
        let mut input = Vec::with_capacity(ciphertext.len() + GCM_TAG_LEN);
        input.extend_from_slice(ciphertext);
        input.extend_from_slice(tag);
        self.run(true, |s| {
            self.with_key(s, label, |key| gcm_decrypt(s, key, iv, aad, &input))
        })
    }

    /// A real round trip through the token: creates the health-check key on
    /// first use, encrypts random data with it and checks it decrypts back.
    /// Exercises login, key lookup, the RNG and the GCM mechanism.
    ///
    /// Note that the first call *writes* a key to the token; a caller that
    /// must not change the token uses [`Token::probe`] or
    /// [`Token::round_trip_check`] on a key it was given.
    pub fn health_check(&self) -> Result<(), Pkcs11Error> {
        let label = self.inner.config.health_key_label.clone();
        if !self.has_key(&label)? {
            match self.generate_aes_key(&label) {
                Ok(()) | Err(Pkcs11Error::DuplicateKey { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.round_trip_check(&label)
    }

    /// Encrypts random data with the existing key `label` and checks that it
    /// decrypts back; creates nothing. Fails with [`Pkcs11Error::KeyNotFound`]
    /// when the key is missing.
    pub fn round_trip_check(&self, label: &str) -> Result<(), Pkcs11Error> {
        let probe = self.generate_random(32)?;
        let aad = b"keyhold health check";
        let out = self.aes_gcm_encrypt(label, aad, &probe)?;
        if out.ciphertext == probe {
            return Err(Pkcs11Error::HealthCheck("ciphertext equals plaintext"));
        }
        let back = self.aes_gcm_decrypt(label, &out.iv, aad, &out.ciphertext, &out.tag)?;
        if back.as_slice() != probe.as_slice() {
            return Err(Pkcs11Error::HealthCheck("round trip changed the data"));
        }
        Ok(())
    }
}

/// True for a failure [`Token::run`] must see to recover (a device or
/// session failure, a lost login) or [`Token::with_key`] to look the key up
/// again (a stale handle).
fn needs_recovery(e: &Pkcs11Error) -> bool {
    crate::handles::is_stale_handle(e)
        || e.ckr()
            .is_some_and(|c| c.is_device_failure() || c == crate::Ckr::UserNotLoggedIn)
}

/// What the token reports about the key `key`.
fn key_info_of(s: &Session, key: ObjectHandle) -> Result<KeyInfo, Pkcs11Error> {
    let types = [
        AttributeType::Label,
        AttributeType::Encrypt,
        AttributeType::Decrypt,
        AttributeType::Extractable,
        AttributeType::Sensitive,
        AttributeType::ValueLen,
    ];
    let attrs = s
        .get_attributes(key, &types)
        .map_err(ck("C_GetAttributeValue"))?;
    let label = attrs
        .iter()
        .find_map(|a| match a {
            Attribute::Label(l) => Some(String::from_utf8_lossy(l).into_owned()),
            _ => None,
        })
        .unwrap_or_default();
    let value_len = attrs
        .iter()
        .find_map(|a| match a {
            Attribute::ValueLen(v) => Some(u64::from(*v)),
            _ => None,
        })
        .unwrap_or(0);
    let value_info = s
        .get_attribute_info(key, &[AttributeType::Value])
        .map_err(ck("C_GetAttributeValue"))?;
    let value_readable = matches!(value_info.first(), Some(AttributeInfo::Available(_)));
    Ok(KeyInfo {
        label,
        can_encrypt: bool_attr(&attrs, AttributeType::Encrypt).unwrap_or(false),
        can_decrypt: bool_attr(&attrs, AttributeType::Decrypt).unwrap_or(false),
        extractable: bool_attr(&attrs, AttributeType::Extractable).unwrap_or(true),
        sensitive: bool_attr(&attrs, AttributeType::Sensitive).unwrap_or(false),
        value_len,
        value_readable,
    })
}

/// AES-256-GCM encryption under `key` with `iv`.
fn gcm_encrypt(
    s: &Session,
    key: ObjectHandle,
    iv: [u8; GCM_IV_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<GcmOutput, Pkcs11Error> {
    let mut iv_buf = iv;
    let params = gcm_params(&mut iv_buf, aad)?;
    let mut out = s
        .encrypt(&Mechanism::AesGcm(params), key, plaintext)
        .map_err(ck("C_Encrypt"))?;
    if out.len() != plaintext.len() + GCM_TAG_LEN {
        return Err(Pkcs11Error::Malformed("GCM output length"));
    }
    let tag_bytes = out.split_off(plaintext.len());
    let tag: [u8; GCM_TAG_LEN] = tag_bytes
        .as_slice()
        .try_into()
        .map_err(|_| Pkcs11Error::Malformed("GCM tag length"))?;
    Ok(GcmOutput {
        iv,
        ciphertext: out,
        tag,
    })
}

/// AES-256-GCM decryption under `key` of `input` (ciphertext then tag).
fn gcm_decrypt(
    s: &Session,
    key: ObjectHandle,
    iv: &[u8; GCM_IV_LEN],
    aad: &[u8],
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Pkcs11Error> {
    let mut iv = *iv;
    let params = gcm_params(&mut iv, aad)?;
    let pt = s
        .decrypt(&Mechanism::AesGcm(params), key, input)
        .map_err(ck("C_Decrypt"))?;
    Ok(Zeroizing::new(pt))
}
