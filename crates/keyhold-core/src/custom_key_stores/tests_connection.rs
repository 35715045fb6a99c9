//! Unit tests of the connection state machine, updates, deletion and recovery.

use std::time::Duration;

use keyhold_kms_model::enums::{
    ConnectionErrorCodeType as Code, ConnectionStateType as State, XksProxyConnectivityType,
};
use keyhold_kms_model::shapes::*;

use super::tests::{env, env_with_settings, hsm_req, name_of, xks_req, SECRET};
use super::CustomKeyStoreSettings;
use crate::ports::xks::{HealthCheckReason, XksFailure};
use crate::ports::{MetadataStore, StoredKey};
#[tokio::test]
async fn connect_and_disconnect_follow_the_state_machine() {
    let env = env();
    let id = env
        .create(xks_req("a", "https://xks.example.test", "/kms/xks/v1"))
        .await
        .expect("create");
    assert_eq!(
        name_of(env.disconnect(&id).await),
        "CustomKeyStoreInvalidStateException"
    );
    env.connect(&id).await.expect("connect");
    assert_eq!(
        env.wait_final(&id).await.connection_state,
        Some(State::Connected)
    );
    assert_eq!(
        env.xks.calls().last().map(|c| c.0),
        Some(HealthCheckReason::Connect)
    );
    env.connect(&id)
        .await
        .expect("connect on CONNECTED is a no-op");
    assert_eq!(
        name_of(env.delete(&id).await),
        "CustomKeyStoreInvalidStateException"
    );
    env.disconnect(&id).await.expect("disconnect");
    assert_eq!(
        env.wait_final(&id).await.connection_state,
        Some(State::Disconnected)
    );

    // A failing proxy: FAILED with the classified code; Connect refused until Disconnect.
    env.xks.set(Some(XksFailure::AuthenticationFailed));
    env.connect(&id).await.expect("connect");
    let e = env.wait_final(&id).await;
    assert_eq!(e.connection_state, Some(State::Failed));
    assert_eq!(e.connection_error_code, Some(Code::InvalidCredentials));
    assert_eq!(
        name_of(env.connect(&id).await),
        "CustomKeyStoreInvalidStateException"
    );
    env.disconnect(&id).await.expect("disconnect from FAILED");
    let e = env.wait_final(&id).await;
    assert_eq!(e.connection_state, Some(State::Disconnected));
    assert_eq!(e.connection_error_code, None);
    env.xks.set(None);
    env.connect(&id).await.expect("reconnect");
    assert_eq!(
        env.wait_final(&id).await.connection_state,
        Some(State::Connected)
    );
    assert_eq!(
        name_of(env.connect("cks-00000000000000000").await),
        "CustomKeyStoreNotFoundException"
    );
}

#[tokio::test]
async fn cloudhsm_connect_fails_honestly() {
    let env = env();
    let id = env
        .create(hsm_req("h", "cluster-234567abcde"))
        .await
        .expect("create");
    env.connect(&id).await.expect("connect");
    let e = env.wait_final(&id).await;
    assert_eq!(e.connection_state, Some(State::Failed));
    assert_eq!(e.connection_error_code, Some(Code::ClusterNotFound));
}

