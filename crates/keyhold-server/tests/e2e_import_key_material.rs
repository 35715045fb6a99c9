//! End-to-end with the official AWS SDK for Rust: imported key material (`Origin: EXTERNAL`)
//! of symmetric keys, wrapped on the client side with the public key GetParametersForImport
//! returns, for every wrapping algorithm and key spec; the errors AWS documents; delete and
//! reimport; expiry by the server's clock; on-demand rotation to new imported material; and
//! that all of it survives a restart (SQLite) and is shared by two nodes on one PostgreSQL
//! database (`KEYHOLD_TEST_DATABASE_URL`; SKIP without it, a failure under CI=true).
//! Asymmetric and HMAC material and the key-state table: `e2e_import_key_material_specs.rs`.

mod common;
mod import_common;

use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, ImportState, ImportType, IncludeKeyMaterial,
    KeyMaterialState, KeySpec, KeyState, KeyUsageType, OriginType, WrappingKeySpec,
};
use common::{advance_clock, client, database_url, encrypt_blob, failure, TestServer};
use import_common::{create_external, decrypt, import, params, state, wrap, HOUR};

#[tokio::test]
async fn every_wrapping_algorithm_and_key_spec_imports_symmetric_material() {
    let server = TestServer::start();
    let kms = client(&server);
    let cases = [
        (AlgorithmSpec::RsaesOaepSha1, WrappingKeySpec::Rsa2048),
        (AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa3072),
        (AlgorithmSpec::RsaAesKeyWrapSha1, WrappingKeySpec::Rsa4096),
        (AlgorithmSpec::RsaAesKeyWrapSha256, WrappingKeySpec::Rsa2048),
    ];
    for (algorithm, spec) in cases {
        let key = create_external(
            &kms,
            KeySpec::SymmetricDefault,
            KeyUsageType::EncryptDecrypt,
        )
        .await;
        let md = kms.describe_key().key_id(&key).send().await.unwrap();
        let md = md.key_metadata().unwrap();
        assert_eq!(md.key_state(), Some(&KeyState::PendingImport));
        assert_eq!(md.origin(), Some(&OriginType::External));
        assert!(!md.enabled());
        assert_eq!(md.current_key_material_id(), None);
        assert_eq!(md.expiration_model(), None);
        let (code, message) = common::encrypt_failure(&kms, &key).await;
        assert_eq!(code, "KMSInvalidStateException");
        assert!(
            message.ends_with(&format!(":key/{key} is pending import.")),
            "{message}"
        );

        let material = keyhold_crypto::random_bytes(32);
        let p = params(&kms, &key, algorithm.clone(), spec.clone()).await;
        let out = kms
            .import_key_material()
            .key_id(&key)
            .import_token(p.token.clone())
            .encrypted_key_material(wrap(&p, &algorithm, material.expose()))
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{algorithm} with {spec}: {e:?}"));
        let id = out.key_material_id().expect("KeyMaterialId").to_string();
        assert_eq!(id.len(), 64);

        let md = kms.describe_key().key_id(&key).send().await.unwrap();
        let md = md.key_metadata().unwrap();
        assert_eq!(md.key_state(), Some(&KeyState::Enabled));
        assert!(md.enabled());
        assert_eq!(md.current_key_material_id(), Some(id.as_str()));
        assert_eq!(
            md.expiration_model(),
            Some(&ExpirationModelType::KeyMaterialDoesNotExpire)
        );
        assert_eq!(md.valid_to(), None);
        let blob = encrypt_blob(&kms, &key, b"imported material").await;
        let out = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), b"imported material");
        assert_eq!(out.key_material_id(), Some(id.as_str()));
    }
}

