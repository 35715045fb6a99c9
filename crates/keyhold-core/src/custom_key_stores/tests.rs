//! Unit tests of the custom key store control plane over an in-memory store and a stub proxy.

use std::sync::Arc;
use std::time::Duration;

use keyhold_crypto::RootKey;
use keyhold_kms_model::enums::{
    ConnectionStateType as State, CustomKeyStoreType, XksProxyConnectivityType,
};
use keyhold_kms_model::shapes::*;

use super::test_support::StubXks;
use super::{CustomKeyStoreSettings, CustomKeyStores};
use crate::context::RequestContext;
use crate::error::KmsError;
use crate::ports::memory::MemoryStore;
use crate::ports::xks::{HealthCheckReason, XksFailure};
use crate::ports::MetadataStore;

pub(super) const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";

pub(super) struct Env {
    pub(super) cks: CustomKeyStores,
    pub(super) mem: Arc<MemoryStore>,
    pub(super) xks: Arc<StubXks>,
    pub(super) ctx: RequestContext,
}

pub(super) fn env_with(max: u32) -> Env {
    env_with_settings(CustomKeyStoreSettings {
        max_custom_key_stores: max,
        node_id: "node-a".into(),
        lease_ttl_ms: 30_000,
        ..Default::default()
    })
}

pub(super) fn env_with_settings(settings: CustomKeyStoreSettings) -> Env {
    let mem = Arc::new(MemoryStore::new());
    let xks = Arc::new(StubXks::default());
    let root = Arc::new(RootKey::new(&[7u8; 32]).expect("root key"));
    let cks = CustomKeyStores::new(mem.clone(), root, xks.clone(), settings);
    Env {
        cks,
        mem,
        xks,
        ctx: RequestContext::new("111122223333", "us-east-1", "req-1"),
    }
}

pub(super) fn env() -> Env {
    env_with(10)
}

pub(super) fn xks_req(name: &str, endpoint: &str, path: &str) -> CreateCustomKeyStoreRequest {
    CreateCustomKeyStoreRequest {
        custom_key_store_name: name.into(),
        custom_key_store_type: Some(CustomKeyStoreType::ExternalKeyStore),
        xks_proxy_connectivity: Some(XksProxyConnectivityType::PublicEndpoint),
        xks_proxy_uri_endpoint: Some(endpoint.into()),
        xks_proxy_uri_path: Some(path.into()),
        xks_proxy_authentication_credential: Some(XksProxyAuthenticationCredentialType {
            access_key_id: "ABCDEFGHIJKLMNOPQRST".into(),
            raw_secret_access_key: SECRET.into(),
        }),
        ..Default::default()
    }
}

pub(super) fn vpc_req(name: &str, endpoint: &str, svc: &str) -> CreateCustomKeyStoreRequest {
    CreateCustomKeyStoreRequest {
        xks_proxy_connectivity: Some(XksProxyConnectivityType::VpcEndpointService),
        xks_proxy_vpc_endpoint_service_name: Some(svc.into()),
        ..xks_req(name, endpoint, "/kms/xks/v1")
    }
}

pub(super) fn hsm_req(name: &str, cluster: &str) -> CreateCustomKeyStoreRequest {
    CreateCustomKeyStoreRequest {
        custom_key_store_name: name.into(),
        cloud_hsm_cluster_id: Some(cluster.into()),
        trust_anchor_certificate: Some("-----BEGIN CERTIFICATE-----".into()),
        key_store_password: Some("kmsPswd1".into()),
        ..Default::default()
    }
}

