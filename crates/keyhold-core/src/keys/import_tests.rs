//! Unit tests of imported key material over the in-memory store and a manual clock: the key
//! states, the import token, material checks, delete and reimport, expiry by the clock, and
//! on-demand rotation to imported material.
//!
//! The wrapping here uses the wrapping key's public half through the private key opened from
//! the token (the tests hold the root key); the end-to-end tests wrap with the returned public
//! key only.

use std::sync::Arc;
use std::time::Duration;

use keyhold_crypto::asym::{self, OaepAlgorithm};
use keyhold_crypto::keywrap;
use keyhold_kms_model::enums::{
    AlgorithmSpec, ExpirationModelType, ImportState, ImportType, IncludeKeyMaterial,
    KeyMaterialState, KeyState, OriginType, WrappingKeySpec,
};
use keyhold_kms_model::shapes::{
    CancelKeyDeletionRequest, CreateKeyRequest, DecryptRequest, DeleteImportedKeyMaterialRequest,
    DescribeKeyRequest, EnableKeyRotationRequest, EncryptRequest, GetParametersForImportRequest,
    ImportKeyMaterialRequest, KeyMetadata, ListKeyRotationsRequest, RotateKeyOnDemandRequest,
    ScheduleKeyDeletionRequest,
};
use keyhold_kms_model::{Blob, Exception, Timestamp};

use super::import_token;
use super::test_fixture::{fixture, Fixture};
use super::MATERIAL_EXPIRY_INDEX;
use crate::ports::clock::Clock;
use crate::ports::memory::MemoryStore;
use crate::ports::MetadataStore;
use crate::KmsResult;

const HOUR: Duration = Duration::from_secs(3_600);

impl Fixture {
    pub(super) async fn create_external(&self) -> String {
        let req = CreateKeyRequest {
            origin: Some(OriginType::External),
            ..Default::default()
        };
        let made = self
            .kms
            .keys
            .create_key(&self.ctx, req)
            .await
            .expect("create");
        made.key_metadata.expect("metadata").key_id
    }

    pub(super) async fn describe(&self, key: &str) -> KeyMetadata {
        let req = DescribeKeyRequest {
            key_id: key.into(),
            ..Default::default()
        };
        let out = self.kms.keys.describe_key(&self.ctx, req).await;
        out.expect("describe").key_metadata.expect("metadata")
    }

    /// (token, material wrapped with `algorithm`).
    pub(super) async fn wrap(
        &self,
        key: &str,
        algorithm: AlgorithmSpec,
        material: &[u8],
    ) -> (Blob, Blob) {
        let req = GetParametersForImportRequest {
            key_id: key.into(),
            wrapping_algorithm: algorithm,
            wrapping_key_spec: WrappingKeySpec::Rsa2048,
        };
        let out = self
            .kms
            .keys
            .get_parameters_for_import(&self.ctx, req)
            .await;
        let out = out.expect("get parameters");
        assert_eq!(
            out.parameters_valid_to,
            Some(Timestamp(
                (self.clock.now_millis() + 24 * 3_600_000) as f64 / 1000.0
            ))
        );
        let token = out.import_token.expect("token");
        let opened = import_token::open(
            &self.root,
            (&self.ctx.account_id, &self.ctx.region, key),
            token.as_bytes(),
            self.clock.now_millis(),
        )
        .expect("token opens");
        let oaep = match algorithm {
            AlgorithmSpec::RsaesOaepSha1 | AlgorithmSpec::RsaAesKeyWrapSha1 => OaepAlgorithm::Sha1,
            _ => OaepAlgorithm::Sha256,
        };
        let rsa = |m: &[u8]| {
            asym::rsa_encrypt(
                asym::AsymmetricSpec::Rsa2048,
                opened.private_key.expose(),
                oaep,
                m,
            )
            .expect("rsa")
        };
        let wrapped = match algorithm {
            AlgorithmSpec::RsaAesKeyWrapSha1 | AlgorithmSpec::RsaAesKeyWrapSha256 => {
                let aes = keyhold_crypto::random_bytes(32);
                let mut out = rsa(aes.expose());
                out.extend(keywrap::wrap_with_padding(aes.expose(), material).expect("kwp"));
                out
            }
            _ => rsa(material),
        };
        (token, Blob::from(wrapped))
    }

