//! Shared harness: a CA and server certificate from rcgen, a configuration with two stores on
//! the software backend, a running proxy on 127.0.0.1:0, and clients for it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use keyhold_core::ports::xks::{XksConnectivity, XksTarget};
use keyhold_crypto::SecretBytes;
use keyhold_xks::{XksClient, XksClientConfig};
use keyhold_xks_proxy::backend::pkcs11::Pkcs11Backend;
use keyhold_xks_proxy::backend::software::SoftwareBackend;
use keyhold_xks_proxy::client::{ClientOptions, SignedClient};
use keyhold_xks_proxy::config::{BackendConfig, Config};
use keyhold_xks_proxy::ProxyServer;

pub const HOST: &str = "xks.example.test";
pub const AKID_1: &str = "AKIAXKSPROXYTESTONE2";
pub const SECRET_1: &str = "c2VjcmV0LW9uZS1zZWNyZXQtb25lLXNlY3JldC1vbmUtc2U=";
pub const AKID_2: &str = "AKIAXKSPROXYTESTTWO2";
pub const SECRET_2: &str = "c2VjcmV0LXR3by1zZWNyZXQtdHdvLXNlY3JldC10d28tc2U=";
pub const AKID_3: &str = "AKIAXKSPROXYTESTTHREE";
pub const SECRET_3: &str = "c2VjcmV0LXRocmVlLXNlY3JldC10aHJlZS1zZWNyZXQtdGhy";
pub const REGION: &str = "eu-west-1";

pub struct Pki {
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    ca_cert: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    pub fn new(dir: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Keyhold test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![HOST.to_string()]).expect("params");
        let cert = params.signed_by(&key, &ca_cert, &ca_key).expect("cert");
        let pki = Self {
            ca_pem: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            ca_cert,
            ca_key,
        };
        std::fs::write(&pki.ca_pem, pki.ca_cert.pem()).expect("write");
        std::fs::write(&pki.cert, cert.pem()).expect("write");
        std::fs::write(&pki.key, key.serialize_pem()).expect("write");
        pki
    }

    /// A client certificate with this subject CN, signed by the CA; returns (cert, key) paths.
    pub fn client_cert(&self, dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("cert");
        let (c, k) = (dir.join(format!("{cn}.pem")), dir.join(format!("{cn}.key")));
        std::fs::write(&c, cert.pem()).expect("write");
        std::fs::write(&k, key.serialize_pem()).expect("write");
        (c, k)
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub config_path: PathBuf,
    pub server: ProxyServer,
    pub addr: SocketAddr,
}

/// Configuration text: store "/a" (keys k1 k2 kdisabled allowed, two credentials) and store
/// "/b" (rate limited to 2 requests, burst 2, credential 3), software backend.
/// A configuration with one PKCS#11 backend `hsm` on token `token` (user PIN `pin`, plus the
/// backend settings in `backend_extra`), served as store `/hsm` to `AKID_1`. Latency never
/// makes it DEGRADED here: CI machines are busy, and these tests check availability only.
pub fn pkcs11_config_text(
    pki: &Pki,
    module: &Path,
    token: &str,
    pin: &str,
    backend_extra: &str,
) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
tls_cert = "{cert}"
tls_key = "{key}"
health_cache_seconds = 0
backend_timeout_ms = 2000
degraded_latency_ms = 2000

[backends.hsm]
type = "pkcs11"
module = "{module}"
token_label = "{token}"
user_pin = "{pin}"
{backend_extra}

[[stores]]
prefix = "/hsm"
backend = "hsm"
[[stores.credentials]]
access_key_id = "{AKID_1}"
secret = "{SECRET_1}"
"#,
        cert = pki.cert.display(),
        key = pki.key.display(),
        module = module.display(),
    )
}