#[tokio::test]
async fn tokens_ciphertexts_material_and_valid_to_are_checked_as_aws_does() {
    let server = TestServer::start();
    let kms = client(&server);
    let key = create_external(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let other = create_external(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let material = keyhold_crypto::random_bytes(32);
    let alg = AlgorithmSpec::RsaesOaepSha256;
    let p = params(&kms, &key, alg.clone(), WrappingKeySpec::Rsa2048).await;
    let wrapped = wrap(&p, &alg, material.expose());
    let attempt = |token: Blob, wrapped: Blob| {
        kms.import_key_material()
            .key_id(&key)
            .import_token(token)
            .encrypted_key_material(wrapped)
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
    };

    // Another key's token, a garbage token, a ciphertext that does not unwrap, material of a
    // length AES-256 does not have.
    let q = params(&kms, &other, alg.clone(), WrappingKeySpec::Rsa2048).await;
    let (code, _) = failure(attempt(q.token.clone(), wrapped.clone()).send().await);
    assert_eq!(code, "InvalidImportTokenException");
    let (code, _) = failure(
        attempt(Blob::new(vec![7u8; 600]), wrapped.clone())
            .send()
            .await,
    );
    assert_eq!(code, "InvalidImportTokenException");
    let mut bad = wrapped.as_ref().to_vec();
    bad[3] ^= 0x10;
    let (code, _) = failure(attempt(p.token.clone(), Blob::new(bad)).send().await);
    assert_eq!(code, "InvalidCiphertextException");
    let (code, _) = failure(
        attempt(p.token.clone(), wrap(&p, &alg, &[1u8; 24]))
            .send()
            .await,
    );
    assert_eq!(code, "IncorrectKeyMaterialException");

    // ExpirationModel and ValidTo.
    let base = || {
        kms.import_key_material()
            .key_id(&key)
            .import_token(p.token.clone())
            .encrypted_key_material(wrapped.clone())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (code, message) = failure(base().send().await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
    );
    for valid_to in [now - 60.0, now + 366.0 * 86_400.0] {
        let (code, _) = failure(
            base()
                .valid_to(DateTime::from_secs_f64(valid_to))
                .send()
                .await,
        );
        assert_eq!(code, "ValidationException", "{valid_to}");
    }
    let (code, _) = failure(
        base()
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .valid_to(DateTime::from_secs_f64(now + 3_600.0))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(state(&kms, &key).await, KeyState::PendingImport);

    // The wrapping algorithms AWS no longer offers, or offers only in China Regions.
    for (a, s) in [
        (AlgorithmSpec::RsaesPkcs1V15, WrappingKeySpec::Rsa2048),
        (AlgorithmSpec::Sm2Pke, WrappingKeySpec::Sm2),
    ] {
        let r = kms
            .get_parameters_for_import()
            .key_id(&key)
            .wrapping_algorithm(a)
            .wrapping_key_spec(s)
            .send()
            .await;
        assert_eq!(failure(r).0, "ValidationException");
    }
    // Keys with KMS's own material are not for import.
    let aws = kms.create_key().send().await.unwrap();
    let aws = aws.key_metadata().unwrap();
    let (code, message) = failure(
        kms.get_parameters_for_import()
            .key_id(aws.key_id())
            .wrapping_algorithm(alg.clone())
            .wrapping_key_spec(WrappingKeySpec::Rsa2048)
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");
    assert_eq!(
        message,
        format!(
            "{} origin is AWS_KMS which is not valid for this operation.",
            aws.arn().unwrap()
        )
    );

    // Tokens expire after 24 hours of the server's clock; a fresh one works.
    advance_clock(&server, 24 * HOUR + 60).await;
    let (code, _) = failure(attempt(p.token.clone(), wrapped.clone()).send().await);
    assert_eq!(code, "ExpiredImportTokenException");
    import(&kms, &key, material.expose(), alg).await;
    assert_eq!(state(&kms, &key).await, KeyState::Enabled);

    // Different material is refused on reimport; automatic rotation is refused.
    let different = keyhold_crypto::random_bytes(32);
    let p = params(
        &kms,
        &key,
        AlgorithmSpec::RsaesOaepSha1,
        WrappingKeySpec::Rsa2048,
    )
    .await;
    let (code, _) = failure(
        kms.import_key_material()
            .key_id(&key)
            .import_token(p.token.clone())
            .encrypted_key_material(wrap(&p, &AlgorithmSpec::RsaesOaepSha1, different.expose()))
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await,
    );
    assert_eq!(code, "IncorrectKeyMaterialException");
    let (code, message) = failure(kms.enable_key_rotation().key_id(&key).send().await);
    assert_eq!(code, "UnsupportedOperationException");
    assert!(message.ends_with("origin is EXTERNAL which is not valid for this operation."));
}

#[tokio::test]
async fn delete_reimport_expiry_and_rotation_keep_old_ciphertexts_decrypting() {
    let mut server = TestServer::start();
    let kms = client(&server);
    let key = create_external(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let material = keyhold_crypto::random_bytes(32);
    let id = import(
        &kms,
        &key,
        material.expose(),
        AlgorithmSpec::RsaAesKeyWrapSha256,
    )
    .await
    .expect("id");
    let old = encrypt_blob(&kms, &key, b"before").await;

    // Delete: pending import, nothing decrypts; the same material brings it all back.
    let out = kms
        .delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_material_id(), Some(id.as_str()));
    assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
    let (code, message) = decrypt(&kms, old.clone()).await.unwrap_err();
    assert_eq!(code, "KMSInvalidStateException");
    assert!(message.ends_with("is pending import."), "{message}");
    assert_eq!(
        import(&kms, &key, material.expose(), AlgorithmSpec::RsaesOaepSha1).await,
        Some(id.clone())
    );
    assert_eq!(decrypt(&kms, old.clone()).await.unwrap(), b"before");

    // Reimport with a ValidTo an hour ahead: DescribeKey shows it; two hours later the
    // server's sweep has deleted it.
    kms.delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let valid_to = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + HOUR;
    let p = params(
        &kms,
        &key,
        AlgorithmSpec::RsaesOaepSha256,
        WrappingKeySpec::Rsa2048,
    )
    .await;
    kms.import_key_material()
        .key_id(&key)
        .import_token(p.token.clone())
        .encrypted_key_material(wrap(&p, &AlgorithmSpec::RsaesOaepSha256, material.expose()))
        .valid_to(DateTime::from_secs(valid_to as i64))
        .send()
        .await
        .expect("import with ValidTo");
    let md = kms.describe_key().key_id(&key).send().await.unwrap();
    let md = md.key_metadata().unwrap();
    assert_eq!(
        md.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialExpires)
    );
    assert_eq!(md.valid_to().map(|t| t.secs()), Some(valid_to as i64));
    // The expiry survives a restart.
    server.restart();
    let kms = client(&server);
    assert_eq!(state(&kms, &key).await, KeyState::Enabled);
    let done = advance_clock(&server, 2 * HOUR).await;
    assert_eq!(done["expired"], 1, "{done}");
    let md = kms.describe_key().key_id(&key).send().await.unwrap();
    let md = md.key_metadata().unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::PendingImport));
    assert_eq!(md.expiration_model(), None);
    assert_eq!(md.current_key_material_id(), Some(id.as_str()));
    import(
        &kms,
        &key,
        material.expose(),
        AlgorithmSpec::RsaAesKeyWrapSha1,
    )
    .await;
    assert_eq!(decrypt(&kms, old.clone()).await.unwrap(), b"before");

    // On-demand rotation to new imported material.
    let (code, message) = failure(kms.rotate_key_on_demand().key_id(&key).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    assert!(message.starts_with("No available key material pending rotation for the key: "));
    let second = keyhold_crypto::random_bytes(32);
    let p = params(
        &kms,
        &key,
        AlgorithmSpec::RsaesOaepSha256,
        WrappingKeySpec::Rsa2048,
    )
    .await;
    let out = kms
        .import_key_material()
        .key_id(&key)
        .import_token(p.token.clone())
        .encrypted_key_material(wrap(&p, &AlgorithmSpec::RsaesOaepSha256, second.expose()))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .import_type(ImportType::NewKeyMaterial)
        .key_material_description("second material")
        .send()
        .await
        .expect("import new key material");
    let second_id = out.key_material_id().unwrap().to_string();
    let listed = kms
        .list_key_rotations()
        .key_id(&key)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    let rows = listed.rotations();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].key_material_state(),
        Some(&KeyMaterialState::Current)
    );
    assert_eq!(rows[0].import_state(), Some(&ImportState::Imported));
    assert_eq!(rows[1].key_material_id(), Some(second_id.as_str()));
    assert_eq!(
        rows[1].key_material_state(),
        Some(&KeyMaterialState::PendingRotation)
    );
    assert_eq!(rows[1].key_material_description(), Some("second material"));
    kms.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .expect("rotate");
    let md = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        md.key_metadata().unwrap().current_key_material_id(),
        Some(second_id.as_str())
    );
    let new = encrypt_blob(&kms, &key, b"after").await;
    server.restart();
    let kms = client(&server);
    assert_eq!(decrypt(&kms, old).await.unwrap(), b"before");
    assert_eq!(decrypt(&kms, new).await.unwrap(), b"after");
}

