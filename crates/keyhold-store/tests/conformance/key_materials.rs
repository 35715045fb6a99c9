//! Key materials that come and go with the key document (`update_key_and_materials`):
//! imported key material is added and deleted in the key's own compare-and-set.

use std::sync::Arc;

use keyhold_core::ports::{IndexEntry, MetadataStore, StoreError};
use keyhold_store::KEY_MATERIAL_ID_SCOPE;

use crate::assert_err;
use crate::fixtures::*;
use crate::harness::Ctx;

fn version(
    k: &keyhold_core::ports::StoredKey,
    v: i64,
    doc: &str,
) -> keyhold_core::ports::StoredKey {
    let mut next = k.clone();
    next.version = v;
    next.doc = doc.into();
    next
}

async fn material_ids(s: &Arc<dyn MetadataStore>, ids: &[&str]) -> Vec<bool> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            s.get_key_material(ACCT, REGION, "k1", id)
                .await
                .unwrap()
                .is_some(),
        );
    }
    out
}

pub async fn add_and_remove_with_the_document(ctx: &Ctx) {
    let s = &ctx.store;
    let k1 = key("k1");
    s.insert_key(&k1, None, &[], &[]).await.unwrap();

    // Add m1 with the document and an index entry.
    let v2 = version(&k1, 2, "imported m1");
    let due = [IndexEntry::new("material-expiry-test", "0001")];
    s.update_key_and_materials(&v2, Some(&due), Some(&material("k1", "m1")), &[])
        .await
        .unwrap();
    assert_eq!(
        s.get_key(ACCT, REGION, "k1").await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(
        ctx.node2
            .get_key_material(ACCT, REGION, "k1", "m1")
            .await
            .unwrap(),
        Some(material("k1", "m1"))
    );
    let hits = s
        .list_index("material-expiry-test", "", None, None, 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);

    // Add m2 on the other node, keeping the index entries.
    let v3 = version(&v2, 3, "imported m2");
    ctx.node2
        .update_key_and_materials(&v3, None, Some(&material("k1", "m2")), &[])
        .await
        .unwrap();
    assert_eq!(material_ids(s, &["m1", "m2"]).await, [true, true]);
    assert_eq!(
        s.list_index("material-expiry-test", "", None, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Remove m1 (and a material that is not there), replacing the index entries.
    let v4 = version(&v3, 4, "deleted m1");
    s.update_key_and_materials(&v4, Some(&[]), None, &["m1".into(), "never".into()])
        .await
        .unwrap();
    assert_eq!(material_ids(s, &["m1", "m2"]).await, [false, true]);
    assert!(s
        .list_index("material-expiry-test", "", None, None, 10)
        .await
        .unwrap()
        .is_empty());

    // Removed and added again in one call: no conflict, the new bytes win.
    let mut again = material("k1", "m2");
    again.wrapped = vec![42; 5];
    let v5 = version(&v4, 5, "reimported m2");
    s.update_key_and_materials(&v5, None, Some(&again), &["m2".into()])
        .await
        .unwrap();
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m2").await.unwrap(),
        Some(again)
    );

    // The key's deletion takes the materials with it.
    s.delete_key(ACCT, REGION, "k1").await.unwrap();
    assert_eq!(material_ids(s, &["m2"]).await, [false]);
}

pub async fn failed_change_changes_nothing(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_key(&key("k1"), Some(&material("k1", "m1")), &[], &[])
        .await
        .unwrap();
    let current = s.get_key(ACCT, REGION, "k1").await.unwrap().unwrap();

    // A material id already there conflicts; the document, the removal and the index entries
    // are not written either.
    s.insert_key_material(&material("k1", "m2")).await.unwrap();
    let v2 = version(&current, 2, "conflicting");
    assert_conflict(
        s.update_key_and_materials(
            &v2,
            Some(&[IndexEntry::new("material-expiry-test", "1")]),
            Some(&material("k1", "m1")),
            &["m2".into()],
        )
        .await,
        KEY_MATERIAL_ID_SCOPE,
    );
    assert_eq!(
        s.get_key(ACCT, REGION, "k1").await.unwrap(),
        Some(current.clone())
    );
    assert_eq!(material_ids(s, &["m1", "m2"]).await, [true, true]);
    assert!(s
        .list_index("material-expiry-test", "", None, None, 10)
        .await
        .unwrap()
        .is_empty());

    // A stale version loses and removes nothing.
    let stale = version(&current, 5, "stale");
    assert_err!(
        s.update_key_and_materials(&stale, None, Some(&material("k1", "m3")), &["m1".into()])
            .await,
        StoreError::VersionMismatch
    );
    assert_eq!(material_ids(s, &["m1", "m3"]).await, [true, false]);

    // A material of another key is refused.
    let v2 = version(&current, 2, "misuse");
    assert_err!(
        s.update_key_and_materials(&v2, None, Some(&material("k2", "m9")), &[])
            .await,
        StoreError::Backend(_)
    );
    assert_eq!(s.get_key(ACCT, REGION, "k1").await.unwrap(), Some(current));

    let missing = version(&key("nope"), 2, "missing");
    assert_err!(
        s.update_key_and_materials(&missing, None, None, &[]).await,
        StoreError::NotFound
    );
}

/// Racing deletes and imports of one material on two nodes: whatever order they commit in,
/// the material row exists exactly when the last committed document says it was imported.
pub async fn race_document_and_material_agree(ctx: &Ctx) {
    ctx.store
        .insert_key(&key("k1"), None, &[], &[])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s: Arc<dyn MetadataStore> = if i % 2 == 0 {
            ctx.store.clone()
        } else {
            ctx.node2.clone()
        };
        let import = i % 3 != 0;
        tasks.push(tokio::spawn(async move {
            loop {
                let cur = s.get_key(ACCT, REGION, "k1").await.unwrap().unwrap();
                let present = cur.doc == "present";
                let next = version(
                    &cur,
                    cur.version + 1,
                    if import { "present" } else { "absent" },
                );
                let (add, remove) = match (import, present) {
                    (true, false) => (Some(material("k1", "m")), Vec::new()),
                    (false, true) => (None, vec!["m".to_string()]),
                    _ => (None, Vec::new()),
                };
                match s
                    .update_key_and_materials(&next, None, add.as_ref(), &remove)
                    .await
                {
                    Ok(()) => return,
                    Err(StoreError::VersionMismatch) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let last = ctx
        .store
        .get_key(ACCT, REGION, "k1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.version, 17);
    let row = ctx
        .store
        .get_key_material(ACCT, REGION, "k1", "m")
        .await
        .unwrap();
    assert_eq!(row.is_some(), last.doc == "present");
}
