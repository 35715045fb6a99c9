//! [`XksClient`]: HTTPS + SigV4 calls to XKS proxies over kept-alive connections.
//!
//! A TLS handshake costs more than the whole Encrypt it carries, so connections are kept per
//! (address, server name) and reused. Failure attribution stays exact: a pooled connection that
//! fails before any answer arrives (the proxy closed it, or restarted) is discarded and the call
//! is retried once on a fresh connection, whose failure is classified by its phase as before.
//! The 250 ms budget covers the whole call, including that retry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use keyhold_core::ports::xks::{
    EkmFleetMember, HealthCheckReason, XksConnectivity, XksConnector, XksDecryptInput,
    XksEncryptInput, XksEncryptOutput, XksFailure, XksHealth, XksKeyMetadata,
    XksKeyRequestMetadata, XksRequestMetadata, XksTarget,
};
use keyhold_crypto::SecretBytes;
use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::classify::{classify_status, classify_transport, timed_out, Phase};
use crate::config::{VpcEndpointServiceConfig, XksClientConfig};
use crate::wire;

/// SigV4 service name of the XKS proxy API (spec Appendix A).
pub const SIGV4_SERVICE: &str = "kms-xks-proxy";

/// Answers larger than this are not proxy answers (the largest legitimate one, Decrypt of
/// ~4300 bytes, is well under 16 KiB).
const MAX_BODY_BYTES: usize = 64 * 1024;

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

/// Where a call's TCP connection goes.
#[derive(Debug, Clone)]
enum Dial {
    Addr(SocketAddr),
    Host(String),
}

/// A signed request ready to be sent.
struct Prepared {
    dial: Dial,
    server_name: ServerName<'static>,
    request: http::Request<Full<Bytes>>,
}

/// Idle connections kept per pool key; more than this are closed instead of kept.
const MAX_IDLE_PER_KEY: usize = 64;
/// Idle connections older than this are not reused (proxies close idle connections too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A kept-alive connection: its request sender and the task driving it.
struct Idle {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    _driver: AbortOnDrop,
    since: std::time::Instant,
}

/// Idle connections by `"<dial>|<server name>"`.
#[derive(Clone, Default)]
struct Pool(Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<Idle>>>>);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool(..)")
    }
}

