//! The key cache's consistency rules, on two `Kms` instances sharing one in-memory store —
//! two Keyhold nodes sharing a database: a change made through a node is seen by that node
//! at once, and by the other once its staleness bound (the TTL) has passed, never later.

use std::time::Duration;

use keyhold_kms_model::shapes::{
    DisableKeyRequest, EnableKeyRequest, EncryptRequest, ScheduleKeyDeletionRequest,
};
use keyhold_kms_model::{Blob, Exception};

use super::test_fixture::{context, create, store_and_root};
use crate::{Kms, RequestContext};

const HOUR: Duration = Duration::from_secs(3600);

/// Two nodes on one store, the second with a key cache of `ttl`.
fn two_nodes(ttl: Duration) -> (Kms, Kms, RequestContext) {
    let (store, root) = store_and_root();
    let a = Kms::new(store.clone(), root.clone());
    let b = Kms::new(store, root);
    b.set_key_cache_ttl(ttl);
    (a, b, context())
}

/// Encrypts under `key_id`; `Err` holds the exception.
async fn encrypt(kms: &Kms, ctx: &RequestContext, key_id: &str) -> Result<(), Exception> {
    let req = EncryptRequest {
        key_id: key_id.into(),
        plaintext: Blob::from(b"cached?".to_vec()),
        ..Default::default()
    };
    kms.keys
        .encrypt(ctx, req)
        .await
        .map(|_| ())
        .map_err(|e| e.exception())
}

async fn disable(kms: &Kms, ctx: &RequestContext, key_id: &str) {
    let req = DisableKeyRequest {
        key_id: key_id.into(),
    };
    kms.keys.disable_key(ctx, req).await.expect("disable");
}

#[tokio::test]
async fn a_change_made_through_this_node_is_seen_at_once() {
    let (a, _, ctx) = two_nodes(HOUR);
    a.set_key_cache_ttl(HOUR);
    let key = create(&a, &ctx).await;
    assert_eq!(encrypt(&a, &ctx, &key).await, Ok(()), "cached now");
    disable(&a, &ctx, &key).await;
    assert_eq!(encrypt(&a, &ctx, &key).await, Err(Exception::Disabled));
    let req = EnableKeyRequest {
        key_id: key.clone(),
    };
    a.keys.enable_key(&ctx, req).await.expect("enable");
    assert_eq!(encrypt(&a, &ctx, &key).await, Ok(()));
    let req = ScheduleKeyDeletionRequest {
        key_id: key.clone(),
        pending_window_in_days: Some(7),
    };
    a.keys
        .schedule_key_deletion(&ctx, req)
        .await
        .expect("schedule");
    assert_eq!(
        encrypt(&a, &ctx, &key).await,
        Err(Exception::KMSInvalidState)
    );
}

#[tokio::test]
async fn another_nodes_change_is_seen_once_the_ttl_has_passed() {
    let (a, b, ctx) = two_nodes(HOUR);
    let key = create(&a, &ctx).await;
    assert_eq!(encrypt(&b, &ctx, &key).await, Ok(()), "b caches the key");
    disable(&a, &ctx, &key).await;
    assert_eq!(encrypt(&a, &ctx, &key).await, Err(Exception::Disabled));
    // Within b's bound, b may still use what it read: the documented eventual consistency.
    assert_eq!(encrypt(&b, &ctx, &key).await, Ok(()));
    b.keys.age_key_cache(HOUR);
    assert_eq!(encrypt(&b, &ctx, &key).await, Err(Exception::Disabled));
}

#[tokio::test]
async fn without_a_cache_another_nodes_change_is_seen_at_once() {
    let (a, b, ctx) = two_nodes(Duration::ZERO);
    let key = create(&a, &ctx).await;
    assert_eq!(encrypt(&b, &ctx, &key).await, Ok(()));
    disable(&a, &ctx, &key).await;
    assert_eq!(encrypt(&b, &ctx, &key).await, Err(Exception::Disabled));
}

#[tokio::test]
async fn a_key_created_on_another_node_is_found_at_once() {
    let (a, b, ctx) = two_nodes(HOUR);
    let missing = "00000000-0000-0000-0000-000000000000";
    assert_eq!(encrypt(&b, &ctx, missing).await, Err(Exception::NotFound));
    let key = create(&a, &ctx).await;
    assert_eq!(
        encrypt(&b, &ctx, &key).await,
        Ok(()),
        "misses are not cached"
    );
}
