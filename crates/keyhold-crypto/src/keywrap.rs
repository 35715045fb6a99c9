//! AES Key Wrap with Padding (RFC 5649, NIST SP 800-38F "KWP"), the second half of KMS's
//! `RSA_AES_KEY_WRAP_SHA_*` import wrapping algorithms: the caller wraps the key material under
//! an ephemeral AES key with KWP and the AES key under the RSA wrapping key with OAEP.
//!
//! The key-encryption key may be AES-128, AES-192 or AES-256 (RFC 5649's own test vectors
//! use AES-192). Unwrapping fails with one error whatever went wrong, so a caller cannot learn
//! which check failed.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::SecretBytes;

/// The high half of RFC 5649's alternative initial value; the low half is the plaintext length.
const AIV_PREFIX: [u8; 4] = [0xA6, 0x59, 0x59, 0xA6];
/// Largest plaintext RFC 5649 can wrap (its length is a 32-bit field).
const MAX_PLAINTEXT: usize = u32::MAX as usize;

/// Why a key wrap or unwrap failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyWrapError {
    /// The key-encryption key is not 16, 24 or 32 bytes long.
    #[error("the key-encryption key must be 16, 24 or 32 bytes long")]
    KekLength,
    /// Nothing to wrap, or more than RFC 5649 can describe.
    #[error("the plaintext must be 1 to 2^32 - 1 bytes long")]
    PlaintextLength,
    /// The wrapped bytes are malformed or do not authenticate under the key.
    #[error("the wrapped key does not unwrap under this key")]
    Unwrap,
}

/// AES with a key of any of its three sizes.
enum Cipher {
    Aes128(aes::Aes128),
    Aes192(aes::Aes192),
    Aes256(aes::Aes256),
}

impl Cipher {
    fn new(kek: &[u8]) -> Result<Self, KeyWrapError> {
        let bad = |_| KeyWrapError::KekLength;
        Ok(match kek.len() {
            16 => Self::Aes128(aes::Aes128::new_from_slice(kek).map_err(bad)?),
            24 => Self::Aes192(aes::Aes192::new_from_slice(kek).map_err(bad)?),
            32 => Self::Aes256(aes::Aes256::new_from_slice(kek).map_err(bad)?),
            _ => return Err(KeyWrapError::KekLength),
        })
    }

    fn encrypt(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Self::Aes128(c) => c.encrypt_block(b),
            Self::Aes192(c) => c.encrypt_block(b),
            Self::Aes256(c) => c.encrypt_block(b),
        }
    }

    fn decrypt(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Self::Aes128(c) => c.decrypt_block(b),
            Self::Aes192(c) => c.decrypt_block(b),
            Self::Aes256(c) => c.decrypt_block(b),
        }
    }
}

/// Wraps `plaintext` (1 byte or more) under `kek` with AES Key Wrap with Padding.
pub fn wrap_with_padding(kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyWrapError> {
    let cipher = Cipher::new(kek)?;
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
        return Err(KeyWrapError::PlaintextLength);
    }
    let mut aiv = [0u8; 8];
    aiv[..4].copy_from_slice(&AIV_PREFIX);
    // Bounded by MAX_PLAINTEXT above.
    aiv[4..].copy_from_slice(&(plaintext.len() as u32).to_be_bytes());
    let padded_len = plaintext.len().div_ceil(8) * 8;
    let mut p = Zeroizing::new(vec![0u8; padded_len]);
    p[..plaintext.len()].copy_from_slice(plaintext);
    if padded_len == 8 {
        // One semiblock: a single AES block of AIV || P.
        let mut block = Zeroizing::new([0u8; 16]);
        block[..8].copy_from_slice(&aiv);
        block[8..].copy_from_slice(&p);
        cipher.encrypt(&mut block);
        return Ok(block.to_vec());
    }
    let a = wrap_core(&cipher, aiv, &mut p);
    let mut out = Vec::with_capacity(8 + padded_len);
    out.extend_from_slice(&a);
    out.extend_from_slice(&p);
    Ok(out)
}

