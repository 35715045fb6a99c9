//! End-to-end with the official AWS SDK for Rust: multi-Region keys with imported key material
//! (`MultiRegion` and `Origin: EXTERNAL`). The material is wrapped on the client side with the
//! public key GetParametersForImport returns and imported into the primary, then the same
//! material into the replica (AWS never copies imported material); ciphertexts cross Regions;
//! new material rotates the primary only once the replica has it; both keys keep their
//! material across a restart, and on two nodes sharing PostgreSQL.

mod common;
mod import_common;

use aws_sdk_kms::types::{
    AlgorithmSpec, ImportType, IncludeKeyMaterial, KeyMaterialState, KeyState, OriginType,
};
use aws_sdk_kms::Client;
use common::{assert_decrypts_to, encrypt_blob, failure, regional, TestServer};
use import_common::{import, import_with, state};

const US: &str = "us-east-1";
const EU: &str = "eu-west-1";

async fn new_external_mrk(kms: &Client) -> String {
    let made = kms
        .create_key()
        .multi_region(true)
        .origin(OriginType::External)
        .send()
        .await
        .expect("create");
    let meta = made.key_metadata().expect("metadata");
    assert_eq!(meta.key_state(), Some(&KeyState::PendingImport));
    meta.key_id().to_string()
}

async fn replicate(kms: &Client, key: &str, region: &str) -> KeyState {
    let out = kms
        .replicate_key()
        .key_id(key)
        .replica_region(region)
        .send()
        .await
        .expect("replicate");
    let meta = out.replica_key_metadata().expect("metadata");
    meta.key_state().expect("state").clone()
}

/// ImportKeyMaterial with an explicit `ImportType`: the KeyMaterialId, or (code, message).
async fn import_as(
    kms: &Client,
    key: &str,
    material: &[u8],
    import_type: ImportType,
) -> Result<String, (String, String)> {
    let algorithm = AlgorithmSpec::RsaesOaepSha256;
    let id = import_with(kms, key, material, algorithm, Some(import_type)).await?;
    Ok(id.expect("KeyMaterialId"))
}

async fn material_state(kms: &Client, key: &str, id: &str) -> Option<KeyMaterialState> {
    let out = kms
        .list_key_rotations()
        .key_id(key)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .expect("list rotations");
    out.rotations()
        .iter()
        .find(|r| r.key_material_id() == Some(id))
        .and_then(|r| r.key_material_state().cloned())
}

#[tokio::test]
async fn imported_material_in_related_keys_survives_a_restart() {
    let mut server = TestServer::start();
    let (us, eu) = (
        regional(&server.endpoint, US),
        regional(&server.endpoint, EU),
    );
    let key = new_external_mrk(&us).await;
    assert_eq!(replicate(&us, &key, EU).await, KeyState::PendingImport);
    let first = keyhold_crypto::random_bytes(32);
    let second = keyhold_crypto::random_bytes(32);

    // The replica takes only material its primary has.
    let refused = import_as(&eu, &key, first.expose(), ImportType::ExistingKeyMaterial).await;
    assert_eq!(
        refused.expect_err("refused").0,
        "IncorrectKeyMaterialException"
    );
    let first_id = import(
        &us,
        &key,
        first.expose(),
        AlgorithmSpec::RsaAesKeyWrapSha256,
    )
    .await;
    let replica_id = import(&eu, &key, first.expose(), AlgorithmSpec::RsaesOaepSha1).await;
    assert_eq!(first_id, replica_id);
    assert_eq!(state(&eu, &key).await, KeyState::Enabled);
    let blob = encrypt_blob(&us, &key, b"from the primary").await;
    assert_decrypts_to(&eu, blob.clone(), b"from the primary").await;

    // New material waits for the replica before the primary rotates to it.
    let refused = import_as(&eu, &key, second.expose(), ImportType::NewKeyMaterial).await;
    assert_eq!(
        refused.expect_err("refused").0,
        "UnsupportedOperationException"
    );
    let second_id = import_as(&us, &key, second.expose(), ImportType::NewKeyMaterial)
        .await
        .expect("new material");
    assert_eq!(
        material_state(&us, &key, &second_id).await,
        Some(KeyMaterialState::PendingMultiRegionImportAndRotation)
    );
    let (code, _) = failure(us.rotate_key_on_demand().key_id(&key).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    import_as(&eu, &key, second.expose(), ImportType::ExistingKeyMaterial)
        .await
        .expect("same material into the replica");
    assert_eq!(
        material_state(&us, &key, &second_id).await,
        Some(KeyMaterialState::PendingRotation)
    );
    us.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .expect("rotate");

    server.restart();
    let (us, eu) = (
        regional(&server.endpoint, US),
        regional(&server.endpoint, EU),
    );
    assert_eq!(
        material_state(&eu, &key, &second_id).await,
        Some(KeyMaterialState::Current)
    );
    let after = encrypt_blob(&eu, &key, b"from the replica").await;
    assert_decrypts_to(&us, after, b"from the replica").await;
    assert_decrypts_to(&eu, blob, b"from the primary").await;
}

#[tokio::test]
async fn two_nodes_on_postgresql_share_imported_multi_region_keys() {
    let Some(url) = common::database_url() else {
        return;
    };
    let (a, b, _tmp) = common::two_pg_nodes(&url, "kh_e2e_mrk_imp", "");
    let (a_us, b_us, b_eu) = (
        regional(&a.endpoint, US),
        regional(&b.endpoint, US),
        regional(&b.endpoint, EU),
    );
    let key = new_external_mrk(&a_us).await;
    let material = keyhold_crypto::random_bytes(32);
    import(
        &a_us,
        &key,
        material.expose(),
        AlgorithmSpec::RsaesOaepSha256,
    )
    .await;
    assert_eq!(replicate(&b_us, &key, EU).await, KeyState::PendingImport);
    import(
        &b_eu,
        &key,
        material.expose(),
        AlgorithmSpec::RsaAesKeyWrapSha1,
    )
    .await;
    let blob = encrypt_blob(&b_eu, &key, b"node b, replica").await;
    assert_decrypts_to(&a_us, blob, b"node b, replica").await;
    assert_eq!(
        state(&regional(&a.endpoint, EU), &key).await,
        KeyState::Enabled
    );
}
