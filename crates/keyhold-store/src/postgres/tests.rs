//! Unit tests of PostgreSQL helpers that need no database.

use super::helpers::{lock_id, quote_schema};
use crate::shared::{cks_lock, quota_lock};

#[test]
fn schema_names_are_validated() {
    assert_eq!(quote_schema("kh_test_1").unwrap(), "\"kh_test_1\"");
    for bad in ["", "1abc", "a-b", "a\"b", "a b", &"x".repeat(64)] {
        assert!(quote_schema(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn lock_ids_are_stable_and_namespaced() {
    // Every node and build must compute the same ids: FNV-1a of "\0a".
    assert_eq!(lock_id("", "a"), 590647783936702426);
    assert_ne!(lock_id("s1", "a"), lock_id("s2", "a"));
    assert_ne!(
        lock_id("", &quota_lock("1", "r")),
        lock_id("", &cks_lock("1", "r", ""))
    );
}
