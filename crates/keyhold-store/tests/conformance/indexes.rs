//! Index entries: written, replaced and removed with their row (same transaction, same
//! compare-and-set), listed across accounts in value order with paging, and races.

use std::sync::Arc;

use keyhold_core::ports::{IndexEntry, IndexHit, IndexOwner, MetadataStore, StoreError};
use keyhold_store::{DOCUMENT_ID_SCOPE, KEY_ID_SCOPE};

use crate::assert_err;
use crate::fixtures::*;
use crate::harness::Ctx;

const DUE: &str = "deletion-due";
const BY_KEY: &str = "grant-by-key";
const KIND: &str = "grant";

fn due(value: &str) -> IndexEntry {
    IndexEntry::new(DUE, value)
}

fn key_owner(account_id: &str, region: &str, key_id: &str) -> IndexOwner {
    IndexOwner::Key {
        account_id: account_id.into(),
        region: region.into(),
        key_id: key_id.into(),
    }
}

fn doc_owner(id: &str) -> IndexOwner {
    IndexOwner::Document {
        kind: KIND.into(),
        account_id: ACCT.into(),
        region: REGION.into(),
        id: id.into(),
    }
}

fn hit(value: &str, owner: IndexOwner) -> IndexHit {
    IndexHit {
        value: value.into(),
        owner,
    }
}

/// Every entry of `index`, in one page.
async fn all(s: &Arc<dyn MetadataStore>, index: &str) -> Vec<IndexHit> {
    s.list_index(index, "", None, None, 1000).await.unwrap()
}

pub async fn written_with_the_row(ctx: &Ctx) {
    let s = &ctx.store;
    let k = key("k1");
    // Repeated pairs count once; one row may have several values in one index.
    let entries = [due("0002"), due("0002"), IndexEntry::new(BY_KEY, "k1")];
    s.insert_key(&k, None, &[], &entries).await.unwrap();
    let d = doc_in(KIND, ACCT, REGION, "g1");
    s.insert_document(&d, &[], &[due("0001"), due("0003")])
        .await
        .unwrap();
    assert_eq!(
        all(&ctx.node2, DUE).await,
        [
            hit("0001", doc_owner("g1")),
            hit("0002", key_owner(ACCT, REGION, "k1")),
            hit("0003", doc_owner("g1")),
        ]
    );
    assert_eq!(
        all(s, BY_KEY).await,
        [hit("k1", key_owner(ACCT, REGION, "k1"))]
    );
    assert!(all(s, "no-such-index").await.is_empty());
}

pub async fn failed_insert_writes_no_entries(ctx: &Ctx) {
    let s = &ctx.store;
    let claim = keyhold_core::ports::UniqueClaim::exclusive("alias", "a");
    s.insert_key(&key("k1"), None, std::slice::from_ref(&claim), &[due("1")])
        .await
        .unwrap();
    // A duplicate id, a taken claim, a wrong version: the row is refused, and so are its entries.
    assert_conflict(
        s.insert_key(&key("k1"), None, &[], &[due("2")]).await,
        KEY_ID_SCOPE,
    );
    assert_conflict(
        ctx.node2
            .insert_key(&key("k2"), None, std::slice::from_ref(&claim), &[due("3")])
            .await,
        "alias",
    );
    let d = doc_in(KIND, ACCT, REGION, "g1");
    s.insert_document(&d, &[], &[due("4")]).await.unwrap();
    assert_conflict(
        s.insert_document(&d, &[], &[due("5")]).await,
        DOCUMENT_ID_SCOPE,
    );
    assert_conflict(
        s.insert_document(
            &doc_in(KIND, ACCT, REGION, "g2"),
            std::slice::from_ref(&claim),
            &[due("6")],
        )
        .await,
        "alias",
    );
    let mut v2 = doc_in(KIND, ACCT, REGION, "g3");
    v2.version = 2;
    assert_err!(
        s.insert_document(&v2, &[], &[due("7")]).await,
        StoreError::VersionMismatch
    );
    let values: Vec<String> = all(s, DUE).await.into_iter().map(|h| h.value).collect();
    assert_eq!(values, ["1", "4"]);
}

pub async fn update_replaces_or_keeps(ctx: &Ctx) {
    let s = &ctx.store;
    let k = key("k1");
    s.insert_key(&k, None, &[], &[due("1")]).await.unwrap();
    let mut k2 = k.clone();
    k2.version = 2;
    // `None` keeps the entries.
    s.update_key(&k2, None).await.unwrap();
    assert_eq!(all(s, DUE).await, [hit("1", key_owner(ACCT, REGION, "k1"))]);
    // `Some` replaces all of them, also those of other indexes.
    let mut k3 = k2.clone();
    k3.version = 3;
    ctx.node2
        .update_key(&k3, Some(&[due("2"), IndexEntry::new(BY_KEY, "x")]))
        .await
        .unwrap();
    assert_eq!(all(s, DUE).await, [hit("2", key_owner(ACCT, REGION, "k1"))]);
    let mut k4 = k3.clone();
    k4.version = 4;
    s.update_key(&k4, Some(&[])).await.unwrap();
    assert!(all(s, DUE).await.is_empty());
    assert!(all(s, BY_KEY).await.is_empty());

    let d = doc_in(KIND, ACCT, REGION, "g1");
    s.insert_document(&d, &[], &[due("5")]).await.unwrap();
    let d2 = bumped(d, "{}");
    s.update_document(&d2, None, None).await.unwrap();
    assert_eq!(all(s, DUE).await, [hit("5", doc_owner("g1"))]);
    s.update_document(&bumped(d2, "{}"), None, Some(&[due("6")]))
        .await
        .unwrap();
    assert_eq!(all(s, DUE).await, [hit("6", doc_owner("g1"))]);
}

