//! Keys and key materials.

use keyhold_core::ports::{StoreError, UniqueClaim};
use keyhold_store::{KEY_ID_SCOPE, KEY_MATERIAL_ID_SCOPE};

use crate::assert_err;
use crate::fixtures::*;
use crate::harness::Ctx;

pub async fn insert_get_roundtrip(ctx: &Ctx) {
    let s = &ctx.store;
    let mut k = key("k1");
    k.custom_key_store_id = Some("cks-1".into());
    let m = material("k1", "m1");
    s.insert_key(&k, Some(&m), &[UniqueClaim::exclusive("alias", "a1")], &[])
        .await
        .unwrap();

    assert_eq!(
        s.get_key(ACCT, REGION, "k1").await.unwrap(),
        Some(k.clone())
    );
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m1").await.unwrap(),
        Some(m)
    );
    // The other node sees the commit.
    assert_eq!(
        ctx.node2.get_key(ACCT, REGION, "k1").await.unwrap(),
        Some(k)
    );
    assert_eq!(s.get_key(ACCT, REGION, "k2").await.unwrap(), None);
    assert_eq!(s.get_key(ACCT, "eu-west-1", "k1").await.unwrap(), None);
    assert_eq!(s.get_key("999999999999", REGION, "k1").await.unwrap(), None);
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m2").await.unwrap(),
        None
    );

    // Without material and claims.
    s.insert_key(&key("k2"), None, &[], &[]).await.unwrap();
    assert_eq!(
        s.get_key(ACCT, REGION, "k2").await.unwrap(),
        Some(key("k2"))
    );
}

pub async fn insert_requires_version_1(ctx: &Ctx) {
    let mut k = key("k1");
    k.version = 2;
    assert_err!(
        ctx.store.insert_key(&k, None, &[], &[]).await,
        StoreError::VersionMismatch
    );
    assert_eq!(ctx.store.get_key(ACCT, REGION, "k1").await.unwrap(), None);
}

pub async fn duplicate_key_id_conflicts(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_key(&key("k1"), Some(&material("k1", "m1")), &[], &[])
        .await
        .unwrap();
    let mut again = key("k1");
    again.doc = "{}".into();
    let claim = UniqueClaim::exclusive("alias", "a1");
    assert_conflict(
        s.insert_key(
            &again,
            Some(&material("k1", "m2")),
            std::slice::from_ref(&claim),
            &[],
        )
        .await,
        KEY_ID_SCOPE,
    );
    assert_eq!(
        s.get_key(ACCT, REGION, "k1").await.unwrap(),
        Some(key("k1"))
    );
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m2").await.unwrap(),
        None
    );
    // The failed insert left no claim behind.
    s.insert_key(&key("k2"), None, &[claim], &[]).await.unwrap();
}

pub async fn insert_is_atomic(ctx: &Ctx) {
    let s = &ctx.store;
    let claim = UniqueClaim::exclusive("alias", "a1");
    s.insert_key(&key("k1"), None, std::slice::from_ref(&claim), &[])
        .await
        .unwrap();
    let free = UniqueClaim::exclusive("alias", "free");
    assert_conflict(
        s.insert_key(
            &key("k2"),
            Some(&material("k2", "m1")),
            &[free.clone(), claim],
            &[],
        )
        .await,
        "alias",
    );
    assert_eq!(s.get_key(ACCT, REGION, "k2").await.unwrap(), None);
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k2", "m1").await.unwrap(),
        None
    );
    // The claim that did not conflict was not recorded either.
    s.insert_key(&key("k3"), None, &[free], &[]).await.unwrap();
}

pub async fn mismatched_material_is_refused(ctx: &Ctx) {
    let r = ctx
        .store
        .insert_key(&key("k1"), Some(&material("other", "m1")), &[], &[])
        .await;
    assert_err!(r, StoreError::Backend(_));
    assert_eq!(ctx.store.get_key(ACCT, REGION, "k1").await.unwrap(), None);
}

pub async fn update_compare_and_set(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_key(&key("k1"), None, &[], &[]).await.unwrap();

    let mut v2 = key("k1");
    v2.version = 2;
    v2.doc = r#"{"KeyState":"Disabled"}"#.into();
    v2.custom_key_store_id = Some("cks-1".into());
    v2.created_at_ms = 5; // not a column update_key replaces
    s.update_key(&v2, None).await.unwrap();
    let got = s.get_key(ACCT, REGION, "k1").await.unwrap().unwrap();
    assert_eq!(got.version, 2);
    assert_eq!(got.doc, v2.doc);
    assert_eq!(got.custom_key_store_id.as_deref(), Some("cks-1"));
    assert_eq!(got.created_at_ms, key("k1").created_at_ms);

    // Stale writers lose, from either node.
    let mut stale = key("k1");
    stale.version = 2;
    stale.doc = "stale".into();
    assert_err!(
        s.update_key(&stale, None).await,
        StoreError::VersionMismatch
    );
    assert_err!(
        ctx.node2.update_key(&stale, None).await,
        StoreError::VersionMismatch
    );
    stale.version = 9;
    assert_err!(
        s.update_key(&stale, None).await,
        StoreError::VersionMismatch
    );
    assert_eq!(
        s.get_key(ACCT, REGION, "k1").await.unwrap().unwrap().doc,
        v2.doc
    );

    let mut v3 = got;
    v3.version = 3;
    v3.custom_key_store_id = None;
    ctx.node2.update_key(&v3, None).await.unwrap();
    assert_eq!(s.get_key(ACCT, REGION, "k1").await.unwrap(), Some(v3));

    let mut missing = key("nope");
    missing.version = 2;
    assert_err!(s.update_key(&missing, None).await, StoreError::NotFound);
}

