//! HMAC (RFC 2104) with SHA-224, SHA-256, SHA-384 and SHA-512, through `hmac`'s generic
//! `SimpleHmac` (same output as `Hmac`, one code path for every hash).

use ::hmac::digest::core_api::BlockSizeUser;
use ::hmac::digest::{Digest, KeyInit};
use ::hmac::{Mac, SimpleHmac};
use sha2::{Sha224, Sha256, Sha384, Sha512};

use super::MacAlgorithm;

/// The HMAC of `message` under `key` with hash `D`; `None` only if the library refused the
/// key, which HMAC never does (keys of any length are valid).
fn tag<D>(key: &[u8], message: &[u8]) -> Option<Vec<u8>>
where
    D: Digest + BlockSizeUser,
{
    let mut mac = <SimpleHmac<D> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(message);
    Some(mac.finalize().into_bytes().to_vec())
}

/// Constant-time check of `tag` against the HMAC of `message` with hash `D`.
fn check<D>(key: &[u8], message: &[u8], tag: &[u8]) -> bool
where
    D: Digest + BlockSizeUser,
{
    let Ok(mut mac) = <SimpleHmac<D> as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    mac.verify_slice(tag).is_ok()
}

/// The HMAC of `message` under `key` (empty only if the library refused the key, which it
/// never does).
pub(super) fn mac(algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    let tag = match algorithm {
        MacAlgorithm::HmacSha224 => tag::<Sha224>(key, message),
        MacAlgorithm::HmacSha256 => tag::<Sha256>(key, message),
        MacAlgorithm::HmacSha384 => tag::<Sha384>(key, message),
        MacAlgorithm::HmacSha512 => tag::<Sha512>(key, message),
    };
    tag.unwrap_or_default()
}

/// Constant-time comparison of `tag` with the HMAC of `message` (a tag of another length is
/// simply wrong).
pub(super) fn verify(algorithm: MacAlgorithm, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    match algorithm {
        MacAlgorithm::HmacSha224 => check::<Sha224>(key, message, tag),
        MacAlgorithm::HmacSha256 => check::<Sha256>(key, message, tag),
        MacAlgorithm::HmacSha384 => check::<Sha384>(key, message, tag),
        MacAlgorithm::HmacSha512 => check::<Sha512>(key, message, tag),
    }
}
