//! Unit tests of key rotation over the in-memory store and a manual clock: automatic rotation
//! falls due by the clock, old ciphertexts keep decrypting, and the rotation index follows the
//! key's document through every write (including scheduling and cancelling deletion).

use std::sync::Arc;
use std::time::Duration;

use keyhold_kms_model::enums::{IncludeKeyMaterial, KeyMaterialState, RotationType};
use keyhold_kms_model::shapes::{
    CancelKeyDeletionRequest, DecryptRequest, DescribeKeyRequest, DisableKeyRequest,
    DisableKeyRotationRequest, EnableKeyRequest, EnableKeyRotationRequest, EncryptRequest,
    GetKeyRotationStatusRequest, ListKeyRotationsRequest, RotateKeyOnDemandRequest,
    ScheduleKeyDeletionRequest,
};
use keyhold_kms_model::{Blob, Exception};

use super::test_fixture::{create, fixture};
use super::ROTATION_DUE_INDEX;
use crate::ports::clock::{Clock, ManualClock};
use crate::ports::memory::MemoryStore;
use crate::ports::MetadataStore;
use crate::{Kms, RequestContext};

const DAY: Duration = Duration::from_secs(86_400);

fn kms() -> (Kms, Arc<MemoryStore>, Arc<ManualClock>, RequestContext) {
    let f = fixture();
    (f.kms, f.store, f.clock, f.ctx)
}

async fn current_material(kms: &Kms, ctx: &RequestContext, key: &str) -> String {
    let req = DescribeKeyRequest {
        key_id: key.into(),
        ..Default::default()
    };
    let md = kms.keys.describe_key(ctx, req).await.expect("describe");
    md.key_metadata
        .expect("metadata")
        .current_key_material_id
        .expect("material id")
}

async fn encrypt(kms: &Kms, ctx: &RequestContext, key: &str, text: &[u8]) -> Blob {
    let req = EncryptRequest {
        key_id: key.into(),
        plaintext: Blob::from(text.to_vec()),
        ..Default::default()
    };
    let out = kms.keys.encrypt(ctx, req).await.expect("encrypt");
    out.ciphertext_blob.expect("blob")
}

async fn decrypt(kms: &Kms, ctx: &RequestContext, blob: Blob) -> Vec<u8> {
    let req = DecryptRequest {
        ciphertext_blob: Some(blob),
        ..Default::default()
    };
    let out = kms.keys.decrypt(ctx, req).await.expect("decrypt");
    out.plaintext.expect("plaintext").as_ref().to_vec()
}

async fn enable_rotation(kms: &Kms, ctx: &RequestContext, key: &str, days: Option<i32>) {
    let req = EnableKeyRotationRequest {
        key_id: key.into(),
        rotation_period_in_days: days,
    };
    kms.keys
        .enable_key_rotation(ctx, req)
        .await
        .expect("enable rotation");
}

async fn due_entries(store: &MemoryStore) -> usize {
    let hits = store
        .list_index(ROTATION_DUE_INDEX, "", None, None, 100)
        .await;
    hits.expect("index").len()
}