impl Pool {
    fn take(&self, key: &str) -> Option<Idle> {
        let mut map = self.0.lock().ok()?;
        let idle = map.get_mut(key)?;
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() && c.since.elapsed() < IDLE_TIMEOUT {
                return Some(c);
            }
        }
        None
    }

    fn put(&self, key: String, mut conn: Idle) {
        if conn.sender.is_closed() {
            return;
        }
        conn.since = std::time::Instant::now();
        if let Ok(mut map) = self.0.lock() {
            let idle = map.entry(key).or_default();
            if idle.len() < MAX_IDLE_PER_KEY {
                idle.push(conn);
            }
        }
    }
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

    /// Validates the target, picks the address to dial and signs the request. Everything here
    /// is local, so failures are configuration problems (`VpcEndpointService*`, `Internal`).
    fn prepare<Req: Serialize>(
        &self,
        target: &XksTarget,
        suffix: &str,
        request: &Req,
    ) -> Result<Prepared, XksFailure> {
        let host = endpoint_host(&target.uri_endpoint)?;
        check_path(&target.uri_path)?;
        let dial = match &target.connectivity {
            XksConnectivity::PublicEndpoint => match self.connect_to.get(&host) {
                Some(addr) => Dial::Addr(*addr),
                None => Dial::Host(host.clone()),
            },
            XksConnectivity::VpcEndpointService { service_name, .. } => {
                let (addr, svc) = self
                    .vpc
                    .get(service_name)
                    .ok_or(XksFailure::VpcEndpointServiceNotFound)?;
                svc.validate(&target.region)?;
                Dial::Addr(*addr)
            }
        };
        let server_name = ServerName::try_from(host.clone()).map_err(|e| internal(&e))?;
        let path = format!("{}{}", target.uri_path, suffix);
        let body = serde_json::to_vec(request).map_err(|e| internal(&e))?;
        let secret = std::str::from_utf8(target.secret_access_key.expose())
            .map_err(|_| internal(&"the XKS secret access key is not UTF-8"))?;
        let payload_hash = keyhold_sigv4::payload_hash(&body);
        let headers = [("host", host.as_str())];
        let parts = keyhold_sigv4::RequestParts {
            method: "POST",
            raw_path: &path,
            raw_query: "",
            headers: &headers,
            payload_sha256_hex: &payload_hash,
        };
        let signed = keyhold_sigv4::sign(
            &parts,
            &target.access_key_id,
            secret,
            &target.region,
            SIGV4_SERVICE,
            time::OffsetDateTime::now_utc(),
            &["host", "x-amz-date"],
        )
        .map_err(|e| internal(&e))?;
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(path.as_str())
            .header(http::header::HOST, host.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CONTENT_LENGTH, body.len())
            .header("x-amz-date", signed.amz_date.as_str())
            .header(http::header::AUTHORIZATION, signed.authorization.as_str())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| internal(&e))?;
        Ok(Prepared {
            dial,
            server_name,
            request,
        })
    }

    /// Sends the request on a pooled connection when one is idle, else on a fresh one.
    async fn exchange(&self, p: Prepared) -> Result<(u16, Bytes), XksFailure> {
        let key = format!("{:?}|{:?}", p.dial, p.server_name);
        let (parts, body) = p.request.into_parts();
        let rebuild = || http::Request::from_parts(parts.clone(), body.clone());
        while let Some(mut conn) = self.pool.take(&key) {
            if conn.sender.ready().await.is_err() {
                continue;
            }
            match conn.sender.send_request(rebuild()).await {
                Ok(response) => {
                    let answer = read_answer(response).await?;
                    self.pool.put(key, conn);
                    return Ok(answer);
                }
                // The proxy closed or reset a kept-alive connection before answering: not a
                // proxy failure yet; try a fresh connection.
                Err(e) => {
                    tracing::debug!(error = %e, "pooled XKS connection failed; reconnecting");
                    continue;
                }
            }
        }
        let mut conn = self.connect(&p.dial, p.server_name).await?;
        let response = conn
            .sender
            .send_request(rebuild())
            .await
            .map_err(|e| classify_transport(Phase::Exchange, &e))?;
        let answer = read_answer(response).await?;
        self.pool.put(key, conn);
        Ok(answer)
    }

    /// Connect and handshake: each step's errors are classified by its phase.
    async fn connect(
        &self,
        dial: &Dial,
        server_name: ServerName<'static>,
    ) -> Result<Idle, XksFailure> {
        let tcp = match dial {
            Dial::Addr(addr) => TcpStream::connect(*addr).await,
            Dial::Host(host) => TcpStream::connect((host.as_str(), 443)).await,
        }
        .map_err(|e| classify_transport(Phase::Connect, &e))?;
        // Small request/response pairs: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(server_name, tcp)
            .await
            .map_err(|e| classify_transport(Phase::Handshake, &e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| classify_transport(Phase::Exchange, &e))?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            // Its errors surface through `send_request` and the body.
            let _ = conn.await;
        }));
        Ok(Idle {
            sender,
            _driver: driver,
            since: std::time::Instant::now(),
        })
    }
}

/// Reads a whole (bounded) answer.
async fn read_answer(
    response: http::Response<hyper::body::Incoming>,
) -> Result<(u16, Bytes), XksFailure> {
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                XksFailure::InvalidResponse {
                    detail: format!("body larger than {MAX_BODY_BYTES} bytes"),
                }
            } else {
                classify_transport(Phase::Body, &*e)
            }
        })?
        .to_bytes();
    Ok((status, body))
}

