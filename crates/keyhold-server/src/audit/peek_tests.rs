//! [`capture`] must give what reading the response's JSON gives ([`ResponsePeek::read`]),
//! for every member the record uses, and must not serialise the members it skips.

use serde::de::DeserializeOwned;
use serde_json::json;

use keyhold_kms_model::shapes;

use super::*;

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Checks one response type: the typed response made from `body` gives the same peek when
/// captured as when its JSON is read back, and that peek is not empty.
fn agrees<T: DeserializeOwned + Serialize>(body: serde_json::Value) {
    let typed: T = serde_json::from_value(body.clone()).expect("a response of the type");
    let json = serde_json::to_vec(&typed).expect("json");
    let read = ResponsePeek::read(&json).into_owned();
    assert_ne!(
        read,
        ResponsePeek::default(),
        "{body}: the case reads something"
    );
    assert_eq!(capture(&typed), read, "{body}");
}

#[test]
fn captured_peeks_equal_the_peeks_read_from_the_json() {
    agrees::<shapes::EncryptResponse>(json!({
        "CiphertextBlob": "AQIDBA==", "KeyId": ARN, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"
    }));
    agrees::<shapes::DecryptResponse>(json!({
        "KeyId": ARN, "Plaintext": "c2VjcmV0", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "KeyMaterialId": "a\u{e9}\"\\1"
    }));
    agrees::<shapes::ReEncryptResponse>(json!({
        "CiphertextBlob": "AQID", "SourceKeyId": "arn:aws:kms:eu-west-1:111122223333:key/s",
        "KeyId": ARN, "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "SourceKeyMaterialId": "s1", "DestinationKeyMaterialId": "d1"
    }));
    let metadata = json!({
        "AWSAccountId": "111122223333", "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "Arn": ARN, "CreationDate": 1_660_171_107.5, "Enabled": true, "Description": "d",
        "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": "Enabled", "Origin": "EXTERNAL_KEY_STORE",
        "CustomKeyStoreId": "cks-1234567890abcdef0", "KeyManager": "CUSTOMER",
        "KeySpec": "SYMMETRIC_DEFAULT", "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": false, "XksKeyConfiguration": {"Id": "xks-key-1"},
        "CurrentKeyMaterialId": "m1"
    });
    agrees::<shapes::CreateKeyResponse>(json!({ "KeyMetadata": metadata }));
    agrees::<shapes::DescribeKeyResponse>(json!({ "KeyMetadata": metadata }));
    agrees::<shapes::ReplicateKeyResponse>(json!({
        "ReplicaKeyMetadata": metadata, "ReplicaPolicy": "{}", "ReplicaTags": []
    }));
    agrees::<shapes::CreateGrantResponse>(json!({ "GrantToken": "t", "GrantId": "g-1" }));
    agrees::<shapes::ScheduleKeyDeletionResponse>(json!({
        "KeyId": ARN, "DeletionDate": 1_660_171_107, "KeyState": "PendingDeletion",
        "PendingWindowInDays": 7
    }));
    agrees::<shapes::CreateCustomKeyStoreResponse>(json!({
        "CustomKeyStoreId": "cks-1234567890abcdef0"
    }));
    agrees::<shapes::GenerateDataKeyResponse>(json!({
        "CiphertextBlob": "AQID", "Plaintext": "c2VjcmV0", "KeyId": ARN, "KeyMaterialId": "m"
    }));
}

/// An empty response gives an empty peek either way.
#[test]
fn a_response_without_those_members_gives_an_empty_peek() {
    let typed = shapes::ListAliasesResponse::default();
    assert_eq!(capture(&typed), ResponsePeek::default());
    let empty = shapes::EncryptResponse::default();
    assert_eq!(
        capture(&empty),
        ResponsePeek::read(&serde_json::to_vec(&empty).expect("json"))
    );
}

/// A member the record does not use is never asked to serialise itself: a plaintext or a
/// ciphertext is neither copied nor encoded for the audit record.
#[test]
fn skipped_members_are_not_serialised() {
    struct Untouchable;
    impl Serialize for Untouchable {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            panic!("a skipped member was serialised");
        }
    }
    #[derive(serde::Serialize)]
    struct Response {
        #[serde(rename = "Plaintext")]
        plaintext: Untouchable,
        #[serde(rename = "KeyId")]
        key_id: &'static str,
        #[serde(rename = "CiphertextBlob")]
        blob: Untouchable,
    }
    let peek = capture(&Response {
        plaintext: Untouchable,
        key_id: ARN,
        blob: Untouchable,
    });
    assert_eq!(peek.key_id.as_deref(), Some(ARN));
}
