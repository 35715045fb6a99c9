//! What of a request and its response an audit record may contain.
//!
//! `requestParameters` come from the model: the request body is walked along the operation's
//! input shape table (the same table that validates it), and a value is kept only if its shape
//! is a string, enum, number, boolean or timestamp (or a list, map or structure of those) and
//! is not marked sensitive. Blobs (plaintext, ciphertext, key material, import tokens, public
//! keys, attestation documents, messages, MACs, signatures) and sensitive members (key store
//! passwords, XKS proxy credentials) are always dropped, and so are grant tokens (bearer
//! credentials the model does not mark sensitive) and anything the model does not know. A
//! member added to the model is therefore judged by its type, never missed by a list.
//!
//! `responseElements` follow AWS: `null` for cryptographic and read-only operations, and for
//! the operations whose responses AWS logs, only the members named in [`response_elements`]
//! (an allow-list: responses have no table here).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

use keyhold_model_runtime::validate::Shape;

/// The `requestParameters` of a request `body` checked against `shape` (the operation's input
/// table); `None` when the body is not a JSON object, or when every member was dropped. Read
/// straight from the JSON text (see [`super::keep`]): a dropped value, such as a plaintext, is
/// never copied.
pub fn request_parameters(shape: &'static Shape, body: &[u8]) -> Option<RequestParameters> {
    let mut json = Vec::with_capacity(128);
    match super::keep_scan::kept(shape, body, &mut json) {
        Ok(facts) => facts.map(|facts| RequestParameters { json, facts }),
        Err(super::keep_scan::Fallback) => {
            super::keep::kept_by_serde(shape, body).map(|v| RequestParameters::from_value(&v))
        }
    }
}

/// The request members whose key reference a record lists in `resources`, in AWS's order.
pub(super) const KEY_REF_MEMBERS: [&str; 3] = ["keyId", "targetKeyId", "destinationKeyId"];

/// A call's `requestParameters`, kept as the JSON text the record copies (an object), with
/// the little the record reads back from it noted on the way.
///
/// Why text and not a `serde_json::Value`: every audited request builds one, and the map of
/// owned keys and values cost more than the scan that fills it; the record only copies it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestParameters {
    pub(super) json: Vec<u8>,
    pub(super) facts: Facts,
}

/// What a record reads back from its `requestParameters` (top-level members only).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Facts {
    /// Where the string values of [`KEY_REF_MEMBERS`] are in the text, quotes included.
    pub key_refs: [Option<std::ops::Range<usize>>; 3],
    /// Whether `encryptionAlgorithm` was kept.
    pub encryption_algorithm: bool,
}

impl Facts {
    /// Notes the kept top-level member `name`, whose value is at `value` in the text and is a
    /// string when `is_string`.
    pub(super) fn note(&mut self, name: &str, value: std::ops::Range<usize>, is_string: bool) {
        self.encryption_algorithm |= name == "encryptionAlgorithm";
        let slot = KEY_REF_MEMBERS.iter().position(|n| *n == name);
        if let (Some(slot), true) = (slot, is_string) {
            self.key_refs[slot] = Some(value);
        }
    }
}

impl RequestParameters {
    /// The parameters of `value`, written as serde_json writes it (the serde walk's answer,
    /// Keyhold's own extensions, tests).
    pub fn from_value(value: &Value) -> Self {
        let mut json = Vec::new();
        let mut facts = Facts::default();
        let Value::Object(members) = value else {
            // A `Value` always serialises; `null` stands in if it ever did not.
            if serde_json::to_writer(&mut json, value).is_err() {
                json = b"null".to_vec();
            }
            return Self { json, facts };
        };
        json.push(b'{');
        for (i, (name, v)) in members.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            super::record::json_str(&mut json, name);
            json.push(b':');
            let at = json.len();
            if serde_json::to_writer(&mut json, v).is_err() {
                json.truncate(at);
                json.extend_from_slice(b"null");
            }
            facts.note(name, at..json.len(), v.is_string());
        }
        json.push(b'}');
        Self { json, facts }
    }

    /// The parameters as JSON text.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The parameters as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// Whether the request sent an `encryptionAlgorithm` that was kept.
    pub fn has_encryption_algorithm(&self) -> bool {
        self.facts.encryption_algorithm
    }

    /// The string value of top-level member [`KEY_REF_MEMBERS`]`[slot]`, when it was kept.
    pub(super) fn key_ref(&self, slot: usize) -> Option<Cow<'_, str>> {
        let literal = self.json.get(self.facts.key_refs.get(slot)?.clone()?)?;
        match literal {
            [b'"', text @ .., b'"'] if !text.contains(&b'\\') => {
                std::str::from_utf8(text).ok().map(Cow::Borrowed)
            }
            _ => serde_json::from_slice(literal).ok().map(Cow::Owned),
        }
    }
}