#[async_trait]
impl XksConnector for XksClient {
    async fn get_health_status(
        &self,
        target: &XksTarget,
        reason: HealthCheckReason,
        metadata: &XksRequestMetadata,
    ) -> Result<XksHealth, XksFailure> {
        let request = wire::HealthRequest {
            request_metadata: wire::RequestMetadata {
                kms_operation: kms_operation(reason).to_string(),
                kms_request_id: metadata.kms_request_id.clone(),
                ..Default::default()
            },
        };
        let health: wire::HealthResponse = self.call(target, "/health", &request).await?;
        health
            .validate()
            .map_err(|detail| XksFailure::InvalidResponse { detail })?;
        if health
            .ekm_fleet_details
            .iter()
            .all(|d| d.health_status == "UNAVAILABLE")
        {
            return Err(XksFailure::AllEkmsUnavailable);
        }
        Ok(XksHealth {
            xks_proxy_fleet_size: health.xks_proxy_fleet_size,
            xks_proxy_vendor: health.xks_proxy_vendor,
            xks_proxy_model: health.xks_proxy_model,
            ekm_vendor: health.ekm_vendor,
            ekm_fleet_details: health
                .ekm_fleet_details
                .into_iter()
                .map(|d| EkmFleetMember {
                    id: d.id,
                    model: d.model,
                    health_status: d.health_status,
                })
                .collect(),
        })
    }

    async fn get_key_metadata(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        metadata: &XksKeyRequestMetadata,
    ) -> Result<XksKeyMetadata, XksFailure> {
        let request = wire::GetKeyMetadataRequest {
            request_metadata: key_metadata(metadata),
        };
        let answer = XksClient::get_key_metadata(self, target, external_key_id, &request).await?;
        Ok(XksKeyMetadata {
            key_spec: answer.key_spec,
            key_usage: answer.key_usage,
            key_status: answer.key_status,
        })
    }

    async fn encrypt(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        metadata: &XksKeyRequestMetadata,
        input: &XksEncryptInput,
    ) -> Result<XksEncryptOutput, XksFailure> {
        let request = wire::EncryptRequest {
            request_metadata: key_metadata(metadata),
            plaintext: wire::B64(input.plaintext.clone()),
            encryption_algorithm: AES_GCM.to_string(),
            additional_authenticated_data: (!input.aad.is_empty())
                .then(|| wire::B64(input.aad.clone())),
            ciphertext_data_integrity_value_algorithm: input
                .request_cdiv
                .then(|| SHA_256.to_string()),
        };
        let answer = XksClient::encrypt(self, target, external_key_id, &request).await?;
        Ok(XksEncryptOutput {
            ciphertext: answer.ciphertext.0,
            iv: answer.initialization_vector.0,
            tag: answer.authentication_tag.0,
            ciphertext_metadata: answer.ciphertext_metadata.map(|m| m.0).unwrap_or_default(),
            cdiv: answer.ciphertext_data_integrity_value.map(|c| c.0),
        })
    }

    async fn decrypt(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        metadata: &XksKeyRequestMetadata,
        input: &XksDecryptInput,
    ) -> Result<SecretBytes, XksFailure> {
        let request = wire::DecryptRequest {
            request_metadata: key_metadata(metadata),
            ciphertext: wire::B64(input.ciphertext.clone()),
            ciphertext_metadata: (!input.ciphertext_metadata.is_empty())
                .then(|| wire::B64(input.ciphertext_metadata.clone())),
            encryption_algorithm: AES_GCM.to_string(),
            additional_authenticated_data: (!input.aad.is_empty())
                .then(|| wire::B64(input.aad.clone())),
            initialization_vector: wire::B64(input.iv.clone()),
            authentication_tag: wire::B64(input.tag.clone()),
        };
        let answer = XksClient::decrypt(self, target, external_key_id, &request).await?;
        Ok(SecretBytes::new(answer.plaintext.0))
    }
}

