//! The cluster's certificates: the cluster CSR that `DescribeClusters` shows once the first HSM
//! exists, and the checks `InitializeCluster` makes of `SignedCert` and `TrustAnchor`.
//!
//! * The CSR is a real PKCS#10 request (RFC 2986) for a per-cluster RSA 2048 key pair, signed
//!   with SHA-256 (`sha256WithRSAEncryption`), its subject naming the cluster and its first HSM
//!   ([`csr_subject`]). The private key is kept as PKCS#8 wrapped by Keyhold's root key (AAD
//!   bound to the cluster id) in the cluster's record: the cluster's token only exists after
//!   activation, long after the CSR must be shown, and the record is what every node sharing
//!   the metadata store reads. The plaintext key lives only in zeroizing buffers.
//! * `InitializeCluster` accepts a `SignedCert` only if it carries the CSR's public key and its
//!   signature verifies with the public key of the `TrustAnchor`. The trust anchor is a
//!   self-signed certificate, or a chain (PEM certificates, one after the other) that begins
//!   with the certificate that issued the cluster certificate and ends with a self-signed root;
//!   every certificate with X509v3 extensions must carry Basic Constraints (AWS's RFC 5280
//!   requirements on trust anchors). Signatures: RSA PKCS#1 v1.5 with SHA-256/384/512, ECDSA
//!   P-256/SHA-256 and P-384/SHA-384.

use std::str::FromStr;

use base64::Engine as _;
use keyhold_crypto::RootKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use spki::der::{DecodePem, Encode, EncodePem};
use spki::{DecodePublicKey, ObjectIdentifier};
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// The size of a cluster key, as AWS CloudHSM's cluster CSRs.
pub const CLUSTER_KEY_BITS: usize = 2048;