#[tokio::test]
async fn import_tokens_and_material_outlive_a_restart() {
    let mut server = TestServer::start();
    let kms = client(&server);
    let key = create_external(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let material = keyhold_crypto::random_bytes(32);
    // A token handed out before a restart is accepted after it: tokens are sealed, not stored.
    let p = params(
        &kms,
        &key,
        AlgorithmSpec::RsaAesKeyWrapSha256,
        WrappingKeySpec::Rsa3072,
    )
    .await;
    server.restart();
    let kms = client(&server);
    kms.import_key_material()
        .key_id(&key)
        .import_token(p.token.clone())
        .encrypted_key_material(wrap(
            &p,
            &AlgorithmSpec::RsaAesKeyWrapSha256,
            material.expose(),
        ))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .expect("import with a token from before the restart");
    let blob = encrypt_blob(&kms, &key, b"durable").await;
    server.restart();
    let kms = client(&server);
    assert_eq!(state(&kms, &key).await, KeyState::Enabled);
    assert_eq!(decrypt(&kms, blob).await.unwrap(), b"durable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres_share_tokens_materials_and_expiry() {
    let Some(url) = database_url() else {
        return;
    };
    // This test checks what the nodes share (tokens, materials, expiry) with each change seen
    // by the other node at once: without the key cache. How long a cached key may lag
    // behind another node's change is e2e_key_cache_pg's subject.
    let (a, b, _tmp) = common::two_pg_nodes(&url, "kh_e2e_import", "key_cache_ttl_ms = 0\n");
    let (ka, kb) = (client(&a), client(&b));
    let key = create_external(&ka, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    let material = keyhold_crypto::random_bytes(32);
    // A's token, used on B.
    let alg = AlgorithmSpec::RsaesOaepSha256;
    let p = params(&ka, &key, alg.clone(), WrappingKeySpec::Rsa2048).await;
    kb.import_key_material()
        .key_id(&key)
        .import_token(p.token.clone())
        .encrypted_key_material(wrap(&p, &alg, material.expose()))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .expect("import on B with A's token");
    let blob = encrypt_blob(&ka, &key, b"shared").await;
    assert_eq!(decrypt(&kb, blob.clone()).await.unwrap(), b"shared");

    // Deleted on B: A refuses it at once; reimported on A, B decrypts again.
    kb.delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        decrypt(&ka, blob.clone()).await.unwrap_err().0,
        "KMSInvalidStateException"
    );
    import(
        &ka,
        &key,
        material.expose(),
        AlgorithmSpec::RsaAesKeyWrapSha1,
    )
    .await;
    assert_eq!(decrypt(&kb, blob.clone()).await.unwrap(), b"shared");

    // Expiring material, expired by A's sweep, is gone for B too.
    ka.delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let valid_to = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + HOUR;
    let p = params(&kb, &key, alg.clone(), WrappingKeySpec::Rsa2048).await;
    kb.import_key_material()
        .key_id(&key)
        .import_token(p.token.clone())
        .encrypted_key_material(wrap(&p, &alg, material.expose()))
        .valid_to(DateTime::from_secs(valid_to as i64))
        .send()
        .await
        .expect("import with ValidTo on B");
    let done = advance_clock(&a, 2 * HOUR).await;
    assert_eq!(done["expired"], 1, "{done}");
    assert_eq!(state(&kb, &key).await, KeyState::PendingImport);
    assert_eq!(
        decrypt(&kb, blob).await.unwrap_err().0,
        "KMSInvalidStateException"
    );
}
