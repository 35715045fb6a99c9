//! Helpers shared by the end-to-end tests of KMS keys in external key stores.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::{ConnectionStateType, OriginType};
use keyhold_xks::testing::{FakeProxyOptions, FakeXksProxy};

use crate::common::{client, TestServer};
use crate::custom_key_stores_common::{create_xks, server_for, wait_final};

/// The external key every fixture's proxy holds.
pub const XKS_KEY: &str = "xks-key-1";

/// The messages AWS returns for XKS failures (see `keyhold_core::ports::xks::msg`).
pub use keyhold_core::ports::xks::msg;

/// A proxy with one external key, a server reaching it, and a CONNECTED store.
pub struct Fixture {
    pub proxy: FakeXksProxy,
    pub server: TestServer,
    pub kms: aws_sdk_kms::Client,
    pub store_id: String,
    pub opts: FakeProxyOptions,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    /// Starts everything; `top` is extra top-level configuration.
    pub async fn start(top: &str) -> Fixture {
        let opts = FakeProxyOptions::default();
        let proxy = FakeXksProxy::start(opts.clone()).await;
        proxy.add_key(XKS_KEY);
        let tmp = tempfile::tempdir().expect("tmp");
        let server = server_for(&proxy, tmp.path(), top);
        let kms = no_retry_client(&server);
        let store_id = create_xks(&kms, "xks-keys", "/kms/xks/v1")
            .await
            .expect("create store");
        connect(&kms, &store_id).await;
        Fixture {
            proxy,
            server,
            kms,
            store_id,
            opts,
            _tmp: tmp,
        }
    }

    /// Creates a KMS key backed by `xks_key_id`; (key id, ARN).
    pub async fn xks_key(&self, xks_key_id: &str) -> (String, String) {
        let md = self
            .kms
            .create_key()
            .origin(OriginType::ExternalKeyStore)
            .custom_key_store_id(&self.store_id)
            .xks_key_id(xks_key_id)
            .send()
            .await
            .expect("create XKS key")
            .key_metadata()
            .cloned()
            .expect("metadata");
        (
            md.key_id().to_string(),
            md.arn().unwrap_or_default().to_string(),
        )
    }

    /// Creates a default-store key; (key id, ARN).
    pub async fn default_key(&self) -> (String, String) {
        let md = self
            .kms
            .create_key()
            .send()
            .await
            .expect("create key")
            .key_metadata()
            .cloned()
            .expect("metadata");
        (
            md.key_id().to_string(),
            md.arn().unwrap_or_default().to_string(),
        )
    }
}

/// A client that never retries (throttling and proxy failures must be seen as they are).
pub fn no_retry_client(server: &TestServer) -> aws_sdk_kms::Client {
    let base = client(server);
    let conf = base
        .config()
        .to_builder()
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

pub async fn connect(kms: &aws_sdk_kms::Client, id: &str) {
    kms.connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("connect");
    let state = wait_final(kms, id, Duration::from_secs(10)).await;
    assert_eq!(state, (ConnectionStateType::Connected, None));
}

pub async fn disconnect(kms: &aws_sdk_kms::Client, id: &str) {
    kms.disconnect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("disconnect");
    let state = wait_final(kms, id, Duration::from_secs(10)).await;
    assert_eq!(state, (ConnectionStateType::Disconnected, None));
}

/// (error code, message) of a result, ("Ok", "") on success.
pub fn err<T, E: ProvideErrorMetadata>(r: Result<T, E>) -> (String, String) {
    match r {
        Ok(_) => ("Ok".into(), String::new()),
        Err(e) => (
            e.code().unwrap_or_default().to_string(),
            e.message().unwrap_or_default().to_string(),
        ),
    }
}

/// `KMSInvalidStateException` with `message`.
pub fn invalid_state(message: &str) -> (String, String) {
    ("KMSInvalidStateException".to_string(), message.to_string())
}

/// A server reaching `proxy` (re-exported for tests building their own fixture).
pub fn server(proxy: &FakeXksProxy, dir: &Path, top: &str) -> TestServer {
    server_for(proxy, dir, top)
}