/// Unwraps what [`wrap_with_padding`] made of a key under `kek`, checking the integrity value,
/// the length and the zero padding.
pub fn unwrap_with_padding(kek: &[u8], wrapped: &[u8]) -> Result<SecretBytes, KeyWrapError> {
    let cipher = Cipher::new(kek)?;
    if wrapped.len() < 16 || !wrapped.len().is_multiple_of(8) {
        return Err(KeyWrapError::Unwrap);
    }
    let (a, p) = if wrapped.len() == 16 {
        let mut block = Zeroizing::new([0u8; 16]);
        block.copy_from_slice(wrapped);
        cipher.decrypt(&mut block);
        let mut a = [0u8; 8];
        a.copy_from_slice(&block[..8]);
        (a, Zeroizing::new(block[8..].to_vec()))
    } else {
        let mut a = [0u8; 8];
        a.copy_from_slice(&wrapped[..8]);
        let mut p = Zeroizing::new(wrapped[8..].to_vec());
        let a = unwrap_core(&cipher, a, &mut p);
        (a, p)
    };
    let prefix_ok = a[..4].ct_eq(&AIV_PREFIX);
    let mli = u32::from_be_bytes([a[4], a[5], a[6], a[7]]) as usize;
    let n = p.len() / 8;
    let length_ok = mli > 8 * (n - 1) && mli <= 8 * n;
    let padding_ok = if length_ok {
        p[mli..].iter().fold(0u8, |acc, b| acc | b) == 0
    } else {
        false
    };
    if !(bool::from(prefix_ok) && length_ok && padding_ok) {
        return Err(KeyWrapError::Unwrap);
    }
    Ok(SecretBytes::from_slice(&p[..mli]))
}

/// RFC 3394's wrapping function W over the semiblocks of `r` (two or more), in place; returns
/// the final integrity register.
fn wrap_core(cipher: &Cipher, mut a: [u8; 8], r: &mut [u8]) -> [u8; 8] {
    let n = r.len() / 8;
    let mut block = Zeroizing::new([0u8; 16]);
    for j in 0..6u64 {
        for i in 0..n {
            block[..8].copy_from_slice(&a);
            block[8..].copy_from_slice(&r[i * 8..i * 8 + 8]);
            cipher.encrypt(&mut block);
            let t = (n as u64) * j + (i as u64) + 1;
            for (k, byte) in t.to_be_bytes().iter().enumerate() {
                a[k] = block[k] ^ byte;
            }
            r[i * 8..i * 8 + 8].copy_from_slice(&block[8..]);
        }
    }
    a
}

