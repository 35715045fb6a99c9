//! The TLS side: rustls with TLS 1.3/1.2 and only the spec's cipher suites, ALPN `h2` and
//! `http/1.1`, and optional mutual TLS with a configured client CA and subject check that
//! ends the handshake for any other client (spec Appendix A, "mTLS").
//!
//! A client certificate that fails verification (unknown CA, expired, wrong subject, ...) is
//! refused with a `handshake_failure` alert, as AWS's reference proxy does, rather than the
//! alert rustls would pick for the cause; the cause is logged. The connection is then closed
//! cleanly ([`close_after_refusal`]): the alert is sent, the write side shut, and what the
//! client already sent is read (bounded) before the socket is dropped, so the client reads the
//! alert instead of a connection reset.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::ring::cipher_suite;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::config::{ConfigError, ServerConfig};

/// The ring provider restricted to the cipher suites the spec lists.
pub fn provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    p
}

fn invalid(m: String) -> ConfigError {
    ConfigError::Invalid(m)
}

/// Reads all certificates of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("{}: no certificate", path.display())));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .ok_or_else(|| invalid(format!("{}: no private key", path.display())))
}

/// Builds the server TLS configuration from `[server]`.
pub fn server_config(server: &ServerConfig) -> Result<rustls::ServerConfig, ConfigError> {
    let provider = Arc::new(provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| invalid(format!("TLS: {e}")))?;
    let builder = match &server.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("{}: {e}", ca.display())))?;
            }
            let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid(format!("client CA: {e}")))?;
            builder.with_client_cert_verifier(Arc::new(SubjectCheck {
                inner,
                allowed_cn: server.client_subject_cn.clone(),
            }))
        }
    };
    let mut config = builder
        .with_single_cert(load_certs(&server.tls_cert)?, load_key(&server.tls_key)?)
        .map_err(|e| invalid(format!("TLS certificate/key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Chain verification by webpki, then the subject common name against the allowed list.
#[derive(Debug)]
struct SubjectCheck {
    inner: Arc<dyn ClientCertVerifier>,
    allowed_cn: Vec<String>,
}

/// Why a client certificate was refused; carried in [`rustls::Error::Other`], which rustls
/// answers with a `handshake_failure` alert.
#[derive(Debug, thiserror::Error)]
#[error("client certificate refused: {0}")]
pub struct ClientCertRefused(#[source] pub rustls::Error);

impl ClientCertRefused {
    /// The rustls error that makes rustls send `handshake_failure`, keeping `cause`.
    pub fn into_rustls(cause: rustls::Error) -> rustls::Error {
        rustls::Error::Other(rustls::OtherError(Arc::new(ClientCertRefused(cause))))
    }
}

/// How long and how much [`close_after_refusal`] reads before dropping the socket.
const DRAIN_TIME: Duration = Duration::from_secs(1);
const DRAIN_BYTES: usize = 64 * 1024;

/// Closes a connection whose TLS handshake failed without resetting it: flushes what is
/// pending (the alert), shuts the write side (FIN), then reads and discards what the client
/// sent — at most 64 KiB, for at most a second, until it closes — and only then drops the
/// socket. A socket closed with unread data is reset by the kernel, and the reset can reach
/// the client before it reads the alert.
pub async fn close_after_refusal<S>(mut io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = io.flush().await;
    let _ = io.shutdown().await;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    let mut buf = [0u8; 4096];
    let mut total = 0usize;
    while total < DRAIN_BYTES {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => break,
        }
    }
}

impl ClientCertVerifier for SubjectCheck {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| {
                tracing::warn!(error = %e, "client certificate refused");
                ClientCertRefused::into_rustls(e)
            })?;
        if self.allowed_cn.is_empty() {
            return Ok(ClientCertVerified::assertion());
        }
        match subject_common_name(end_entity.as_ref()) {
            Some(cn) if self.allowed_cn.iter().any(|a| a == &cn) => {
                Ok(ClientCertVerified::assertion())
            }
            other => {
                tracing::warn!(subject_cn = ?other, "client certificate subject refused");
                Err(ClientCertRefused::into_rustls(
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure,
                    ),
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One DER TLV: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The subject's common name (OID 2.5.4.3) of an X.509 certificate, if it has one.
pub fn subject_common_name(cert: &[u8]) -> Option<String> {
    let (_, certificate, _) = tlv(cert)?;
    let (_, tbs, _) = tlv(certificate)?;
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    // serial, signature algorithm, issuer, validity, then the subject.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (_, subject, _) = tlv(rest)?;
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (_, set, next) = tlv(rdns)?;
        rdns = next;
        let mut attrs = set;
        while !attrs.is_empty() {
            let (_, attr, next) = tlv(attrs)?;
            attrs = next;
            let (_, oid, value) = tlv(attr)?;
            if oid == [0x55, 0x04, 0x03] {
                let (_, text, _) = tlv(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_is_extracted() {
        let mut params = rcgen::CertificateParams::new(vec!["x.test".to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Keyhold");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cks.kms.eu-west-1.amazonaws.com");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        assert_eq!(
            subject_common_name(cert.der()).as_deref(),
            Some("cks.kms.eu-west-1.amazonaws.com")
        );
        assert_eq!(subject_common_name(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject_common_name(b""), None);
    }
}
