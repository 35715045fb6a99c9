//! End-to-end: the custom key store control plane of the real `keyhold` binary, driven by the
//! AWS SDK for Rust, with a real loopback XKS proxy (`FakeXksProxy`) where a proxy is needed.

mod common;

mod custom_key_stores_common;

use std::time::Duration;

use aws_sdk_kms::types::{
    ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType, XksProxyConnectivityType,
};
use common::{client, TestServer};
use custom_key_stores_common::*;
use keyhold_xks::testing::{Behaviour, FakeProxyOptions, FakeXksProxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_with_a_real_proxy() {
    let opts = FakeProxyOptions::default();
    let proxy = FakeXksProxy::start(opts.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let server = server_for(&proxy, tmp.path(), "");
    let kms = client(&server);

    let id = create_xks(&kms, "external", "/kms/xks/v1")
        .await
        .expect("create");
    assert!(id.starts_with("cks-") && id.len() == 21, "{id}");
    assert!(
        proxy.requests_seen() >= 1,
        "Create probes a public endpoint"
    );

    let e = describe_one(&kms, &id).await;
    assert_eq!(e.custom_key_store_name(), Some("external"));
    assert_eq!(
        e.connection_state(),
        Some(&ConnectionStateType::Disconnected)
    );
    assert_eq!(
        e.custom_key_store_type(),
        Some(&CustomKeyStoreType::ExternalKeyStore)
    );
    assert!(e.connection_error_code().is_none());
    assert!(e.creation_date().is_some());
    assert!(e.cloud_hsm_cluster_id().is_none() && e.trust_anchor_certificate().is_none());
    let x = e.xks_proxy_configuration().expect("xks config");
    assert_eq!(x.access_key_id(), Some(opts.access_key_id.as_str()));
    assert_eq!(x.uri_endpoint(), Some("https://xks.example.test"));
    assert_eq!(x.uri_path(), Some("/kms/xks/v1"));
    assert_eq!(
        x.connectivity(),
        Some(&XksProxyConnectivityType::PublicEndpoint)
    );
    assert!(x.vpc_endpoint_service_name().is_none());

    // Uniqueness.
    assert_eq!(
        code(create_xks(&kms, "external", "/other/kms/xks/v1").await),
        "CustomKeyStoreNameInUseException"
    );
    assert_eq!(
        code(create_xks(&kms, "second", "/kms/xks/v1").await),
        "XksProxyUriInUseException"
    );
    // Missing type-specific parameter.
    let r = kms
        .create_custom_key_store()
        .custom_key_store_name("incomplete")
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
        .xks_proxy_uri_endpoint(format!("https://{HOST}"))
        .send()
        .await;
    assert_eq!(code(r), "ValidationException");
    // A bad path is a model constraint.
    assert_eq!(
        code(create_xks(&kms, "badpath", "/kms/xks/v1/").await),
        "ValidationException"
    );

    // Connect → CONNECTED (asynchronously).
    kms.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .expect("connect");
    let (state, _) = wait_final(&kms, &id, Duration::from_secs(10)).await;
    assert_eq!(state, ConnectionStateType::Connected);
    let health = proxy.last_health_request().expect("health request");
    assert_eq!(
        health.request_metadata.kms_operation,
        "ConnectCustomKeyStore"
    );
    kms.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .expect("connect on CONNECTED is a no-op");

    // Updates while CONNECTED: the name, the path (probed first); not the endpoint.
    kms.update_custom_key_store()
        .custom_key_store_id(&id)
        .new_custom_key_store_name("renamed")
        .send()
        .await
        .expect("rename while connected");
    let r = kms
        .update_custom_key_store()
        .custom_key_store_id(&id)
        .xks_proxy_uri_path("/wrong/kms/xks/v1")
        .send()
        .await;
    assert_eq!(code(r), "XksProxyInvalidConfigurationException");
    let r = kms
        .update_custom_key_store()
        .custom_key_store_id(&id)
        .xks_proxy_uri_endpoint("https://other.example.test")
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
    let r = kms
        .delete_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreInvalidStateException");

    // Disconnect → DISCONNECTED; again → invalid state; then delete.
    kms.disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .expect("disconnect");
    let (state, code_) = wait_final(&kms, &id, Duration::from_secs(10)).await;
    assert_eq!((state, code_), (ConnectionStateType::Disconnected, None));
    let r = kms
        .disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
    kms.delete_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .expect("delete");
    let r = kms
        .describe_custom_key_stores()
        .custom_key_store_id(&id)
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreNotFoundException");
    let r = kms
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreNotFoundException");

    // A create against a proxy that rejects the credential fails with AWS's exception.
    proxy.set_credential(
        &opts.access_key_id,
        "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc=",
    );
    assert_eq!(
        code(create_xks(&kms, "rejected", "/kms/xks/v1").await),
        "XksProxyIncorrectAuthenticationCredentialException"
    );
    proxy.set_behaviour(Behaviour::AllUnavailable);
    proxy.set_credential(&opts.access_key_id, &opts.secret);
    assert_eq!(
        code(create_xks(&kms, "unavailable", "/kms/xks/v1").await),
        "XksProxyUriUnreachableException"
    );
    proxy.set_behaviour(Behaviour::Garbage);
    assert_eq!(
        code(create_xks(&kms, "garbage", "/kms/xks/v1").await),
        "XksProxyInvalidResponseException"
    );
    proxy.set_behaviour(Behaviour::Slow { ms: TOO_SLOW_MS });
    assert_eq!(
        code(create_xks(&kms, "slow", "/kms/xks/v1").await),
        "XksProxyUriUnreachableException"
    );
    let all = kms
        .describe_custom_key_stores()
        .send()
        .await
        .expect("describe");
    assert!(
        all.custom_key_stores().is_empty(),
        "failed creates leave nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudhsm_stores_paging_quota_and_honest_connect_failure() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clusters = [
        "cluster-aaaaaaaaaaa",
        "cluster-bbbbbbbbbbb",
        "cluster-ccccccccccc",
        "cluster-ddddddddddd",
        "cluster-eeeeeeeeeee",
    ];
    let top = format!(
        "max_custom_key_stores = 4\n{}",
        bound_clusters(tmp.path(), &clusters)
    );
    let cfg = write_config(tmp.path(), &top, &[], &[]);
    let cfg = cfg.display().to_string();
    let server = TestServer::start_with(&["--test-mode", "--config", &cfg]);
    let kms = client(&server);

    let mut ids = Vec::new();
    for (i, cluster) in [
        "cluster-aaaaaaaaaaa",
        "cluster-bbbbbbbbbbb",
        "cluster-ccccccccccc",
    ]
    .iter()
    .enumerate()
    {
        ids.push(create_hsm(&kms, &format!("hsm-{i}"), cluster).await);
    }
    ids.sort();
    let e = describe_one(&kms, &ids[0]).await;
    assert_eq!(
        e.custom_key_store_type(),
        Some(&CustomKeyStoreType::AwsCloudhsm)
    );
    assert!(e.cloud_hsm_cluster_id().is_some() && e.trust_anchor_certificate().is_some());
    assert!(e.xks_proxy_configuration().is_none());

    // Same cluster → in use; identical retry of a disconnected store → same id.
    let r = kms
        .create_custom_key_store()
        .custom_key_store_name("dup-cluster")
        .cloud_hsm_cluster_id("cluster-aaaaaaaaaaa")
        .trust_anchor_certificate(HSM_ANCHOR)
        .key_store_password("kmsPswd1")
        .send()
        .await;
    assert_eq!(code(r), "CloudHsmClusterInUseException");
    let again = create_hsm(&kms, "hsm-0", "cluster-aaaaaaaaaaa").await;
    assert!(ids.contains(&again));

    // Paging with Limit 2.
    let p1 = kms
        .describe_custom_key_stores()
        .limit(2)
        .send()
        .await
        .expect("page 1");
    assert!(p1.truncated());
    let marker = p1.next_marker().expect("marker").to_string();
    let p2 = kms
        .describe_custom_key_stores()
        .limit(2)
        .marker(&marker)
        .send()
        .await
        .expect("page 2");
    assert!(!p2.truncated());
    let seen: Vec<String> = p1
        .custom_key_stores()
        .iter()
        .chain(p2.custom_key_stores())
        .filter_map(|e| e.custom_key_store_id().map(str::to_string))
        .collect();
    assert_eq!(seen, ids);
    // The SDK paginator walks the same pages.
    let all: Vec<_> = kms
        .describe_custom_key_stores()
        .limit(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginator");
    assert_eq!(all.len(), 3);
    let r = kms
        .describe_custom_key_stores()
        .marker("garbage")
        .send()
        .await;
    assert_eq!(code(r), "InvalidMarkerException");
    let r = kms
        .describe_custom_key_stores()
        .custom_key_store_name("no-such-store")
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreNotFoundException");
    let by_name = kms
        .describe_custom_key_stores()
        .custom_key_store_name("hsm-1")
        .send()
        .await
        .expect("by name");
    assert_eq!(by_name.custom_key_stores().len(), 1);

    // Quota (4 configured).
    create_hsm(&kms, "hsm-3", "cluster-ddddddddddd").await;
    let r = kms
        .create_custom_key_store()
        .custom_key_store_name("hsm-4")
        .cloud_hsm_cluster_id("cluster-eeeeeeeeeee")
        .trust_anchor_certificate(HSM_ANCHOR)
        .key_store_password("kmsPswd1")
        .send()
        .await;
    assert_eq!(code(r), "LimitExceededException");

    // The bound clusters' token does not exist: Connect fails honestly.
    kms.connect_custom_key_store()
        .custom_key_store_id(&ids[0])
        .send()
        .await
        .expect("connect");
    let (state, c) = wait_final(&kms, &ids[0], Duration::from_secs(10)).await;
    assert_eq!(state, ConnectionStateType::Failed);
    assert_eq!(c, Some(ConnectionErrorCodeType::NetworkErrors));
    let r = kms
        .connect_custom_key_store()
        .custom_key_store_id(&ids[0])
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
    let r = kms
        .update_custom_key_store()
        .custom_key_store_id(&ids[0])
        .new_custom_key_store_name("x")
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
    kms.disconnect_custom_key_store()
        .custom_key_store_id(&ids[0])
        .send()
        .await
        .expect("disconnect");
    let (state, c) = wait_final(&kms, &ids[0], Duration::from_secs(10)).await;
    assert_eq!((state, c), (ConnectionStateType::Disconnected, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_connecting_reaches_a_final_state() {
    let proxy = FakeXksProxy::start(FakeProxyOptions::default()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    // A long budget so the store stays CONNECTING while the proxy is slow.
    let cfg = write_config(
        tmp.path(),
        "custom_key_store_sweep_interval_secs = 1",
        &[proxy.ca_pem()],
        &[(HOST, proxy.addr().to_string())],
    );
    let text = std::fs::read_to_string(&cfg).expect("read cfg");
    std::fs::write(&cfg, text.replace(XKS_TIMEOUT, "timeout_ms = 20000")).expect("cfg");
    let cfg = cfg.display().to_string();
    let mut server = TestServer::start_with(&["--test-mode", "--config", &cfg]);
    let kms = client(&server);
    let id = create_xks(&kms, "slow", "/kms/xks/v1")
        .await
        .expect("create");

    proxy.set_behaviour(Behaviour::Slow { ms: 15_000 });
    kms.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .expect("connect returns at once");
    assert_eq!(
        describe_one(&kms, &id).await.connection_state(),
        Some(&ConnectionStateType::Connecting)
    );
    // Crash while CONNECTING; the proxy recovers meanwhile.
    server.stop();
    proxy.set_behaviour(Behaviour::Healthy);
    server.restart();
    let kms = client(&server);
    let (state, _) = wait_final(&kms, &id, Duration::from_secs(30)).await;
    assert_eq!(state, ConnectionStateType::Connected);
}