pub async fn delete_removes_materials_and_claims(ctx: &Ctx) {
    let s = &ctx.store;
    let claim = UniqueClaim::exclusive("alias", "a1");
    s.insert_key(
        &key("k1"),
        Some(&material("k1", "m1")),
        std::slice::from_ref(&claim),
        &[],
    )
    .await
    .unwrap();
    s.insert_key_material(&material("k1", "m2")).await.unwrap();
    s.insert_key(&key("k2"), Some(&material("k2", "m1")), &[], &[])
        .await
        .unwrap();

    s.delete_key(ACCT, REGION, "k1").await.unwrap();
    assert_eq!(s.get_key(ACCT, REGION, "k1").await.unwrap(), None);
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m1").await.unwrap(),
        None
    );
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m2").await.unwrap(),
        None
    );
    // Other keys are untouched.
    assert!(s
        .get_key_material(ACCT, REGION, "k2", "m1")
        .await
        .unwrap()
        .is_some());
    // The claim is free again.
    s.insert_key(&key("k3"), None, &[claim], &[]).await.unwrap();
    // Deleting what is not there.
    assert_err!(s.delete_key(ACCT, REGION, "k1").await, StoreError::NotFound);
    // The id can be reused, with a fresh material.
    s.insert_key(&key("k1"), Some(&material("k1", "m1")), &[], &[])
        .await
        .unwrap();
}

pub async fn list_pages_in_byte_order(ctx: &Ctx) {
    let s = &ctx.store;
    // Byte order: uppercase before lowercase, '-' before digits; a locale collation differs.
    let ids = ["mrk-1", "a-2", "B", "a1", "Z", "a_3", "0", "ab"];
    for id in ids {
        s.insert_key(&key(id), None, &[], &[]).await.unwrap();
    }
    s.insert_key(&key_in(ACCT, "eu-west-1", "A"), None, &[], &[])
        .await
        .unwrap();
    s.insert_key(&key_in("999999999999", REGION, "A"), None, &[], &[])
        .await
        .unwrap();

    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s
            .list_keys(ACCT, REGION, after.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().key_id.clone());
        seen.extend(page.into_iter().map(|k| k.key_id));
    }
    assert_eq!(seen, expected);

    let all = s.list_keys(ACCT, REGION, None, 100).await.unwrap();
    assert_eq!(all.len(), ids.len());
    assert_eq!(all[0], key("0"));
    assert!(s.list_keys(ACCT, REGION, None, 0).await.unwrap().is_empty());
    let tail = s.list_keys(ACCT, REGION, Some("a1"), 100).await.unwrap();
    let tail: Vec<&str> = tail.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(tail, ["a_3", "ab", "mrk-1"]);
    // `after` need not exist.
    let from_b = s.list_keys(ACCT, REGION, Some("C"), 1).await.unwrap();
    assert_eq!(from_b[0].key_id, "Z");
    assert_eq!(
        s.list_keys(ACCT, "eu-west-1", None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(s
        .list_keys(ACCT, "ap-south-1", None, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn materials(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_key(&key("k1"), None, &[], &[]).await.unwrap();
    s.insert_key_material(&material("k1", "m1")).await.unwrap();
    ctx.node2
        .insert_key_material(&material("k1", "m2"))
        .await
        .unwrap();
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m1").await.unwrap(),
        Some(material("k1", "m1"))
    );
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m2").await.unwrap(),
        Some(material("k1", "m2"))
    );

    let mut dup = material("k1", "m1");
    dup.wrapped = vec![9; 3];
    assert_conflict(s.insert_key_material(&dup).await, KEY_MATERIAL_ID_SCOPE);
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m1").await.unwrap(),
        Some(material("k1", "m1"))
    );

    assert_err!(
        s.insert_key_material(&material("nokey", "m1")).await,
        StoreError::NotFound
    );
    assert_eq!(
        s.get_key_material(ACCT, REGION, "nokey", "m1")
            .await
            .unwrap(),
        None
    );

    // Large, arbitrary bytes survive.
    let mut big = material("k1", "big");
    big.wrapped = (0..=255u8).cycle().take(70_000).collect();
    s.insert_key_material(&big).await.unwrap();
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "big").await.unwrap(),
        Some(big)
    );
}

pub async fn count_keys_in_store(ctx: &Ctx) {
    let s = &ctx.store;
    for (id, store) in [
        ("k1", Some("cks-1")),
        ("k2", Some("cks-1")),
        ("k3", Some("cks-2")),
        ("k4", None),
    ] {
        let mut k = key(id);
        k.custom_key_store_id = store.map(Into::into);
        s.insert_key(&k, None, &[], &[]).await.unwrap();
    }
    let mut elsewhere = key_in(ACCT, "eu-west-1", "k5");
    elsewhere.custom_key_store_id = Some("cks-1".into());
    s.insert_key(&elsewhere, None, &[], &[]).await.unwrap();

    assert_eq!(
        s.count_keys_in_custom_key_store(ACCT, REGION, "cks-1")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.count_keys_in_custom_key_store(ACCT, REGION, "cks-2")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.count_keys_in_custom_key_store(ACCT, REGION, "cks-3")
            .await
            .unwrap(),
        0
    );
    s.delete_key(ACCT, REGION, "k1").await.unwrap();
    assert_eq!(
        s.count_keys_in_custom_key_store(ACCT, REGION, "cks-1")
            .await
            .unwrap(),
        1
    );
}
