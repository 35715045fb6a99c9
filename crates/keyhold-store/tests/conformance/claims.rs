//! Unique claims: exclusive and shared, on insert and update.

use keyhold_core::ports::UniqueClaim;

use crate::fixtures::*;
use crate::harness::Ctx;

fn endpoint(exclusive: bool) -> UniqueClaim {
    let value = format!("{REGION}/https://xks.example.com");
    if exclusive {
        UniqueClaim::exclusive(ENDPOINT_SCOPE, value)
    } else {
        UniqueClaim::shared(ENDPOINT_SCOPE, value)
    }
}

pub async fn exclusive_conflict_returns_scope(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_custom_key_store(
        &cks("cks-1", "one"),
        &[name_claim("one"), endpoint(true)],
        10,
    )
    .await
    .unwrap();
    // The scope named is that of the claim that conflicted.
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-2", "one"), &[name_claim("one")], 10)
            .await,
        NAME_SCOPE,
    );
    assert_conflict(
        ctx.node2
            .insert_custom_key_store(
                &cks("cks-2", "two"),
                &[name_claim("two"), endpoint(true)],
                10,
            )
            .await,
        ENDPOINT_SCOPE,
    );
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-2").await.unwrap(),
        None
    );
    // The same value in another scope, or another value, is fine.
    let other_scope = UniqueClaim::exclusive("other", format!("{ACCT}/{REGION}/one"));
    s.insert_custom_key_store(&cks("cks-2", "two"), &[name_claim("two"), other_scope], 10)
        .await
        .unwrap();
}

pub async fn shared_with_shared_is_fine(ctx: &Ctx) {
    let s = &ctx.store;
    for (i, id) in ["cks-1", "cks-2", "cks-3"].into_iter().enumerate() {
        let store = if i % 2 == 0 { s } else { &ctx.node2 };
        store
            .insert_custom_key_store(&cks(id, id), &[endpoint(false)], 10)
            .await
            .unwrap();
    }
    assert_eq!(
        s.list_custom_key_stores(ACCT, REGION, None, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

pub async fn shared_then_exclusive_conflicts(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_custom_key_store(&cks("cks-1", "one"), &[endpoint(false)], 10)
        .await
        .unwrap();
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-2", "two"), &[endpoint(true)], 10)
            .await,
        ENDPOINT_SCOPE,
    );
    // Once the shared holder is gone, the exclusive claim succeeds.
    s.delete_custom_key_store(ACCT, REGION, "cks-1", 1)
        .await
        .unwrap();
    s.insert_custom_key_store(&cks("cks-2", "two"), &[endpoint(true)], 10)
        .await
        .unwrap();
}

pub async fn exclusive_then_shared_conflicts(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_custom_key_store(&cks("cks-1", "one"), &[endpoint(true)], 10)
        .await
        .unwrap();
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-2", "two"), &[endpoint(false)], 10)
            .await,
        ENDPOINT_SCOPE,
    );
    // Also through an update of another store.
    let c3 = cks("cks-3", "three");
    s.insert_custom_key_store(&c3, &[], 10).await.unwrap();
    let mut v2 = c3.clone();
    v2.version = 2;
    assert_conflict(
        s.update_custom_key_store(&v2, Some(&[endpoint(false)]))
            .await,
        ENDPOINT_SCOPE,
    );
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-3").await.unwrap(),
        Some(c3)
    );
}

pub async fn key_and_store_claims_share_the_namespace(ctx: &Ctx) {
    let s = &ctx.store;
    let claim = UniqueClaim::exclusive("xks-key-id", "cks-1/ext-1");
    s.insert_key(&key("k1"), None, std::slice::from_ref(&claim), &[])
        .await
        .unwrap();
    assert_conflict(
        s.insert_key(&key("k2"), None, std::slice::from_ref(&claim), &[])
            .await,
        "xks-key-id",
    );
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-1", "one"), std::slice::from_ref(&claim), 10)
            .await,
        "xks-key-id",
    );
    // A key and a store with the same id are different owners.
    let same_id = UniqueClaim::exclusive("id-clash", "v");
    s.insert_key(&key("x"), None, std::slice::from_ref(&same_id), &[])
        .await
        .unwrap();
    assert_conflict(
        s.insert_custom_key_store(&cks("x", "x"), std::slice::from_ref(&same_id), 10)
            .await,
        "id-clash",
    );
}

pub async fn update_keeping_own_claims(ctx: &Ctx) {
    let s = &ctx.store;
    let c = cks("cks-1", "one");
    let claims = [name_claim("one"), endpoint(true)];
    s.insert_custom_key_store(&c, &claims, 10).await.unwrap();
    let mut v2 = c;
    v2.version = 2;
    v2.doc = "{}".into();
    s.update_custom_key_store(&v2, Some(&claims)).await.unwrap();
    // Downgrading its own exclusive claim to shared is fine too.
    let mut v3 = v2.clone();
    v3.version = 3;
    s.update_custom_key_store(&v3, Some(&[name_claim("one"), endpoint(false)]))
        .await
        .unwrap();
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-1").await.unwrap(),
        Some(v3)
    );
    // Now another store may share the endpoint, but not take the name.
    s.insert_custom_key_store(
        &cks("cks-2", "two"),
        &[name_claim("two"), endpoint(false)],
        10,
    )
    .await
    .unwrap();
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-3", "one"), &[name_claim("one")], 10)
            .await,
        NAME_SCOPE,
    );
}

pub async fn update_taking_a_taken_claim_changes_nothing(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_custom_key_store(&cks("cks-a", "a"), &[name_claim("a")], 10)
        .await
        .unwrap();
    let b = cks("cks-b", "b");
    s.insert_custom_key_store(&b, &[name_claim("b")], 10)
        .await
        .unwrap();

    let mut b2 = b.clone();
    b2.version = 2;
    b2.name = "a".into();
    b2.doc = "changed".into();
    assert_conflict(
        ctx.node2
            .update_custom_key_store(&b2, Some(&[name_claim("z"), name_claim("a")]))
            .await,
        NAME_SCOPE,
    );
    // The row, its version and its claims are as before.
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-b").await.unwrap(),
        Some(b.clone())
    );
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-c", "b"), &[name_claim("b")], 10)
            .await,
        NAME_SCOPE,
    );
    // "z" was not taken.
    s.insert_custom_key_store(&cks("cks-c", "z"), &[name_claim("z")], 10)
        .await
        .unwrap();
    // And the version-2 update still applies.
    b2.name = "b".into();
    s.update_custom_key_store(&b2, Some(&[name_claim("b")]))
        .await
        .unwrap();
}

pub async fn duplicate_claims_in_one_call(ctx: &Ctx) {
    let s = &ctx.store;
    let claims = [
        endpoint(false),
        endpoint(true),
        name_claim("one"),
        name_claim("one"),
    ];
    s.insert_custom_key_store(&cks("cks-1", "one"), &claims, 10)
        .await
        .unwrap();
    // The exclusive one of the pair won.
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-2", "two"), &[endpoint(false)], 10)
            .await,
        ENDPOINT_SCOPE,
    );
    let mut v2 = cks("cks-1", "one");
    v2.version = 2;
    s.update_custom_key_store(&v2, Some(&claims)).await.unwrap();
    s.insert_key(&key("k1"), None, &[name_claim("k"), name_claim("k")], &[])
        .await
        .unwrap();
}
