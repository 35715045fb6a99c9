//! [`XksClient`]: HTTPS + SigV4 calls to XKS proxies over kept-alive connections.
//!
//! A TLS handshake costs more than the whole Encrypt it carries, so connections are kept per
//! (address, server name) and reused. Failure attribution stays exact: a pooled connection that
//! fails before any answer arrives (the proxy closed it, or restarted) is discarded and the call
//! is retried once on a fresh connection, whose failure is classified by its phase as before.
//! The 250 ms budget covers the whole call, including that retry.
//!
//! * `transport`: checking the target, signing the request, and sending it on a pooled or
//!   fresh connection.
//! * `connector`: the domain's [`XksConnector`](keyhold_core::ports::xks::XksConnector) on
//!   top, translating between the domain's types and the wire bodies.

mod connector;
mod transport;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keyhold_core::ports::xks::{XksFailure, XksTarget};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::classify::{classify_status, timed_out};
use crate::config::{VpcEndpointServiceConfig, XksClientConfig};
use crate::wire;

pub use connector::{kms_operation, AES_GCM, SHA_256};
use transport::{key_suffix, Pool};

/// SigV4 service name of the XKS proxy API (spec Appendix A).
pub const SIGV4_SERVICE: &str = "kms-xks-proxy";

/// Why an [`XksClient`] could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum XksClientError {
    /// A CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    CaFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CA file is not PEM, or holds a certificate rustls refuses as a trust anchor.
    #[error("CA file {path} is invalid: {detail}")]
    CaFileInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A CA file holds no certificate at all (probably the wrong file).
    #[error("CA file {path} holds no certificate")]
    CaFileEmpty {
        /// The file.
        path: PathBuf,
    },
    /// A `connect_to` value is not `ip:port`.
    #[error("connect_to entry for {host:?}: {value:?} is not ip:port")]
    BadConnectTo {
        /// The endpoint host.
        host: String,
        /// The configured value.
        value: String,
    },
    /// A VPC endpoint service address is not `ip:port`.
    #[error("VPC endpoint service {name:?}: address {value:?} is not ip:port")]
    BadVpcAddress {
        /// The service name.
        name: String,
        /// The configured value.
        value: String,
    },
    /// rustls refused the TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Calls XKS proxies; implements [`XksConnector`].
#[derive(Debug, Clone)]
pub struct XksClient {
    tls: Arc<rustls::ClientConfig>,
    pool: Pool,
    /// Lower-cased host → address.
    connect_to: BTreeMap<String, SocketAddr>,
    vpc: BTreeMap<String, (SocketAddr, VpcEndpointServiceConfig)>,
    budget_ms: u64,
}

