//! Unit tests of `multi_region_sync`: multi-Region keys with imported key material (the same
//! material imported into each related key, rotation once every replica has it), and the
//! repair of a replica copy that never happened.

use keyhold_kms_model::enums::{
    ImportType, IncludeKeyMaterial, KeyMaterialState, KeyState, OriginType,
};
use keyhold_kms_model::shapes::{
    CreateKeyRequest, GetKeyRotationStatusRequest, ListKeyRotationsRequest, ReplicateKeyRequest,
    RotateKeyOnDemandRequest,
};
use keyhold_kms_model::Exception;

use super::import_tests::refused;
use super::manage::MaterialChange;
use super::multi_region_sync::REPLICA_SYNC_INDEX;
use super::rotation::AutoRotation;
use super::states::KeyOperationFamily;
use super::test_fixture::{fixture, Fixture};
use super::KeyDoc;
use crate::ports::MetadataStore;

const PRIMARY: &str = "us-east-1";
const REPLICA: &str = "eu-west-1";

impl Fixture {
    fn region(&mut self, region: &str) -> &mut Self {
        self.ctx.region = region.to_string();
        self
    }

    async fn create_multi_region(&self, origin: OriginType) -> String {
        let req = CreateKeyRequest {
            origin: Some(origin),
            multi_region: Some(true),
            ..Default::default()
        };
        let made = self.kms.keys.create_key(&self.ctx, req).await;
        made.expect("create").key_metadata.expect("metadata").key_id
    }

    async fn replicate(&self, key: &str, to: &str) -> KeyState {
        let req = ReplicateKeyRequest {
            key_id: key.into(),
            replica_region: to.into(),
            ..Default::default()
        };
        let out = self.kms.keys.replicate_key(&self.ctx, req).await;
        let meta = out.expect("replicate").replica_key_metadata.expect("meta");
        meta.key_state.expect("state")
    }

    /// `(material id, state)` of each entry of ListKeyRotations with `ALL_KEY_MATERIAL`.
    async fn materials(&self, key: &str) -> Vec<(String, KeyMaterialState)> {
        let req = ListKeyRotationsRequest {
            key_id: key.into(),
            include_key_material: Some(IncludeKeyMaterial::AllKeyMaterial),
            ..Default::default()
        };
        let out = self.kms.keys.list_key_rotations(&self.ctx, req).await;
        out.expect("list")
            .rotations
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                (
                    r.key_material_id.expect("id"),
                    r.key_material_state.expect("state"),
                )
            })
            .collect()
    }

    async fn rotate(&self, key: &str) -> crate::KmsResult<()> {
        let req = RotateKeyOnDemandRequest { key_id: key.into() };
        self.kms.keys.rotate_key_on_demand(&self.ctx, req).await?;
        Ok(())
    }

    async fn rotation_enabled(&self, key: &str) -> Option<bool> {
        let req = GetKeyRotationStatusRequest { key_id: key.into() };
        let out = self.kms.keys.get_key_rotation_status(&self.ctx, req).await;
        out.expect("status").key_rotation_enabled
    }

    async fn stored_doc(&self, region: &str, key: &str) -> KeyDoc {
        let row = self.store.get_key(&self.ctx.account_id, region, key).await;
        let row = row.expect("read").expect("row");
        serde_json::from_str(&row.doc).expect("doc")
    }
}