pub fn config_text(
    dir: &Path,
    pki: &Pki,
    extra_server: &str,
    a_credentials: &[(&str, &str)],
) -> String {
    let creds: String = a_credentials
        .iter()
        .map(|(id, s)| {
            format!("[[stores.credentials]]\naccess_key_id = \"{id}\"\nsecret = \"{s}\"\n")
        })
        .collect();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
tls_cert = "{cert}"
tls_key = "{key}"
health_cache_seconds = 0
{poll}
{extra_server}

[backends.soft]
type = "software"
key_file = "{dir}/keys.json"
root_key_file = "{dir}/root.key"
create_root_key = true

[[stores]]
prefix = "/a"
backend = "soft"
allowed_keys = ["k1", "k2", "kdisabled", "klisted-missing"]
{creds}
[[stores]]
prefix = "/b"
backend = "soft"
rate_limit_rps = 0.01
rate_limit_burst = 2
[[stores.credentials]]
access_key_id = "{AKID_3}"
secret = "{SECRET_3}"
"#,
        cert = pki.cert.display(),
        key = pki.key.display(),
        dir = dir.display(),
        poll = if extra_server.contains("reload_poll_seconds") {
            ""
        } else {
            "reload_poll_seconds = 1"
        },
    )
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    pub async fn start_with(extra_server: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        let text = config_text(
            dir.path(),
            &pki,
            extra_server,
            &[(AKID_1, SECRET_1), (AKID_2, SECRET_2)],
        );
        let config_path = dir.path().join("xks-proxy.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let config = Config::load(&config_path).expect("valid config");
        let Some(BackendConfig::Software(soft)) = config.backends.get("soft") else {
            panic!("the harness configures a software backend");
        };
        let backend = SoftwareBackend::open("soft", soft).expect("open backend");
        for k in ["k1", "k2", "kdisabled", "kother"] {
            backend.create_key(k).expect("create key");
        }
        backend.set_enabled("kdisabled", false).expect("disable");
        let server = ProxyServer::start(config, Some(config_path.clone()))
            .await
            .expect("proxy starts");
        let addr = server.local_addr;
        Self {
            dir,
            pki,
            config_path,
            server,
            addr,
        }
    }

    pub fn xks_client(&self) -> XksClient {
        xks_client_for(&self.pki, self.addr, 2000)
    }

    pub fn target(&self, prefix: &str, akid: &str, secret: &str) -> XksTarget {
        xks_target(prefix, akid, secret)
    }

    pub fn signed(&self, prefix: &str, akid: &str, secret: &str, http2: bool) -> SignedClient {
        self.signed_custom(prefix, REGION, None, http2)
            .with_credential(akid, secret)
    }

    /// Credential 1, any region and optional client certificate.
    pub fn signed_custom(
        &self,
        prefix: &str,
        region: &str,
        client_cert: Option<(PathBuf, PathBuf)>,
        http2: bool,
    ) -> SignedClient {
        SignedClient::new(ClientOptions {
            url: format!("https://{HOST}{prefix}/kms/xks/v1"),
            connect_to: Some(self.addr),
            ca_file: Some(self.pki.ca_pem.clone()),
            client_cert,
            access_key_id: AKID_1.to_string(),
            secret: SECRET_1.to_string(),
            region: region.to_string(),
            http2,
        })
        .expect("signed client")
    }

    pub fn rewrite_config(&self, extra_server: &str, a_credentials: &[(&str, &str)]) {
        let text = config_text(self.dir.path(), &self.pki, extra_server, a_credentials);
        std::fs::write(&self.config_path, text).expect("rewrite config");
    }
}

pub fn meta(op: &str) -> keyhold_xks::wire::RequestMetadata {
    keyhold_xks::wire::RequestMetadata {
        aws_principal_arn: Some("arn:aws:iam::111122223333:role/app".to_string()),
        kms_operation: op.to_string(),
        kms_request_id: "4112f4d6-db54-4af4-ae30-c55a22a8dfae".to_string(),
        kms_key_arn: Some("arn:aws:kms:eu-west-1:111122223333:key/x".to_string()),
        ..Default::default()
    }
}

/// An `XksClient` that trusts only the test CA of `pki` and reaches `HOST` at `addr`, with
/// requests timing out after `timeout_ms`.
pub fn xks_client_for(pki: &Pki, addr: SocketAddr, timeout_ms: u64) -> XksClient {
    let mut connect_to = BTreeMap::new();
    connect_to.insert(HOST.to_string(), addr.to_string());
    XksClient::new(XksClientConfig {
        extra_ca_files: vec![pki.ca_pem.clone()],
        use_system_roots: false,
        connect_to,
        timeout_ms,
        ..Default::default()
    })
    .expect("client")
}

/// The proxy's store `prefix` at `https://HOST` as a target, signed with the credential
/// `akid` / `secret` in `REGION`.
pub fn xks_target(prefix: &str, akid: &str, secret: &str) -> XksTarget {
    XksTarget {
        uri_endpoint: format!("https://{HOST}"),
        uri_path: format!("{prefix}/kms/xks/v1"),
        connectivity: XksConnectivity::PublicEndpoint,
        access_key_id: akid.to_string(),
        secret_access_key: SecretBytes::from_slice(secret.as_bytes()),
        region: REGION.to_string(),
    }
}

/// A PKCS#11 backend of its own on the token of `config`'s backend `hsm` (as the CLI opens
/// one): keys created through it are not in the cache of the server's backend.
pub fn hsm_backend(config: &Config) -> Pkcs11Backend {
    let Some(BackendConfig::Pkcs11(hsm)) = config.backends.get("hsm") else {
        panic!("pkcs11 backend configured");
    };
    Pkcs11Backend::new("hsm", hsm).expect("backend")
}
