//! `validate_input` against the model's constraints, with AWS's exact message wording.

use keyhold_kms_model::{validate_input, Operation, ViolationValue};
use serde_json::{json, Value};

fn message(op: Operation, input: Value) -> String {
    validate_input(op, &input)
        .expect_err("expected a validation error")
        .message
}

fn ok(op: Operation, input: Value) {
    if let Err(e) = validate_input(op, &input) {
        panic!("unexpected validation error: {}", e.message);
    }
}

#[test]
fn key_id_too_long() {
    let long = "x".repeat(2049);
    assert_eq!(
        message(Operation::DescribeKey, json!({ "KeyId": long })),
        format!(
            "1 validation error detected: Value '{long}' at 'keyId' failed to satisfy constraint: \
             Member must have length less than or equal to 2048"
        )
    );
    ok(Operation::DescribeKey, json!({ "KeyId": "x".repeat(2048) }));
}

#[test]
fn empty_custom_key_store_name() {
    assert_eq!(
        message(
            Operation::CreateCustomKeyStore,
            json!({ "CustomKeyStoreName": "" })
        ),
        "1 validation error detected: Value '' at 'customKeyStoreName' failed to satisfy \
         constraint: Member must have length greater than or equal to 1"
    );
}

#[test]
fn bad_key_spec_lists_model_values_in_model_order() {
    assert_eq!(
        message(Operation::CreateKey, json!({ "KeySpec": "AES_256" })),
        "1 validation error detected: Value 'AES_256' at 'keySpec' failed to satisfy constraint: \
         Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, \
         ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SYMMETRIC_DEFAULT, HMAC_224, HMAC_256, \
         HMAC_384, HMAC_512, SM2, ML_DSA_44, ML_DSA_65, ML_DSA_87, ECC_NIST_EDWARDS25519]"
    );
    ok(
        Operation::CreateKey,
        json!({ "KeySpec": "ECC_NIST_EDWARDS25519" }),
    );
}

#[test]
fn enum_inside_list() {
    let msg = message(
        Operation::CreateGrant,
        json!({ "KeyId": "k", "GranteePrincipal": "arn:aws:iam::111122223333:root",
                "Operations": ["Encrypt", "Nope"] }),
    );
    assert!(
        msg.starts_with(
            "1 validation error detected: Value 'Nope' at 'operations.2.member' failed to satisfy \
             constraint: Member must satisfy enum value set: [Decrypt, Encrypt, GenerateDataKey,"
        ),
        "{msg}"
    );
}

#[test]
fn xks_proxy_uri_path_pattern() {
    let base = |path: &str| json!({ "CustomKeyStoreName": "s", "XksProxyUriPath": path });
    assert_eq!(
        message(Operation::CreateCustomKeyStore, base("/not/the/xks/path")),
        r"1 validation error detected: Value '/not/the/xks/path' at 'xksProxyUriPath' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$"
    );
    ok(Operation::CreateCustomKeyStore, base("/kms/xks/v1"));
    ok(
        Operation::CreateCustomKeyStore,
        base("/example/prefix/kms/xks/v12"),
    );
    // Full match: a trailing suffix is rejected.
    message(Operation::CreateCustomKeyStore, base("/kms/xks/v1/extra"));
}

#[test]
fn patterns_use_java_ascii_classes_and_full_match() {
    // `[\w]+`: ASCII word characters only, as in Java.
    let policy = |name: &str| json!({ "KeyId": "k", "PolicyName": name });
    ok(Operation::GetKeyPolicy, policy("default"));
    assert_eq!(
        message(Operation::GetKeyPolicy, policy("défault")),
        r"1 validation error detected: Value 'défault' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w]+"
    );
    // `[a-zA-Z0-9-_.]` (XksKeyId) compiles and keeps the hyphen literal.
    ok(Operation::CreateKey, json!({ "XksKeyId": "abc-DEF_1.2" }));
    message(Operation::CreateKey, json!({ "XksKeyId": "a b" }));
}