/// The `requestParameters` of one of Keyhold's own CloudHSM extensions
/// (`KeyholdActivateCluster`, `KeyholdUser*`, `KeyholdFault*`), which have no model table: only
/// these members, and only when they are strings, numbers or booleans. Passwords are not here.
pub fn extension_parameters(body: &[u8]) -> Option<Value> {
    const ALLOWED: &[&str] = &[
        "ClusterId",
        "Username",
        "SubnetId",
        "HsmId",
        "State",
        "Removed",
        "FreeAddresses",
        "Reachable",
    ];
    let parsed: Value = serde_json::from_slice(body).ok()?;
    let out = parsed.as_object().map(|obj| {
        let kept: Map<String, Value> = ALLOWED
            .iter()
            .filter_map(|name| {
                let v = obj.get(*name)?;
                matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
                    .then(|| (decapitalize(name), v.clone()))
            })
            .collect();
        Value::Object(kept)
    });
    wipe(parsed);
    out
}

/// Overwrites every string of `value` before freeing it.
fn wipe(value: Value) {
    match value {
        Value::String(mut s) => zeroize::Zeroize::zeroize(&mut s),
        Value::Array(items) => items.into_iter().for_each(wipe),
        Value::Object(entries) => {
            for (mut k, v) in entries {
                zeroize::Zeroize::zeroize(&mut k);
                wipe(v);
            }
        }
        _ => {}
    }
}

/// Java's `Introspector.decapitalize`, which names CloudTrail's members: `KeyId` → `keyId`,
/// but `AWSAccountId` stays (two capitals first).
pub fn decapitalize(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_uppercase() => name.to_owned(),
        (Some(a), _) => a.to_lowercase().chain(name.chars().skip(1)).collect(),
        _ => String::new(),
    }
}

/// What the audit record shows of a successful KMS response. The server takes it from the
/// typed response as it is serialised ([`super::peek::capture`]); in tests it is also read
/// back from the response's JSON (`ResponsePeek::read`), the oracle the capture must equal.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResponsePeek<'a> {
    /// The key used (an ARN in every response that has it).
    #[serde(borrow)]
    pub key_id: Option<Cow<'a, str>>,
    /// ReEncrypt's source key ARN.
    #[serde(borrow)]
    pub source_key_id: Option<Cow<'a, str>>,
    /// The key material used (Decrypt, GenerateDataKey*, ImportKeyMaterial, ...).
    #[serde(borrow)]
    pub key_material_id: Option<Cow<'a, str>>,
    /// ReEncrypt's source key material.
    #[serde(borrow)]
    pub source_key_material_id: Option<Cow<'a, str>>,
    /// ReEncrypt's destination key material.
    #[serde(borrow)]
    pub destination_key_material_id: Option<Cow<'a, str>>,
    /// CreateKey, DescribeKey.
    pub key_metadata: Option<Map<String, Value>>,
    /// ReplicateKey.
    pub replica_key_metadata: Option<Map<String, Value>>,
    /// CreateGrant.
    #[serde(borrow)]
    pub grant_id: Option<Cow<'a, str>>,
    /// ScheduleKeyDeletion.
    pub deletion_date: Option<f64>,
    /// ScheduleKeyDeletion.
    #[serde(borrow)]
    pub key_state: Option<Cow<'a, str>>,
    /// ScheduleKeyDeletion.
    pub pending_window_in_days: Option<i64>,
    /// CreateCustomKeyStore.
    #[serde(borrow)]
    pub custom_key_store_id: Option<Cow<'a, str>>,
}

impl<'a> ResponsePeek<'a> {
    /// Reads `body` (only these members; the rest is skipped without being copied); an
    /// unreadable body gives an empty peek.
    #[cfg(test)]
    pub(crate) fn read(body: &'a [u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The same peek, owning its strings.
    #[cfg(test)]
    pub(crate) fn into_owned(self) -> ResponsePeek<'static> {
        let own = |s: Option<Cow<'a, str>>| s.map(|s| Cow::Owned(s.into_owned()));
        ResponsePeek {
            key_id: own(self.key_id),
            source_key_id: own(self.source_key_id),
            key_material_id: own(self.key_material_id),
            source_key_material_id: own(self.source_key_material_id),
            destination_key_material_id: own(self.destination_key_material_id),
            key_metadata: self.key_metadata,
            replica_key_metadata: self.replica_key_metadata,
            grant_id: own(self.grant_id),
            deletion_date: self.deletion_date,
            key_state: own(self.key_state),
            pending_window_in_days: self.pending_window_in_days,
            custom_key_store_id: own(self.custom_key_store_id),
        }
    }
}