impl Env {
    pub(super) async fn create(
        &self,
        req: CreateCustomKeyStoreRequest,
    ) -> Result<String, KmsError> {
        self.cks
            .create_custom_key_store(&self.ctx, req)
            .await
            .map(|r| r.custom_key_store_id.unwrap_or_default())
    }
    pub(super) async fn entry(&self, id: &str) -> CustomKeyStoresListEntry {
        let r = self
            .cks
            .describe_custom_key_stores(
                &self.ctx,
                DescribeCustomKeyStoresRequest {
                    custom_key_store_id: Some(id.into()),
                    ..Default::default()
                },
            )
            .await
            .expect("describe");
        r.custom_key_stores.expect("list").remove(0)
    }
    pub(super) async fn wait_final(&self, id: &str) -> CustomKeyStoresListEntry {
        for _ in 0..200 {
            let e = self.entry(id).await;
            if !matches!(
                e.connection_state,
                Some(State::Connecting | State::Disconnecting)
            ) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("store {id} stuck in a transient state");
    }
    pub(super) async fn connect(&self, id: &str) -> Result<(), KmsError> {
        self.cks
            .connect_custom_key_store(
                &self.ctx,
                ConnectCustomKeyStoreRequest {
                    custom_key_store_id: id.into(),
                },
            )
            .await
            .map(|_| ())
    }
    pub(super) async fn disconnect(&self, id: &str) -> Result<(), KmsError> {
        self.cks
            .disconnect_custom_key_store(
                &self.ctx,
                DisconnectCustomKeyStoreRequest {
                    custom_key_store_id: id.into(),
                },
            )
            .await
            .map(|_| ())
    }
    pub(super) async fn update(&self, req: UpdateCustomKeyStoreRequest) -> Result<(), KmsError> {
        self.cks
            .update_custom_key_store(&self.ctx, req)
            .await
            .map(|_| ())
    }
    pub(super) async fn delete(&self, id: &str) -> Result<(), KmsError> {
        self.cks
            .delete_custom_key_store(
                &self.ctx,
                DeleteCustomKeyStoreRequest {
                    custom_key_store_id: id.into(),
                },
            )
            .await
            .map(|_| ())
    }
}

pub(super) fn name_of<T>(r: Result<T, KmsError>) -> &'static str {
    match r {
        Ok(_) => "Ok",
        Err(e) => e.exception_name(),
    }
}

#[tokio::test]
async fn xks_store_is_created_disconnected_with_exactly_awss_fields() {
    let env = env();
    let id = env
        .create(xks_req("ext", "https://xks.example.test", "/kms/xks/v1"))
        .await
        .expect("create");
    assert!(id.starts_with("cks-") && id.len() == 21, "{id}");
    assert!(id[4..]
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let calls = env.xks.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, HealthCheckReason::Create);

    let e = env.entry(&id).await;
    assert_eq!(e.connection_state, Some(State::Disconnected));
    assert_eq!(e.connection_error_code, None);
    assert_eq!(e.custom_key_store_name.as_deref(), Some("ext"));
    assert_eq!(
        e.custom_key_store_type,
        Some(CustomKeyStoreType::ExternalKeyStore)
    );
    assert!(e.creation_date.is_some());
    assert!(e.cloud_hsm_cluster_id.is_none() && e.trust_anchor_certificate.is_none());
    let x = e.xks_proxy_configuration.expect("xks config");
    assert_eq!(
        x.connectivity,
        Some(XksProxyConnectivityType::PublicEndpoint)
    );
    assert_eq!(x.access_key_id.as_deref(), Some("ABCDEFGHIJKLMNOPQRST"));
    assert_eq!(x.uri_endpoint.as_deref(), Some("https://xks.example.test"));
    assert_eq!(x.uri_path.as_deref(), Some("/kms/xks/v1"));
    assert!(x.vpc_endpoint_service_name.is_none());

    // The secret is wrapped at rest.
    let row = env
        .mem
        .get_custom_key_store("111122223333", "us-east-1", &id)
        .await
        .expect("get")
        .expect("row");
    assert!(!row.doc.contains(SECRET));
}

#[tokio::test]
async fn cloudhsm_store_fields_password_wrapped_and_idempotent_retry() {
    let env = env();
    let id = env
        .create(hsm_req("hsm", "cluster-234567abcde"))
        .await
        .expect("create");
    let e = env.entry(&id).await;
    assert_eq!(
        e.custom_key_store_type,
        Some(CustomKeyStoreType::AwsCloudhsm)
    );
    assert_eq!(
        e.cloud_hsm_cluster_id.as_deref(),
        Some("cluster-234567abcde")
    );
    assert!(e.trust_anchor_certificate.is_some());
    assert!(e.xks_proxy_configuration.is_none());
    let row = env
        .mem
        .get_custom_key_store("111122223333", "us-east-1", &id)
        .await
        .expect("get")
        .expect("row");
    assert!(!row.doc.contains("kmsPswd1"));
    // Same properties while DISCONNECTED: the existing id, no new store.
    assert_eq!(
        env.create(hsm_req("hsm", "cluster-234567abcde")).await.ok(),
        Some(id.clone())
    );
    // A different password is a name conflict.
    let mut other = hsm_req("hsm", "cluster-234567abcde");
    other.key_store_password = Some("another1".into());
    assert_eq!(
        name_of(env.create(other).await),
        "CustomKeyStoreNameInUseException"
    );
    assert!(env.xks.calls().is_empty());
}

