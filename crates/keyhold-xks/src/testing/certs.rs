//! Certificates for the fake proxy, made on the fly so tests need no files and every
//! certificate failure mode is a real certificate, not a mocked verifier.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::CertMode;

/// The hostname the `WrongHostname` certificate is issued for instead of the proxy's.
pub const WRONG_HOSTNAME: &str = "wrong-host.example.test";

/// What the fake proxy serves and what it tells clients to trust.
pub(crate) struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub ca_pem: String,
}

fn ca(common_name: &str) -> Result<(Certificate, KeyPair), rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(2);
    params.not_after = now + Duration::days(365);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert, key))
}

fn leaf(
    hostname: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    issuer: &(Certificate, KeyPair),
) -> Result<(Certificate, KeyPair), rcgen::Error> {
    let mut params = CertificateParams::new(vec![hostname.to_string()])?;
    params.distinguished_name.push(DnType::CommonName, hostname);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = not_before;
    params.not_after = not_after;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer.0, &issuer.1)?;
    Ok((cert, key))
}

/// Makes the test CA and the leaf `mode` asks for.
pub(crate) fn make(hostname: &str, mode: CertMode) -> Result<ServerCert, rcgen::Error> {
    let trusted = ca("Keyhold test XKS CA")?;
    let now = OffsetDateTime::now_utc();
    let (valid_from, valid_to) = (now - Duration::days(1), now + Duration::days(30));
    let (cert, key) = match mode {
        CertMode::Valid => leaf(hostname, valid_from, valid_to, &trusted)?,
        CertMode::Expired => leaf(
            hostname,
            now - Duration::days(30),
            now - Duration::days(1),
            &trusted,
        )?,
        CertMode::WrongHostname => leaf(WRONG_HOSTNAME, valid_from, valid_to, &trusted)?,
        CertMode::UnknownCa => {
            let stranger = ca("Some other CA")?;
            leaf(hostname, valid_from, valid_to, &stranger)?
        }
    };
    Ok(ServerCert {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        ca_pem: trusted.0.pem(),
    })
}