/// The only `encryptionAlgorithm` of XKS API v1.
pub const AES_GCM: &str = "AES_GCM";
/// The only `ciphertextDataIntegrityValueAlgorithm` of XKS API v1.
pub const SHA_256: &str = "SHA_256";

fn key_metadata(m: &XksKeyRequestMetadata) -> wire::RequestMetadata {
    wire::RequestMetadata {
        aws_principal_arn: Some(m.aws_principal_arn.clone()),
        kms_operation: m.kms_operation.clone(),
        kms_request_id: m.kms_request_id.clone(),
        kms_key_arn: m.kms_key_arn.clone(),
        ..Default::default()
    }
}

/// The `kmsOperation` value for a health check.
pub fn kms_operation(reason: HealthCheckReason) -> &'static str {
    match reason {
        HealthCheckReason::Create => "CreateCustomKeyStore",
        HealthCheckReason::Connect => "ConnectCustomKeyStore",
        HealthCheckReason::Update => "UpdateCustomKeyStore",
        HealthCheckReason::Periodic => "KmsHealthCheck",
    }
}

/// Aborts the connection driver when the call ends or its budget runs out, so no task
/// outlives the call.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn internal(e: &dyn std::fmt::Display) -> XksFailure {
    XksFailure::Internal {
        detail: e.to_string(),
    }
}

/// `https://host` → lower-cased `host`; KMS endpoints have no port, path or user info.
fn endpoint_host(uri_endpoint: &str) -> Result<String, XksFailure> {
    let host = uri_endpoint
        .strip_prefix("https://")
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        .ok_or_else(|| internal(&format!("invalid XKS URI endpoint {uri_endpoint:?}")))?;
    Ok(host.to_ascii_lowercase())
}

fn check_path(uri_path: &str) -> Result<(), XksFailure> {
    let ok = uri_path.starts_with('/')
        && uri_path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(internal(&format!("invalid XKS URI path {uri_path:?}")))
    }
}

/// `/keys/{id}/{op}`; ids are 1–128 of `A-Z a-z 0-9 - . _`, so no escaping is needed.
fn key_suffix(external_key_id: &str, op: &str) -> Result<String, XksFailure> {
    let ok = (1..=128).contains(&external_key_id.len())
        && external_key_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(format!("/keys/{external_key_id}/{op}"))
    } else {
        Err(internal(&format!(
            "invalid external key id {external_key_id:?}"
        )))
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
    fn endpoint_and_path_checks() {
        assert_eq!(
            endpoint_host("https://XKS.Example.test").ok(),
            Some("xks.example.test".to_string())
        );
        for bad in [
            "http://x.test",
            "https://",
            "https://x.test:443",
            "https://x.test/p",
        ] {
            assert!(endpoint_host(bad).is_err(), "{bad}");
        }
        assert!(check_path("/prefix_1/kms/xks/v1").is_ok());
        assert!(check_path("kms/xks/v1").is_err());
        assert!(check_path("/a.b/kms/xks/v1").is_err());
        assert_eq!(
            key_suffix("k-1.a_b", "encrypt").ok(),
            Some("/keys/k-1.a_b/encrypt".to_string())
        );
        assert!(key_suffix("k/1", "encrypt").is_err());
        assert!(key_suffix("", "encrypt").is_err());
    }

    #[test]
    fn health_reasons_name_the_kms_operation() {
        assert_eq!(
            kms_operation(HealthCheckReason::Create),
            "CreateCustomKeyStore"
        );
        assert_eq!(
            kms_operation(HealthCheckReason::Connect),
            "ConnectCustomKeyStore"
        );
        assert_eq!(
            kms_operation(HealthCheckReason::Update),
            "UpdateCustomKeyStore"
        );
        assert_eq!(kms_operation(HealthCheckReason::Periodic), "KmsHealthCheck");
    }

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