#[tokio::test]
async fn create_rejects_missing_and_foreign_parameters() {
    let env = env();
    let mut r = xks_req("a", "https://xks.example.test", "/kms/xks/v1");
    r.xks_proxy_uri_path = None;
    assert_eq!(name_of(env.create(r).await), "ValidationException");
    let mut r = xks_req("a", "https://xks.example.test", "/kms/xks/v1");
    r.xks_proxy_authentication_credential = None;
    assert_eq!(name_of(env.create(r).await), "ValidationException");
    let mut r = xks_req("a", "https://xks.example.test", "/kms/xks/v1");
    r.xks_proxy_connectivity = None;
    assert_eq!(name_of(env.create(r).await), "ValidationException");
    let mut r = xks_req("a", "https://xks.example.test", "/kms/xks/v1");
    r.cloud_hsm_cluster_id = Some("cluster-234567abcde".into());
    assert_eq!(name_of(env.create(r).await), "ValidationException");
    let mut r = xks_req("a", "https://xks.example.test", "/kms/xks/v1");
    r.xks_proxy_vpc_endpoint_service_name =
        Some("com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0".into());
    assert_eq!(name_of(env.create(r).await), "ValidationException");
    let mut r = vpc_req(
        "a",
        "https://xks.example.test",
        "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
    );
    r.xks_proxy_vpc_endpoint_service_name = None;
    assert_eq!(name_of(env.create(r).await), "ValidationException");
    let mut r = hsm_req("a", "cluster-234567abcde");
    r.key_store_password = None;
    assert_eq!(name_of(env.create(r).await), "ValidationException");
    let mut r = hsm_req("a", "cluster-234567abcde");
    r.xks_proxy_uri_path = Some("/kms/xks/v1".into());
    assert_eq!(name_of(env.create(r).await), "ValidationException");
    assert!(env.xks.calls().is_empty(), "no probe for invalid requests");
}

#[tokio::test]
async fn uniqueness_rules_map_to_awss_exceptions() {
    let env = env();
    let svc = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0";
    env.create(xks_req("a", "https://pub.example.test", "/kms/xks/v1"))
        .await
        .expect("a");
    assert_eq!(
        name_of(
            env.create(xks_req("a", "https://other.example.test", "/kms/xks/v1"))
                .await
        ),
        "CustomKeyStoreNameInUseException"
    );
    assert_eq!(
        name_of(
            env.create(xks_req("b", "https://PUB.example.test", "/kms/xks/v1"))
                .await
        ),
        "XksProxyUriInUseException"
    );
    // Public stores may share an endpoint with different paths...
    env.create(xks_req("c", "https://pub.example.test", "/p/kms/xks/v1"))
        .await
        .expect("shared public endpoint");
    // ...but a VPC store may not share it.
    assert_eq!(
        name_of(
            env.create(CreateCustomKeyStoreRequest {
                xks_proxy_uri_path: Some("/v/kms/xks/v1".into()),
                ..vpc_req("d", "https://pub.example.test", svc)
            })
            .await
        ),
        "XksProxyUriEndpointInUseException"
    );
    env.create(vpc_req("e", "https://vpc.example.test", svc))
        .await
        .expect("vpc");
    assert_eq!(
        name_of(
            env.create(xks_req("f", "https://vpc.example.test", "/x/kms/xks/v1"))
                .await
        ),
        "XksProxyUriEndpointInUseException"
    );
    assert_eq!(
        name_of(
            env.create(vpc_req("g", "https://vpc2.example.test", svc))
                .await
        ),
        "XksProxyVpcEndpointServiceInUseException"
    );
    env.create(hsm_req("h", "cluster-234567abcde"))
        .await
        .expect("hsm");
    assert_eq!(
        name_of(env.create(hsm_req("i", "cluster-234567abcde")).await),
        "CloudHsmClusterInUseException"
    );
    // Names are per account and Region.
    let other = RequestContext::new("444455556666", "us-east-1", "r");
    env.cks
        .create_custom_key_store(&other, hsm_req("a", "cluster-abcdefghijk"))
        .await
        .expect("same name in another account");
}

