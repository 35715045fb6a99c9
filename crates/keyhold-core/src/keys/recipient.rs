//! The `Recipient` parameter (AWS Nitro Enclaves / NitroTPM cryptographic attestation) of
//! `Decrypt`, `DeriveSharedSecret`, `GenerateDataKey`, `GenerateDataKeyPair` and
//! `GenerateRandom`.
//!
//! AWS answers an attested request only when the attestation document's signature chains to
//! the AWS Nitro Attestation PKI root, which only the Nitro hypervisor can sign under: "You
//! cannot supply your own certificate to digitally sign the attestation document." No
//! enclave can run here, so no document can ever verify and every `Recipient` is refused the
//! way AWS refuses an invalid attestation document, with `ValidationException`. The
//! document is read far enough to say whether it is a COSE_Sign1 structure at all (the form
//! the Nitro Secure Module writes) or a COSE_Sign1 whose signature does not chain to the AWS
//! root; both are the same exception.

use keyhold_kms_model::enums::KeyEncryptionMechanism;
use keyhold_kms_model::shapes::RecipientInfo;
use keyhold_kms_model::Exception;

use crate::error::{KmsError, KmsResult};

/// CBOR major type 6, tag 18: COSE_Sign1 (RFC 9052 §4.2), one-byte form.
const COSE_SIGN1_TAG: u8 = 0xd2;
/// CBOR major type 4 with length 4: the four-element COSE_Sign1 array.
const ARRAY_OF_FOUR: u8 = 0x84;

/// Why an attestation document is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AttestationError {
    /// The `Recipient` structure has no `AttestationDocument`.
    #[error("Recipient must include an AttestationDocument.")]
    Missing,
    /// The bytes are not a CBOR COSE_Sign1 structure.
    #[error("The attestation document in the Recipient parameter is not a valid COSE_Sign1 attestation document.")]
    NotCoseSign1,
    /// A COSE_Sign1 structure whose signing certificate does not chain to the AWS Nitro
    /// Attestation PKI root (always the case here: there is no Nitro hypervisor).
    #[error("The attestation document in the Recipient parameter is not signed by the AWS Nitro Attestation PKI.")]
    Untrusted,
}

/// Whether `document` starts as a COSE_Sign1 does: an optional tag 18, then an array of four
/// (protected header bstr, unprotected header map, payload bstr, signature bstr).
fn is_cose_sign1(document: &[u8]) -> bool {
    let body = match document.first() {
        Some(&COSE_SIGN1_TAG) => &document[1..],
        _ => document,
    };
    // The protected header is a byte string (major type 2) and the unprotected header a map
    // (major type 5); the first is enough to reject arbitrary bytes.
    matches!(body, [ARRAY_OF_FOUR, first, ..] if first >> 5 == 2)
}

/// The verdict on one attestation document: never `Ok`, as no document can chain to the AWS
/// Nitro root here.
pub(crate) fn check_attestation(recipient: &RecipientInfo) -> Result<(), AttestationError> {
    // The model has one KeyEncryptionAlgorithm, RSAES_OAEP_SHA_256; any other value is
    // refused when the request is parsed, so this match is exhaustive by construction.
    match recipient.key_encryption_algorithm {
        None | Some(KeyEncryptionMechanism::RsaesOaepSha256) => {}
    }
    let document = recipient
        .attestation_document
        .as_ref()
        .map(|d| d.as_bytes())
        .filter(|d| !d.is_empty())
        .ok_or(AttestationError::Missing)?;
    if !is_cose_sign1(document) {
        return Err(AttestationError::NotCoseSign1);
    }
    Err(AttestationError::Untrusted)
}

/// AWS's refusal of a request whose `Recipient` carries an attestation document that does
/// not verify; `Ok` when the request has no `Recipient`.
pub(crate) fn refuse_recipient(recipient: Option<&RecipientInfo>) -> KmsResult<()> {
    let Some(recipient) = recipient else {
        return Ok(());
    };
    match check_attestation(recipient) {
        Ok(()) => Ok(()),
        Err(e) => Err(KmsError::new(Exception::Validation, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyhold_kms_model::Blob;

    fn recipient(document: &[u8]) -> RecipientInfo {
        RecipientInfo {
            key_encryption_algorithm: Some(KeyEncryptionMechanism::RsaesOaepSha256),
            attestation_document: Some(Blob::from(document.to_vec())),
        }
    }

    #[test]
    fn no_recipient_passes() {
        assert!(refuse_recipient(None).is_ok());
    }

    #[test]
    fn garbage_is_not_cose_sign1() {
        assert_eq!(
            check_attestation(&recipient(b"not an attestation document")),
            Err(AttestationError::NotCoseSign1)
        );
        assert_eq!(
            check_attestation(&recipient(&[0xd2])),
            Err(AttestationError::NotCoseSign1)
        );
    }

    #[test]
    fn cose_sign1_never_chains_to_the_nitro_root() {
        // Tag 18, array(4), bstr(1) 0xa0, map(0), bstr(0), bstr(0).
        let doc = [0xd2, 0x84, 0x41, 0xa0, 0xa0, 0x40, 0x40];
        assert_eq!(
            check_attestation(&recipient(&doc)),
            Err(AttestationError::Untrusted)
        );
        assert_eq!(
            check_attestation(&recipient(&doc[1..])),
            Err(AttestationError::Untrusted)
        );
    }

    #[test]
    fn missing_document_is_refused() {
        let r = RecipientInfo {
            key_encryption_algorithm: None,
            attestation_document: None,
        };
        assert_eq!(check_attestation(&r), Err(AttestationError::Missing));
        let e = refuse_recipient(Some(&r)).unwrap_err();
        assert_eq!(e.exception(), Exception::Validation);
    }
}
