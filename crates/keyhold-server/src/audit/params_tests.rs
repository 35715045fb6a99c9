use super::*;
use base64::Engine as _;
use keyhold_model_runtime::validate::Kind;
use serde_json::json;

/// [`super::request_parameters`] as a JSON value, to compare.
fn request_parameters(shape: &'static Shape, body: &[u8]) -> Option<Value> {
    super::request_parameters(shape, body).map(|p| p.to_value())
}

const BLOB_MARK: &[u8] = b"BLOB-SECRET-7f3a";
const SENSITIVE_MARK: &str = "SENSITIVE-SECRET-9c1e";
const STRING_MARK: &str = "visible-string";

fn b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(BLOB_MARK)
}

/// A request filling every member of `shape` (to a small depth): blobs with [`BLOB_MARK`],
/// sensitive members with [`SENSITIVE_MARK`], other strings with [`STRING_MARK`].
fn fill(shape: &Shape, depth: usize) -> Value {
    if shape.sensitive {
        return match &shape.kind {
            Kind::Structure(_) | Kind::List { .. } | Kind::Map { .. } if depth < 5 => {
                fill_kind(shape, depth, true)
            }
            _ => json!(SENSITIVE_MARK),
        };
    }
    fill_kind(shape, depth, false)
}

fn fill_kind(shape: &Shape, depth: usize, secret: bool) -> Value {
    let leaf = |v: Value| if secret { json!(SENSITIVE_MARK) } else { v };
    match &shape.kind {
        Kind::Structure(members) if depth < 5 => Value::Object(
            members
                .iter()
                .map(|m| {
                    let v = if secret {
                        json!(SENSITIVE_MARK)
                    } else {
                        fill(m.shape, depth + 1)
                    };
                    (m.name.to_owned(), v)
                })
                .collect(),
        ),
        Kind::List { member, .. } if depth < 5 => json!([fill(member, depth + 1)]),
        Kind::Map { value, .. } if depth < 5 => json!({ "ctx-key": fill(value, depth + 1) }),
        Kind::Blob { .. } => json!(b64()),
        Kind::String { enum_values, .. } => match enum_values.first() {
            Some(e) if !secret => json!(e),
            _ => leaf(json!(STRING_MARK)),
        },
        Kind::Integer { .. } | Kind::Long { .. } => leaf(json!(7)),
        Kind::Boolean => leaf(json!(true)),
        Kind::Timestamp => leaf(json!(1_700_000_000)),
        _ => json!({}),
    }
}

/// Every operation of both models, every member filled: no blob and no sensitive value
/// reaches `requestParameters`, in raw or base64 form.
#[test]
fn no_blob_or_sensitive_member_of_any_operation_is_kept() {
    let raw = String::from_utf8_lossy(BLOB_MARK).into_owned();
    let mut shapes: Vec<(&str, &Shape)> = keyhold_kms_model::Operation::ALL
        .iter()
        .map(|op| (op.name(), keyhold_kms_model::input_shape(*op)))
        .collect();
    shapes.extend(
        keyhold_cloudhsm_model::Operation::ALL
            .iter()
            .map(|op| (op.name(), keyhold_cloudhsm_model::input_shape(*op))),
    );
    let mut strings_seen = 0;
    for (name, shape) in shapes {
        let body = serde_json::to_vec(&fill(shape, 0)).expect("json");
        let kept = request_parameters(shape, &body).expect("an object");
        let text = kept.to_string();
        assert!(!text.contains(&b64()), "{name}: {text}");
        assert!(!text.contains(&raw), "{name}: {text}");
        assert!(!text.contains(SENSITIVE_MARK), "{name}: {text}");
        if text.contains(STRING_MARK) {
            strings_seen += 1;
        }
    }
    assert!(
        strings_seen > 20,
        "ordinary strings are kept ({strings_seen})"
    );
}

#[test]
fn encrypt_keeps_key_context_and_algorithm_in_coral_names_but_no_grant_token() {
    let shape = keyhold_kms_model::input_shape(keyhold_kms_model::Operation::Encrypt);
    let body = json!({
        "KeyId": "alias/app",
        "Plaintext": b64(),
        "EncryptionContext": {"Department": "Engineering"},
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "GrantTokens": ["gt"],
        "Unknown": "dropped"
    });
    let kept = request_parameters(shape, body.to_string().as_bytes()).expect("object");
    assert_eq!(
        kept,
        json!({
            "keyId": "alias/app",
            "encryptionContext": {"Department": "Engineering"},
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT"
        })
    );
}

