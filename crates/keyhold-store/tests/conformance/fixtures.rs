//! Rows and assertions shared by the conformance cases.

use keyhold_core::ports::{
    StoreError, StoredCustomKeyStore, StoredDocument, StoredKey, StoredKeyMaterial, UniqueClaim,
};

/// The account most cases use.
pub const ACCT: &str = "111122223333";
/// The Region most cases use.
pub const REGION: &str = "us-east-1";
/// The claim scope of custom key store names.
pub const NAME_SCOPE: &str = "cks-name";
/// A claim scope for endpoints, used with shared and exclusive claims.
pub const ENDPOINT_SCOPE: &str = "xks-endpoint";

/// A version-1 key in `ACCT`/`REGION`.
pub fn key(id: &str) -> StoredKey {
    key_in(ACCT, REGION, id)
}

/// A version-1 key.
pub fn key_in(account_id: &str, region: &str, key_id: &str) -> StoredKey {
    StoredKey {
        account_id: account_id.into(),
        region: region.into(),
        key_id: key_id.into(),
        custom_key_store_id: None,
        created_at_ms: 1_700_000_000_123,
        version: 1,
        doc: format!(r#"{{"KeyId":"{key_id}","Description":"é ✓ \"quoted\""}}"#),
    }
}

/// Key material of a key in `ACCT`/`REGION`; the bytes cover 0x00 and 0xff.
pub fn material(key_id: &str, material_id: &str) -> StoredKeyMaterial {
    StoredKeyMaterial {
        account_id: ACCT.into(),
        region: REGION.into(),
        key_id: key_id.into(),
        material_id: material_id.into(),
        created_at_ms: 1_700_000_000_456,
        wrapped: [0u8, 1, 0xfe, 0xff]
            .iter()
            .chain(material_id.as_bytes())
            .copied()
            .collect(),
    }
}

/// A version-1 custom key store in `ACCT`/`REGION`.
pub fn cks(id: &str, name: &str) -> StoredCustomKeyStore {
    cks_in(ACCT, REGION, id, name)
}

/// A version-1 custom key store.
pub fn cks_in(account_id: &str, region: &str, id: &str, name: &str) -> StoredCustomKeyStore {
    StoredCustomKeyStore {
        account_id: account_id.into(),
        region: region.into(),
        id: id.into(),
        name: name.into(),
        store_type: "EXTERNAL_KEY_STORE".into(),
        connection_state: "DISCONNECTED".into(),
        created_at_ms: 1_700_000_000_789,
        version: 1,
        doc: format!(r#"{{"CustomKeyStoreName":"{name}"}}"#),
    }
}

/// A version-1 document.
pub fn doc_in(kind: &str, account_id: &str, region: &str, id: &str) -> StoredDocument {
    StoredDocument {
        kind: kind.into(),
        account_id: account_id.into(),
        region: region.into(),
        id: id.into(),
        created_at_ms: 1_700_000_000_321,
        version: 1,
        doc: format!(r#"{{"Id":"{id}","Note":"é ✓ \"quoted\""}}"#),
    }
}

/// `d` with the next version and body `body`.
pub fn bumped(mut d: StoredDocument, body: &str) -> StoredDocument {
    d.version += 1;
    d.doc = body.into();
    d
}

/// The exclusive name claim of a store in `ACCT`/`REGION`.
pub fn name_claim(name: &str) -> UniqueClaim {
    UniqueClaim::exclusive(NAME_SCOPE, format!("{ACCT}/{REGION}/{name}"))
}

/// Asserts a `Conflict` in `scope`.
#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, scope: &str) {
    match r {
        Err(StoreError::Conflict { scope: s }) if s == scope => {}
        other => panic!("expected Conflict in {scope}, got {other:?}"),
    }
}

/// Asserts the given error variant.
#[macro_export]
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}