#[tokio::test]
async fn quota_is_enforced() {
    let env = env_with(2);
    env.create(hsm_req("a", "cluster-aaaaaaaaaaa"))
        .await
        .expect("a");
    env.create(hsm_req("b", "cluster-bbbbbbbbbbb"))
        .await
        .expect("b");
    assert_eq!(
        name_of(env.create(hsm_req("c", "cluster-ccccccccccc")).await),
        "LimitExceededException"
    );
}

#[tokio::test]
async fn create_probe_failures_raise_the_specs_exceptions_and_create_nothing() {
    let env = env();
    for (failure, expected) in [
        (
            XksFailure::AuthenticationFailed,
            "XksProxyIncorrectAuthenticationCredentialException",
        ),
        (
            XksFailure::NotReachable {
                detail: "refused".into(),
            },
            "XksProxyUriUnreachableException",
        ),
        (
            XksFailure::TimedOut { budget_ms: 250 },
            "XksProxyUriUnreachableException",
        ),
        (
            XksFailure::AllEkmsUnavailable,
            "XksProxyUriUnreachableException",
        ),
        (
            XksFailure::InvalidUriPath,
            "XksProxyInvalidConfigurationException",
        ),
        (
            XksFailure::InvalidResponse {
                detail: "garbage".into(),
            },
            "XksProxyInvalidResponseException",
        ),
        (
            XksFailure::Internal { detail: "x".into() },
            "KMSInternalException",
        ),
    ] {
        env.xks.set(Some(failure));
        let r = env
            .create(xks_req("a", "https://xks.example.test", "/kms/xks/v1"))
            .await;
        assert_eq!(name_of(r), expected);
    }
    let all = env
        .cks
        .describe_custom_key_stores(&env.ctx, DescribeCustomKeyStoresRequest::default())
        .await
        .expect("describe");
    assert_eq!(all.custom_key_stores.map(|v| v.len()), Some(0));
}

#[tokio::test]
async fn describe_filters_and_pages() {
    let env = env();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            env.create(hsm_req(
                &format!("s{i}"),
                &format!("cluster-aaaaaaaaaa{}", (b'a' + i) as char),
            ))
            .await
            .expect("create"),
        );
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let r = env
            .cks
            .describe_custom_key_stores(
                &env.ctx,
                DescribeCustomKeyStoresRequest {
                    limit: Some(2),
                    marker: marker.clone(),
                    ..Default::default()
                },
            )
            .await
            .expect("page");
        let page = r.custom_key_stores.unwrap_or_default();
        assert!(page.len() <= 2);
        seen.extend(page.into_iter().filter_map(|e| e.custom_key_store_id));
        if r.truncated != Some(true) {
            assert!(r.next_marker.is_none());
            break;
        }
        marker = r.next_marker;
        assert!(marker.is_some());
    }
    assert_eq!(seen, ids);

    let by_name = env
        .cks
        .describe_custom_key_stores(
            &env.ctx,
            DescribeCustomKeyStoresRequest {
                custom_key_store_name: Some("s3".into()),
                ..Default::default()
            },
        )
        .await
        .expect("by name");
    assert_eq!(
        by_name.custom_key_stores.unwrap_or_default()[0]
            .custom_key_store_name
            .as_deref(),
        Some("s3")
    );
    let bad = |req| env.cks.describe_custom_key_stores(&env.ctx, req);
    assert_eq!(
        name_of(
            bad(DescribeCustomKeyStoresRequest {
                marker: Some("not-a-marker".into()),
                ..Default::default()
            })
            .await
        ),
        "InvalidMarkerException"
    );
    assert_eq!(
        name_of(
            bad(DescribeCustomKeyStoresRequest {
                custom_key_store_id: Some("cks-00000000000000000".into()),
                ..Default::default()
            })
            .await
        ),
        "CustomKeyStoreNotFoundException"
    );
    assert_eq!(
        name_of(
            bad(DescribeCustomKeyStoresRequest {
                custom_key_store_name: Some("nope".into()),
                ..Default::default()
            })
            .await
        ),
        "CustomKeyStoreNotFoundException"
    );
}
