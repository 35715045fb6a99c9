//! Unit tests of `multi_region`: key ids, material lists, index entries, configurations.

use super::multi_region::{
    configuration, material_ids, new_key_id, MultiRegionDoc, MULTI_REGION_INDEX,
};
use super::KeyDoc;
use keyhold_kms_model::enums::MultiRegionKeyType;

#[test]
fn key_ids_look_like_aws() {
    let id = new_key_id();
    assert_eq!(id.len(), 36);
    assert!(id.starts_with("mrk-"));
    assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(id, new_key_id());
}

fn doc(state: &str, replica: bool) -> KeyDoc {
    serde_json::from_value(serde_json::json!({
        "description": "", "key_usage": "ENCRYPT_DECRYPT", "key_spec": "SYMMETRIC_DEFAULT",
        "origin": "AWS_KMS", "key_manager": "CUSTOMER", "key_state": state,
        "creation_date": 1.0, "current_material_id": "m3", "policy": "{}",
        "multi_region": true,
        "rotation": {"period_days": 365, "next_rotation_date": 2.0, "enabled_date": 1.0},
        "rotations": [
            {"material_id": "m2", "previous_material_id": "m1", "date": 1.0, "kind": "ON_DEMAND"},
            {"material_id": "m3", "previous_material_id": "m2", "date": 2.0, "kind": "ON_DEMAND"}
        ],
        "mrk": {"key_id": "mrk-1", "primary_region": "us-east-1", "replica": replica}
    }))
    .expect("doc")
}

#[test]
fn materials_are_listed_oldest_first() {
    assert_eq!(material_ids(&doc("Enabled", false)), ["m1", "m2", "m3"]);
}

#[test]
fn index_entries_of_related_keys() {
    let names = |d: &KeyDoc| -> Vec<(String, String)> {
        super::indexes_of(d)
            .into_iter()
            .map(|e| (e.index, e.value))
            .collect()
    };
    let primary = names(&doc("Enabled", false));
    assert!(primary.contains(&(MULTI_REGION_INDEX.into(), "mrk-1".into())));
    assert!(primary.iter().any(|(i, _)| i == super::ROTATION_DUE_INDEX));
    // Replicas rotate with their primary, never by themselves.
    let replica = names(&doc("Enabled", true));
    assert!(!replica.iter().any(|(i, _)| i == super::ROTATION_DUE_INDEX));
    // A primary waiting for its replicas is checked by every deletion sweep.
    let waiting = names(&doc("PendingReplicaDeletion", false));
    assert!(waiting.contains(&(
        super::DELETION_DUE_INDEX.into(),
        super::deletion::due_value(0)
    )));
}

#[test]
fn configuration_lists_primary_and_replicas() {
    let mrk = MultiRegionDoc {
        key_id: "mrk-0123456789abcdef0123456789abcdef".into(),
        primary_region: "us-east-1".into(),
        replica: true,
        sync_due: false,
    };
    let regions = vec!["eu-west-1".to_string(), "us-east-1".to_string()];
    let c = configuration("111122223333", &mrk, &regions);
    assert_eq!(c.multi_region_key_type, Some(MultiRegionKeyType::Replica));
    let primary = c.primary_key.unwrap();
    assert_eq!(primary.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        primary.arn.as_deref(),
        Some("arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef")
    );
    let replicas = c.replica_keys.unwrap();
    assert_eq!(replicas.len(), 1);
    assert_eq!(replicas[0].region.as_deref(), Some("eu-west-1"));
}
