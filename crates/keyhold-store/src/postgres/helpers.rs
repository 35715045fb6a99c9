//! PostgreSQL-only helpers: schema names and advisory-lock ids.

use keyhold_core::ports::StoreError;

use crate::common::message;

/// Validates and double-quotes a schema name.
pub(super) fn quote_schema(schema: &str) -> Result<String, StoreError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok || schema.len() > 63 {
        return Err(message(format!(
            "invalid PostgreSQL schema name {schema:?}"
        )));
    }
    Ok(format!("\"{schema}\""))
}

/// A stable 64-bit id for an advisory lock (FNV-1a; identical on every node and build).
pub(super) fn lock_id(namespace: &str, name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in namespace.bytes().chain([0u8]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}