impl XksClient {
    /// Builds the client: loads the trust anchors and checks every address once, so a broken
    /// configuration fails at start-up instead of on the first connect.
    pub fn new(config: XksClientConfig) -> Result<Self, XksClientError> {
        let mut roots = rustls::RootCertStore::empty();
        if config.use_system_roots {
            // A missing or partly unreadable system store is not fatal: private proxies are
            // usually trusted through extra_ca_files.
            let native = rustls_native_certs::load_native_certs();
            for err in &native.errors {
                tracing::debug!(error = %err, "skipping part of the system trust store");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, ignored, "system trust anchors loaded");
        }
        for path in &config.extra_ca_files {
            add_ca_file(&mut roots, path)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        let mut connect_to = BTreeMap::new();
        for (host, value) in &config.connect_to {
            let addr = value
                .parse::<SocketAddr>()
                .map_err(|_| XksClientError::BadConnectTo {
                    host: host.clone(),
                    value: value.clone(),
                })?;
            connect_to.insert(host.to_ascii_lowercase(), addr);
        }
        let mut vpc = BTreeMap::new();
        for (name, svc) in &config.vpc_endpoint_services {
            let addr =
                svc.address
                    .parse::<SocketAddr>()
                    .map_err(|_| XksClientError::BadVpcAddress {
                        name: name.clone(),
                        value: svc.address.clone(),
                    })?;
            vpc.insert(name.clone(), (addr, svc.clone()));
        }
        Ok(Self {
            tls: Arc::new(tls),
            connect_to,
            vpc,
            budget_ms: config.timeout_ms,
            pool: Pool::default(),
        })
    }

    /// `POST {uri_endpoint}{uri_path}{suffix}` with `request` as JSON, signed with SigV4, within
    /// the per-call budget. A 200 answer is parsed strictly as `Resp`; anything else becomes
    /// the [`XksFailure`] its cause calls for.
    pub async fn call<Req, Resp>(
        &self,
        target: &XksTarget,
        suffix: &str,
        request: &Req,
    ) -> Result<Resp, XksFailure>
    where
        Req: Serialize + Sync,
        Resp: DeserializeOwned,
    {
        let prepared = self.prepare(target, suffix, request)?;
        let budget = Duration::from_millis(self.budget_ms);
        let (status, body) = match tokio::time::timeout(budget, self.exchange(prepared)).await {
            Ok(answer) => answer?,
            Err(_) => return Err(timed_out(self.budget_ms)),
        };
        if status == 200 {
            return serde_json::from_slice(&body).map_err(|e| XksFailure::InvalidResponse {
                detail: format!("HTTP 200 body: {e}"),
            });
        }
        let name = serde_json::from_slice::<wire::ErrorBody>(&body)
            .ok()
            .map(|b| b.error_name);
        Err(classify_status(status, name.as_deref()))
    }

    /// GetKeyMetadata for `external_key_id`.
    pub async fn get_key_metadata(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        request: &wire::GetKeyMetadataRequest,
    ) -> Result<wire::GetKeyMetadataResponse, XksFailure> {
        let suffix = key_suffix(external_key_id, "metadata")?;
        self.call(target, &suffix, request).await
    }

    /// Encrypt under `external_key_id`.
    pub async fn encrypt(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        request: &wire::EncryptRequest,
    ) -> Result<wire::EncryptResponse, XksFailure> {
        let suffix = key_suffix(external_key_id, "encrypt")?;
        self.call(target, &suffix, request).await
    }

    /// Decrypt under `external_key_id`.
    pub async fn decrypt(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        request: &wire::DecryptRequest,
    ) -> Result<wire::DecryptResponse, XksFailure> {
        let suffix = key_suffix(external_key_id, "decrypt")?;
        self.call(target, &suffix, request).await
    }
}

/// Adds every certificate of a PEM file as a trust anchor.
fn add_ca_file(
    roots: &mut rustls::RootCertStore,
    path: &std::path::Path,
) -> Result<(), XksClientError> {
    let pem = std::fs::read(path).map_err(|source| XksClientError::CaFileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut count = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| XksClientError::CaFileInvalid {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| XksClientError::CaFileInvalid {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(XksClientError::CaFileEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configuration_is_refused_at_start() {
        let mut config = XksClientConfig {
            use_system_roots: false,
            ..Default::default()
        };
        config
            .connect_to
            .insert("x.test".to_string(), "localhost:443".to_string());
        assert!(matches!(
            XksClient::new(config),
            Err(XksClientError::BadConnectTo { .. })
        ));
        let missing = XksClientConfig {
            use_system_roots: false,
            extra_ca_files: vec![PathBuf::from("/nonexistent/keyhold-ca.pem")],
            ..Default::default()
        };
        assert!(matches!(
            XksClient::new(missing),
            Err(XksClientError::CaFileUnreadable { .. })
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let config = XksClientConfig {
            use_system_roots: false,
            extra_ca_files: vec![empty],
            ..Default::default()
        };
        assert!(matches!(
            XksClient::new(config),
            Err(XksClientError::CaFileEmpty { .. })
        ));
        assert!(XksClient::new(XksClientConfig::default()).is_ok());
    }
}
