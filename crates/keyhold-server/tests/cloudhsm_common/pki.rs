//! A test CA (RSA 2048, SHA-256) that signs cluster CSRs the way AWS's guide does with
//! OpenSSL: one per test binary.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use rsa::pkcs8::EncodePublicKey;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::{Decode, DecodePem, EncodePem};
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;
use x509_cert::Certificate;

struct Ca {
    key: rsa::RsaPrivateKey,
    pem: String,
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
    by: &rsa::RsaPrivateKey,
) -> String {
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(by.clone());
    CertificateBuilder::new(
        profile,
        SerialNumber::from(2u32),
        Validity::from_now(Duration::from_secs(86_400)).expect("validity"),
        Name::from_str(subject).expect("name"),
        spki,
        &signer,
    )
    .expect("builder")
    .build::<rsa::pkcs1v15::Signature>()
    .expect("certificate")
    .to_pem(x509_cert::der::pem::LineEnding::LF)
    .expect("pem")
}

fn new_ca(name: &str) -> Ca {
    let key = rsa_key();
    let pem = issue(Profile::Root, name, spki_of(&key), &key);
    Ca { key, pem }
}

fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| new_ca("CN=Keyhold Test Customer CA,O=Keyhold tests,C=US"))
}

fn leaf(ca: &Ca, spki: SubjectPublicKeyInfoOwned) -> String {
    let issuer = Certificate::from_pem(ca.pem.as_bytes())
        .expect("ca")
        .tbs_certificate
        .subject;
    let profile = Profile::Leaf {
        issuer,
        enable_key_agreement: false,
        enable_key_encipherment: true,
    };
    issue(profile, "CN=Keyhold test cluster", spki, &ca.key)
}

fn csr_key(csr_pem: &str) -> SubjectPublicKeyInfoOwned {
    CertReq::from_pem(csr_pem.trim().as_bytes())
        .expect("the cluster CSR is PKCS#10")
        .info
        .public_key
}

/// The test CA's certificate (the cluster's trust anchor, `customerCA.crt`).
pub fn trust_anchor() -> &'static str {
    &ca().pem
}

/// The cluster certificate: the CSR signed by the test CA.
pub fn sign_csr(csr_pem: &str) -> String {
    leaf(ca(), csr_key(csr_pem))
}

/// A certificate from the test CA for a key that is not the CSR's.
pub fn cert_for_other_key() -> String {
    leaf(ca(), spki_of(&rsa_key()))
}

/// The CSR signed by a CA other than the trust anchor (same name, other key).
pub fn sign_csr_by_other_ca(csr_pem: &str) -> String {
    let other = new_ca("CN=Keyhold Test Customer CA,O=Keyhold tests,C=US");
    leaf(&other, csr_key(csr_pem))
}