/// RFC 3394's unwrapping function W⁻¹ over the semiblocks of `r`, in place; returns the
/// recovered integrity register.
fn unwrap_core(cipher: &Cipher, mut a: [u8; 8], r: &mut [u8]) -> [u8; 8] {
    let n = r.len() / 8;
    let mut block = Zeroizing::new([0u8; 16]);
    for j in (0..6u64).rev() {
        for i in (0..n).rev() {
            let t = (n as u64) * j + (i as u64) + 1;
            for (k, byte) in t.to_be_bytes().iter().enumerate() {
                block[k] = a[k] ^ byte;
            }
            block[8..].copy_from_slice(&r[i * 8..i * 8 + 8]);
            cipher.decrypt(&mut block);
            a.copy_from_slice(&block[..8]);
            r[i * 8..i * 8 + 8].copy_from_slice(&block[8..]);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 5649, section 6: a 192-bit KEK wrapping 20 and 7 octets.
    #[test]
    fn rfc_5649_vectors() {
        let kek = hex("5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8");
        let cases = [
            (
                "c37b7e6492584340 bed1220780894115 5068f738",
                "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a",
            ),
            ("466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"),
        ];
        for (key, wrapped) in cases {
            let (key, wrapped) = (hex(key), hex(wrapped));
            assert_eq!(wrap_with_padding(&kek, &key).unwrap(), wrapped);
            assert_eq!(unwrap_with_padding(&kek, &wrapped).unwrap().expose(), key);
        }
    }

    /// RFC 3394, section 4.6: a 256-bit key under a 256-bit KEK. KWP of a multiple of eight
    /// bytes differs from RFC 3394 only in the initial value, so the core W is checked against
    /// the original default IV.
    #[test]
    fn rfc_3394_core() {
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let mut r = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        let cipher = Cipher::new(&kek).unwrap();
        let a = wrap_core(&cipher, [0xA6; 8], &mut r);
        let mut out = a.to_vec();
        out.extend_from_slice(&r);
        assert_eq!(
            out,
            hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
        );
        let back = unwrap_core(&cipher, a, &mut r);
        assert_eq!(back, [0xA6; 8]);
        assert_eq!(
            r,
            hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
        );
    }

    #[test]
    fn round_trips_every_length_and_key_size() {
        for kek_len in [16, 24, 32] {
            let kek = crate::random_bytes(kek_len);
            for len in [1, 7, 8, 9, 16, 32, 33, 1217] {
                let key = crate::random_bytes(len);
                let wrapped = wrap_with_padding(kek.expose(), key.expose()).unwrap();
                assert_eq!(wrapped.len(), 8 + len.div_ceil(8) * 8);
                let back = unwrap_with_padding(kek.expose(), &wrapped).unwrap();
                assert_eq!(back.expose(), key.expose());
            }
        }
    }

    #[test]
    fn tampering_and_wrong_keys_fail_alike() {
        let kek = crate::random_bytes(32);
        let wrapped = wrap_with_padding(kek.expose(), &[7u8; 32]).unwrap();
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 1;
            assert_eq!(
                unwrap_with_padding(kek.expose(), &bad),
                Err(KeyWrapError::Unwrap)
            );
        }
        let other = crate::random_bytes(32);
        assert_eq!(
            unwrap_with_padding(other.expose(), &wrapped),
            Err(KeyWrapError::Unwrap)
        );
        for len in [0, 8, 15, 17, 23] {
            assert_eq!(
                unwrap_with_padding(kek.expose(), &vec![0u8; len]),
                Err(KeyWrapError::Unwrap)
            );
        }
        assert_eq!(
            unwrap_with_padding(&[0u8; 20], &wrapped),
            Err(KeyWrapError::KekLength)
        );
        assert_eq!(
            wrap_with_padding(kek.expose(), &[]),
            Err(KeyWrapError::PlaintextLength)
        );
    }

    /// A wrapped value whose length field claims more than the padded plaintext, or whose
    /// padding is not zero, is refused (built by wrapping with a forged initial value).
    #[test]
    fn length_and_padding_are_checked() {
        let kek = crate::random_bytes(16);
        let cipher = Cipher::new(kek.expose()).unwrap();
        let forge = |mli: u32, p: &[u8]| {
            let mut aiv = [0u8; 8];
            aiv[..4].copy_from_slice(&AIV_PREFIX);
            aiv[4..].copy_from_slice(&mli.to_be_bytes());
            let mut r = p.to_vec();
            let a = wrap_core(&cipher, aiv, &mut r);
            let mut out = a.to_vec();
            out.extend_from_slice(&r);
            out
        };
        let good = forge(12, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0]);
        assert!(unwrap_with_padding(kek.expose(), &good).is_ok());
        let nonzero_pad = forge(12, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 1, 0]);
        assert!(unwrap_with_padding(kek.expose(), &nonzero_pad).is_err());
        let too_long = forge(17, &[0u8; 16]);
        assert!(unwrap_with_padding(kek.expose(), &too_long).is_err());
        let too_short = forge(8, &[0u8; 16]);
        assert!(unwrap_with_padding(kek.expose(), &too_short).is_err());
    }
}
