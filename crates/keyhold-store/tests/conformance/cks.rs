//! Custom key stores.

use keyhold_core::ports::{StoreError, StoredCustomKeyStore};
use keyhold_store::CUSTOM_KEY_STORE_ID_SCOPE;

use crate::assert_err;
use crate::fixtures::*;
use crate::harness::Ctx;

fn bumped(mut s: StoredCustomKeyStore) -> StoredCustomKeyStore {
    s.version += 1;
    s
}

pub async fn insert_get_update(ctx: &Ctx) {
    let s = &ctx.store;
    let c = cks("cks-1", "one");
    s.insert_custom_key_store(&c, &[name_claim("one")], 10)
        .await
        .unwrap();
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-1").await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        ctx.node2
            .get_custom_key_store(ACCT, REGION, "cks-1")
            .await
            .unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        s.get_custom_key_store(ACCT, "eu-west-1", "cks-1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-2").await.unwrap(),
        None
    );

    let mut v2 = bumped(c);
    v2.name = "renamed".into();
    v2.store_type = "AWS_CLOUDHSM".into();
    v2.connection_state = "CONNECTING".into();
    v2.doc = r#"{"x":1}"#.into();
    s.update_custom_key_store(&v2, Some(&[name_claim("renamed")]))
        .await
        .unwrap();
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-1").await.unwrap(),
        Some(v2)
    );
}

pub async fn update_compare_and_set(ctx: &Ctx) {
    let s = &ctx.store;
    let c = cks("cks-1", "one");
    s.insert_custom_key_store(&c, &[name_claim("one")], 10)
        .await
        .unwrap();
    let mut v2 = bumped(c.clone());
    v2.connection_state = "CONNECTED".into();
    ctx.node2.update_custom_key_store(&v2, None).await.unwrap();

    let mut stale = bumped(c.clone());
    stale.connection_state = "FAILED".into();
    assert_err!(
        s.update_custom_key_store(&stale, None).await,
        StoreError::VersionMismatch
    );
    let mut far = c.clone();
    far.version = 7;
    assert_err!(
        s.update_custom_key_store(&far, None).await,
        StoreError::VersionMismatch
    );
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-1").await.unwrap(),
        Some(v2)
    );

    let missing = bumped(cks("cks-404", "x"));
    assert_err!(
        s.update_custom_key_store(&missing, None).await,
        StoreError::NotFound
    );
    assert_err!(
        s.update_custom_key_store(&missing, Some(&[name_claim("x")]))
            .await,
        StoreError::NotFound
    );
    // The failed update did not take the claim.
    s.insert_custom_key_store(&cks("cks-2", "x"), &[name_claim("x")], 10)
        .await
        .unwrap();
}

pub async fn duplicate_id_conflicts(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_custom_key_store(&cks("cks-1", "one"), &[name_claim("one")], 10)
        .await
        .unwrap();
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-1", "two"), &[name_claim("two")], 10)
            .await,
        CUSTOM_KEY_STORE_ID_SCOPE,
    );
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-1")
            .await
            .unwrap()
            .unwrap()
            .name,
        "one"
    );
    s.insert_custom_key_store(&cks("cks-2", "two"), &[name_claim("two")], 10)
        .await
        .unwrap();
}

pub async fn update_without_claims_keeps_them(ctx: &Ctx) {
    let s = &ctx.store;
    let c = cks("cks-1", "one");
    s.insert_custom_key_store(&c, &[name_claim("one")], 10)
        .await
        .unwrap();
    s.update_custom_key_store(&bumped(c), None).await.unwrap();
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-2", "one"), &[name_claim("one")], 10)
            .await,
        NAME_SCOPE,
    );
}

pub async fn update_replaces_claims(ctx: &Ctx) {
    let s = &ctx.store;
    let c = cks("cks-1", "one");
    s.insert_custom_key_store(&c, &[name_claim("one")], 10)
        .await
        .unwrap();
    let mut v2 = bumped(c);
    v2.name = "two".into();
    s.update_custom_key_store(&v2, Some(&[name_claim("two")]))
        .await
        .unwrap();
    // "one" is free, "two" is taken.
    s.insert_custom_key_store(&cks("cks-2", "one"), &[name_claim("one")], 10)
        .await
        .unwrap();
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-3", "two"), &[name_claim("two")], 10)
            .await,
        NAME_SCOPE,
    );
    // An empty list drops every claim.
    s.update_custom_key_store(&bumped(v2), Some(&[]))
        .await
        .unwrap();
    s.insert_custom_key_store(&cks("cks-3", "two"), &[name_claim("two")], 10)
        .await
        .unwrap();
}