const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// Why a cluster CSR could not be made or its key not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    /// RSA key generation or signing failed.
    #[error("RSA: {0}")]
    Rsa(#[from] rsa::Error),
    /// PKCS#8 encoding or decoding of the key failed.
    #[error("PKCS#8: {0}")]
    Pkcs8(#[from] rsa::pkcs8::Error),
    /// Building or encoding the request failed.
    #[error("building the CSR: {0}")]
    Build(#[from] x509_cert::builder::Error),
    /// DER or PEM encoding failed.
    #[error("encoding the CSR: {0}")]
    Der(#[from] spki::der::Error),
    /// The wrapped key is not base64.
    #[error("the wrapped cluster key is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The root key failed to wrap the cluster key, or refused to unwrap it (other root key,
    /// or altered record).
    #[error("wrapping or unwrapping the cluster key: {0}")]
    RootKey(#[from] keyhold_crypto::RootKeyError),
}

/// A new cluster CSR and its key, wrapped.
#[derive(Debug, Clone)]
pub struct ClusterCsr {
    /// The PEM `CERTIFICATE REQUEST`.
    pub csr_pem: String,
    /// The PKCS#8 private key wrapped by the root key, base64.
    pub wrapped_key: String,
}

/// The subject of a cluster's CSR: `C=US, ST=Washington, L=Seattle, O=Amazon Web Services,
/// OU=AWS CloudHSM (Keyhold), CN=<cluster id> HSM:<hsm id>:PARTN:0`. AWS's exact subject is
/// not documented; this layout is Keyhold's choice (unconfirmed), keeping the cluster id and
/// the HSM that generated the CSR in the common name.
pub fn csr_subject(cluster_id: &str, hsm_id: &str) -> String {
    format!(
        "CN={cluster_id} HSM:{hsm_id}:PARTN:0,OU=AWS CloudHSM (Keyhold),O=Amazon Web Services,L=Seattle,ST=Washington,C=US"
    )
}

/// The additional data binding a wrapped cluster key to its cluster.
fn key_aad(cluster_id: &str) -> Vec<u8> {
    format!("keyhold-cloudhsm/cluster-key/{cluster_id}").into_bytes()
}

/// Generates the RSA 2048 key pair of `cluster_id` and its CSR signed with it (CPU-bound:
/// call on a blocking thread).
pub fn new_cluster_csr(
    root: &RootKey,
    cluster_id: &str,
    hsm_id: &str,
) -> Result<ClusterCsr, CsrError> {
    let mut rng = rand::thread_rng();
    let key = rsa::RsaPrivateKey::new(&mut rng, CLUSTER_KEY_BITS)?;
    let pkcs8 = key.to_pkcs8_der()?;
    let csr_pem = sign_csr(&key, cluster_id, hsm_id)?;
    let wrapped = root.wrap(&key_aad(cluster_id), pkcs8.as_bytes())?;
    Ok(ClusterCsr {
        csr_pem,
        wrapped_key: base64::engine::general_purpose::STANDARD.encode(wrapped),
    })
}

/// The CSR of `key` for the cluster, PEM.
fn sign_csr(key: &rsa::RsaPrivateKey, cluster_id: &str, hsm_id: &str) -> Result<String, CsrError> {
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let subject = Name::from_str(&csr_subject(cluster_id, hsm_id))?;
    let req = RequestBuilder::new(subject, &signer)?.build::<rsa::pkcs1v15::Signature>()?;
    Ok(req.to_pem(spki::der::pem::LineEnding::LF)?)
}

/// The cluster's private key, unwrapped (PKCS#8 DER in a zeroizing buffer).
pub fn unwrap_cluster_key(
    root: &RootKey,
    cluster_id: &str,
    wrapped_key: &str,
) -> Result<Zeroizing<Vec<u8>>, CsrError> {
    let wrapped = base64::engine::general_purpose::STANDARD.decode(wrapped_key)?;
    let key = root.unwrap(&key_aad(cluster_id), &wrapped)?;
    // Round-trip through the RSA type to check it is the key it claims to be.
    let parsed = rsa::RsaPrivateKey::from_pkcs8_der(key.expose())?;
    drop(parsed);
    Ok(Zeroizing::new(key.expose().to_vec()))
}

/// Why `InitializeCluster`'s certificates were refused. Every variant becomes a
/// `CloudHsmInvalidRequestException` whose message is the variant's text. AWS's own wording of
/// these errors is not documented (unconfirmed); the requirements behind them are AWS's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// `SignedCert` is not one PEM X.509 certificate.
    #[error("SignedCert is not a valid PEM-encoded X.509 certificate: {0}")]
    SignedCertUnreadable(String),
    /// `TrustAnchor` holds no readable PEM X.509 certificate.
    #[error("TrustAnchor is not a valid PEM-encoded X.509 certificate: {0}")]
    TrustAnchorUnreadable(String),
    /// The cluster's stored CSR cannot be read (a record of an earlier release).
    #[error("The cluster CSR of cluster {0} cannot be read; delete the cluster's HSMs and create one again to get a new CSR.")]
    CsrUnreadable(String),
    /// `SignedCert`'s public key is not the CSR's.
    #[error("The signed certificate was not issued for the cluster CSR: its public key does not match the public key of the cluster CSR.")]
    KeyMismatch,
    /// `SignedCert` was not signed by the trust anchor's key.
    #[error("The signed certificate is not signed by the trust anchor: its signature does not verify with the public key of the TrustAnchor certificate.")]
    NotSignedByAnchor,
    /// A certificate of the trust anchor chain is not signed by the next one.
    #[error("The TrustAnchor certificate chain is broken: certificate {0} is not signed by the certificate after it.")]
    BrokenChain(usize),
    /// The last certificate of the trust anchor is not self-signed.
    #[error("The trust anchor must be a self-signed certificate.")]
    AnchorNotSelfSigned,
    /// A trust anchor certificate has X509v3 extensions but no Basic Constraints.
    #[error("The trust anchor does not comply with RFC 5280: if using X509v3 extensions, the X509v3 Basic Constraints extension must be present.")]
    BasicConstraintsMissing,
    /// A signature algorithm Keyhold does not verify.
    #[error("Unsupported signature algorithm {0}; use RSA (PKCS#1 v1.5) with SHA-256, SHA-384 or SHA-512, or ECDSA P-256/SHA-256 or P-384/SHA-384.")]
    UnsupportedAlgorithm(String),
}

/// Checks `InitializeCluster`'s `SignedCert` against the cluster's CSR and its `TrustAnchor`
/// (see the module documentation).
pub fn verify_initialization(
    cluster_id: &str,
    csr_pem: &str,
    signed_cert: &str,
    trust_anchor: &str,
) -> Result<(), InitError> {
    let csr = CertReq::from_pem(csr_pem.trim().as_bytes())
        .map_err(|_| InitError::CsrUnreadable(cluster_id.to_string()))?;
    let cert = Certificate::from_pem(signed_cert.trim().as_bytes())
        .map_err(|e| InitError::SignedCertUnreadable(e.to_string()))?;
    let chain = Certificate::load_pem_chain(trust_anchor.trim().as_bytes())
        .map_err(|e| InitError::TrustAnchorUnreadable(e.to_string()))?;
    let Some(first) = chain.first() else {
        return Err(InitError::TrustAnchorUnreadable(
            "no certificate found".into(),
        ));
    };
    if cert.tbs_certificate.subject_public_key_info != csr.info.public_key {
        return Err(InitError::KeyMismatch);
    }
    for anchor in &chain {
        let has_extensions = anchor
            .tbs_certificate
            .extensions
            .as_ref()
            .is_some_and(|e| !e.is_empty());
        let has_bc = anchor
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .any(|e| e.extn_id == BASIC_CONSTRAINTS);
        if has_extensions && !has_bc {
            return Err(InitError::BasicConstraintsMissing);
        }
    }
    if cert.tbs_certificate.issuer != first.tbs_certificate.subject || !signed_by(&cert, first)? {
        return Err(InitError::NotSignedByAnchor);
    }
    for (i, pair) in chain.windows(2).enumerate() {
        if pair[0].tbs_certificate.issuer != pair[1].tbs_certificate.subject
            || !signed_by(&pair[0], &pair[1])?
        {
            return Err(InitError::BrokenChain(i + 1));
        }
    }
    let root = chain.last().unwrap_or(first);
    if root.tbs_certificate.issuer != root.tbs_certificate.subject || !signed_by(root, root)? {
        return Err(InitError::AnchorNotSelfSigned);
    }
    Ok(())
}

/// Whether `cert`'s signature verifies with `issuer`'s public key. `Err` only for an
/// algorithm Keyhold does not verify.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<bool, InitError> {
    let Ok(tbs) = cert.tbs_certificate.to_der() else {
        return Ok(false);
    };
    let Some(sig) = cert.signature.as_bytes() else {
        return Ok(false);
    };
    let Ok(spki) = issuer.tbs_certificate.subject_public_key_info.to_der() else {
        return Ok(false);
    };
    let alg = cert.signature_algorithm.oid;
    Ok(match alg {
        SHA256_WITH_RSA => verify_rsa::<sha2::Sha256>(&spki, &tbs, sig),
        SHA384_WITH_RSA => verify_rsa::<sha2::Sha384>(&spki, &tbs, sig),
        SHA512_WITH_RSA => verify_rsa::<sha2::Sha512>(&spki, &tbs, sig),
        ECDSA_WITH_SHA256 => verify_p256(&spki, &tbs, sig),
        ECDSA_WITH_SHA384 => verify_p384(&spki, &tbs, sig),
        other => return Err(InitError::UnsupportedAlgorithm(other.to_string())),
    })
}

fn verify_rsa<D>(spki: &[u8], msg: &[u8], sig: &[u8]) -> bool
where
    D: sha2::Digest + rsa::pkcs8::AssociatedOid,
{
    use rsa::signature::Verifier;
    let Ok(key) = rsa::RsaPublicKey::from_public_key_der(spki) else {
        return false;
    };
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(sig) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<D>::new(key)
        .verify(msg, &sig)
        .is_ok()
}

fn verify_p256(spki: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    let (Ok(key), Ok(sig)) = (
        p256::ecdsa::VerifyingKey::from_public_key_der(spki),
        p256::ecdsa::DerSignature::try_from(sig),
    ) else {
        return false;
    };
    key.verify(msg, &sig).is_ok()
}

fn verify_p384(spki: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use p384::ecdsa::signature::Verifier;
    let (Ok(key), Ok(sig)) = (
        p384::ecdsa::VerifyingKey::from_public_key_der(spki),
        p384::ecdsa::DerSignature::try_from(sig),
    ) else {
        return false;
    };
    key.verify(msg, &sig).is_ok()
}

#[cfg(test)]
#[path = "pki_tests.rs"]
mod tests;
