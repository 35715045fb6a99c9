//! Operations, enums, exceptions and serde shapes generated from the model.

use std::str::FromStr;

use keyhold_kms_model::enums::{KeySpec, KeyState, KeyUsageType, OriginType};
use keyhold_kms_model::exceptions::{self, Fault, EXCEPTIONS};
use keyhold_kms_model::shapes::{CreateKeyRequest, EncryptRequest, KeyMetadata, Tag};
use keyhold_kms_model::{Blob, Operation, Timestamp};
use serde_json::json;

#[test]
fn every_operation_round_trips_through_its_target() {
    assert_eq!(Operation::ALL.len(), 54);
    for op in Operation::ALL {
        let target = format!("TrentService.{}", op.name());
        assert_eq!(Operation::from_target(&target), Some(*op));
        assert_eq!(op.input_shape(), format!("{}Request", op.name()));
    }
    assert_eq!(
        Operation::from_target("TrentService.CreateKey"),
        Some(Operation::CreateKey)
    );
    assert_eq!(Operation::from_target("TrentService.NoSuchThing"), None);
    assert_eq!(Operation::from_target("TrentService.createKey"), None);
    assert_eq!(Operation::from_target("trentservice.CreateKey"), None);
    assert_eq!(Operation::from_target("CreateKey"), None);
    assert_eq!(Operation::from_target(""), None);
    assert_eq!(
        Operation::CreateKey.output_shape(),
        Some("CreateKeyResponse")
    );
    assert_eq!(Operation::CreateAlias.output_shape(), None);
}

#[test]
fn exceptions_and_operation_errors() {
    assert_eq!(EXCEPTIONS.len(), 48);
    let internal = exceptions::find("KMSInternalException").unwrap();
    assert_eq!(
        (internal.fault, internal.model_status),
        (Fault::Server, 500)
    );
    let not_found = exceptions::find("NotFoundException").unwrap();
    assert_eq!(
        (not_found.fault, not_found.model_status),
        (Fault::Client, 400)
    );
    assert!(exceptions::find("ValidationException").is_none());
    assert!(Operation::CreateKey
        .errors()
        .iter()
        .any(|e| e.name() == "MalformedPolicyDocumentException"));
    for op in Operation::ALL {
        assert!(!op.errors().is_empty(), "{op:?}");
        for e in op.errors() {
            assert!(
                exceptions::find(e.name()).is_some(),
                "{op:?} raises unknown {e}"
            );
        }
    }
}

/// The typed exceptions agree with the model's table: every modeled shape is a variant with
/// the same fault and status, names round-trip, and the common protocol errors are there too.
#[test]
fn typed_exceptions_match_the_model_table() {
    use keyhold_kms_model::Exception;
    for info in EXCEPTIONS {
        let e = Exception::from_name(info.name).unwrap();
        assert_eq!(
            (e.name(), e.fault(), e.model_status()),
            (info.name, info.fault, info.model_status)
        );
        assert!(e.is_modeled());
    }
    let common: Vec<_> = Exception::ALL.iter().filter(|e| !e.is_modeled()).collect();
    assert_eq!(common.len() + EXCEPTIONS.len(), Exception::ALL.len());
    assert_eq!(Exception::Validation.name(), "ValidationException");
    assert_eq!(Exception::KMSInternal.name(), "KMSInternalException");
    assert_eq!(Exception::RequestEntityTooLarge.model_status(), 413);
    assert!(Exception::from_name("NoSuchException").is_none());
}

#[test]
fn enums_round_trip() {
    for v in KeySpec::ALL {
        assert_eq!(KeySpec::from_str(v.as_str()).unwrap(), *v);
        assert_eq!(KeySpec::try_from(v.as_str()).unwrap(), *v);
        assert_eq!(v.to_string(), v.as_str());
        assert_eq!(serde_json::to_value(v).unwrap(), json!(v.as_str()));
    }
    assert_eq!(KeySpec::Rsa2048.as_str(), "RSA_2048");
    assert_eq!(KeyState::PendingDeletion.as_str(), "PendingDeletion");
    let err = KeySpec::from_str("rsa_2048").unwrap_err();
    assert_eq!((err.enum_name, err.value.as_str()), ("KeySpec", "rsa_2048"));
    assert!(serde_json::from_value::<KeySpec>(json!("NOPE")).is_err());
}

#[test]
fn create_key_request_serde() {
    let req = CreateKeyRequest {
        description: Some("d".into()),
        key_spec: Some(KeySpec::EccNistP256),
        tags: Some(vec![Tag {
            tag_key: "k".into(),
            tag_value: "v".into(),
        }]),
        ..Default::default()
    };
    let v = serde_json::to_value(&req).unwrap();
    assert_eq!(
        v,
        json!({ "Description": "d", "KeySpec": "ECC_NIST_P256",
                "Tags": [{ "TagKey": "k", "TagValue": "v" }] })
    );
    assert_eq!(serde_json::from_value::<CreateKeyRequest>(v).unwrap(), req);
    // Unknown members are ignored; `null` is `None`.
    let parsed: CreateKeyRequest =
        serde_json::from_value(json!({ "Whatever": 1, "Policy": null, "MultiRegion": true }))
            .unwrap();
    assert_eq!(parsed.multi_region, Some(true));
    assert_eq!(parsed.policy, None);
    // Required members are required.
    assert!(serde_json::from_value::<Tag>(json!({ "TagKey": "k" })).is_err());
}

#[test]
fn key_metadata_and_blob_serde() {
    let md = KeyMetadata {
        key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        creation_date: Some(Timestamp(1700000000.5)),
        enabled: Some(true),
        key_usage: Some(KeyUsageType::EncryptDecrypt),
        key_state: Some(KeyState::Enabled),
        origin: Some(OriginType::AwsKms),
        ..Default::default()
    };
    let v = serde_json::to_value(&md).unwrap();
    assert_eq!(v["CreationDate"], json!(1700000000.5));
    assert_eq!(v["KeyUsage"], json!("ENCRYPT_DECRYPT"));
    assert!(v.get("DeletionDate").is_none());
    assert_eq!(serde_json::from_value::<KeyMetadata>(v).unwrap(), md);

    let enc: EncryptRequest =
        serde_json::from_value(json!({ "KeyId": "k", "Plaintext": "aGVsbG8=" })).unwrap();
    assert_eq!(enc.plaintext, Blob::new(b"hello".to_vec()));
    assert!(!format!("{enc:?}").contains("hello"));
    assert_eq!(
        serde_json::to_value(&enc).unwrap()["Plaintext"],
        json!("aGVsbG8=")
    );
}
