//! Leases, reset, and races between concurrent writers on two "nodes".

use std::sync::Arc;
use std::time::Duration;

use keyhold_core::ports::{MetadataStore, StoreError, UniqueClaim};

use crate::fixtures::*;
use crate::harness::Ctx;

pub async fn leases(ctx: &Ctx) {
    let s = &ctx.store;
    assert!(s
        .try_acquire_lease("cks-1", "node-a", 60_000)
        .await
        .unwrap());
    assert!(
        s.try_acquire_lease("cks-1", "node-a", 60_000)
            .await
            .unwrap(),
        "renewal"
    );
    assert!(!s
        .try_acquire_lease("cks-1", "node-b", 60_000)
        .await
        .unwrap());
    // Leases are independent of each other.
    assert!(s
        .try_acquire_lease("cks-2", "node-b", 60_000)
        .await
        .unwrap());
    // Releasing someone else's lease is a no-op.
    s.release_lease("cks-1", "node-b").await.unwrap();
    assert!(!s
        .try_acquire_lease("cks-1", "node-b", 60_000)
        .await
        .unwrap());
    s.release_lease("cks-1", "node-a").await.unwrap();
    assert!(s
        .try_acquire_lease("cks-1", "node-b", 60_000)
        .await
        .unwrap());
    s.release_lease("nothing", "node-a").await.unwrap();

    // Expiry: a short lease is refused to others only until it runs out.
    assert!(s.try_acquire_lease("short", "node-a", 400).await.unwrap());
    assert!(!s.try_acquire_lease("short", "node-b", 400).await.unwrap());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(s
        .try_acquire_lease("short", "node-b", 60_000)
        .await
        .unwrap());
    assert!(!s
        .try_acquire_lease("short", "node-a", 60_000)
        .await
        .unwrap());
}

pub async fn leases_across_nodes(ctx: &Ctx) {
    assert!(ctx
        .store
        .try_acquire_lease("l", "node-a", 60_000)
        .await
        .unwrap());
    assert!(!ctx
        .node2
        .try_acquire_lease("l", "node-b", 60_000)
        .await
        .unwrap());
    // Renewal pushes the expiry out: a re-acquire with a long TTL outlives the short one.
    assert!(ctx
        .store
        .try_acquire_lease("m", "node-a", 300)
        .await
        .unwrap());
    assert!(ctx
        .store
        .try_acquire_lease("m", "node-a", 60_000)
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!ctx
        .node2
        .try_acquire_lease("m", "node-b", 60_000)
        .await
        .unwrap());
    ctx.store.release_lease("l", "node-a").await.unwrap();
    assert!(ctx
        .node2
        .try_acquire_lease("l", "node-b", 60_000)
        .await
        .unwrap());
}

pub async fn reset_wipes_everything(ctx: &Ctx) {
    let s = &ctx.store;
    let claim = UniqueClaim::exclusive("alias", "a");
    s.insert_key(
        &key("k1"),
        Some(&material("k1", "m1")),
        std::slice::from_ref(&claim),
        &[],
    )
    .await
    .unwrap();
    s.insert_custom_key_store(&cks("cks-1", "one"), &[name_claim("one")], 1)
        .await
        .unwrap();
    assert!(s.try_acquire_lease("l", "node-a", 60_000).await.unwrap());

    ctx.node2.reset().await.unwrap();

    assert_eq!(s.get_key(ACCT, REGION, "k1").await.unwrap(), None);
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m1").await.unwrap(),
        None
    );
    assert!(s
        .list_keys(ACCT, REGION, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .list_custom_key_stores(ACCT, REGION, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .list_custom_key_stores_in_states(&["DISCONNECTED"])
        .await
        .unwrap()
        .is_empty());
    // Leases, claims and quota usage are gone too; the schema still works.
    assert!(s.try_acquire_lease("l", "node-b", 60_000).await.unwrap());
    s.insert_key(&key("k1"), Some(&material("k1", "m1")), &[claim], &[])
        .await
        .unwrap();
    s.insert_custom_key_store(&cks("cks-2", "one"), &[name_claim("one")], 1)
        .await
        .unwrap();
    s.reset().await.unwrap();
    s.reset().await.unwrap();
}

const RACERS: usize = 16;

/// Runs `f(i, node)` for `RACERS` tasks at once, alternating between the two nodes.
async fn race<F, Fut, T>(ctx: &Ctx, f: F) -> Vec<T>
where
    F: Fn(usize, Arc<dyn MetadataStore>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let node = if i % 2 == 0 {
                ctx.store.clone()
            } else {
                ctx.node2.clone()
            };
            let fut = f(i, node);
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(RACERS);
    for t in tasks {
        out.push(t.await.expect("racer panicked"));
    }
    out
}

pub async fn race_same_name(ctx: &Ctx) {
    let results = race(ctx, |i, node| async move {
        let c = cks(&format!("cks-{i:02}"), "same");
        node.insert_custom_key_store(&c, &[name_claim("same")], 100)
            .await
    })
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict { scope }) if scope == NAME_SCOPE))
        .count();
    assert_eq!((ok, conflicts), (1, RACERS - 1), "{results:?}");
    assert_eq!(
        ctx.store
            .list_custom_key_stores(ACCT, REGION, None, 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn race_quota(ctx: &Ctx) {
    let results = race(ctx, |i, node| async move {
        let name = format!("name-{i:02}");
        let c = cks(&format!("cks-{i:02}"), &name);
        node.insert_custom_key_store(&c, &[name_claim(&name)], 10)
            .await
    })
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::QuotaExceeded { limit: 10 })))
        .count();
    assert_eq!((ok, refused), (10, RACERS - 10), "{results:?}");
    assert_eq!(
        ctx.store
            .list_custom_key_stores(ACCT, REGION, None, 100)
            .await
            .unwrap()
            .len(),
        10
    );
}

/// Half the racers want the endpoint shared, half exclusively: either one exclusive winner
/// and nobody else, or only shared winners.
pub async fn race_shared_and_exclusive(ctx: &Ctx) {
    let results = race(ctx, |i, node| async move {
        let exclusive = i % 4 < 2;
        let value = "us-east-1/https://xks.example.com";
        let claim = if exclusive {
            UniqueClaim::exclusive(ENDPOINT_SCOPE, value)
        } else {
            UniqueClaim::shared(ENDPOINT_SCOPE, value)
        };
        let id = format!("cks-{i:02}");
        (
            exclusive,
            node.insert_custom_key_store(&cks(&id, &id), &[claim], 100)
                .await,
        )
    })
    .await;
    for (_, r) in &results {
        assert!(
            matches!(r, Ok(()) | Err(StoreError::Conflict { .. })),
            "{results:?}"
        );
    }
    let exclusive_wins = results.iter().filter(|(e, r)| *e && r.is_ok()).count();
    let shared_wins = results.iter().filter(|(e, r)| !*e && r.is_ok()).count();
    assert!(
        (exclusive_wins == 1 && shared_wins == 0) || (exclusive_wins == 0 && shared_wins == 8),
        "exclusive {exclusive_wins}, shared {shared_wins}: {results:?}"
    );
}

pub async fn race_lease(ctx: &Ctx) {
    let results = race(ctx, |i, node| async move {
        node.try_acquire_lease("contested", &format!("node-{i}"), 60_000)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
}
