//! Generic documents: round trip, compare-and-set, claims, paging, reset and races.

use std::sync::Arc;

use keyhold_core::ports::{MetadataStore, StoreError, StoredDocument, UniqueClaim};
use keyhold_store::DOCUMENT_ID_SCOPE;

use crate::assert_err;
use crate::fixtures::*;
use crate::harness::Ctx;

const KIND: &str = "cloudhsm-cluster";

fn doc(id: &str) -> StoredDocument {
    doc_in(KIND, ACCT, REGION, id)
}

pub async fn insert_get_roundtrip(ctx: &Ctx) {
    let s = &ctx.store;
    let d = doc("c-1");
    s.insert_document(&d, &[], &[]).await.unwrap();
    assert_eq!(
        s.get_document(KIND, ACCT, REGION, "c-1").await.unwrap(),
        Some(d.clone())
    );
    assert_eq!(
        ctx.node2
            .get_document(KIND, ACCT, REGION, "c-1")
            .await
            .unwrap(),
        Some(d.clone())
    );
    // Kind, account and Region all partition.
    for (k, a, r) in [
        ("other", ACCT, REGION),
        (KIND, "999988887777", REGION),
        (KIND, ACCT, "eu-west-1"),
    ] {
        assert_eq!(s.get_document(k, a, r, "c-1").await.unwrap(), None);
        s.insert_document(&doc_in(k, a, r, "c-1"), &[], &[])
            .await
            .unwrap();
    }
    assert_conflict(s.insert_document(&d, &[], &[]).await, DOCUMENT_ID_SCOPE);
    let mut v2 = d.clone();
    v2.version = 2;
    assert_err!(
        s.insert_document(&v2, &[], &[]).await,
        StoreError::VersionMismatch
    );
}

pub async fn update_compare_and_set(ctx: &Ctx) {
    let s = &ctx.store;
    let d = doc("c-1");
    s.insert_document(&d, &[], &[]).await.unwrap();
    let v2 = bumped(d.clone(), r#"{"v":2}"#);
    ctx.node2.update_document(&v2, None, None).await.unwrap();
    assert_err!(
        s.update_document(&bumped(d.clone(), r#"{"stale":1}"#), None, None)
            .await,
        StoreError::VersionMismatch
    );
    assert_eq!(
        s.get_document(KIND, ACCT, REGION, "c-1").await.unwrap(),
        Some(v2.clone())
    );
    assert_err!(
        s.update_document(&bumped(doc("nope"), "{}"), None, None)
            .await,
        StoreError::NotFound
    );
    // Delete is a compare-and-set too.
    assert_err!(
        s.delete_document(KIND, ACCT, REGION, "c-1", 1).await,
        StoreError::VersionMismatch
    );
    s.delete_document(KIND, ACCT, REGION, "c-1", 2)
        .await
        .unwrap();
    assert_eq!(
        s.get_document(KIND, ACCT, REGION, "c-1").await.unwrap(),
        None
    );
    assert_err!(
        s.delete_document(KIND, ACCT, REGION, "c-1", 2).await,
        StoreError::NotFound
    );
}

pub async fn claims(ctx: &Ctx) {
    let s = &ctx.store;
    let claim = UniqueClaim::exclusive("cluster-id", "c-1");
    s.insert_document(&doc("c-1"), std::slice::from_ref(&claim), &[])
        .await
        .unwrap();
    // The same claim from another document (any kind), key or store conflicts.
    assert_conflict(
        ctx.node2
            .insert_document(
                &doc_in("other", ACCT, REGION, "x"),
                std::slice::from_ref(&claim),
                &[],
            )
            .await,
        "cluster-id",
    );
    assert_conflict(
        s.insert_key(&key("k1"), None, std::slice::from_ref(&claim), &[])
            .await,
        "cluster-id",
    );
    assert_eq!(
        s.get_document("other", ACCT, REGION, "x").await.unwrap(),
        None
    );
    // An update may keep its own claim, and replacing it frees the old value.
    let v2 = bumped(doc("c-1"), "{}");
    s.update_document(&v2, Some(std::slice::from_ref(&claim)), None)
        .await
        .unwrap();
    let other = UniqueClaim::exclusive("cluster-id", "c-2");
    s.insert_document(&doc("c-2"), std::slice::from_ref(&other), &[])
        .await
        .unwrap();
    // Taking a taken claim changes nothing.
    assert_conflict(
        s.update_document(&bumped(v2.clone(), r#"{"x":1}"#), Some(&[other]), None)
            .await,
        "cluster-id",
    );
    assert_eq!(
        s.get_document(KIND, ACCT, REGION, "c-1").await.unwrap(),
        Some(v2.clone())
    );
    // Deleting the document frees its claims.
    s.delete_document(KIND, ACCT, REGION, "c-1", 2)
        .await
        .unwrap();
    s.insert_key(&key("k1"), None, &[claim], &[]).await.unwrap();
}

pub async fn list_pages(ctx: &Ctx) {
    let s = &ctx.store;
    for id in ["c-b", "c-a", "c-C", "c-c"] {
        s.insert_document(&doc(id), &[], &[]).await.unwrap();
    }
    s.insert_document(&doc_in("other", ACCT, REGION, "c-0"), &[], &[])
        .await
        .unwrap();
    s.insert_document(&doc_in(KIND, ACCT, "eu-west-1", "c-0"), &[], &[])
        .await
        .unwrap();
    let ids = |v: Vec<StoredDocument>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let first = s.list_documents(KIND, ACCT, REGION, None, 2).await.unwrap();
    assert_eq!(ids(first), ["c-C", "c-a"]);
    let rest = s
        .list_documents(KIND, ACCT, REGION, Some("c-a"), 10)
        .await
        .unwrap();
    assert_eq!(ids(rest), ["c-b", "c-c"]);
    assert!(s
        .list_documents(KIND, ACCT, REGION, Some("c-c"), 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn reset_clears_documents(ctx: &Ctx) {
    let s = &ctx.store;
    let claim = UniqueClaim::exclusive("cluster-id", "c-1");
    s.insert_document(&doc("c-1"), std::slice::from_ref(&claim), &[])
        .await
        .unwrap();
    ctx.node2.reset().await.unwrap();
    assert_eq!(
        s.get_document(KIND, ACCT, REGION, "c-1").await.unwrap(),
        None
    );
    assert!(s
        .list_documents(KIND, ACCT, REGION, None, 10)
        .await
        .unwrap()
        .is_empty());
    s.insert_document(&doc("c-1"), &[claim], &[]).await.unwrap();
}

/// Sixteen writers on two nodes increment one counter by compare-and-set with retries:
/// no increment is lost.
pub async fn race_increments(ctx: &Ctx) {
    ctx.store
        .insert_document(&doc("n"), &[], &[])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s: Arc<dyn MetadataStore> = if i % 2 == 0 {
            ctx.store.clone()
        } else {
            ctx.node2.clone()
        };
        tasks.push(tokio::spawn(async move {
            loop {
                let cur = s
                    .get_document(KIND, ACCT, REGION, "n")
                    .await
                    .unwrap()
                    .unwrap();
                let n: u64 = cur.doc.parse().unwrap_or(0);
                match s
                    .update_document(&bumped(cur, &(n + 1).to_string()), None, None)
                    .await
                {
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
        .get_document(KIND, ACCT, REGION, "n")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.doc, "16");
    assert_eq!(last.version, 17);
}
