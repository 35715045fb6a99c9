//! The cluster CSR and InitializeCluster's certificate checks, with real keys and certificates.

use std::str::FromStr;
use std::time::Duration;

use spki::der::Decode;
use spki::der::{DecodePem, Encode, EncodePem};
use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use super::*;

const CLUSTER: &str = "cluster-abcdefgh234";

fn root_key() -> RootKey {
    RootKey::new(&[7u8; 32]).expect("root key")
}

/// A CA: its key and self-signed certificate (or one issued by `parent`).
struct Ca {
    key: rsa::RsaPrivateKey,
    cert: Certificate,
}

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa")
}

fn spki_of(key: &rsa::RsaPrivateKey) -> SubjectPublicKeyInfoOwned {
    let der = key.to_public_key().to_public_key_der().expect("spki");
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("spki")
}

fn issue(
    profile: Profile,
    subject: &str,
    spki: SubjectPublicKeyInfoOwned,
    signer: &rsa::RsaPrivateKey,
) -> Certificate {
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(signer.clone());
    CertificateBuilder::new(
        profile,
        SerialNumber::from(42u32),
        Validity::from_now(Duration::from_secs(3600)).expect("validity"),
        Name::from_str(subject).expect("name"),
        spki,
        &signer,
    )
    .expect("builder")
    .build::<rsa::pkcs1v15::Signature>()
    .expect("certificate")
}

fn root_ca(name: &str) -> Ca {
    let key = rsa_key();
    let cert = issue(Profile::Root, name, spki_of(&key), &key);
    Ca { key, cert }
}

fn sub_ca(parent: &Ca, name: &str) -> Ca {
    let key = rsa_key();
    let profile = Profile::SubCA {
        issuer: parent.cert.tbs_certificate.subject.clone(),
        path_len_constraint: None,
    };
    let cert = issue(profile, name, spki_of(&key), &parent.key);
    Ca { key, cert }
}

fn leaf(ca: &Ca, spki: SubjectPublicKeyInfoOwned) -> String {
    let profile = Profile::Leaf {
        issuer: ca.cert.tbs_certificate.subject.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: true,
    };
    issue(profile, &format!("CN={CLUSTER}"), spki, &ca.key)
        .to_pem(spki::der::pem::LineEnding::LF)
        .expect("pem")
}

fn pem(c: &Certificate) -> String {
    c.to_pem(spki::der::pem::LineEnding::LF).expect("pem")
}

fn new_csr() -> (ClusterCsr, CertReq) {
    let csr = new_cluster_csr(&root_key(), CLUSTER, "hsm-abcdefgh234").expect("csr");
    let req = CertReq::from_pem(csr.csr_pem.as_bytes()).expect("PKCS#10");
    (csr, req)
}

#[test]
fn the_csr_is_pkcs10_signed_by_the_wrapped_cluster_key() {
    let (csr, req) = new_csr();
    assert!(csr
        .csr_pem
        .starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
    let subject = req.info.subject.to_string();
    assert!(
        subject.contains(&format!("CN={CLUSTER} HSM:hsm-abcdefgh234")),
        "{subject}"
    );
    assert!(subject.contains("C=US"), "{subject}");
    assert_eq!(req.algorithm.oid, SHA256_WITH_RSA);
    // The signature verifies with the request's own key.
    let info = req.info.to_der().expect("der");
    let spki = req.info.public_key.to_der().expect("der");
    let sig = req.signature.as_bytes().expect("bits");
    assert!(verify_rsa::<sha2::Sha256>(&spki, &info, sig));
    // The wrapped key is the CSR's key, 2048 bits, and only this cluster can unwrap it.
    let key = unwrap_cluster_key(&root_key(), CLUSTER, &csr.wrapped_key).expect("unwrap");
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&key).expect("pkcs8");
    assert_eq!(spki_of(&key), req.info.public_key);
    assert_eq!(
        rsa::traits::PublicKeyParts::size(&key) * 8,
        CLUSTER_KEY_BITS
    );
    assert!(unwrap_cluster_key(&root_key(), "cluster-other234567", &csr.wrapped_key).is_err());
    assert!(!csr.wrapped_key.contains("BEGIN"));
}

#[test]
fn a_certificate_for_the_csr_key_signed_by_the_anchor_is_accepted() {
    let (csr, req) = new_csr();
    let ca = root_ca("CN=Test Root CA,O=Example");
    let signed = leaf(&ca, req.info.public_key.clone());
    verify_initialization(CLUSTER, &csr.csr_pem, &signed, &pem(&ca.cert)).expect("valid");
    // A chain: issuing CA first, root last.
    let int = sub_ca(&ca, "CN=Issuing CA,O=Example");
    let signed = leaf(&int, req.info.public_key.clone());
    let chain = format!("{}{}", pem(&int.cert), pem(&ca.cert));
    verify_initialization(CLUSTER, &csr.csr_pem, &signed, &chain).expect("chain");
    // The intermediate alone is not a trust anchor.
    assert_eq!(
        verify_initialization(CLUSTER, &csr.csr_pem, &signed, &pem(&int.cert)),
        Err(InitError::AnchorNotSelfSigned)
    );
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let (csr, _) = new_csr();
    let ca = root_ca("CN=Test Root CA");
    let signed = leaf(&ca, spki_of(&rsa_key()));
    assert_eq!(
        verify_initialization(CLUSTER, &csr.csr_pem, &signed, &pem(&ca.cert)),
        Err(InitError::KeyMismatch)
    );
}

#[test]
fn a_certificate_not_signed_by_the_anchor_is_refused() {
    let (csr, req) = new_csr();
    let ca = root_ca("CN=Test Root CA");
    // Same subject name, other key: the name matches but the signature does not.
    let impostor = root_ca("CN=Test Root CA");
    let signed = leaf(&impostor, req.info.public_key.clone());
    assert_eq!(
        verify_initialization(CLUSTER, &csr.csr_pem, &signed, &pem(&ca.cert)),
        Err(InitError::NotSignedByAnchor)
    );
    let other = root_ca("CN=Other CA");
    let signed = leaf(&other, req.info.public_key.clone());
    assert_eq!(
        verify_initialization(CLUSTER, &csr.csr_pem, &signed, &pem(&ca.cert)),
        Err(InitError::NotSignedByAnchor)
    );
}

#[test]
fn unreadable_certificates_are_refused() {
    let (csr, req) = new_csr();
    let ca = root_ca("CN=Test Root CA");
    let signed = leaf(&ca, req.info.public_key.clone());
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        verify_initialization(CLUSTER, &csr.csr_pem, garbage, &pem(&ca.cert)),
        Err(InitError::SignedCertUnreadable(_))
    ));
    assert!(matches!(
        verify_initialization(CLUSTER, &csr.csr_pem, &signed, "not a certificate"),
        Err(InitError::TrustAnchorUnreadable(_))
    ));
    let old = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    assert!(matches!(
        verify_initialization(CLUSTER, old, &signed, &pem(&ca.cert)),
        Err(InitError::CsrUnreadable(_))
    ));
}