#[test]
fn xks_credential_is_dropped_whole() {
    let shape = keyhold_kms_model::input_shape(keyhold_kms_model::Operation::CreateCustomKeyStore);
    let body = json!({
        "CustomKeyStoreName": "xks",
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyAuthenticationCredential": {"AccessKeyId": "AKIASECRET", "RawSecretAccessKey": "raw"},
        "KeyStorePassword": "pw123456"
    });
    let kept = request_parameters(shape, body.to_string().as_bytes()).expect("object");
    assert_eq!(
        kept,
        json!({"customKeyStoreName": "xks", "customKeyStoreType": "EXTERNAL_KEY_STORE"})
    );
}

#[test]
fn extensions_keep_only_named_members() {
    let body = json!({"ClusterId": "cluster-1", "Username": "kmsuser", "Password": "p", "AdminPassword": "a"});
    let kept = extension_parameters(body.to_string().as_bytes()).expect("object");
    assert_eq!(
        kept,
        json!({"clusterId": "cluster-1", "username": "kmsuser"})
    );
    assert_eq!(extension_parameters(b"not json"), None);
}

#[test]
fn names_and_dates_as_cloudtrail_shows_them() {
    assert_eq!(decapitalize("KeyId"), "keyId");
    assert_eq!(decapitalize("AWSAccountId"), "AWSAccountId");
    assert_eq!(java_date(1_660_171_107.5), "Aug 10, 2022, 10:38:27 PM");
    assert_eq!(java_date(0.0), "Jan 1, 1970, 12:00:00 AM");
}