#[test]
fn length_is_reported_before_pattern() {
    assert_eq!(
        message(
            Operation::CreateAlias,
            json!({ "AliasName": "", "TargetKeyId": "k" })
        ),
        "2 validation errors detected: Value '' at 'aliasName' failed to satisfy constraint: \
         Member must have length greater than or equal to 1; Value '' at 'aliasName' failed to \
         satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    );
}

#[test]
fn sensitive_values_are_elided() {
    assert_eq!(
        message(
            Operation::CreateCustomKeyStore,
            json!({ "CustomKeyStoreName": "s", "KeyStorePassword": "abc" })
        ),
        "1 validation error detected: Value at 'keyStorePassword' failed to satisfy constraint: \
         Member must have length greater than or equal to 7"
    );
    let err = validate_input(
        Operation::CreateCustomKeyStore,
        &json!({ "CustomKeyStoreName": "s",
                 "XksProxyAuthenticationCredential": {
                     "AccessKeyId": "lowercase", "RawSecretAccessKey": "x".repeat(43) } }),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "2 validation errors detected: Value at 'xksProxyAuthenticationCredential.accessKeyId' \
         failed to satisfy constraint: Member must have length greater than or equal to 20; \
         Value at 'xksProxyAuthenticationCredential.accessKeyId' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: ^[A-Z2-7]+$"
    );
    assert_eq!(err.violations.len(), 2);
    assert_eq!(err.violations[0].value, ViolationValue::Elided);
    assert!(!err.message.contains("lowercase"));
}

#[test]
fn missing_required_member() {
    let err = validate_input(Operation::Encrypt, &json!({ "Plaintext": "aGk=" })).unwrap_err();
    assert_eq!(
        err.message,
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: \
         Member must not be null"
    );
    assert_eq!(err.violations[0].path, "keyId");
    assert_eq!(err.violations[0].constraint, "Member must not be null");
    assert_eq!(err.violations[0].value, ViolationValue::Null);
    // JSON null counts as missing.
    assert_eq!(
        message(
            Operation::Encrypt,
            json!({ "KeyId": null, "Plaintext": "aGk=" })
        ),
        err.message
    );
}

#[test]
fn multiple_errors_are_counted_in_model_member_order() {
    assert_eq!(
        message(Operation::Encrypt, json!({})),
        "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: \
         Member must not be null; Value null at 'plaintext' failed to satisfy constraint: \
         Member must not be null"
    );
    let err = validate_input(
        Operation::Encrypt,
        &json!({ "Plaintext": "", "KeyId": "", "EncryptionAlgorithm": "ROT13" }),
    )
    .unwrap_err();
    let paths: Vec<&str> = err.violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths, ["keyId", "plaintext", "encryptionAlgorithm"]);
    assert!(err.message.starts_with("3 validation errors detected: "));
}

#[test]
fn integer_ranges() {
    assert_eq!(
        message(Operation::GenerateRandom, json!({ "NumberOfBytes": 0 })),
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: \
         Member must have value greater than or equal to 1"
    );
    assert_eq!(
        message(Operation::GenerateRandom, json!({ "NumberOfBytes": 1025 })),
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy \
         constraint: Member must have value less than or equal to 1024"
    );
    ok(Operation::GenerateRandom, json!({ "NumberOfBytes": 1024 }));
    assert_eq!(
        message(Operation::ListKeys, json!({ "Limit": 0 })),
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: \
         Member must have value greater than or equal to 1"
    );
}

#[test]
fn nested_list_paths() {
    assert_eq!(
        message(
            Operation::CreateKey,
            json!({ "Tags": [{ "TagKey": "", "TagValue": "v" }, { "TagKey": "k" }] })
        ),
        "2 validation errors detected: Value '' at 'tags.1.member.tagKey' failed to satisfy \
         constraint: Member must have length greater than or equal to 1; Value null at \
         'tags.2.member.tagValue' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn list_length() {
    let tokens: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    assert_eq!(
        message(
            Operation::Encrypt,
            json!({ "KeyId": "k", "Plaintext": "aGk=", "GrantTokens": tokens })
        ),
        "1 validation error detected: Value '[t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10]' at \
         'grantTokens' failed to satisfy constraint: Member must have length less than or equal \
         to 10"
    );
}

#[test]
fn blob_length_in_decoded_bytes() {
    use base64::Engine as _;
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
    assert_eq!(
        message(
            Operation::Encrypt,
            json!({ "KeyId": "k", "Plaintext": b64(4097) })
        ),
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: \
         Member must have length less than or equal to 4096"
    );
    ok(
        Operation::Encrypt,
        json!({ "KeyId": "k", "Plaintext": b64(4096) }),
    );
    // Non-sensitive blobs render as Java's ByteBuffer.
    assert_eq!(
        message(Operation::Decrypt, json!({ "CiphertextBlob": "" })),
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=0 cap=0]' at \
         'ciphertextBlob' failed to satisfy constraint: Member must have length greater than or \
         equal to 1"
    );
}

#[test]
fn wrong_json_types_and_unknown_members_are_skipped() {
    ok(
        Operation::Encrypt,
        json!({ "KeyId": 123, "Plaintext": "aGk=" }),
    );
    ok(
        Operation::Encrypt,
        json!({ "KeyId": "k", "Plaintext": "not base64!" }),
    );
    ok(Operation::ListKeys, json!({ "Limit": "0" }));
    ok(Operation::ListKeys, json!({ "Limit": 1.5 }));
    ok(Operation::ListKeys, json!({ "Limit": 1u64 << 40 }));
    ok(
        Operation::CreateKey,
        json!({ "Tags": "not a list", "Unknown": 1 }),
    );
    ok(Operation::CreateKey, json!({ "Tags": [1, null, "x"] }));
    ok(Operation::ListKeys, json!([1, 2]));
    ok(Operation::ListKeys, Value::Null);
}

#[test]
fn valid_requests_pass() {
    ok(
        Operation::CreateKey,
        json!({ "Description": "d", "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT",
                "Origin": "AWS_KMS", "MultiRegion": false,
                "Tags": [{ "TagKey": "k", "TagValue": "" }] }),
    );
    ok(
        Operation::Encrypt,
        json!({ "KeyId": "alias/x", "Plaintext": "aGk=", "EncryptionContext": { "a": "b" },
                "GrantTokens": ["t"], "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" }),
    );
    for op in Operation::ALL {
        // Nothing panics on an empty body; operations without required members accept it.
        let _ = validate_input(*op, &json!({}));
    }
    ok(Operation::ListKeys, json!({}));
}