/// The members of `KeyMetadata` an audit record shows (all are identifiers, states, specs,
/// dates and flags; none is secret). An allow-list, so a member added later is not shown
/// until someone decides it may be.
const KEY_METADATA_MEMBERS: &[&str] = &[
    "AWSAccountId",
    "KeyId",
    "Arn",
    "CreationDate",
    "Enabled",
    "Description",
    "KeyUsage",
    "KeyState",
    "DeletionDate",
    "ValidTo",
    "Origin",
    "CustomKeyStoreId",
    "CloudHsmClusterId",
    "ExpirationModel",
    "KeyManager",
    "CustomerMasterKeySpec",
    "KeySpec",
    "EncryptionAlgorithms",
    "SigningAlgorithms",
    "KeyAgreementAlgorithms",
    "MultiRegion",
    "MultiRegionConfiguration",
    "PendingDeletionWindowInDays",
    "MacAlgorithms",
    "XksKeyConfiguration",
    "CurrentKeyMaterialId",
];

/// `KeyMetadata` as CloudTrail shows it: allowed members, decapitalised, dates in AWS's
/// `Aug 10, 2022, 10:38:27 PM` form.
fn key_metadata(meta: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for name in KEY_METADATA_MEMBERS {
        let Some(v) = meta.get(*name) else { continue };
        let v = match (*name, v) {
            ("CreationDate" | "DeletionDate" | "ValidTo", Value::Number(n)) => n
                .as_f64()
                .map_or(Value::Null, |s| Value::String(java_date(s))),
            _ => decapitalize_keys(v),
        };
        out.insert(decapitalize(name), v);
    }
    Value::Object(out)
}

/// `value` with every object member name decapitalised (nested identifiers such as
/// `MultiRegionConfiguration.PrimaryKey.Arn`).
fn decapitalize_keys(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (decapitalize(k), decapitalize_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(decapitalize_keys).collect()),
        other => other.clone(),
    }
}

/// Seconds since the epoch as CloudTrail renders dates in KMS response elements
/// (`MMM d, yyyy, h:mm:ss a`, UTC).
pub fn java_date(seconds: f64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(seconds.floor() as i64) else {
        return String::new();
    };
    let (h, ampm) = match t.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{} {}, {}, {}:{:02}:{:02} {}",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.year(),
        h,
        t.minute(),
        t.second(),
        ampm
    )
}

/// `responseElements` of a successful KMS operation: `None` (JSON `null`) except for the
/// operations whose responses AWS logs, and then only the allowed members.
/// `key_arn` is the ARN of the key the request used (CreateAlias's target).
pub fn response_elements(op: &str, peek: &ResponsePeek, key_arn: Option<&str>) -> Option<Value> {
    let mut out = Map::new();
    let mut put = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(name.to_owned(), v);
        }
    };
    let s = |v: &Option<Cow<'_, str>>| v.as_deref().map(|v| Value::String(v.to_owned()));
    match op {
        "CreateKey" => put("keyMetadata", peek.key_metadata.as_ref().map(key_metadata)),
        "ReplicateKey" => put(
            "replicaKeyMetadata",
            peek.replica_key_metadata.as_ref().map(key_metadata),
        ),
        "CreateGrant" => put("grantId", s(&peek.grant_id)),
        "ScheduleKeyDeletion" => {
            put("keyId", s(&peek.key_id));
            put(
                "deletionDate",
                peek.deletion_date.map(|d| Value::String(java_date(d))),
            );
            put("keyState", s(&peek.key_state));
            put(
                "pendingWindowInDays",
                peek.pending_window_in_days.map(Value::from),
            );
        }
        "CancelKeyDeletion" | "RotateKeyOnDemand" => put("keyId", s(&peek.key_id)),
        "ImportKeyMaterial" => {
            put("keyId", s(&peek.key_id));
            put("keyMaterialId", s(&peek.key_material_id));
        }
        "CreateCustomKeyStore" => put("customKeyStoreId", s(&peek.custom_key_store_id)),
        // AWS logs the target key's ARN although CreateAlias returns nothing.
        "CreateAlias" => put("keyId", key_arn.map(|k| Value::String(k.to_owned()))),
        _ => return None,
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
