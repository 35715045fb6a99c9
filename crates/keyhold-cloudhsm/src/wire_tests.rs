//! The typed responses are byte-for-byte what the hand-written `json!` bodies of earlier
//! releases were (kept here, verbatim, as the reference).

use std::collections::BTreeMap;

use keyhold_cloudhsm_model::shapes::{DescribeClustersResponse, ListTagsResponse};
use serde_json::json;

use super::*;
use crate::state::UserRec;

/// The wire form of an HSM before the model shapes (reference).
fn legacy_hsm_json(cluster_id: &str, hsm_type: &str, h: &HsmRec) -> Value {
    json!({
        "AvailabilityZone": h.availability_zone,
        "ClusterId": cluster_id,
        "SubnetId": h.subnet_id,
        "EniId": h.eni_id,
        "EniIp": h.eni_ip,
        "HsmId": h.hsm_id,
        "HsmType": hsm_type,
        "State": h.state,
        "StateMessage": if h.state == hsm_state::ACTIVE { "HSM is active." } else { "HSM is degraded." },
    })
}

/// The wire form of a cluster before the model shapes (reference).
fn legacy_cluster_json(c: &ClusterRec) -> Value {
    let mut certs = serde_json::Map::new();
    if !c.csr.is_empty() && c.state == cluster_state::UNINITIALIZED {
        certs.insert("ClusterCsr".into(), json!(c.csr));
    }
    if let Some(cert) = &c.cluster_certificate {
        certs.insert("ClusterCertificate".into(), json!(cert));
    }
    let mut v = json!({
        "BackupPolicy": "DEFAULT",
        "BackupRetentionPolicy": {"Type": "DAYS", "Value": "90"},
        "ClusterId": c.cluster_id,
        "CreateTimestamp": c.create_timestamp,
        "Hsms": c.hsms.iter().map(|h| legacy_hsm_json(&c.cluster_id, &c.hsm_type, h)).collect::<Vec<_>>(),
        "HsmType": c.hsm_type,
        "SecurityGroup": c.security_group,
        "State": c.state,
        "SubnetMapping": c.subnet_mapping,
        "VpcId": c.vpc_id,
        "NetworkType": "IPV4",
        "Certificates": certs,
        "TagList": c.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
    });
    if let (Some(b), Some(obj)) = (&c.source_backup_id, v.as_object_mut()) {
        obj.insert("SourceBackupId".into(), json!(b));
    }
    v
}

fn hsm_rec(id: &str, state: &str) -> HsmRec {
    HsmRec {
        hsm_id: id.into(),
        availability_zone: "us-east-1b".into(),
        subnet_id: "subnet-0a0a0a0a".into(),
        eni_id: "eni-0123456789abcdef0".into(),
        eni_ip: "10.1.2.10".into(),
        state: state.into(),
    }
}

fn cluster_rec(id: &str, state: &str, create_timestamp: f64) -> ClusterRec {
    ClusterRec {
        cluster_id: id.into(),
        account: "111122223333".into(),
        region: "us-east-1".into(),
        state: state.into(),
        hsm_type: "hsm2m.medium".into(),
        source_backup_id: None,
        subnet_mapping: BTreeMap::from([
            ("us-east-1b".into(), "subnet-0a0a0a0a".into()),
            ("us-east-1e".into(), "subnet-0b0b0b0b".into()),
        ]),
        vpc_id: "vpc-0123456789abcdef0".into(),
        security_group: "sg-0123456789abcdef0".into(),
        create_timestamp,
        hsms: Vec::new(),
        csr: String::new(),
        csr_key: None,
        cluster_certificate: None,
        trust_anchor: None,
        module_path: "/usr/lib/softhsm/libsofthsm2.so".into(),
        token_label: None,
        kmsuser: None,
        user_pin_set: false,
        tags: Vec::new(),
        network_partitioned: false,
        lineage: id.into(),
    }
}

