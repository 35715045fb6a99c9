//! Unit tests of scheduled key deletion over the in-memory store: the deletion-due index
//! entry is written and removed with the key, and the sweep finds due keys through it.

use keyhold_kms_model::enums::KeyState;
use keyhold_kms_model::shapes::{
    CancelKeyDeletionRequest, DescribeKeyRequest, ScheduleKeyDeletionRequest,
};

use super::test_fixture::{create, fixture_at, memory_kms, Fixture, ACCOUNT, REGION};
use super::DELETION_DUE_INDEX;
use crate::ports::memory::MemoryStore;
use crate::ports::{IndexHit, IndexOwner, MetadataStore};
use crate::{Kms, RequestContext};

async fn schedule(kms: &Kms, ctx: &RequestContext, key_id: &str, days: i32) {
    let req = ScheduleKeyDeletionRequest {
        key_id: key_id.into(),
        pending_window_in_days: Some(days),
    };
    kms.keys
        .schedule_key_deletion(ctx, req)
        .await
        .expect("schedule");
}

async fn index(store: &MemoryStore) -> Vec<IndexHit> {
    store
        .list_index(DELETION_DUE_INDEX, "", None, None, 100)
        .await
        .expect("list")
}

fn owner(key_id: &str) -> IndexOwner {
    IndexOwner::Key {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
        key_id: key_id.into(),
    }
}

#[tokio::test]
async fn schedule_indexes_and_cancel_unindexes_in_the_key_write() {
    let (kms, store, ctx) = memory_kms();
    let key = create(&kms, &ctx).await;
    assert!(index(&store).await.is_empty());
    schedule(&kms, &ctx, &key, 7).await;
    let hits = index(&store).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].owner, owner(&key));
    let row = store.get_key(ACCOUNT, REGION, &key).await.expect("get");
    let doc: super::KeyDoc = serde_json::from_str(&row.expect("row").doc).expect("doc");
    let due_ms = (doc.deletion_date.expect("date") * 1000.0) as i64;
    assert_eq!(hits[0].value, format!("{due_ms:015}"));

    let cancel = CancelKeyDeletionRequest {
        key_id: key.clone(),
    };
    kms.keys
        .cancel_key_deletion(&ctx, cancel)
        .await
        .expect("cancel");
    assert!(index(&store).await.is_empty());
    // Nothing pending: the sweep deletes nothing, even when told to complete everything.
    assert_eq!(
        kms.keys.complete_pending_deletions(true).await.ok(),
        Some(0)
    );
}

#[tokio::test]
async fn sweep_completes_due_deletions_through_the_index() {
    let (kms, store, ctx) = memory_kms();
    let (a, b, kept) = (
        create(&kms, &ctx).await,
        create(&kms, &ctx).await,
        create(&kms, &ctx).await,
    );
    schedule(&kms, &ctx, &a, 7).await;
    schedule(&kms, &ctx, &b, 30).await;
    // Not due yet.
    assert_eq!(
        kms.keys.complete_pending_deletions(false).await.ok(),
        Some(0)
    );
    assert_eq!(index(&store).await.len(), 2);
    // The test hook completes every scheduled deletion; deleting a key drops its entry.
    assert_eq!(
        kms.keys.complete_pending_deletions(true).await.ok(),
        Some(2)
    );
    assert!(index(&store).await.is_empty());
    for gone in [&a, &b] {
        assert_eq!(store.get_key(ACCOUNT, REGION, gone).await.ok(), Some(None));
    }
    let described = kms
        .keys
        .describe_key(
            &ctx,
            DescribeKeyRequest {
                key_id: kept.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("describe");
    assert_eq!(
        described.key_metadata.and_then(|m| m.key_state),
        Some(KeyState::Enabled)
    );
}

#[tokio::test]
async fn sweep_completes_only_what_is_due() {
    let (kms, store, ctx) = memory_kms();
    let (due, later) = (create(&kms, &ctx).await, create(&kms, &ctx).await);
    schedule(&kms, &ctx, &due, 7).await;
    schedule(&kms, &ctx, &later, 7).await;
    // Move one key's due time into the past, as time passing would.
    let mut row = store
        .get_key(ACCOUNT, REGION, &due)
        .await
        .expect("get")
        .expect("row");
    row.version += 1;
    let past = crate::ports::IndexEntry::new(DELETION_DUE_INDEX, format!("{:015}", 1_000));
    store
        .update_key(&row, Some(&[past]))
        .await
        .expect("backdate");
    assert_eq!(
        kms.keys.complete_pending_deletions(false).await.ok(),
        Some(1)
    );
    assert_eq!(store.get_key(ACCOUNT, REGION, &due).await.ok(), Some(None));
    let hits = index(&store).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].owner, owner(&later));
}

