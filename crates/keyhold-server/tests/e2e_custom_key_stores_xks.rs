//! End-to-end: for each XKS `ConnectionErrorCode`, a real loopback HTTPS proxy misbehaves in
//! exactly that way; the store connected to it ends `FAILED` with that code; once the cause
//! is fixed, Disconnect + Connect gives `CONNECTED`.

mod common;
mod custom_key_stores_common;

use std::time::Duration;

use aws_sdk_kms::types::{ConnectionErrorCodeType as Code, ConnectionStateType as State};
use common::{client, TestServer};
use custom_key_stores_common::*;
use keyhold_xks::testing::{Behaviour, CertMode, FakeProxyOptions, FakeXksProxy};

async fn connect(kms: &aws_sdk_kms::Client, id: &str) {
    kms.connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("connect");
}

async fn disconnect(kms: &aws_sdk_kms::Client, id: &str) {
    kms.disconnect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("disconnect");
    let final_ = wait_final(kms, id, Duration::from_secs(10)).await;
    assert_eq!(final_, (State::Disconnected, None));
}

/// Connect must end FAILED with `expected`; after `fix`, Disconnect + Connect ends CONNECTED.
async fn fails_then_recovers(
    kms: &aws_sdk_kms::Client,
    id: &str,
    expected: Code,
    fix: impl FnOnce(),
) {
    connect(kms, id).await;
    let got = wait_final(kms, id, Duration::from_secs(10)).await;
    assert_eq!(
        got,
        (State::Failed, Some(expected.clone())),
        "case {expected:?}"
    );
    fix();
    disconnect(kms, id).await;
    connect(kms, id).await;
    let got = wait_final(kms, id, Duration::from_secs(10)).await;
    assert_eq!(got, (State::Connected, None), "recovery after {expected:?}");
    disconnect(kms, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_answers_map_to_connection_error_codes() {
    let opts = FakeProxyOptions::default();
    let proxy = FakeXksProxy::start(opts.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let server = server_for(&proxy, tmp.path(), "");
    let kms = client(&server);
    let id = create_xks(&kms, "codes", "/kms/xks/v1")
        .await
        .expect("create");

    // INVALID_CREDENTIALS: the proxy no longer accepts the store's secret.
    proxy.set_credential(
        &opts.access_key_id,
        "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI=",
    );
    fails_then_recovers(&kms, &id, Code::InvalidCredentials, || {
        proxy.set_credential(&opts.access_key_id, &opts.secret)
    })
    .await;

    let cases = [
        (
            Behaviour::Status {
                status: 403,
                error_name: "AccessDeniedException".into(),
            },
            Code::XksProxyAccessDenied,
        ),
        (
            Behaviour::Status {
                status: 404,
                error_name: "InvalidUriPathException".into(),
            },
            Code::XksProxyInvalidConfiguration,
        ),
        (Behaviour::Garbage, Code::XksProxyInvalidResponse),
        (Behaviour::WrongShape, Code::XksProxyInvalidResponse),
        (
            Behaviour::Status {
                status: 500,
                error_name: "InternalException".into(),
            },
            Code::XksProxyInvalidResponse,
        ),
        (Behaviour::AllUnavailable, Code::XksProxyNotReachable),
        (Behaviour::CloseImmediately, Code::XksProxyNotReachable),
        (Behaviour::Slow { ms: TOO_SLOW_MS }, Code::XksProxyTimedOut),
        (Behaviour::TruncatedBody, Code::NetworkErrors),
    ];
    for (behaviour, expected) in cases {
        proxy.set_behaviour(behaviour);
        fails_then_recovers(&kms, &id, expected, || {
            proxy.set_behaviour(Behaviour::Healthy)
        })
        .await;
    }
}

/// UpdateCustomKeyStore probes the proxy with the new path first: a path the proxy does not
/// serve is refused (404 InvalidUriPathException) and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_to_a_path_the_proxy_does_not_serve_is_refused() {
    let proxy = FakeXksProxy::start(FakeProxyOptions {
        uri_path: "/tenant/kms/xks/v1".into(),
        ..FakeProxyOptions::default()
    })
    .await;
    let tmp = tempfile::tempdir().expect("tmp");
    let server = server_for(&proxy, tmp.path(), "");
    let kms = client(&server);
    let id = create_xks(&kms, "paths", "/tenant/kms/xks/v1")
        .await
        .expect("create");
    let r = kms
        .update_custom_key_store()
        .custom_key_store_id(&id)
        .xks_proxy_uri_path("/kms/xks/v1")
        .send()
        .await;
    assert_eq!(code(r), "XksProxyInvalidConfigurationException");
    connect(&kms, &id).await;
    assert_eq!(
        wait_final(&kms, &id, Duration::from_secs(10)).await,
        (State::Connected, None)
    );
}

/// TLS failures and refused connections: the cause is where the endpoint's host leads, which
/// Keyhold's configuration decides; the fix is to restart Keyhold with a corrected one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_unreachable_endpoints_map_to_their_codes() {
    let good = FakeXksProxy::start(FakeProxyOptions::default()).await;
    let mut bad = Vec::new();
    for mode in [
        CertMode::Expired,
        CertMode::WrongHostname,
        CertMode::UnknownCa,
    ] {
        bad.push(
            FakeXksProxy::start(FakeProxyOptions {
                cert_mode: mode,
                ..FakeProxyOptions::default()
            })
            .await,
        );
    }
    let mut cas = vec![good.ca_pem()];
    cas.extend(bad.iter().map(|p| p.ca_pem()));
    let tmp = tempfile::tempdir().expect("tmp");
    let route = |addr: String| write_config(tmp.path(), "", &cas, &[(HOST, addr)]);
    let cfg = route(good.addr().to_string()).display().to_string();
    let mut server = TestServer::start_with(&["--test-mode", "--config", &cfg]);
    let id = create_xks(&client(&server), "tls", "/kms/xks/v1")
        .await
        .expect("create");

    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let mut broken: Vec<(String, Code)> = bad
        .iter()
        .map(|p| (p.addr().to_string(), Code::XksProxyInvalidTlsConfiguration))
        .collect();
    broken.push((closed, Code::XksProxyNotReachable));
    for (addr, expected) in broken {
        route(addr);
        server.restart();
        let kms = client(&server);
        connect(&kms, &id).await;
        let got = wait_final(&kms, &id, Duration::from_secs(10)).await;
        assert_eq!(got, (State::Failed, Some(expected.clone())));
        disconnect(&kms, &id).await;
        route(good.addr().to_string());
        server.restart();
        let kms = client(&server);
        connect(&kms, &id).await;
        let got = wait_final(&kms, &id, Duration::from_secs(10)).await;
        assert_eq!(got, (State::Connected, None), "recovery after {expected:?}");
        disconnect(&kms, &id).await;
    }
}