#[test]
fn create_key_shows_allowed_metadata_only() {
    let body = json!({"KeyMetadata": {"AWSAccountId": "111122223333", "KeyId": "k", "Arn": "arn:aws:kms:us-east-1:111122223333:key/k",
            "CreationDate": 1_660_171_107.0, "Enabled": true, "NewSecretThing": "x",
            "MultiRegionConfiguration": {"MultiRegionKeyType": "PRIMARY", "PrimaryKey": {"Arn": "a", "Region": "r"}}}})
        .to_string();
    let peek = ResponsePeek::read(body.as_bytes());
    let elements = response_elements("CreateKey", &peek, None).expect("elements");
    assert_eq!(
        elements,
        json!({"keyMetadata": {"AWSAccountId": "111122223333", "keyId": "k",
            "arn": "arn:aws:kms:us-east-1:111122223333:key/k", "creationDate": "Aug 10, 2022, 10:38:27 PM",
            "enabled": true, "multiRegionConfiguration": {"multiRegionKeyType": "PRIMARY", "primaryKey": {"arn": "a", "region": "r"}}}})
    );
    let decrypt = ResponsePeek::read(br#"{"KeyId":"arn:x","Plaintext":"c2VjcmV0"}"#);
    assert_eq!(response_elements("Decrypt", &decrypt, None), None);
    assert_eq!(decrypt.key_id.as_deref(), Some("arn:x"));
}

/// The rule of `requestParameters` stated on a parsed body: what the streaming reader must
/// agree with.
fn keep(shape: &Shape, value: &Value) -> Option<Value> {
    if shape.sensitive {
        return None;
    }
    match (&shape.kind, value) {
        (Kind::Structure(members), Value::Object(obj)) => {
            let mut out = serde_json::Map::new();
            for m in members
                .iter()
                .filter(|m| !matches!(m.name, "GrantToken" | "GrantTokens"))
            {
                if let Some(v) = obj.get(m.name).and_then(|v| keep(m.shape, v)) {
                    out.insert(m.path.to_owned(), v);
                }
            }
            (!out.is_empty() || obj.is_empty()).then_some(Value::Object(out))
        }
        (Kind::List { member, .. }, Value::Array(items)) => Some(Value::Array(
            items.iter().filter_map(|i| keep(member, i)).collect(),
        )),
        (Kind::Map { key, value: v, .. }, Value::Object(entries)) => {
            if key.sensitive {
                return None;
            }
            Some(Value::Object(
                entries
                    .iter()
                    .filter_map(|(k, x)| Some((k.clone(), keep(v, x)?)))
                    .collect(),
            ))
        }
        (Kind::String { .. }, Value::String(s)) => Some(Value::String(s.clone())),
        (Kind::Integer { .. } | Kind::Long { .. } | Kind::Timestamp, Value::Number(n)) => {
            Some(Value::Number(n.clone()))
        }
        (Kind::Boolean, Value::Bool(b)) => Some(Value::Bool(*b)),
        _ => None,
    }
}

/// The streaming reader keeps exactly what the rule on a parsed body keeps: every operation
/// filled in full, with values of the wrong JSON type, with unknown members, and as
/// non-objects.
#[test]
fn streaming_reader_agrees_with_the_rule_on_parsed_bodies() {
    let ops: Vec<(&str, &'static Shape)> = keyhold_kms_model::Operation::ALL
        .iter()
        .map(|op| (op.name(), keyhold_kms_model::input_shape(*op)))
        .chain(
            keyhold_cloudhsm_model::Operation::ALL
                .iter()
                .map(|op| (op.name(), keyhold_cloudhsm_model::input_shape(*op))),
        )
        .collect();
    let mut compared = 0;
    for (name, shape) in ops {
        let full = fill(shape, 0);
        let mut bodies = vec![full.clone(), json!({}), json!([1]), json!("s"), json!(null)];
        if let Value::Object(members) = &full {
            // Each member in turn given a value of another JSON type, or made unknown.
            for (k, v) in members {
                for odd in [
                    json!(12),
                    json!("str"),
                    json!(true),
                    json!([]),
                    json!({"x": 1}),
                    json!(null),
                ] {
                    if odd != *v {
                        let mut b = members.clone();
                        b.insert(k.clone(), odd);
                        bodies.push(Value::Object(b));
                    }
                }
                let mut b = members.clone();
                b.insert(format!("{k}Unknown"), v.clone());
                b.remove(k);
                bodies.push(Value::Object(b));
            }
        }
        for body in bodies {
            let text = serde_json::to_vec(&body).expect("json");
            let want = match &body {
                Value::Object(_) => keep(shape, &body),
                _ => None,
            };
            assert_eq!(request_parameters(shape, &text), want, "{name}: {body}");
            compared += 1;
        }
    }
    assert!(compared > 1000, "{compared}");
    // Not JSON, or JSON followed by more text.
    let encrypt = keyhold_kms_model::input_shape(keyhold_kms_model::Operation::Encrypt);
    assert_eq!(request_parameters(encrypt, b"{\"KeyId\":"), None);
    assert_eq!(request_parameters(encrypt, b"{} {}"), None);
    // A later duplicate member wins, as in a parsed body.
    assert_eq!(
        request_parameters(encrypt, br#"{"KeyId":"a","KeyId":"b"}"#),
        Some(json!({"keyId": "b"}))
    );
    assert_eq!(
        request_parameters(encrypt, br#"{"KeyId":"a","KeyId":5}"#),
        None
    );
}

/// Grant tokens are bearer credentials: never logged, whichever operation carries them.
#[test]
fn grant_tokens_are_never_kept() {
    let retire = keyhold_kms_model::input_shape(keyhold_kms_model::Operation::RetireGrant);
    let body = json!({"GrantToken": "AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2JhY2IzOThkYTc2NTZkZGE"});
    assert_eq!(
        request_parameters(retire, body.to_string().as_bytes()),
        None
    );
    let body = json!({"GrantId": "g-1", "KeyId": "k-1", "GrantToken": "tok"});
    assert_eq!(
        request_parameters(retire, body.to_string().as_bytes()),
        Some(json!({"grantId": "g-1", "keyId": "k-1"}))
    );
    let decrypt = keyhold_kms_model::input_shape(keyhold_kms_model::Operation::Decrypt);
    let body = json!({"KeyId": "k-1", "GrantTokens": ["t1", "t2"]});
    assert_eq!(
        request_parameters(decrypt, body.to_string().as_bytes()),
        Some(json!({"keyId": "k-1"}))
    );
}