pub async fn delete_rules(ctx: &Ctx) {
    let s = &ctx.store;
    let c = cks("cks-1", "one");
    s.insert_custom_key_store(&c, &[name_claim("one")], 10)
        .await
        .unwrap();
    let mut k = key("k1");
    k.custom_key_store_id = Some("cks-1".into());
    s.insert_key(&k, None, &[], &[]).await.unwrap();
    // A key with the same store id in another Region does not count.
    let mut other = key_in(ACCT, "eu-west-1", "k2");
    other.custom_key_store_id = Some("cks-1".into());
    s.insert_key(&other, None, &[], &[]).await.unwrap();

    assert_err!(
        s.delete_custom_key_store(ACCT, REGION, "cks-1", 2).await,
        StoreError::VersionMismatch
    );
    assert_err!(
        s.delete_custom_key_store(ACCT, REGION, "cks-1", 1).await,
        StoreError::HasKeys
    );
    assert_err!(
        s.delete_custom_key_store(ACCT, REGION, "cks-9", 1).await,
        StoreError::NotFound
    );
    // Refusals changed nothing.
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-1").await.unwrap(),
        Some(c.clone())
    );
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-2", "one"), &[name_claim("one")], 10)
            .await,
        NAME_SCOPE,
    );

    s.delete_key(ACCT, REGION, "k1").await.unwrap();
    ctx.node2
        .delete_custom_key_store(ACCT, REGION, "cks-1", 1)
        .await
        .unwrap();
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-1").await.unwrap(),
        None
    );
    assert_err!(
        s.delete_custom_key_store(ACCT, REGION, "cks-1", 1).await,
        StoreError::NotFound
    );
    // Its claims are gone.
    s.insert_custom_key_store(&cks("cks-2", "one"), &[name_claim("one")], 10)
        .await
        .unwrap();
}

pub async fn quota(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_custom_key_store(&cks("cks-1", "one"), &[name_claim("one")], 2)
        .await
        .unwrap();
    ctx.node2
        .insert_custom_key_store(&cks("cks-2", "two"), &[name_claim("two")], 2)
        .await
        .unwrap();
    assert_err!(
        s.insert_custom_key_store(&cks("cks-3", "three"), &[name_claim("three")], 2)
            .await,
        StoreError::QuotaExceeded { limit: 2 }
    );
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-3").await.unwrap(),
        None
    );
    // Other Regions and accounts have their own quota.
    s.insert_custom_key_store(&cks_in(ACCT, "eu-west-1", "cks-3", "three"), &[], 2)
        .await
        .unwrap();
    s.insert_custom_key_store(&cks_in("999999999999", REGION, "cks-3", "three"), &[], 2)
        .await
        .unwrap();
    // The refused insert took no claim; a freed slot can be used again.
    s.delete_custom_key_store(ACCT, REGION, "cks-1", 1)
        .await
        .unwrap();
    s.insert_custom_key_store(&cks("cks-3", "three"), &[name_claim("three")], 2)
        .await
        .unwrap();
    assert_err!(
        s.insert_custom_key_store(&cks("cks-4", "four"), &[], 0)
            .await,
        StoreError::QuotaExceeded { limit: 0 }
    );
}

pub async fn list_pages(ctx: &Ctx) {
    let s = &ctx.store;
    let ids = ["cks-b", "cks-A", "cks-a", "cks-0", "cks-B"];
    for id in ids {
        s.insert_custom_key_store(&cks(id, id), &[], 100)
            .await
            .unwrap();
    }
    s.insert_custom_key_store(&cks_in(ACCT, "eu-west-1", "cks-x", "x"), &[], 100)
        .await
        .unwrap();
    let mut expected = ids.to_vec();
    expected.sort_unstable();

    let first = s
        .list_custom_key_stores(ACCT, REGION, None, 2)
        .await
        .unwrap();
    assert_eq!(
        first,
        vec![cks(expected[0], expected[0]), cks(expected[1], expected[1])]
    );
    let rest = s
        .list_custom_key_stores(ACCT, REGION, Some(&first[1].id), 10)
        .await
        .unwrap();
    let rest: Vec<&str> = rest.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(rest, &expected[2..]);
    assert!(s
        .list_custom_key_stores(ACCT, REGION, Some("cks-b"), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .list_custom_key_stores(ACCT, REGION, None, 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.list_custom_key_stores(ACCT, "eu-west-1", None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn list_in_states(ctx: &Ctx) {
    let s = &ctx.store;
    let rows = [
        ("222222222222", REGION, "cks-1", "CONNECTING"),
        (ACCT, "eu-west-1", "cks-2", "DISCONNECTING"),
        (ACCT, REGION, "cks-3", "CONNECTED"),
        (ACCT, REGION, "cks-4", "CONNECTING"),
        (ACCT, REGION, "cks-5", "DISCONNECTED"),
    ];
    for (acct, region, id, state) in rows {
        let mut c = cks_in(acct, region, id, id);
        c.connection_state = state.into();
        s.insert_custom_key_store(&c, &[], 10).await.unwrap();
    }
    let found = s
        .list_custom_key_stores_in_states(&["CONNECTING", "DISCONNECTING"])
        .await
        .unwrap();
    let mut ids: Vec<&str> = found.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["cks-1", "cks-2", "cks-4"]);
    assert!(found
        .iter()
        .all(|c| c.connection_state.ends_with("CONNECTING")));
    let failed = s
        .list_custom_key_stores_in_states(&["FAILED"])
        .await
        .unwrap();
    assert!(failed.is_empty());
    assert!(s
        .list_custom_key_stores_in_states(&[])
        .await
        .unwrap()
        .is_empty());
    let one = s
        .list_custom_key_stores_in_states(&["CONNECTED"])
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, "cks-3");
}