pub async fn failed_update_keeps_old_entries(ctx: &Ctx) {
    let s = &ctx.store;
    let k = key("k1");
    s.insert_key(&k, None, &[], &[due("1")]).await.unwrap();
    // A stale version (compare-and-set fails) changes neither the row nor its entries.
    let mut stale = k.clone();
    stale.version = 3;
    assert_err!(
        ctx.node2.update_key(&stale, Some(&[due("9")])).await,
        StoreError::VersionMismatch
    );
    assert_err!(
        s.update_key(&key("nope"), Some(&[due("9")])).await,
        StoreError::NotFound
    );
    assert_eq!(all(s, DUE).await, [hit("1", key_owner(ACCT, REGION, "k1"))]);

    let claim = keyhold_core::ports::UniqueClaim::exclusive("alias", "a");
    s.insert_document(
        &doc_in(KIND, ACCT, REGION, "holder"),
        std::slice::from_ref(&claim),
        &[],
    )
    .await
    .unwrap();
    let d = doc_in(KIND, ACCT, REGION, "g1");
    s.insert_document(&d, &[], &[due("2")]).await.unwrap();
    assert_err!(
        s.update_document(
            &bumped(bumped(d.clone(), "{}"), "{}"),
            None,
            Some(&[due("8")])
        )
        .await,
        StoreError::VersionMismatch
    );
    // A claim conflict rolls back the entries written in the same update.
    assert_conflict(
        s.update_document(&bumped(d.clone(), "{}"), Some(&[claim]), Some(&[due("7")]))
            .await,
        "alias",
    );
    assert_eq!(
        all(s, DUE).await,
        [
            hit("1", key_owner(ACCT, REGION, "k1")),
            hit("2", doc_owner("g1")),
        ]
    );
    assert_eq!(
        s.get_document(KIND, ACCT, REGION, "g1").await.unwrap(),
        Some(d)
    );
}