#[tokio::test]
async fn automatic_rotation_happens_when_due_and_old_ciphertexts_still_decrypt() {
    let (kms, store, clock, ctx) = kms();
    let key = create(&kms, &ctx).await;
    let first = current_material(&kms, &ctx, &key).await;
    let old = encrypt(&kms, &ctx, &key, b"before rotation").await;
    enable_rotation(&kms, &ctx, &key, Some(90)).await;
    assert_eq!(due_entries(&store).await, 1);

    let status = kms
        .keys
        .get_key_rotation_status(
            &ctx,
            GetKeyRotationStatusRequest {
                key_id: key.clone(),
            },
        )
        .await
        .expect("status");
    assert_eq!(status.key_rotation_enabled, Some(true));
    assert_eq!(status.rotation_period_in_days, Some(90));
    let next = status.next_rotation_date.expect("next date").0;
    assert_eq!(next, clock.now_seconds() + 90.0 * 86_400.0);

    clock.advance(DAY * 89);
    assert_eq!(kms.keys.complete_due_rotations().await.expect("sweep"), 0);
    assert_eq!(current_material(&kms, &ctx, &key).await, first);

    clock.advance(DAY * 2);
    assert_eq!(kms.keys.complete_due_rotations().await.expect("sweep"), 1);
    let second = current_material(&kms, &ctx, &key).await;
    assert_ne!(second, first);
    assert_eq!(decrypt(&kms, &ctx, old).await, b"before rotation");
    let new = encrypt(&kms, &ctx, &key, b"after").await;
    assert_eq!(decrypt(&kms, &ctx, new).await, b"after");
    // The next rotation is one period after this one; nothing more is due now.
    assert_eq!(kms.keys.complete_due_rotations().await.expect("sweep"), 0);

    let listed = kms
        .keys
        .list_key_rotations(
            &ctx,
            ListKeyRotationsRequest {
                key_id: key.clone(),
                include_key_material: Some(IncludeKeyMaterial::AllKeyMaterial),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let rotations = listed.rotations.expect("rotations");
    assert_eq!(rotations.len(), 2);
    assert_eq!(
        rotations[0].key_material_id.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        rotations[0].key_material_state,
        Some(KeyMaterialState::NonCurrent)
    );
    assert_eq!(rotations[0].rotation_date, None);
    assert_eq!(
        rotations[1].key_material_id.as_deref(),
        Some(second.as_str())
    );
    assert_eq!(
        rotations[1].key_material_state,
        Some(KeyMaterialState::Current)
    );
    assert_eq!(rotations[1].rotation_type, Some(RotationType::Automatic));
}

#[tokio::test]
async fn a_disabled_key_stays_due_and_rotates_once_enabled() {
    let (kms, _store, clock, ctx) = kms();
    let key = create(&kms, &ctx).await;
    let first = current_material(&kms, &ctx, &key).await;
    enable_rotation(&kms, &ctx, &key, None).await;
    kms.keys
        .disable_key(
            &ctx,
            DisableKeyRequest {
                key_id: key.clone(),
            },
        )
        .await
        .expect("disable");
    clock.advance(DAY * 366);
    assert_eq!(kms.keys.complete_due_rotations().await.expect("sweep"), 0);
    kms.keys
        .enable_key(
            &ctx,
            EnableKeyRequest {
                key_id: key.clone(),
            },
        )
        .await
        .expect("enable");
    assert_eq!(kms.keys.complete_due_rotations().await.expect("sweep"), 1);
    assert_ne!(current_material(&kms, &ctx, &key).await, first);
}

#[tokio::test]
async fn rotation_index_survives_deletion_scheduling_and_goes_with_disable_rotation() {
    let (kms, store, _clock, ctx) = kms();
    let key = create(&kms, &ctx).await;
    enable_rotation(&kms, &ctx, &key, None).await;
    let schedule = ScheduleKeyDeletionRequest {
        key_id: key.clone(),
        pending_window_in_days: Some(7),
    };
    kms.keys
        .schedule_key_deletion(&ctx, schedule)
        .await
        .expect("schedule");
    let status = kms
        .keys
        .get_key_rotation_status(
            &ctx,
            GetKeyRotationStatusRequest {
                key_id: key.clone(),
            },
        )
        .await
        .expect("status");
    assert_eq!(
        status.key_rotation_enabled,
        Some(false),
        "pending deletion reports false"
    );
    assert_eq!(
        due_entries(&store).await,
        1,
        "the schedule is kept for a cancel"
    );
    kms.keys
        .cancel_key_deletion(
            &ctx,
            CancelKeyDeletionRequest {
                key_id: key.clone(),
            },
        )
        .await
        .expect("cancel");
    kms.keys
        .enable_key(
            &ctx,
            EnableKeyRequest {
                key_id: key.clone(),
            },
        )
        .await
        .expect("enable");
    let status = kms
        .keys
        .get_key_rotation_status(
            &ctx,
            GetKeyRotationStatusRequest {
                key_id: key.clone(),
            },
        )
        .await
        .expect("status");
    assert_eq!(status.key_rotation_enabled, Some(true));
    kms.keys
        .disable_key_rotation(
            &ctx,
            DisableKeyRotationRequest {
                key_id: key.clone(),
            },
        )
        .await
        .expect("disable rotation");
    assert_eq!(due_entries(&store).await, 0);
}

#[tokio::test]
async fn on_demand_rotation_quota_and_state_checks() {
    let (kms, _store, _clock, ctx) = kms();
    let key = create(&kms, &ctx).await;
    let old = encrypt(&kms, &ctx, &key, b"x").await;
    let mut seen = vec![current_material(&kms, &ctx, &key).await];
    for _ in 0..super::rotation::MAX_ON_DEMAND_ROTATIONS {
        let out = kms
            .keys
            .rotate_key_on_demand(
                &ctx,
                RotateKeyOnDemandRequest {
                    key_id: key.clone(),
                },
            )
            .await
            .expect("rotate");
        assert_eq!(out.key_id.as_deref(), Some(key.as_str()));
        let now = current_material(&kms, &ctx, &key).await;
        assert!(!seen.contains(&now));
        seen.push(now);
    }
    let e = kms
        .keys
        .rotate_key_on_demand(
            &ctx,
            RotateKeyOnDemandRequest {
                key_id: key.clone(),
            },
        )
        .await
        .unwrap_err();
    assert!(e.is(Exception::LimitExceeded), "{e:?}");
    assert_eq!(decrypt(&kms, &ctx, old).await, b"x");

    let other = create(&kms, &ctx).await;
    kms.keys
        .disable_key(
            &ctx,
            DisableKeyRequest {
                key_id: other.clone(),
            },
        )
        .await
        .expect("disable");
    let e = kms
        .keys
        .rotate_key_on_demand(
            &ctx,
            RotateKeyOnDemandRequest {
                key_id: other.clone(),
            },
        )
        .await
        .unwrap_err();
    assert!(e.is(Exception::Disabled), "{e:?}");
    let e = kms
        .keys
        .enable_key_rotation(
            &ctx,
            EnableKeyRotationRequest {
                key_id: other,
                rotation_period_in_days: None,
            },
        )
        .await
        .unwrap_err();
    assert!(e.is(Exception::Disabled), "{e:?}");
}
