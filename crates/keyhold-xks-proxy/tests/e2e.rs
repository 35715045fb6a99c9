//! End to end through Keyhold's own XKS client (`keyhold_xks::XksClient`), as the KMS server
//! calls the proxy.

mod common;

use std::time::Duration;

use common::*;
use keyhold_core::ports::xks::{HealthCheckReason, XksConnector, XksFailure, XksRequestMetadata};
use keyhold_xks::wire::{DecryptRequest, EncryptRequest, GetKeyMetadataRequest, B64};
use keyhold_xks_proxy::envelope::cdiv;

fn health_meta() -> XksRequestMetadata {
    XksRequestMetadata {
        aws_principal_arn: "AWS Internal".to_string(),
        kms_request_id: "r-health".to_string(),
        custom_key_store_id: None,
    }
}

fn enc(plaintext: &[u8], aad: &[u8]) -> EncryptRequest {
    EncryptRequest {
        request_metadata: meta("Encrypt"),
        plaintext: B64(plaintext.to_vec()),
        encryption_algorithm: "AES_GCM".to_string(),
        additional_authenticated_data: Some(B64(aad.to_vec())),
        ciphertext_data_integrity_value_algorithm: Some("SHA_256".to_string()),
    }
}

#[tokio::test]
async fn health_metadata_and_round_trip_with_aad_and_cdiv() {
    let h = Harness::start().await;
    let client = h.xks_client();
    let t = h.target("/a", AKID_1, SECRET_1);

    let health = client
        .get_health_status(&t, HealthCheckReason::Connect, &health_meta())
        .await
        .expect("health");
    assert_eq!(health.ekm_fleet_details.len(), 1);
    assert_eq!(health.ekm_fleet_details[0].health_status, "ACTIVE");
    assert_eq!(health.xks_proxy_vendor, "Keyhold");

    let md = client
        .get_key_metadata(
            &t,
            "k1",
            &GetKeyMetadataRequest {
                request_metadata: meta("CreateKey"),
            },
        )
        .await
        .expect("metadata");
    assert_eq!(md.key_spec, "AES_256");
    assert_eq!(md.key_usage, ["ENCRYPT", "DECRYPT"]);
    assert_eq!(md.key_status, "ENABLED");

    let plaintext = vec![7u8; 4300];
    let aad = vec![9u8; 8192];
    let out = client
        .encrypt(&t, "k1", &enc(&plaintext, &aad))
        .await
        .expect("encrypt");
    assert_eq!(out.ciphertext.0.len(), plaintext.len());
    assert_eq!(out.initialization_vector.0.len(), 12);
    assert_eq!(out.authentication_tag.0.len(), 16);
    let meta_bytes = out.ciphertext_metadata.clone().expect("metadata").0;
    assert!(meta_bytes.len() <= 20);
    let expected = cdiv(
        &aad,
        &meta_bytes,
        &out.initialization_vector.0,
        &out.ciphertext.0,
        &out.authentication_tag.0,
    );
    assert_eq!(
        out.ciphertext_data_integrity_value
            .as_ref()
            .map(|v| v.0.clone()),
        Some(expected.to_vec())
    );

    let mut dec = DecryptRequest {
        request_metadata: meta("Decrypt"),
        ciphertext: out.ciphertext.clone(),
        ciphertext_metadata: out.ciphertext_metadata.clone(),
        encryption_algorithm: "AES_GCM".to_string(),
        additional_authenticated_data: Some(B64(aad.clone())),
        initialization_vector: out.initialization_vector.clone(),
        authentication_tag: out.authentication_tag.clone(),
    };
    let back = client.decrypt(&t, "k1", &dec).await.expect("decrypt");
    assert_eq!(back.plaintext.0, plaintext);

    // Wrong AAD, another key, and tampered metadata are all InvalidCiphertext.
    dec.additional_authenticated_data = Some(B64(b"other".to_vec()));
    assert_eq!(
        client.decrypt(&t, "k1", &dec).await.err(),
        Some(XksFailure::InvalidCiphertext)
    );
    dec.additional_authenticated_data = Some(B64(aad.clone()));
    assert_eq!(
        client.decrypt(&t, "k2", &dec).await.err(),
        Some(XksFailure::InvalidCiphertext)
    );
    dec.ciphertext_metadata = Some(B64(vec![2]));
    assert_eq!(
        client.decrypt(&t, "k1", &dec).await.err(),
        Some(XksFailure::InvalidCiphertext)
    );
    dec.ciphertext_metadata = None;
    assert_eq!(
        client.decrypt(&t, "k1", &dec).await.err(),
        Some(XksFailure::InvalidCiphertext)
    );

    // Without AAD the encryption still works (AAD is optional).
    let mut no_aad = enc(b"x", b"");
    no_aad.additional_authenticated_data = None;
    no_aad.ciphertext_data_integrity_value_algorithm = None;
    let out = client
        .encrypt(&t, "k1", &no_aad)
        .await
        .expect("encrypt without aad");
    assert!(out.ciphertext_data_integrity_value.is_none());
}