pub async fn list_in_value_order_with_paging(ctx: &Ctx) {
    let s = &ctx.store;
    // Inserted out of order, across accounts and Regions; "010" < "011" < "1" as bytes.
    let rows = [
        ("222233334444", "eu-west-1", "k-a", "011"),
        (ACCT, REGION, "k-b", "005"),
        (ACCT, "eu-west-1", "k-c", "010"),
        ("222233334444", REGION, "k-d", "005"),
        (ACCT, REGION, "k-e", "1"),
    ];
    for (a, r, id, v) in rows {
        s.insert_key(&key_in(a, r, id), None, &[], &[due(v)])
            .await
            .unwrap();
    }
    s.insert_document(&doc_in(KIND, ACCT, REGION, "g"), &[], &[due("007")])
        .await
        .unwrap();
    s.insert_key(&key("other"), None, &[], &[IndexEntry::new(BY_KEY, "005")])
        .await
        .unwrap();
    let expected = [
        // Equal values come in owner-identity order.
        hit("005", key_owner(ACCT, REGION, "k-b")),
        hit("005", key_owner("222233334444", REGION, "k-d")),
        hit("007", doc_owner("g")),
        hit("010", key_owner(ACCT, "eu-west-1", "k-c")),
        hit("011", key_owner("222233334444", "eu-west-1", "k-a")),
        hit("1", key_owner(ACCT, REGION, "k-e")),
    ];
    assert_eq!(all(s, DUE).await, expected);
    // Pages of two, each starting after the previous page's last hit, cover all once.
    let mut seen = Vec::new();
    let mut after: Option<IndexHit> = None;
    loop {
        let page = ctx
            .node2
            .list_index(DUE, "", None, after.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last().cloned() else {
            break;
        };
        seen.extend(page);
        after = Some(last);
    }
    assert_eq!(seen, expected);
    // A range: "everything due by 010", inclusive, paged from inside the range.
    let due_by = s.list_index(DUE, "", Some("010"), None, 10).await.unwrap();
    assert_eq!(due_by, expected[..4]);
    let rest = s
        .list_index(DUE, "", Some("010"), Some(&expected[1]), 10)
        .await
        .unwrap();
    assert_eq!(rest, expected[2..4]);
    let from = s
        .list_index(DUE, "007", Some("011"), None, 10)
        .await
        .unwrap();
    assert_eq!(from, expected[2..5]);
    assert!(s
        .list_index(DUE, "2", None, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .list_index(DUE, "", None, None, 0)
        .await
        .unwrap()
        .is_empty());
}

pub async fn exact_value_lookup(ctx: &Ctx) {
    let s = &ctx.store;
    // "Grants of key k1": documents indexed by the key they belong to.
    for (id, key_id) in [("g1", "k1"), ("g2", "k2"), ("g3", "k1"), ("g4", "k10")] {
        s.insert_document(
            &doc_in(KIND, ACCT, REGION, id),
            &[],
            &[IndexEntry::new(BY_KEY, key_id)],
        )
        .await
        .unwrap();
    }
    let of_k1 = s
        .list_index(BY_KEY, "k1", Some("k1"), None, 10)
        .await
        .unwrap();
    assert_eq!(
        of_k1,
        [hit("k1", doc_owner("g1")), hit("k1", doc_owner("g3"))]
    );
    let next = s
        .list_index(BY_KEY, "k1", Some("k1"), Some(&of_k1[0]), 10)
        .await
        .unwrap();
    assert_eq!(next, [hit("k1", doc_owner("g3"))]);
    assert!(s
        .list_index(BY_KEY, "k3", Some("k3"), None, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn removed_on_delete(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_key(&key("k1"), Some(&material("k1", "m1")), &[], &[due("1")])
        .await
        .unwrap();
    s.insert_key(&key("k2"), None, &[], &[due("2")])
        .await
        .unwrap();
    let d = doc_in(KIND, ACCT, REGION, "g1");
    s.insert_document(&d, &[], &[due("3")]).await.unwrap();
    ctx.node2.delete_key(ACCT, REGION, "k1").await.unwrap();
    // A refused delete keeps them.
    assert_err!(
        s.delete_document(KIND, ACCT, REGION, "g1", 2).await,
        StoreError::VersionMismatch
    );
    assert_eq!(
        all(s, DUE).await,
        [
            hit("2", key_owner(ACCT, REGION, "k2")),
            hit("3", doc_owner("g1")),
        ]
    );
    s.delete_document(KIND, ACCT, REGION, "g1", 1)
        .await
        .unwrap();
    assert_eq!(all(s, DUE).await, [hit("2", key_owner(ACCT, REGION, "k2"))]);
    // A new row with the same identity starts without entries.
    s.insert_key(&key("k1"), None, &[], &[]).await.unwrap();
    s.insert_document(&d, &[], &[]).await.unwrap();
    assert_eq!(all(s, DUE).await, [hit("2", key_owner(ACCT, REGION, "k2"))]);
}

pub async fn reset_clears_indexes(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_key(&key("k1"), None, &[], &[due("1")])
        .await
        .unwrap();
    s.insert_document(&doc_in(KIND, ACCT, REGION, "g1"), &[], &[due("2")])
        .await
        .unwrap();
    ctx.node2.reset().await.unwrap();
    assert!(all(s, DUE).await.is_empty());
    s.insert_key(&key("k1"), None, &[], &[due("1")])
        .await
        .unwrap();
    assert_eq!(all(s, DUE).await, [hit("1", key_owner(ACCT, REGION, "k1"))]);
}

const RACERS: usize = 16;

/// Sixteen writers on two nodes each move one document's entry to their own value by
/// compare-and-set with retries: the document ends with exactly the last writer's entry.
pub async fn race_updates_leave_one_entry(ctx: &Ctx) {
    let d = doc_in(KIND, ACCT, REGION, "g");
    ctx.store
        .insert_document(&d, &[], &[due("start")])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let s: Arc<dyn MetadataStore> = if i % 2 == 0 {
            ctx.store.clone()
        } else {
            ctx.node2.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mine = format!("v{i:02}");
            loop {
                let cur = s
                    .get_document(KIND, ACCT, REGION, "g")
                    .await
                    .unwrap()
                    .unwrap();
                let next = bumped(cur, &mine);
                match s.update_document(&next, None, Some(&[due(&mine)])).await {
                    Ok(()) => break,
                    Err(StoreError::VersionMismatch) => tokio::task::yield_now().await,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let last = ctx
        .store
        .get_document(KIND, ACCT, REGION, "g")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.version, 1 + RACERS as i64);
    assert_eq!(all(&ctx.node2, DUE).await, [hit(&last.doc, doc_owner("g"))]);
}

/// Sixteen writers on two nodes insert the same document, each with its own entry: one wins,
/// and only its entry exists.
pub async fn race_inserts_leave_the_winners_entry(ctx: &Ctx) {
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let s: Arc<dyn MetadataStore> = if i % 2 == 0 {
            ctx.store.clone()
        } else {
            ctx.node2.clone()
        };
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let mut d = doc_in(KIND, ACCT, REGION, "g");
            d.doc = format!("v{i:02}");
            start.wait().await;
            let r = s.insert_document(&d, &[], &[due(&d.doc)]).await;
            (d.doc, r)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (value, r) = t.await.unwrap();
        match r {
            Ok(()) => winners.push(value),
            Err(StoreError::Conflict { scope }) if scope == DOCUMENT_ID_SCOPE => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        all(&ctx.store, DUE).await,
        [hit(&winners[0], doc_owner("g"))]
    );
}