    pub(super) async fn import(
        &self,
        key: &str,
        material: &[u8],
        edit: impl FnOnce(&mut ImportKeyMaterialRequest),
    ) -> KmsResult<Option<String>> {
        let (token, wrapped) = self
            .wrap(key, AlgorithmSpec::RsaesOaepSha256, material)
            .await;
        let mut req = ImportKeyMaterialRequest {
            key_id: key.into(),
            import_token: token,
            encrypted_key_material: wrapped,
            expiration_model: Some(ExpirationModelType::KeyMaterialDoesNotExpire),
            ..Default::default()
        };
        edit(&mut req);
        let out = self.kms.keys.import_key_material(&self.ctx, req).await?;
        Ok(out.key_material_id)
    }

    pub(super) async fn encrypt(&self, key: &str) -> KmsResult<Blob> {
        let req = EncryptRequest {
            key_id: key.into(),
            plaintext: Blob::from(b"imported".to_vec()),
            ..Default::default()
        };
        let out = self.kms.keys.encrypt(&self.ctx, req).await?;
        Ok(out.ciphertext_blob.expect("blob"))
    }

    pub(super) async fn decrypt(&self, blob: Blob) -> KmsResult<Vec<u8>> {
        let req = DecryptRequest {
            ciphertext_blob: Some(blob),
            ..Default::default()
        };
        let out = self.kms.keys.decrypt(&self.ctx, req).await?;
        Ok(out.plaintext.expect("plaintext").as_ref().to_vec())
    }

    pub(super) async fn delete(&self, key: &str, material: Option<&str>) -> KmsResult<()> {
        let req = DeleteImportedKeyMaterialRequest {
            key_id: key.into(),
            key_material_id: material.map(str::to_string),
        };
        self.kms
            .keys
            .delete_imported_key_material(&self.ctx, req)
            .await?;
        Ok(())
    }
}

pub(super) fn refused<T: std::fmt::Debug>(r: KmsResult<T>, exception: Exception) -> String {
    let e = r.expect_err("must be refused");
    assert!(e.is(exception), "{e:?} is not {exception:?}");
    e.to_string()
}

#[tokio::test]
async fn import_delete_and_reimport_the_same_material() {
    let f = fixture();
    let key = f.create_external().await;
    let md = f.describe(&key).await;
    assert_eq!(md.key_state, Some(KeyState::PendingImport));
    assert_eq!(md.enabled, Some(false));
    assert_eq!(md.origin, Some(OriginType::External));
    assert_eq!(md.current_key_material_id, None);
    assert_eq!(md.expiration_model, None);
    let msg = refused(f.encrypt(&key).await, Exception::KMSInvalidState);
    assert!(
        msg.ends_with(&format!("key/{key} is pending import.")),
        "{msg}"
    );
    assert!(f
        .store
        .get_key_material("111122223333", "us-east-1", &key, "")
        .await
        .unwrap()
        .is_none());

    let material = keyhold_crypto::random_bytes(32);
    // ExpirationModel defaults to KEY_MATERIAL_EXPIRES, which needs a ValidTo.
    let msg = refused(
        f.import(&key, material.expose(), |r| r.expiration_model = None)
            .await,
        Exception::Validation,
    );
    assert!(msg.contains("A validTo date must be set"), "{msg}");
    let id = f
        .import(&key, material.expose(), |_| {})
        .await
        .unwrap()
        .expect("id");
    let md = f.describe(&key).await;
    assert_eq!(md.key_state, Some(KeyState::Enabled));
    assert_eq!(md.current_key_material_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        md.expiration_model,
        Some(ExpirationModelType::KeyMaterialDoesNotExpire)
    );
    let blob = f.encrypt(&key).await.unwrap();
    assert_eq!(f.decrypt(blob.clone()).await.unwrap(), b"imported");

    f.delete(&key, None).await.unwrap();
    let md = f.describe(&key).await;
    assert_eq!(md.key_state, Some(KeyState::PendingImport));
    assert_eq!(md.current_key_material_id.as_deref(), Some(id.as_str()));
    assert_eq!(md.expiration_model, None);
    assert!(f
        .store
        .get_key_material("111122223333", "us-east-1", &key, &id)
        .await
        .unwrap()
        .is_none());
    refused(f.decrypt(blob.clone()).await, Exception::KMSInvalidState);
    // Deleting again has no effect.
    f.delete(&key, None).await.unwrap();

    // Other material is refused; the same material, by another algorithm, brings the key and
    // its old ciphertexts back.
    let other = keyhold_crypto::random_bytes(32);
    refused(
        f.import(&key, other.expose(), |_| {}).await,
        Exception::IncorrectKeyMaterial,
    );
    refused(
        f.import(&key, material.expose(), |r| {
            r.key_material_id = Some("0".repeat(64))
        })
        .await,
        Exception::IncorrectKeyMaterial,
    );
    let (token, wrapped) = f
        .wrap(&key, AlgorithmSpec::RsaAesKeyWrapSha1, material.expose())
        .await;
    let req = ImportKeyMaterialRequest {
        key_id: key.clone(),
        import_token: token,
        encrypted_key_material: wrapped,
        valid_to: Some(Timestamp(f.clock.now_seconds() + 7_200.0)),
        key_material_id: Some(id.clone()),
        ..Default::default()
    };
    let out = f.kms.keys.import_key_material(&f.ctx, req).await.unwrap();
    assert_eq!(out.key_material_id.as_deref(), Some(id.as_str()));
    assert_eq!(f.decrypt(blob).await.unwrap(), b"imported");
    let md = f.describe(&key).await;
    assert_eq!(
        md.expiration_model,
        Some(ExpirationModelType::KeyMaterialExpires)
    );
    assert_eq!(
        md.valid_to,
        Some(Timestamp(f.clock.now_seconds() + 7_200.0))
    );
}

