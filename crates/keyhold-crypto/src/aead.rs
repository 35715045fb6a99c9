//! AES-256-GCM with 12-byte random IVs, the one AEAD Keyhold uses for symmetric keys,
//! root-key wrapping, and (later) XKS proxies.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Key, Nonce};

use crate::SecretBytes;

/// IV length in bytes.
pub const IV_LEN: usize = 12;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Key length in bytes.
pub const KEY_LEN: usize = 32;

/// Errors of AES-GCM.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AeadError {
    /// The key is not 32 bytes.
    #[error("AES-256-GCM key must be 32 bytes, got {0}")]
    BadKeyLength(usize),
    /// The IV is not 12 bytes.
    #[error("AES-GCM IV must be 12 bytes, got {0}")]
    BadIvLength(usize),
    /// Tag mismatch: wrong key, wrong AAD, or tampered data.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// Encryption failed: the plaintext or the associated data is longer than AES-GCM allows
    /// (about 64 GiB). Never an empty ciphertext in its place.
    #[error("AES-GCM encryption failed (plaintext or associated data too long)")]
    EncryptionFailed,
}

/// An AES-256-GCM key.
pub struct Aes256Gcm {
    cipher: aes_gcm::Aes256Gcm,
}

impl std::fmt::Debug for Aes256Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aes256Gcm(..)")
    }
}

impl Aes256Gcm {
    /// A cipher for a 32-byte key.
    pub fn new(key: &[u8]) -> Result<Self, AeadError> {
        if key.len() != KEY_LEN {
            return Err(AeadError::BadKeyLength(key.len()));
        }
        Ok(Self {
            cipher: aes_gcm::Aes256Gcm::new(Key::<aes_gcm::Aes256Gcm>::from_slice(key)),
        })
    }

    /// Encrypts with a fresh random IV; returns `(iv, ciphertext || tag)`, or
    /// [`AeadError::EncryptionFailed`].
    ///
    /// The IV comes from the thread's CSPRNG (`rand::thread_rng`: ChaCha, seeded and
    /// periodically reseeded from the operating system), not from the operating system each
    /// time: a GCM IV must be unpredictable and never repeat under one key, not be secret, and
    /// one `getrandom(2)` per Encrypt was a measurable share of its cost. Keys themselves are
    /// still drawn from the operating system ([`crate::random_bytes`]).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<([u8; IV_LEN], Vec<u8>), AeadError> {
        let iv: [u8; IV_LEN] = rand::random();
        let ct = self.seal_with_iv(&iv, aad, plaintext)?;
        Ok((iv, ct))
    }

    /// Encrypts with the given IV (callers must never reuse an IV under one key); fails with
    /// [`AeadError::EncryptionFailed`] when `aes-gcm` refuses the input (over its length
    /// limits), never returning an empty ciphertext.
    pub fn seal_with_iv(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        self.cipher
            .encrypt(
                Nonce::from_slice(iv),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| AeadError::EncryptionFailed)
    }

    /// Decrypts `ciphertext || tag`.
    pub fn open(&self, iv: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<SecretBytes, AeadError> {
        if iv.len() != IV_LEN {
            return Err(AeadError::BadIvLength(iv.len()));
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(iv),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(SecretBytes::new)
            .map_err(|_| AeadError::AuthenticationFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let k = Aes256Gcm::new(&[7u8; 32]).unwrap();
        let (iv, ct) = k.seal(b"aad", b"hello").expect("seal");
        assert_eq!(ct.len(), 5 + TAG_LEN);
        assert_eq!(k.open(&iv, b"aad", &ct).unwrap().expose(), b"hello");
        assert_eq!(
            k.open(&iv, b"other", &ct),
            Err(AeadError::AuthenticationFailed)
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            k.open(&iv, b"aad", &bad),
            Err(AeadError::AuthenticationFailed)
        );
        assert_eq!(
            Aes256Gcm::new(&[0u8; 16]).unwrap_err(),
            AeadError::BadKeyLength(16)
        );
    }

    #[test]
    fn ivs_are_fresh() {
        let k = Aes256Gcm::new(&[1u8; 32]).unwrap();
        let (a, ca) = k.seal(b"", b"same").expect("seal");
        let (b, cb) = k.seal(b"", b"same").expect("seal");
        assert_ne!(a, b);
        assert_ne!(ca, cb);
    }

    #[test]
    fn nist_vector() {
        // NIST GCM test vector (AES-256, 96-bit IV), test case 16 of the GCM spec's appendix B.
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let iv = hex("cafebabefacedbaddecaf888");
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let want = hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
76fc6ece0f4e1768cddf8853bb2d551b");
        let k = Aes256Gcm::new(&key).unwrap();
        let mut ivb = [0u8; 12];
        ivb.copy_from_slice(&iv);
        assert_eq!(k.seal_with_iv(&ivb, &aad, &pt), Ok(want));
    }

    /// An encryption `aes-gcm` refuses (associated data over its 2^36-byte limit) is an
    /// error, not an empty ciphertext. The oversized associated data is a read-only anonymous
    /// mapping that is never touched (`aes-gcm` checks lengths first), so no memory is used.
    #[cfg(all(unix, target_pointer_width = "64"))]
    #[test]
    fn encryption_failure_is_an_error_not_an_empty_ciphertext() {
        let len = (1usize << 36) + 1;
        // SAFETY: a fresh private anonymous read-only mapping of `len` bytes; it is only
        // viewed as a byte slice while mapped and unmapped once, at the end.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            println!("SKIP: cannot reserve 64 GiB of address space");
            return;
        }
        // SAFETY: `ptr` maps `len` readable bytes (zero pages) until `munmap` below.
        let huge_aad = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
        let k = Aes256Gcm::new(&[2u8; 32]).unwrap();
        let sealed = k.seal_with_iv(&[0u8; IV_LEN], huge_aad, b"plaintext");
        let tried = k.seal(huge_aad, b"plaintext").map(|(_, c)| c);
        // SAFETY: the mapping made above, no longer borrowed.
        unsafe { libc::munmap(ptr, len) };
        assert_eq!(sealed, Err(AeadError::EncryptionFailed));
        assert_eq!(tried, Err(AeadError::EncryptionFailed));
    }

    /// The AES key schedule and the GHASH key are wiped when a key is dropped
    /// (the `zeroize` features of `aes` and `aes-gcm`).
    #[test]
    fn key_schedules_zeroize_on_drop() {
        fn zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroize_on_drop::<aes::Aes256>();
        zeroize_on_drop::<aes::Aes256Enc>();
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