#[tokio::test]
async fn key_states_credentials_and_throttling() {
    let h = Harness::start().await;
    let client = h.xks_client();
    let t = h.target("/a", AKID_1, SECRET_1);

    let md = client
        .get_key_metadata(
            &t,
            "kdisabled",
            &GetKeyMetadataRequest {
                request_metadata: meta("CreateKey"),
            },
        )
        .await
        .expect("metadata of a disabled key");
    assert_eq!(md.key_status, "DISABLED");
    assert_eq!(
        client.encrypt(&t, "kdisabled", &enc(b"x", b"")).await.err(),
        Some(XksFailure::KeyInvalidState)
    );
    assert_eq!(
        client.encrypt(&t, "nope", &enc(b"x", b"")).await.err(),
        Some(XksFailure::KeyNotFound)
    );
    // In the backend but not in this store's allow-list.
    assert_eq!(
        client.encrypt(&t, "kother", &enc(b"x", b"")).await.err(),
        Some(XksFailure::KeyNotFound)
    );
    // In the allow-list but not in the backend.
    assert_eq!(
        client
            .encrypt(&t, "klisted-missing", &enc(b"x", b""))
            .await
            .err(),
        Some(XksFailure::KeyNotFound)
    );

    let wrong = h.target("/a", AKID_1, SECRET_2);
    assert_eq!(
        client.encrypt(&wrong, "k1", &enc(b"x", b"")).await.err(),
        Some(XksFailure::AuthenticationFailed)
    );
    // A credential of another store is not valid here.
    let other_store = h.target("/a", AKID_3, SECRET_3);
    assert_eq!(
        client
            .encrypt(&other_store, "k1", &enc(b"x", b""))
            .await
            .err(),
        Some(XksFailure::AuthenticationFailed)
    );
    let second = h.target("/a", AKID_2, SECRET_2);
    client
        .encrypt(&second, "k1", &enc(b"x", b""))
        .await
        .expect("second credential works");

    let unknown_prefix = h.target("/zzz", AKID_1, SECRET_1);
    assert_eq!(
        client
            .get_health_status(&unknown_prefix, HealthCheckReason::Connect, &health_meta())
            .await
            .err(),
        Some(XksFailure::InvalidUriPath)
    );

    // Store /b allows a burst of two requests.
    let b = h.target("/b", AKID_3, SECRET_3);
    for _ in 0..2 {
        client
            .get_health_status(&b, HealthCheckReason::Periodic, &health_meta())
            .await
            .expect("within burst");
    }
    assert_eq!(
        client
            .get_health_status(&b, HealthCheckReason::Periodic, &health_meta())
            .await
            .err(),
        Some(XksFailure::Throttled)
    );
}

#[tokio::test]
async fn cli_key_changes_and_config_reloads_apply_without_restart() {
    let h = Harness::start().await;
    let client = h.xks_client();
    let t1 = h.target("/a", AKID_1, SECRET_1);
    let t3 = h.target("/a", AKID_3, SECRET_3);
    client
        .encrypt(&t1, "k2", &enc(b"x", b""))
        .await
        .expect("k2 enabled");

    // Rotation: credential 1 out, credential 3 in, by editing the file (picked up by the poll).
    h.rewrite_config("", &[(AKID_2, SECRET_2), (AKID_3, SECRET_3)]);
    let mut switched = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client.encrypt(&t3, "k2", &enc(b"x", b"")).await.is_ok() {
            switched = true;
            break;
        }
    }
    assert!(switched, "new credential accepted after file change");
    assert_eq!(
        client.encrypt(&t1, "k2", &enc(b"x", b"")).await.err(),
        Some(XksFailure::AuthenticationFailed)
    );

    // Explicit reload (what SIGHUP does) back to credential 1.
    h.rewrite_config("", &[(AKID_1, SECRET_1)]);
    h.server.reload().expect("reload");
    client
        .encrypt(&t1, "k2", &enc(b"x", b""))
        .await
        .expect("credential 1 again");
    assert_eq!(
        client.encrypt(&t3, "k2", &enc(b"x", b"")).await.err(),
        Some(XksFailure::AuthenticationFailed)
    );

    // A broken file keeps the old configuration.
    std::fs::write(&h.config_path, "not toml [").expect("write");
    assert!(h.server.reload().is_err());
    client
        .encrypt(&t1, "k2", &enc(b"x", b""))
        .await
        .expect("old configuration kept");

    // The CLI disables a key in the key file; the running proxy notices.
    let cfg_text = common::config_text(h.dir.path(), &h.pki, "", &[(AKID_1, SECRET_1)]);
    std::fs::write(&h.config_path, cfg_text).expect("write");
    keyhold_xks_proxy::cli::software_store(&h.config_path, "/a")
        .expect("store")
        .set_enabled("k2", false)
        .expect("disable");
    let mut disabled = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client.encrypt(&t1, "k2", &enc(b"x", b"")).await.err()
            == Some(XksFailure::KeyInvalidState)
        {
            disabled = true;
            break;
        }
    }
    assert!(disabled, "disabled key refused after the key file changed");
}

#[tokio::test]
async fn health_is_unavailable_when_the_backend_cannot_serve() {
    let h = Harness::start().await;
    let client = h.xks_client();
    let t = h.target("/a", AKID_1, SECRET_1);
    client
        .get_health_status(&t, HealthCheckReason::Connect, &health_meta())
        .await
        .expect("healthy first");
    std::fs::remove_file(h.dir.path().join("keys.json")).expect("remove key file");
    assert_eq!(
        client
            .get_health_status(&t, HealthCheckReason::Connect, &health_meta())
            .await
            .err(),
        Some(XksFailure::AllEkmsUnavailable)
    );
}