#[tokio::test]
async fn tokens_ciphertexts_and_material_are_checked() {
    let f = fixture();
    let key = f.create_external().await;
    let other_key = f.create_external().await;
    let material = keyhold_crypto::random_bytes(32);
    let (token, wrapped) = f
        .wrap(&key, AlgorithmSpec::RsaesOaepSha1, material.expose())
        .await;
    let request = |token: Blob, wrapped: Blob| ImportKeyMaterialRequest {
        key_id: key.clone(),
        import_token: token,
        encrypted_key_material: wrapped,
        expiration_model: Some(ExpirationModelType::KeyMaterialDoesNotExpire),
        ..Default::default()
    };
    // Another key's token, garbage, a ciphertext that does not unwrap, material of the wrong
    // length.
    let (other_token, _) = f
        .wrap(&other_key, AlgorithmSpec::RsaesOaepSha1, material.expose())
        .await;
    let keys = &f.kms.keys;
    refused(
        keys.import_key_material(&f.ctx, request(other_token, wrapped.clone()))
            .await,
        Exception::InvalidImportToken,
    );
    refused(
        keys.import_key_material(&f.ctx, request(Blob::from(vec![1u8; 300]), wrapped.clone()))
            .await,
        Exception::InvalidImportToken,
    );
    let mut bad = wrapped.as_bytes().to_vec();
    bad[10] ^= 1;
    refused(
        keys.import_key_material(&f.ctx, request(token.clone(), Blob::from(bad)))
            .await,
        Exception::InvalidCiphertext,
    );
    let (short_token, short) = f.wrap(&key, AlgorithmSpec::RsaesOaepSha1, &[5u8; 16]).await;
    refused(
        keys.import_key_material(&f.ctx, request(short_token, short))
            .await,
        Exception::IncorrectKeyMaterial,
    );
    // Tokens expire after 24 hours.
    f.clock.advance(24 * HOUR);
    refused(
        keys.import_key_material(&f.ctx, request(token, wrapped))
            .await,
        Exception::ExpiredImportToken,
    );
    assert_eq!(
        f.describe(&key).await.key_state,
        Some(KeyState::PendingImport)
    );

    // Keys with AWS's material are not for import.
    let aws_key = keys
        .create_key(&f.ctx, CreateKeyRequest::default())
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let req = GetParametersForImportRequest {
        key_id: aws_key.key_id,
        wrapping_algorithm: AlgorithmSpec::RsaesOaepSha256,
        wrapping_key_spec: WrappingKeySpec::Rsa2048,
    };
    let msg = refused(
        keys.get_parameters_for_import(&f.ctx, req).await,
        Exception::UnsupportedOperation,
    );
    assert!(
        msg.ends_with("origin is AWS_KMS which is not valid for this operation."),
        "{msg}"
    );
    for (algorithm, spec) in [
        (AlgorithmSpec::RsaesPkcs1V15, WrappingKeySpec::Rsa2048),
        (AlgorithmSpec::Sm2pke, WrappingKeySpec::Sm2),
        (AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Sm2),
    ] {
        let req = GetParametersForImportRequest {
            key_id: key.clone(),
            wrapping_algorithm: algorithm,
            wrapping_key_spec: spec,
        };
        refused(
            keys.get_parameters_for_import(&f.ctx, req).await,
            Exception::Validation,
        );
    }
}

