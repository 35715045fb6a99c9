//! End-to-end: connection diagnostics beyond AWS. Real faults — an XKS proxy with an expired
//! certificate, a proxy answering 404 InvalidUriPathException, a slow proxy, a proxy whose
//! authorization denies the periodic health check, a CloudHSM store whose kmsuser password is
//! wrong on a SoftHSMv2 token — must show on the admin listener's
//! `/custom-key-stores/<id>/diagnostics` and in `keyhold custom-key-stores diagnose` with
//! their exact cause and AWS's documented fix, and in the per-store series of `/metrics`.

mod cloudhsm_common;
mod common;
mod custom_key_stores_common;

use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{ConnectionErrorCodeType as Code, ConnectionStateType as State};
use keyhold_xks::testing::{Behaviour, CertMode, FakeProxyOptions, FakeXksProxy};
use serde_json::Value;

use common::admin::{get, sample, start_with_admin, AdminListener};
use common::{client, TestServer};
use custom_key_stores_common::{credential, reconnect, wait_final, write_config, HOST};

const PATH: &str = "/example/kms/xks/v1";

async fn diagnostics(admin: &str, id: &str) -> Value {
    let (status, body) = get(&format!("{admin}/custom-key-stores/{id}/diagnostics")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// `keyhold custom-key-stores diagnose <args>`: (success, stdout, stderr).
fn diagnose(args: &[&str], env_endpoint: Option<&str>) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keyhold"));
    cmd.args(["custom-key-stores", "diagnose"]).args(args);
    match env_endpoint {
        Some(e) => cmd.env("KEYHOLD_ENDPOINT", e),
        None => cmd.env_remove("KEYHOLD_ENDPOINT"),
    };
    let out = cmd.output().expect("run keyhold");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn connect_and_wait(kms: &aws_sdk_kms::Client, id: &str) -> (State, Option<Code>) {
    kms.connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("connect");
    wait_final(kms, id, Duration::from_secs(20)).await
}

fn yyyy_mm_dd(t: time::OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xks_causes_fixes_and_per_store_metrics() {
    let opts = FakeProxyOptions {
        uri_path: PATH.into(),
        ..FakeProxyOptions::default()
    };
    // The expired certificate's notAfter is "a day before the proxy started".
    let before = yyyy_mm_dd(time::OffsetDateTime::now_utc() - time::Duration::days(1));
    let good = FakeXksProxy::start(opts.clone()).await;
    let expired = FakeXksProxy::start(FakeProxyOptions {
        cert_mode: CertMode::Expired,
        ..opts.clone()
    })
    .await;
    let after = yyyy_mm_dd(time::OffsetDateTime::now_utc() - time::Duration::days(1));
    let tmp = tempfile::tempdir().expect("tmp");
    let cas = [good.ca_pem(), expired.ca_pem()];
    let top = "xks_health_check_interval_secs = 1";
    let route = |addr: String| {
        write_config(tmp.path(), top, &cas, &[(HOST, addr)])
            .display()
            .to_string()
    };
    let cfg = route(good.addr().to_string());
    let (mut server, admin) = start_with_admin(&["--test-mode", "--config", &cfg]);
    let kms = client(&server);
    let id = kms
        .create_custom_key_store()
        .custom_key_store_name("diagnosed")
        .custom_key_store_type(aws_sdk_kms::types::CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(aws_sdk_kms::types::XksProxyConnectivityType::PublicEndpoint)
        .xks_proxy_uri_endpoint(format!("https://{HOST}"))
        .xks_proxy_uri_path(PATH)
        .xks_proxy_authentication_credential(credential(&opts))
        .send()
        .await
        .expect("create")
        .custom_key_store_id()
        .expect("id")
        .to_string();
    let d = diagnostics(&admin, &id).await;
    assert_eq!(d["ConnectionState"], "DISCONNECTED");
    assert_eq!(d["Attempts"].as_array().map(Vec::len), Some(0));

    // The endpoint's host now leads to a proxy whose certificate expired.
    route(expired.addr().to_string());
    server.restart();
    let kms = client(&server);
    assert_eq!(
        connect_and_wait(&kms, &id).await,
        (State::Failed, Some(Code::XksProxyInvalidTlsConfiguration))
    );
    let d = diagnostics(&admin, &id).await;
    assert_eq!(d["CustomKeyStoreName"], "diagnosed");
    assert_eq!(d["CustomKeyStoreType"], "EXTERNAL_KEY_STORE");
    assert_eq!(d["AccountId"], "123456789012");
    assert_eq!(d["ConnectionState"], "FAILED");
    assert_eq!(
        d["ConnectionErrorCode"],
        "XKS_PROXY_INVALID_TLS_CONFIGURATION"
    );
    let a = &d["Attempts"][0];
    assert_eq!(a["Kind"], "Connect");
    assert_eq!(a["Outcome"], "FAILED");
    let cause = a["Cause"].as_str().expect("cause");
    assert!(
        [&before, &after]
            .iter()
            .any(|day| cause == format!("TLS: the certificate of {HOST} expired on {day}")),
        "{cause}"
    );
    assert!(
        a["Fix"]
            .as_str()
            .expect("fix")
            .contains("verify that the TLS certificate is not expired"),
        "{a}"
    );
    assert!(a["NodeId"].as_str().is_some_and(|n| n.starts_with("node-")));

    // Back to the good proxy (and a fresh process: the attempts come from the database).
    route(good.addr().to_string());
    server.restart();
    let kms = client(&server);
    for (behaviour, code, want) in [
        (
            Behaviour::Status {
                status: 404,
                error_name: "InvalidUriPathException".into(),
            },
            Code::XksProxyInvalidConfiguration,
            format!("proxy answered 404 InvalidUriPathException for {PATH}/health"),
        ),
        (
            Behaviour::Slow { ms: 3000 },
            Code::XksProxyTimedOut,
            "proxy did not answer within 1000 ms".to_string(),
        ),
    ] {
        good.set_behaviour(behaviour);
        assert_eq!(
            reconnect(&kms, &id).await,
            (State::Failed, Some(code.clone()))
        );
        let d = diagnostics(&admin, &id).await;
        assert_eq!(d["ConnectionErrorCode"], code.as_str());
        assert_eq!(d["Attempts"][0]["Cause"], want.as_str(), "{d}");
        assert_eq!(d["Attempts"][1]["Kind"], "Disconnect");
        assert_eq!(d["Attempts"][1]["Outcome"], "DISCONNECTED");
        assert!(d["Fix"].as_str().is_some_and(|f| !f.is_empty()));
    }
    good.set_behaviour(Behaviour::Healthy);
    assert_eq!(reconnect(&kms, &id).await, (State::Connected, None));

    // Key operations through the store are counted per store.
    good.add_key("diag-key-1");
    let key_id = kms
        .create_key()
        .origin(aws_sdk_kms::types::OriginType::ExternalKeyStore)
        .custom_key_store_id(&id)
        .xks_key_id("diag-key-1")
        .send()
        .await
        .expect("create XKS key")
        .key_metadata()
        .expect("metadata")
        .key_id()
        .to_string();
    let blob = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"diagnostics".to_vec()))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .cloned()
        .expect("blob");
    kms.decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt");

    // The periodic health check is denied: recorded, and the store stays CONNECTED.
    good.set_behaviour(Behaviour::Status {
        status: 403,
        error_name: "AccessDeniedException".into(),
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let d = diagnostics(&admin, &id).await;
        if d["LastHealthCheck"]["Outcome"] == "FAILED" {
            break d;
        }
        assert!(Instant::now() < deadline, "no failed health check: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(health["ConnectionState"], "CONNECTED");
    let h = &health["LastHealthCheck"];
    assert_eq!(h["Kind"], "HealthCheck");
    assert_eq!(h["ConnectionErrorCode"], "XKS_PROXY_ACCESS_DENIED");
    assert_eq!(
        h["Cause"],
        format!("proxy answered 403 AccessDeniedException for {PATH}/health").as_str()
    );
    assert!(h["Fix"]
        .as_str()
        .is_some_and(|f| f.contains("authorization rules")));
    assert_eq!(health["Attempts"][0]["Outcome"], "CONNECTED");
    assert!(health["Attempts"].as_array().is_some_and(|a| a.len() <= 10));

    // /metrics: the per-store series.
    let (status, text) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    let calls = |op: &str, outcome: &str| {
        sample(
            &text,
            &format!("keyhold_xks_proxy_calls_total{{custom_key_store_id=\"{id}\",operation=\"{op}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(
        calls("GetHealthStatus", "http_404_invalid_uri_path"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(calls("GetHealthStatus", "timed_out"), Some(1.0), "{text}");
    assert!(
        calls("GetHealthStatus", "http_403_access_denied") >= Some(1.0),
        "{text}"
    );
    assert!(calls("GetHealthStatus", "success") >= Some(1.0), "{text}");
    assert_eq!(calls("GetKeyMetadata", "success"), Some(1.0), "{text}");
    assert_eq!(calls("Encrypt", "success"), Some(1.0), "{text}");
    assert_eq!(calls("Decrypt", "success"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("keyhold_xks_proxy_call_duration_seconds_count{{custom_key_store_id=\"{id}\",operation=\"Encrypt\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("keyhold_custom_key_store_keys{{custom_key_store_id=\"{id}\",custom_key_store_type=\"EXTERNAL_KEY_STORE\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains(&key_id), "no key id as a label");

    // The CLI, text and JSON, with --endpoint and with KEYHOLD_ENDPOINT.
    let (ok, out, err) = diagnose(&[&id, "--endpoint", &admin], None);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("Custom key store {id} (diagnosed)")),
        "{out}"
    );
    assert!(out.contains("Connection state: CONNECTED"), "{out}");
    assert!(
        out.contains(&format!("TLS: the certificate of {HOST} expired on")),
        "{out}"
    );
    assert!(
        out.contains("Verify that the XKS proxy supports TLS 1.2 or 1.3."),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "proxy answered 404 InvalidUriPathException for {PATH}/health"
        )),
        "{out}"
    );
    assert!(
        out.contains("Verify the value of the XksProxyUriPath."),
        "{out}"
    );
    assert!(out.contains("proxy did not answer within 1000 ms"), "{out}");
    assert!(out.contains("Last periodic health check:"), "{out}");
    assert!(!out.contains(&opts.secret), "no secret in the output");
    let (ok, out, err) = diagnose(&[&id, "--json"], Some(&admin));
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(v["CustomKeyStoreId"], id.as_str());
    let (ok, _, err) = diagnose(&["cks-00000000000000000", "--endpoint", &admin], None);
    assert!(!ok, "an unknown id must fail");
    assert!(err.contains("not found"), "{err}");
    let (status, _) = get(&format!(
        "{admin}/custom-key-stores/cks-00000000000000000/diagnostics"
    ))
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudhsm_wrong_kmsuser_password_names_c_login_and_the_fix() {
    if !std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "SoftHSMv2 missing but CI=true"
        );
        println!("SKIP: SoftHSMv2 not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("keyhold.toml");
    std::fs::write(&cfg, "[cloudhsm]\nenabled = true\nfault_injection = true\n").expect("config");
    let cfg = cfg.display().to_string();
    let (s, admin) = start_with_admin(&["--test-mode", "--config", &cfg]);
    let kms = client(&s);
    let (store, cluster) =
        cloudhsm_common::connected_store(&s, &kms, ["subnet-5a5a5a5a", "subnet-5b5b5b5b"]).await;

    // Connected: this node's kmsuser session pool shows in /metrics.
    let (_, text) = get(&format!("{admin}/metrics")).await;
    let labels = format!("custom_key_store_id=\"{store}\",cloud_hsm_cluster_id=\"{cluster}\"");
    assert_eq!(
        sample(
            &text,
            &format!("keyhold_hsm_session_pool_capacity{{{labels}}}")
        ),
        Some(8.0),
        "{text}"
    );
    let idle = sample(
        &text,
        &format!("keyhold_hsm_sessions{{{labels},state=\"idle\"}}"),
    );
    let in_use = sample(
        &text,
        &format!("keyhold_hsm_sessions{{{labels},state=\"in_use\"}}"),
    );
    assert!(idle.is_some() && in_use.is_some(), "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("keyhold_custom_key_store_keys{{custom_key_store_id=\"{store}\",custom_key_store_type=\"AWS_CLOUDHSM\"}}")
        ),
        Some(0.0),
        "{text}"
    );

    // INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET: the cause names the subnet.
    let subnet =
        |free: u32| serde_json::json!({"SubnetId": "subnet-5b5b5b5b", "FreeAddresses": free});
    cloudhsm_common::ok(&s, "KeyholdFaultSetSubnet", subnet(0)).await;
    assert_eq!(
        reconnect(&kms, &store).await,
        (State::Failed, Some(Code::InsufficientFreeAddressesInSubnet))
    );
    let d = diagnostics(&admin, &store).await;
    assert_eq!(
        d["Attempts"][0]["Cause"],
        format!("subnet subnet-5b5b5b5b of cluster {cluster} has no free address").as_str()
    );
    assert!(d["Fix"]
        .as_str()
        .is_some_and(|f| f.contains("doesn't have any available IP addresses")));
    cloudhsm_common::ok(&s, "KeyholdFaultSetSubnet", subnet(2)).await;
    assert_eq!(reconnect(&kms, &store).await, (State::Connected, None));

    // INVALID_CREDENTIALS: the store's password is not kmsuser's.
    cloudhsm_common::set_store_password(&kms, &store, "wrongPass1").await;
    assert_eq!(
        reconnect(&kms, &store).await,
        (State::Failed, Some(Code::InvalidCredentials))
    );
    let d = diagnostics(&admin, &store).await;
    assert_eq!(d["CustomKeyStoreType"], "AWS_CLOUDHSM");
    assert_eq!(d["ConnectionErrorCode"], "INVALID_CREDENTIALS");
    let a = &d["Attempts"][0];
    assert_eq!(a["Cause"], "C_Login as kmsuser: CKR_PIN_INCORRECT", "{d}");
    assert!(a["Fix"].as_str().is_some_and(
        |f| f.contains("change the kmsuser account password and update the KeyStorePassword")
    ));
    // The earlier successful connection is still listed.
    let outcomes: Vec<&str> = d["Attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["Outcome"].as_str())
        .collect();
    assert!(outcomes.contains(&"CONNECTED"), "{outcomes:?}");

    let (ok, out, err) = diagnose(&[&store, "--endpoint", &admin], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("Connection state: FAILED (INVALID_CREDENTIALS)"),
        "{out}"
    );
    assert!(
        out.contains("cause: C_Login as kmsuser: CKR_PIN_INCORRECT"),
        "{out}"
    );
    assert!(!out.contains("wrongPass1"), "no password in the output");
}

/// Two nodes sharing PostgreSQL: the attempt one node made is what the other node's admin
/// listener reports (the attempts live in the metadata store, not in a node's memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_sharing_postgresql_reports_the_same_attempts() {
    let Some(url) = common::database_url() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let cluster = "cluster-diagnoseaaaaa";
    let schema = common::fresh_schema("kh_e2e_diag");
    let cfg = tmp.path().join("keyhold.toml");
    std::fs::write(
        &cfg,
        format!(
            "database_schema = {schema:?}\n{}",
            custom_key_stores_common::bound_clusters(tmp.path(), &[cluster])
        ),
    )
    .expect("config");
    let (cfg, root_key) = (
        cfg.display().to_string(),
        tmp.path().join("root.key").display().to_string(),
    );
    let node = |admin: &str| {
        TestServer::start_with(&[
            "--test-mode",
            "--database-url",
            &url,
            "--config",
            &cfg,
            "--root-key-file",
            &root_key,
            "--admin-listen",
            admin,
        ])
    };
    let (la, lb) = (AdminListener::free(), AdminListener::free());
    let a = node(&la.listen);
    let b = node(&lb.listen);
    let kms = client(&a);
    let store = custom_key_stores_common::create_hsm(&kms, "shared-diagnostics", cluster).await;
    // The bound token does not exist: the connection fails for real.
    let (state, code) = connect_and_wait(&kms, &store).await;
    assert_eq!(state, State::Failed);
    let code = code.expect("code");
    let from_a = diagnostics(&la.url, &store).await;
    let from_b = diagnostics(&lb.url, &store).await;
    assert_eq!(from_a["Attempts"], from_b["Attempts"]);
    let attempt = &from_b["Attempts"][0];
    assert_eq!(attempt["ConnectionErrorCode"], code.as_str());
    assert!(
        attempt["Cause"].as_str().is_some_and(|c| !c.is_empty()),
        "{attempt}"
    );
    let node_ids: Vec<String> = [&a, &b]
        .iter()
        .map(|s| std::fs::read_to_string(s.data_dir.join("node-id")).expect("node id"))
        .map(|id| id.trim().to_string())
        .collect();
    assert!(
        attempt["NodeId"]
            .as_str()
            .is_some_and(|n| node_ids.iter().any(|id| id == n)),
        "{attempt} {node_ids:?}"
    );
}
