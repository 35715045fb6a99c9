//! Import tokens: what `GetParametersForImport` hands out and `ImportKeyMaterial` takes back.
//!
//! A token is sealed, not stored: it carries the wrapping private key, the wrapping algorithm
//! and key spec, and the expiry, encrypted and authenticated under the root key
//! ([`RootKey::wrap`], AES-256-GCM) with associated data naming the KMS key. So:
//!
//! * the wrapping private key is never at rest in plaintext, and not at rest at all: nothing
//!   is written per `GetParametersForImport`, nothing needs cleaning up when tokens expire,
//!   and every node sharing the root key (several nodes on one PostgreSQL database, or one
//!   node after a restart) accepts the token;
//! * a token for another KMS key, a forged, truncated or altered token all fail to open and
//!   are `InvalidImportTokenException`; the expiry cannot be altered either, since it is
//!   inside the authenticated payload;
//! * the token leaving the server is no more exposure than a ciphertext blob: only the root
//!   key opens it, and the root key already protects every key material.
//!
//! Payload (version 1): `0x01 | algorithm code | wrapping key spec code | expiry (i64 ms,
//! big-endian) | wrapping private key (PKCS#8 DER, rest)`.

use keyhold_crypto::import::{WrappingAlgorithm, WrappingKeySpec};
use keyhold_crypto::{RootKey, SecretBytes};
use zeroize::Zeroizing;

/// Version byte of the payload.
const PAYLOAD_VERSION: u8 = 1;
/// Bytes before the private key: version, algorithm, spec, expiry.
const HEADER_LEN: usize = 1 + 1 + 1 + 8;

/// What an import token carries.
#[derive(Debug)]
pub(crate) struct ImportParameters {
    /// The wrapping algorithm the caller chose.
    pub algorithm: WrappingAlgorithm,
    /// The RSA wrapping key spec.
    pub spec: WrappingKeySpec,
    /// When the token and its public key stop being valid, milliseconds since the epoch.
    pub expires_at_ms: i64,
    /// The wrapping private key, PKCS#8 DER.
    pub private_key: SecretBytes,
}

/// Why an import token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Not a token of this KMS key (another key's, forged, altered, or garbage).
    #[error("the import token is invalid or belongs to another KMS key")]
    Invalid,
    /// A genuine token of this key, past its expiry.
    #[error("the import token has expired")]
    Expired,
}

/// The associated data binding a token to its KMS key.
fn token_aad(account: &str, region: &str, key_id: &str) -> Vec<u8> {
    format!("keyhold/import-token/v1/{account}/{region}/{key_id}").into_bytes()
}

/// Seals `params` into a token for the KMS key `(account, region, key_id)`.
pub(crate) fn seal(
    root_key: &RootKey,
    (account, region, key_id): (&str, &str, &str),
    params: &ImportParameters,
) -> Result<Vec<u8>, keyhold_crypto::RootKeyError> {
    let mut payload = Zeroizing::new(Vec::with_capacity(HEADER_LEN + params.private_key.len()));
    payload.push(PAYLOAD_VERSION);
    payload.push(params.algorithm.code());
    payload.push(params.spec.code());
    payload.extend_from_slice(&params.expires_at_ms.to_be_bytes());
    payload.extend_from_slice(params.private_key.expose());
    root_key.wrap(&token_aad(account, region, key_id), &payload)
}

/// Opens a token of the KMS key `(account, region, key_id)`, refusing it once `now_ms` is
/// past its expiry.
pub(crate) fn open(
    root_key: &RootKey,
    (account, region, key_id): (&str, &str, &str),
    token: &[u8],
    now_ms: i64,
) -> Result<ImportParameters, TokenError> {
    let payload = root_key
        .unwrap(&token_aad(account, region, key_id), token)
        .map_err(|_| TokenError::Invalid)?;
    let bytes = payload.expose();
    if bytes.len() <= HEADER_LEN || bytes[0] != PAYLOAD_VERSION {
        return Err(TokenError::Invalid);
    }
    let algorithm = WrappingAlgorithm::from_code(bytes[1]).ok_or(TokenError::Invalid)?;
    let spec = WrappingKeySpec::from_code(bytes[2]).ok_or(TokenError::Invalid)?;
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&bytes[3..HEADER_LEN]);
    let expires_at_ms = i64::from_be_bytes(expiry);
    if now_ms >= expires_at_ms {
        return Err(TokenError::Expired);
    }
    Ok(ImportParameters {
        algorithm,
        spec,
        expires_at_ms,
        private_key: SecretBytes::from_slice(&bytes[HEADER_LEN..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: (&str, &str, &str) = ("111122223333", "us-east-1", "k-1");

    fn params() -> ImportParameters {
        ImportParameters {
            algorithm: WrappingAlgorithm::RsaAesKeyWrapSha256,
            spec: WrappingKeySpec::Rsa3072,
            expires_at_ms: 1_000_000,
            private_key: SecretBytes::from_slice(b"not really a PKCS#8 key"),
        }
    }

    #[test]
    fn round_trips_until_expiry() {
        let root = RootKey::new(&[9u8; 32]).unwrap();
        let token = seal(&root, KEY, &params()).unwrap();
        let got = open(&root, KEY, &token, 999_999).unwrap();
        assert_eq!(got.algorithm, WrappingAlgorithm::RsaAesKeyWrapSha256);
        assert_eq!(got.spec, WrappingKeySpec::Rsa3072);
        assert_eq!(got.expires_at_ms, 1_000_000);
        assert_eq!(got.private_key.expose(), b"not really a PKCS#8 key");
        assert_eq!(
            open(&root, KEY, &token, 1_000_000).unwrap_err(),
            TokenError::Expired
        );
        // The private key is not in the token in the clear.
        let needle = b"not really";
        assert!(!token.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn other_keys_tampering_and_garbage_are_invalid() {
        let root = RootKey::new(&[9u8; 32]).unwrap();
        let token = seal(&root, KEY, &params()).unwrap();
        for other in [
            ("111122223333", "us-east-1", "k-2"),
            ("111122223333", "eu-west-1", "k-1"),
            ("999988887777", "us-east-1", "k-1"),
        ] {
            assert_eq!(
                open(&root, other, &token, 0).unwrap_err(),
                TokenError::Invalid
            );
        }
        for i in 0..token.len() {
            let mut bad = token.clone();
            bad[i] ^= 0x40;
            assert_eq!(open(&root, KEY, &bad, 0).unwrap_err(), TokenError::Invalid);
        }
        for garbage in [&b""[..], b"x", &token[..token.len() - 1], &[0u8; 64]] {
            assert_eq!(
                open(&root, KEY, garbage, 0).unwrap_err(),
                TokenError::Invalid
            );
        }
        let other_root = RootKey::new(&[8u8; 32]).unwrap();
        assert_eq!(
            open(&other_root, KEY, &token, 0).unwrap_err(),
            TokenError::Invalid
        );
        // A well-sealed payload of an unknown version or with unknown codes is refused too.
        for payload in [
            vec![2u8, 1, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1],
            vec![1u8, 9, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1],
            vec![1u8, 1, 9, 0, 0, 0, 0, 0, 0, 0, 9, 1],
            vec![1u8, 1, 1, 0, 0, 0, 0, 0, 0, 0, 9],
        ] {
            let sealed = root
                .wrap(&token_aad(KEY.0, KEY.1, KEY.2), &payload)
                .unwrap();
            assert_eq!(
                open(&root, KEY, &sealed, 0).unwrap_err(),
                TokenError::Invalid
            );
        }
    }
}
