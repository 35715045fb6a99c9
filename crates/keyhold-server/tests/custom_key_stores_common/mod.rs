//! Helpers shared by the custom key store end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::{
    ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType,
    XksProxyAuthenticationCredentialType, XksProxyConnectivityType,
};
use keyhold_xks::testing::{FakeProxyOptions, FakeXksProxy};

use crate::common::TestServer;

/// The host name the fake proxy's certificate is issued for.
pub const HOST: &str = "xks.example.test";

pub fn code<T, E: ProvideErrorMetadata>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => "Ok".to_string(),
        Err(e) => e.code().unwrap_or_default().to_string(),
    }
}

/// The XKS budget of test servers: above KMS's 250 ms so healthy calls never time out on a
/// loaded CI machine, below the delay of the slow-proxy cases.
pub const XKS_TIMEOUT: &str = "timeout_ms = 1000";
/// A proxy delay that always exceeds [`XKS_TIMEOUT`].
pub const TOO_SLOW_MS: u64 = 3000;

/// Writes a server config trusting `cas` and dialling `hosts` on the given addresses.
pub fn write_config(dir: &Path, top: &str, cas: &[String], hosts: &[(&str, String)]) -> PathBuf {
    let ca_files = if cas.is_empty() {
        String::new()
    } else {
        let ca_file = dir.join("proxy-ca.pem");
        std::fs::write(&ca_file, cas.join("\n")).expect("write CA");
        format!("{:?}", ca_file.display().to_string())
    };
    let mut text = format!(
        "{top}\n[xks]\n{XKS_TIMEOUT}\nuse_system_roots = false\nextra_ca_files = [{ca_files}]\n[xks.connect_to]\n"
    );
    for (host, addr) in hosts {
        text.push_str(&format!("{host:?} = {addr:?}\n"));
    }
    let path = dir.join("keyhold.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A server whose XKS client trusts `proxy` and reaches it as `xks.example.test`.
pub fn server_for(proxy: &FakeXksProxy, dir: &Path, top: &str) -> TestServer {
    let cfg = write_config(
        dir,
        top,
        &[proxy.ca_pem()],
        &[(HOST, proxy.addr().to_string())],
    );
    let cfg = cfg.display().to_string();
    TestServer::start_with(&["--test-mode", "--config", &cfg])
}

pub fn credential(opts: &FakeProxyOptions) -> XksProxyAuthenticationCredentialType {
    XksProxyAuthenticationCredentialType::builder()
        .access_key_id(&opts.access_key_id)
        .raw_secret_access_key(&opts.secret)
        .build()
        .expect("credential")
}

pub async fn create_xks(
    kms: &aws_sdk_kms::Client,
    name: &str,
    path: &str,
) -> Result<
    String,
    aws_sdk_kms::error::SdkError<
        aws_sdk_kms::operation::create_custom_key_store::CreateCustomKeyStoreError,
    >,
> {
    let opts = FakeProxyOptions::default();
    kms.create_custom_key_store()
        .custom_key_store_name(name)
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
        .xks_proxy_uri_endpoint(format!("https://{HOST}"))
        .xks_proxy_uri_path(path)
        .xks_proxy_authentication_credential(credential(&opts))
        .send()
        .await
        .map(|r| r.custom_key_store_id().unwrap_or_default().to_string())
}

/// The trust anchor of the [`bound_clusters`].
pub const HSM_ANCHOR: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

/// Configuration (`[cloudhsm]` and its `[[cloudhsm.bound_clusters]]`) making `clusters` exist
/// in the default account, `ACTIVE` with two HSMs and [`HSM_ANCHOR`] as trust anchor, bound to
/// a token that does not exist: CreateCustomKeyStore accepts them, Connect fails for real.
/// Writes the anchor file into `dir`; goes at the top of a config, before `[xks]`.
pub fn bound_clusters(dir: &Path, clusters: &[&str]) -> String {
    let anchor = dir.join("customerCA.crt");
    std::fs::write(&anchor, HSM_ANCHOR).expect("write anchor");
    let mut text = String::from("[cloudhsm]\nenabled = true\n");
    for c in clusters {
        text.push_str(&format!(
            "[[cloudhsm.bound_clusters]]\ncluster_id = {c:?}\naccount_id = \"123456789012\"\n\
             region = \"us-east-1\"\nmodule_path = \"/usr/lib/softhsm/libsofthsm2.so\"\n\
             token_label = \"absent-{c}\"\ntrust_anchor_file = {:?}\n",
            anchor.display().to_string()
        ));
    }
    text
}

pub async fn create_hsm(kms: &aws_sdk_kms::Client, name: &str, cluster: &str) -> String {
    kms.create_custom_key_store()
        .custom_key_store_name(name)
        .cloud_hsm_cluster_id(cluster)
        .trust_anchor_certificate(HSM_ANCHOR)
        .key_store_password("kmsPswd1")
        .send()
        .await
        .expect("create CloudHSM store")
        .custom_key_store_id()
        .unwrap_or_default()
        .to_string()
}

pub async fn describe_one(
    kms: &aws_sdk_kms::Client,
    id: &str,
) -> aws_sdk_kms::types::CustomKeyStoresListEntry {
    kms.describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("describe")
        .custom_key_stores()
        .first()
        .cloned()
        .expect("one entry")
}

/// Polls DescribeCustomKeyStores until the store leaves CONNECTING/DISCONNECTING.
pub async fn wait_final(
    kms: &aws_sdk_kms::Client,
    id: &str,
    within: Duration,
) -> (ConnectionStateType, Option<ConnectionErrorCodeType>) {
    let deadline = Instant::now() + within;
    loop {
        let e = describe_one(kms, id).await;
        let state = e.connection_state().cloned().expect("state");
        if !matches!(
            state,
            ConnectionStateType::Connecting | ConnectionStateType::Disconnecting
        ) {
            return (state, e.connection_error_code().cloned());
        }
        assert!(Instant::now() < deadline, "store {id} stuck in {state:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Disconnects (if needed), connects, and waits for the final state.
pub async fn reconnect(
    kms: &aws_sdk_kms::Client,
    id: &str,
) -> (ConnectionStateType, Option<ConnectionErrorCodeType>) {
    let (state, _) = wait_final(kms, id, Duration::from_secs(20)).await;
    if state != ConnectionStateType::Disconnected {
        kms.disconnect_custom_key_store()
            .custom_key_store_id(id)
            .send()
            .await
            .expect("disconnect");
        wait_final(kms, id, Duration::from_secs(20)).await;
    }
    kms.connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("connect");
    wait_final(kms, id, Duration::from_secs(20)).await
}

/// Disconnects and waits (for an offline update).
pub async fn disconnect(kms: &aws_sdk_kms::Client, id: &str) {
    let (state, _) = wait_final(kms, id, Duration::from_secs(20)).await;
    if state != ConnectionStateType::Disconnected {
        kms.disconnect_custom_key_store()
            .custom_key_store_id(id)
            .send()
            .await
            .expect("disconnect");
        wait_final(kms, id, Duration::from_secs(20)).await;
    }
}