#[tokio::test]
async fn a_scheduled_key_becomes_due_only_when_the_clock_passes_its_window() {
    use std::time::Duration;

    let Fixture {
        kms,
        store,
        clock,
        ctx,
        ..
    } = fixture_at(1_700_000_000_123);
    let key = create(&kms, &ctx).await;
    schedule(&kms, &ctx, &key, 7).await;
    let row = store.get_key(ACCOUNT, REGION, &key).await.expect("get");
    let doc: super::KeyDoc = serde_json::from_str(&row.expect("row").doc).expect("doc");
    // The dates come from the clock: created now, due exactly seven days later.
    assert_eq!(doc.creation_date, 1_700_000_000.123);
    assert_eq!(doc.deletion_date, Some(1_700_604_800.123));

    let week = Duration::from_secs(7 * 86_400);
    clock.advance(week - Duration::from_secs(1));
    assert_eq!(
        kms.keys.complete_pending_deletions(false).await.ok(),
        Some(0)
    );
    assert_eq!(
        store
            .get_key(ACCOUNT, REGION, &key)
            .await
            .ok()
            .map(|r| r.is_some()),
        Some(true)
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        kms.keys.complete_pending_deletions(false).await.ok(),
        Some(1)
    );
    assert_eq!(store.get_key(ACCOUNT, REGION, &key).await.ok(), Some(None));
    assert!(index(&store).await.is_empty());
}

#[tokio::test]
async fn grants_go_with_their_key() {
    use keyhold_kms_model::enums::GrantOperation;
    use keyhold_kms_model::shapes::{CreateGrantRequest, ListRetirableGrantsRequest};
    let (kms, store, ctx) = memory_kms();
    let key = create(&kms, &ctx).await;
    let other = create(&kms, &ctx).await;
    for k in [&key, &other] {
        kms.keys
            .create_grant(
                &ctx,
                CreateGrantRequest {
                    key_id: k.clone(),
                    grantee_principal: format!("arn:aws:iam::{ACCOUNT}:role/app"),
                    retiring_principal: Some(format!("arn:aws:iam::{ACCOUNT}:role/ops")),
                    operations: vec![GrantOperation::Encrypt],
                    ..Default::default()
                },
            )
            .await
            .expect("grant");
    }
    let retirable = || ListRetirableGrantsRequest {
        retiring_principal: format!("arn:aws:iam::{ACCOUNT}:role/ops"),
        ..Default::default()
    };
    let before = kms
        .keys
        .list_retirable_grants(&ctx, retirable())
        .await
        .unwrap();
    assert_eq!(before.grants.unwrap_or_default().len(), 2);
    schedule(&kms, &ctx, &key, 7).await;
    assert_eq!(kms.keys.complete_pending_deletions(true).await.unwrap(), 1);
    let after = kms
        .keys
        .list_retirable_grants(&ctx, retirable())
        .await
        .unwrap();
    let left = after.grants.unwrap_or_default();
    assert_eq!(left.len(), 1, "only the other key's grant is left");
    assert!(left[0]
        .key_id
        .as_deref()
        .unwrap_or_default()
        .ends_with(&other));
    let docs = store
        .list_documents(super::GRANT_KIND, ACCOUNT, REGION, None, 100)
        .await
        .unwrap();
    assert_eq!(docs.len(), 1, "the deleted key's grant document is gone");
}