#[tokio::test]
async fn expired_material_is_deleted_by_the_clock() {
    let f = fixture();
    let key = f.create_external().await;
    let material = keyhold_crypto::random_bytes(32);
    let valid_to = f.clock.now_seconds() + 3_600.0;
    let id = f
        .import(&key, material.expose(), |r| {
            r.expiration_model = None;
            r.valid_to = Some(Timestamp(valid_to));
        })
        .await
        .unwrap()
        .expect("id");
    let due = |store: Arc<MemoryStore>| async move {
        store
            .list_index(MATERIAL_EXPIRY_INDEX, "", None, None, 10)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(due(f.store.clone()).await, 1);
    assert_eq!(f.kms.keys.complete_material_expirations().await.unwrap(), 0);
    let blob = f.encrypt(&key).await.unwrap();

    f.clock.advance(HOUR);
    assert_eq!(f.kms.keys.complete_material_expirations().await.unwrap(), 1);
    assert_eq!(due(f.store.clone()).await, 0);
    let md = f.describe(&key).await;
    assert_eq!(md.key_state, Some(KeyState::PendingImport));
    assert_eq!(md.valid_to, None);
    assert!(f
        .store
        .get_key_material("111122223333", "us-east-1", &key, &id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(f.kms.keys.complete_material_expirations().await.unwrap(), 0);

    // Reimported without expiry: the old ciphertext decrypts again and nothing is due.
    f.import(&key, material.expose(), |_| {}).await.unwrap();
    assert_eq!(f.decrypt(blob).await.unwrap(), b"imported");
    assert_eq!(due(f.store.clone()).await, 0);
}

#[tokio::test]
async fn new_material_rotates_on_demand_and_old_ciphertexts_still_decrypt() {
    let f = fixture();
    let key = f.create_external().await;
    let (first, second, third) = (
        keyhold_crypto::random_bytes(32),
        keyhold_crypto::random_bytes(32),
        keyhold_crypto::random_bytes(32),
    );
    let rotate = || {
        f.kms.keys.rotate_key_on_demand(
            &f.ctx,
            RotateKeyOnDemandRequest {
                key_id: key.clone(),
            },
        )
    };
    let msg = refused(rotate().await, Exception::KMSInvalidState);
    assert!(msg.ends_with("is pending import."), "{msg}");
    let first_id = f
        .import(&key, first.expose(), |_| {})
        .await
        .unwrap()
        .unwrap();
    let msg = refused(rotate().await, Exception::KMSInvalidState);
    assert!(
        msg.starts_with("No available key material pending rotation for the key: arn:"),
        "{msg}"
    );
    let old = f.encrypt(&key).await.unwrap();
    // The same material again as new material is refused.
    refused(
        f.import(&key, first.expose(), |r| {
            r.import_type = Some(ImportType::NewKeyMaterial)
        })
        .await,
        Exception::IncorrectKeyMaterial,
    );
    let second_id = f
        .import(&key, second.expose(), |r| {
            r.import_type = Some(ImportType::NewKeyMaterial);
            r.key_material_description = Some("second".into());
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        f.describe(&key).await.current_key_material_id.as_deref(),
        Some(first_id.as_str())
    );
    let msg = refused(
        f.import(&key, third.expose(), |r| {
            r.import_type = Some(ImportType::NewKeyMaterial)
        })
        .await,
        Exception::KMSInvalidState,
    );
    assert!(
        msg.contains(&format!(
            "because another key material (id: {second_id}) is pending rotation"
        )),
        "{msg}"
    );

    let list = |all| {
        f.kms.keys.list_key_rotations(
            &f.ctx,
            ListKeyRotationsRequest {
                key_id: key.clone(),
                include_key_material: all,
                ..Default::default()
            },
        )
    };
    let listed = list(Some(IncludeKeyMaterial::AllKeyMaterial))
        .await
        .unwrap();
    let rows = listed.rotations.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].key_material_state, Some(KeyMaterialState::Current));
    assert_eq!(
        rows[1].key_material_state,
        Some(KeyMaterialState::PendingRotation)
    );
    assert_eq!(rows[1].key_material_description.as_deref(), Some("second"));
    assert_eq!(rows[1].import_state, Some(ImportState::Imported));

    rotate().await.unwrap();
    assert_eq!(
        f.describe(&key).await.current_key_material_id.as_deref(),
        Some(second_id.as_str())
    );
    let new = f.encrypt(&key).await.unwrap();
    assert_eq!(f.decrypt(old.clone()).await.unwrap(), b"imported");
    assert_eq!(f.decrypt(new).await.unwrap(), b"imported");
    let rows = list(None).await.unwrap().rotations.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key_material_id.as_deref(), Some(second_id.as_str()));
    assert_eq!(
        rows[0].expiration_model,
        Some(ExpirationModelType::KeyMaterialDoesNotExpire)
    );

    // Deleting the old (non-current) material makes the key wait for it; reimporting it by
    // its id restores the old ciphertexts.
    f.delete(&key, Some(&first_id)).await.unwrap();
    assert_eq!(
        f.describe(&key).await.key_state,
        Some(KeyState::PendingImport)
    );
    let rows = list(Some(IncludeKeyMaterial::AllKeyMaterial))
        .await
        .unwrap()
        .rotations
        .unwrap();
    assert_eq!(rows[0].import_state, Some(ImportState::PendingImport));
    assert_eq!(rows[0].expiration_model, None);
    f.import(&key, first.expose(), |r| {
        r.import_type = Some(ImportType::ExistingKeyMaterial);
        r.key_material_id = Some(first_id.clone());
    })
    .await
    .unwrap();
    assert_eq!(f.describe(&key).await.key_state, Some(KeyState::Enabled));
    assert_eq!(f.decrypt(old).await.unwrap(), b"imported");
}

#[tokio::test]
async fn rotation_settings_and_deletion_of_keys_with_imported_material() {
    let f = fixture();
    let key = f.create_external().await;
    // Automatic rotation is refused whatever the state, pending import included.
    let enable = || {
        f.kms.keys.enable_key_rotation(
            &f.ctx,
            EnableKeyRotationRequest {
                key_id: key.clone(),
                rotation_period_in_days: None,
            },
        )
    };
    let msg = refused(enable().await, Exception::UnsupportedOperation);
    assert!(
        msg.ends_with("origin is EXTERNAL which is not valid for this operation."),
        "{msg}"
    );
    let material = keyhold_crypto::random_bytes(32);
    f.import(&key, material.expose(), |_| {}).await.unwrap();
    refused(enable().await, Exception::UnsupportedOperation);

    // Deleting the material of a key pending deletion keeps that state; cancelling the
    // deletion then leaves the key waiting for its material.
    let schedule = ScheduleKeyDeletionRequest {
        key_id: key.clone(),
        pending_window_in_days: Some(7),
    };
    f.kms
        .keys
        .schedule_key_deletion(&f.ctx, schedule)
        .await
        .unwrap();
    let params = GetParametersForImportRequest {
        key_id: key.clone(),
        wrapping_algorithm: AlgorithmSpec::RsaesOaepSha256,
        wrapping_key_spec: WrappingKeySpec::Rsa2048,
    };
    refused(
        f.kms.keys.get_parameters_for_import(&f.ctx, params).await,
        Exception::KMSInvalidState,
    );
    f.delete(&key, None).await.unwrap();
    assert_eq!(
        f.describe(&key).await.key_state,
        Some(KeyState::PendingDeletion)
    );
    let cancel = CancelKeyDeletionRequest {
        key_id: key.clone(),
    };
    f.kms
        .keys
        .cancel_key_deletion(&f.ctx, cancel)
        .await
        .unwrap();
    assert_eq!(
        f.describe(&key).await.key_state,
        Some(KeyState::PendingImport)
    );
}