#[tokio::test]
async fn imported_material_is_imported_into_each_related_key() {
    let mut f = fixture();
    let key = f.create_multi_region(OriginType::External).await;
    assert!(key.starts_with("mrk-"), "{key}");
    // A primary still waiting for its material can be replicated; the replica waits too.
    assert_eq!(f.replicate(&key, REPLICA).await, KeyState::PendingImport);
    let (a, b, c) = (
        keyhold_crypto::random_bytes(32),
        keyhold_crypto::random_bytes(32),
        keyhold_crypto::random_bytes(32),
    );

    // The replica takes no new material, and no material its primary does not have.
    f.region(REPLICA);
    let new = |r: &mut keyhold_kms_model::shapes::ImportKeyMaterialRequest| {
        r.import_type = Some(ImportType::NewKeyMaterial)
    };
    let msg = refused(
        f.import(&key, a.expose(), new).await,
        Exception::UnsupportedOperation,
    );
    assert!(msg.contains("is a multi-Region replica key"), "{msg}");
    refused(
        f.import(&key, a.expose(), |_| {}).await,
        Exception::IncorrectKeyMaterial,
    );

    // Material A into the primary, then into the replica: the same material id in both.
    f.region(PRIMARY);
    let id_a = f.import(&key, a.expose(), |_| {}).await.unwrap().unwrap();
    assert_eq!(f.describe(&key).await.key_state, Some(KeyState::Enabled));
    f.region(REPLICA);
    assert_eq!(
        f.describe(&key).await.key_state,
        Some(KeyState::PendingImport)
    );
    refused(
        f.import(&key, b.expose(), |_| {}).await,
        Exception::IncorrectKeyMaterial,
    );
    let replica_a = f.import(&key, a.expose(), |_| {}).await.unwrap().unwrap();
    assert_eq!(replica_a, id_a);
    let meta = f.describe(&key).await;
    assert_eq!(meta.key_state, Some(KeyState::Enabled));
    assert_eq!(meta.current_key_material_id.as_deref(), Some(id_a.as_str()));

    // Encrypted in one Region, decrypted in the other.
    let from_replica = f.encrypt(&key).await.unwrap();
    f.region(PRIMARY);
    assert_eq!(f.decrypt(from_replica).await.unwrap(), b"imported");

    // New material C: imported into the primary for rotation, it waits for the replica.
    let id_c = f.import(&key, c.expose(), new).await.unwrap().unwrap();
    let pending = (
        id_c.clone(),
        KeyMaterialState::PendingMultiRegionImportAndRotation,
    );
    assert!(
        f.materials(&key).await.contains(&pending),
        "{:?}",
        f.materials(&key).await
    );
    let msg = refused(f.rotate(&key).await, Exception::KMSInvalidState);
    assert!(
        msg.contains("has not been imported into its replica key"),
        "{msg}"
    );
    f.region(REPLICA);
    let existing = |r: &mut keyhold_kms_model::shapes::ImportKeyMaterialRequest| {
        r.import_type = Some(ImportType::ExistingKeyMaterial)
    };
    f.import(&key, c.expose(), existing).await.unwrap();
    // The replica still encrypts under A until the primary rotates.
    assert_eq!(
        f.describe(&key).await.current_key_material_id.as_deref(),
        Some(id_a.as_str())
    );
    f.region(PRIMARY);
    let now_pending = (id_c.clone(), KeyMaterialState::PendingRotation);
    assert!(f.materials(&key).await.contains(&now_pending));
    f.rotate(&key)
        .await
        .expect("rotate once every replica has the material");

    // The rotation reached the replica: C is current there, and old ciphertexts decrypt.
    f.region(REPLICA);
    let meta = f.describe(&key).await;
    assert_eq!(meta.current_key_material_id.as_deref(), Some(id_c.as_str()));
    assert_eq!(meta.key_state, Some(KeyState::Enabled));
    let states = f.materials(&key).await;
    assert!(
        states.contains(&(id_c.clone(), KeyMaterialState::Current)),
        "{states:?}"
    );
    assert!(
        states.contains(&(id_a.clone(), KeyMaterialState::NonCurrent)),
        "{states:?}"
    );
    let under_c = f.encrypt(&key).await.unwrap();
    f.region(PRIMARY);
    assert_eq!(f.decrypt(under_c).await.unwrap(), b"imported");

    // Deleting the replica's material leaves the primary alone.
    f.region(REPLICA);
    f.delete(&key, None).await.unwrap();
    assert_eq!(
        f.describe(&key).await.key_state,
        Some(KeyState::PendingImport)
    );
    f.region(PRIMARY);
    assert_eq!(f.describe(&key).await.key_state, Some(KeyState::Enabled));
    assert!(!f.stored_doc(PRIMARY, &key).await.mrk.expect("mrk").sync_due);
}

#[tokio::test]
async fn pending_material_deleted_from_the_primary_goes_from_its_replicas() {
    let mut f = fixture();
    let key = f.create_multi_region(OriginType::External).await;
    let (a, b) = (
        keyhold_crypto::random_bytes(32),
        keyhold_crypto::random_bytes(32),
    );
    f.import(&key, a.expose(), |_| {}).await.unwrap();
    assert_eq!(f.replicate(&key, REPLICA).await, KeyState::PendingImport);
    let id_b = f
        .import(&key, b.expose(), |r| {
            r.import_type = Some(ImportType::NewKeyMaterial)
        })
        .await
        .unwrap()
        .unwrap();
    f.region(REPLICA);
    f.import(&key, a.expose(), |_| {}).await.unwrap();
    f.import(&key, b.expose(), |_| {}).await.unwrap();
    assert!(f
        .stored_doc(REPLICA, &key)
        .await
        .imported_material(&id_b)
        .is_some());
    f.region(PRIMARY);
    f.delete(&key, Some(&id_b)).await.unwrap();
    let replica = f.stored_doc(REPLICA, &key).await;
    assert!(
        replica.imported_material(&id_b).is_none(),
        "{:?}",
        replica.imported
    );
    assert_eq!(replica.key_state, KeyState::Enabled);
}

#[tokio::test]
async fn a_replica_copy_that_never_happened_is_repaired_by_the_sweep() {
    let mut f = fixture();
    let key = f.create_multi_region(OriginType::AwsKms).await;
    assert_eq!(f.replicate(&key, REPLICA).await, KeyState::Enabled);
    // The primary's change is written, and the process stops before copying it: the one
    // writer marks the primary, in the same write.
    let written = f
        .kms
        .keys
        .change_materials(
            &f.ctx,
            &key,
            None,
            KeyOperationFamily::ManageRotation,
            |_, doc| {
                doc.rotation = Some(AutoRotation {
                    period_days: 90,
                    next_rotation_date: 1e10,
                    enabled_date: 1.0,
                });
                Ok(MaterialChange::default())
            },
        )
        .await
        .expect("primary written");
    assert!(written.doc.mrk.as_ref().expect("mrk").sync_due);
    let marked = f
        .store
        .list_index(REPLICA_SYNC_INDEX, "", None, None, 10)
        .await
        .expect("index");
    assert_eq!(marked.len(), 1);
    f.region(REPLICA);
    assert_eq!(f.rotation_enabled(&key).await, Some(false));

    let swept = f.kms.keys.complete_replica_syncs().await;
    assert_eq!(swept.expect("sweep"), 1);
    assert_eq!(f.rotation_enabled(&key).await, Some(true));
    assert!(!f.stored_doc(PRIMARY, &key).await.mrk.expect("mrk").sync_due);
    let left = f
        .store
        .list_index(REPLICA_SYNC_INDEX, "", None, None, 10)
        .await;
    assert!(left.expect("index").is_empty());
    let swept = f.kms.keys.complete_replica_syncs().await;
    assert_eq!(swept.expect("sweep"), 0);
}