#[tokio::test]
async fn update_rules_by_state() {
    let env = env();
    let id = env
        .create(xks_req("a", "https://xks.example.test", "/kms/xks/v1"))
        .await
        .expect("create");
    env.create(hsm_req("taken", "cluster-234567abcde"))
        .await
        .expect("other");
    env.connect(&id).await.expect("connect");
    env.wait_final(&id).await;
    let upd = |f: fn(&mut UpdateCustomKeyStoreRequest)| {
        let mut r = UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.clone(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    // Name while CONNECTED.
    env.update(upd(|r| {
        r.new_custom_key_store_name = Some("renamed".into())
    }))
    .await
    .expect("rename");
    assert_eq!(
        name_of(
            env.update(upd(|r| r.new_custom_key_store_name = Some("taken".into())))
                .await
        ),
        "CustomKeyStoreNameInUseException"
    );
    // Path while CONNECTED: probed with the new value first.
    env.update(upd(|r| {
        r.xks_proxy_uri_path = Some("/new/kms/xks/v1".into())
    }))
    .await
    .expect("path");
    let last = env.xks.calls().last().cloned().expect("probe");
    assert_eq!(
        (last.0, last.2.as_str()),
        (HealthCheckReason::Update, "/new/kms/xks/v1")
    );
    // A failing probe rejects the update and changes nothing.
    env.xks.set(Some(XksFailure::AuthenticationFailed));
    assert_eq!(
        name_of(
            env.update(upd(|r| {
                r.xks_proxy_authentication_credential = Some(XksProxyAuthenticationCredentialType {
                    access_key_id: "ZZZZZZZZZZZZZZZZZZZZ".into(),
                    raw_secret_access_key: SECRET.into(),
                })
            }))
            .await
        ),
        "XksProxyIncorrectAuthenticationCredentialException"
    );
    env.xks.set(None);
    let e = env.entry(&id).await;
    let x = e.xks_proxy_configuration.expect("xks");
    assert_eq!(x.access_key_id.as_deref(), Some("ABCDEFGHIJKLMNOPQRST"));
    assert_eq!(x.uri_path.as_deref(), Some("/new/kms/xks/v1"));
    assert_eq!(e.custom_key_store_name.as_deref(), Some("renamed"));
    // Endpoint only when DISCONNECTED.
    assert_eq!(
        name_of(
            env.update(upd(
                |r| r.xks_proxy_uri_endpoint = Some("https://b.example.test".into())
            ))
            .await
        ),
        "CustomKeyStoreInvalidStateException"
    );
    // Foreign parameter.
    assert_eq!(
        name_of(
            env.update(upd(|r| r.key_store_password = Some("abcdefgh".into())))
                .await
        ),
        "ValidationException"
    );
    env.disconnect(&id).await.expect("disconnect");
    env.wait_final(&id).await;
    env.update(upd(|r| {
        r.xks_proxy_uri_endpoint = Some("https://b.example.test".into())
    }))
    .await
    .expect("endpoint while disconnected");
    // Switching to VPC needs a new endpoint and a service name.
    assert_eq!(
        name_of(
            env.update(upd(
                |r| r.xks_proxy_connectivity = Some(XksProxyConnectivityType::VpcEndpointService)
            ))
            .await
        ),
        "ValidationException"
    );
}

#[tokio::test]
async fn delete_needs_disconnected_and_no_keys() {
    let env = env();
    let id = env
        .create(hsm_req("h", "cluster-234567abcde"))
        .await
        .expect("create");
    env.mem
        .insert_key(
            &StoredKey {
                account_id: "111122223333".into(),
                region: "us-east-1".into(),
                key_id: "k1".into(),
                custom_key_store_id: Some(id.clone()),
                created_at_ms: 0,
                version: 1,
                doc: "{}".into(),
            },
            None,
            &[],
            &[],
        )
        .await
        .expect("key");
    assert_eq!(
        name_of(env.delete(&id).await),
        "CustomKeyStoreHasCMKsException"
    );
    env.mem
        .delete_key("111122223333", "us-east-1", "k1")
        .await
        .expect("delete key");
    env.delete(&id).await.expect("delete");
    assert_eq!(
        name_of(env.delete(&id).await),
        "CustomKeyStoreNotFoundException"
    );
    // The name and cluster are free again.
    env.create(hsm_req("h", "cluster-234567abcde"))
        .await
        .expect("recreate");
}

#[tokio::test]
async fn recovery_drives_stores_left_transient_and_respects_live_leases() {
    let env = env();
    let id = env
        .create(xks_req("a", "https://xks.example.test", "/kms/xks/v1"))
        .await
        .expect("create");
    // Simulate a node that crashed right after accepting Connect: CONNECTING, lease held by a
    // node that is still alive.
    let row = env
        .mem
        .get_custom_key_store("111122223333", "us-east-1", &id)
        .await
        .expect("get")
        .expect("row");
    let mut next = row.clone();
    next.connection_state = "CONNECTING".into();
    next.version += 1;
    env.mem
        .update_custom_key_store(&next, None)
        .await
        .expect("set connecting");
    let lease = format!("cks:{id}");
    assert!(env
        .mem
        .try_acquire_lease(&lease, "node-b", 60_000)
        .await
        .expect("lease"));
    env.cks.recover_once().await.expect("sweep");
    assert_eq!(
        env.entry(&id).await.connection_state,
        Some(State::Connecting)
    );
    // Once the other node's lease is gone, the sweep finishes the job.
    env.mem
        .release_lease(&lease, "node-b")
        .await
        .expect("release");
    assert_eq!(env.cks.recover_once().await.expect("sweep"), 1);
    assert_eq!(
        env.entry(&id).await.connection_state,
        Some(State::Connected)
    );
}

/// A Connect whose proxy call outlasts the lease TTL keeps the lease (renewed every third of
/// the TTL), so another node cannot take the store over halfway through the call.
#[tokio::test]
async fn a_call_longer_than_the_lease_ttl_keeps_the_lease() {
    let env = env_with_settings(CustomKeyStoreSettings {
        node_id: "node-a".into(),
        lease_ttl_ms: 300,
        ..Default::default()
    });
    *env.xks.delay.lock().expect("delay") = Duration::from_millis(1_500);
    let id = env
        .create(xks_req("a", "https://xks.example.test", "/kms/xks/v1"))
        .await
        .expect("create");
    env.connect(&id).await.expect("connect");
    // Three TTLs into the call: without renewal the lease would have expired twice.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        env.entry(&id).await.connection_state,
        Some(State::Connecting)
    );
    assert!(
        !env.mem
            .try_acquire_lease(&format!("cks:{id}"), "node-b", 60_000)
            .await
            .expect("lease"),
        "node-b took the lease of a store node-a is still connecting"
    );
    let e = env.wait_final(&id).await;
    assert_eq!(e.connection_state, Some(State::Connected));
}

#[tokio::test]
async fn disconnect_during_connecting_ends_disconnected() {
    let env = env();
    *env.xks.delay.lock().expect("delay") = Duration::from_millis(200);
    let id = env
        .create(xks_req("a", "https://xks.example.test", "/kms/xks/v1"))
        .await
        .expect("create");
    env.connect(&id).await.expect("connect");
    assert_eq!(
        env.entry(&id).await.connection_state,
        Some(State::Connecting)
    );
    env.connect(&id)
        .await
        .expect("connect on CONNECTING is a no-op");
    env.disconnect(&id)
        .await
        .expect("disconnect while connecting");
    let e = env.wait_final(&id).await;
    assert_eq!(e.connection_state, Some(State::Disconnected));
}

#[tokio::test]
async fn health_check_never_fails_a_connected_store() {
    let env = env();
    let id = env
        .create(xks_req("a", "https://xks.example.test", "/kms/xks/v1"))
        .await
        .expect("create");
    env.connect(&id).await.expect("connect");
    env.wait_final(&id).await;
    env.xks.set(Some(XksFailure::NotReachable {
        detail: "down".into(),
    }));
    env.cks.health_check_once().await.expect("health");
    assert_eq!(
        env.xks.calls().last().map(|c| c.0),
        Some(HealthCheckReason::Periodic)
    );
    assert_eq!(
        env.entry(&id).await.connection_state,
        Some(State::Connected)
    );
}

#[tokio::test]
async fn vpc_stores_check_their_endpoint_service_at_create_and_update() {
    let env = env();
    let svc = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0";
    let vpc = |name: &str| CreateCustomKeyStoreRequest {
        xks_proxy_connectivity: Some(XksProxyConnectivityType::VpcEndpointService),
        xks_proxy_vpc_endpoint_service_name: Some(svc.into()),
        ..xks_req(name, "https://vpc.example.test", "/kms/xks/v1")
    };
    env.xks.set(Some(XksFailure::VpcEndpointServiceNotFound));
    assert_eq!(
        name_of(env.create(vpc("a")).await),
        "XksProxyVpcEndpointServiceNotFoundException"
    );
    env.xks.set(Some(XksFailure::VpcEndpointServiceInvalid {
        detail: "no principal".into(),
    }));
    assert_eq!(
        name_of(env.create(vpc("a")).await),
        "XksProxyVpcEndpointServiceInvalidConfigurationException"
    );
    // The proxy behind a valid service is reached only when the store connects.
    env.xks.set(Some(XksFailure::NotReachable {
        detail: "refused".into(),
    }));
    let id = env.create(vpc("a")).await.expect("create");
    env.update(UpdateCustomKeyStoreRequest {
        custom_key_store_id: id.clone(),
        xks_proxy_uri_path: Some("/p/kms/xks/v1".into()),
        ..Default::default()
    })
    .await
    .expect("update a disconnected VPC store");
    env.xks.set(Some(XksFailure::VpcEndpointServiceNotFound));
    assert_eq!(
        name_of(
            env.update(UpdateCustomKeyStoreRequest {
                custom_key_store_id: id.clone(),
                xks_proxy_uri_path: Some("/q/kms/xks/v1".into()),
                ..Default::default()
            })
            .await
        ),
        "XksProxyVpcEndpointServiceNotFoundException"
    );
    env.connect(&id).await.expect("connect");
    let e = env.wait_final(&id).await;
    assert_eq!(
        e.connection_error_code,
        Some(Code::XksVpcEndpointServiceNotFound)
    );
}