/// Clusters in every state and shape the API produces.
fn samples() -> Vec<ClusterRec> {
    let fresh = cluster_rec("cluster-abcdefghijk", "UNINITIALIZED", 1_764_337_000.123);
    let mut with_csr = cluster_rec("cluster-bcdefghijk2", "UNINITIALIZED", 1_764_337_001.5);
    with_csr.hsms = vec![hsm_rec("hsm-abcdefghij2", "ACTIVE")];
    with_csr.csr =
        "-----BEGIN CERTIFICATE REQUEST-----\nQUJD\n-----END CERTIFICATE REQUEST-----\n".into();
    with_csr.tags = vec![("k b".into(), "v:1".into()), ("a".into(), String::new())];
    let mut initialized = with_csr.clone();
    initialized.cluster_id = "cluster-cdefghijk23".into();
    initialized.state = "INITIALIZED".into();
    initialized.cluster_certificate =
        Some("-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n".into());
    initialized
        .hsms
        .push(hsm_rec("hsm-bcdefghij23", "DEGRADED"));
    let mut restored = initialized.clone();
    restored.cluster_id = "cluster-defghijk234".into();
    restored.state = "ACTIVE".into();
    restored.source_backup_id = Some("backup-cdefghijk23".into());
    restored.kmsuser = Some(UserRec::default());
    restored.create_timestamp = 1_764_337_002.007;
    let mut deleted = restored.clone();
    deleted.cluster_id = "cluster-efghijk2345".into();
    deleted.state = "DELETED".into();
    deleted.hsms.clear();
    vec![fresh, with_csr, initialized, restored, deleted]
}

#[test]
fn clusters_and_hsms_are_byte_identical_to_the_legacy_bodies() {
    for c in samples() {
        let new = serde_json::to_string(&to_body(&Cluster::from(&c)).unwrap()).unwrap();
        assert_eq!(new, legacy_cluster_json(&c).to_string(), "{}", c.cluster_id);
        for h in &c.hsms {
            let new = to_body(&hsm(&c, h)).unwrap().to_string();
            let old = legacy_hsm_json(&c.cluster_id, &c.hsm_type, h).to_string();
            assert_eq!(new, old);
        }
    }
    let page = samples();
    let new = to_body(&DescribeClustersResponse {
        clusters: Some(page.iter().map(Cluster::from).collect()),
        next_token: Some("cluster-efghijk2345".into()),
    })
    .unwrap();
    let mut old = json!({ "Clusters": page.iter().map(legacy_cluster_json).collect::<Vec<_>>() });
    old["NextToken"] = json!("cluster-efghijk2345");
    assert_eq!(new.to_string(), old.to_string());
    assert_eq!(
        to_body(&initialized()).unwrap().to_string(),
        json!({ "State": "INITIALIZED", "StateMessage": "Cluster is initialized." }).to_string()
    );
    let c = &page[1];
    let new = to_body(&ListTagsResponse {
        tag_list: tags(&c.tags),
        next_token: Some("2".into()),
    })
    .unwrap();
    let old = json!({
        "TagList": c.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
        "NextToken": "2",
    });
    assert_eq!(new.to_string(), old.to_string());
}

/// A whole-second creation time (bound clusters) is written as the model's `Timestamp` writes
/// it, without a `.0`: the same JSON number for every client.
#[test]
fn whole_second_timestamps_are_the_same_number() {
    let c = cluster_rec("cluster-abcdefghijk", "ACTIVE", 1_764_337_000.0);
    let new = to_body(&Cluster::from(&c)).unwrap();
    let old = legacy_cluster_json(&c);
    assert_eq!(new["CreateTimestamp"].to_string(), "1764337000");
    assert_eq!(old["CreateTimestamp"].to_string(), "1764337000.0");
    assert_eq!(
        new["CreateTimestamp"].as_f64(),
        old["CreateTimestamp"].as_f64()
    );
    let (mut new, mut old) = (new, old);
    new["CreateTimestamp"] = json!(0);
    old["CreateTimestamp"] = json!(0);
    assert_eq!(new.to_string(), old.to_string());
}
