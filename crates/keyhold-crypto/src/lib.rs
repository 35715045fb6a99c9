//! Cryptographic building blocks of Keyhold: zeroizing secret types, the root key that wraps
//! everything secret at rest, AES-256-GCM, the self-describing ciphertext-blob format, AES Key
//! Wrap with Padding and the unwrapping of imported key material.
//!
//! Everything here is synchronous and free of I/O except [`root_key`], which reads or creates
//! the root key file.
#![warn(missing_docs)]

pub mod aead;
pub mod asym;
pub mod blob;
pub mod import;
pub mod keywrap;
pub mod root_key;
pub mod secret;

pub use aead::{AeadError, Aes256Gcm};
pub use blob::{BlobError, CiphertextBlob, XksLayer};
pub use root_key::{RootKey, RootKeyError, RootKeySource};
pub use secret::SecretBytes;

/// Fills a new buffer of `n` bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> SecretBytes {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut v);
    SecretBytes::new(v)
}
