//! The AWS CloudHSM v2 operations: CreateCluster, DescribeClusters, InitializeCluster,
//! CreateHsm, DeleteHsm and DeleteCluster (request shapes and answers as in botocore's
//! `cloudhsmv2` 2017-04-28 model).

use std::collections::BTreeMap;

use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::state::{
    cluster_state, hsm_state, new_hex_id, new_id, subnet_prefix, zones_for, ClusterRec, HsmRec,
    UserRec,
};
use crate::{ApiError, ClusterService};

/// `Tag`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag {
    key: String,
    value: String,
}

/// `CreateClusterRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateClusterRequest {
    hsm_type: String,
    subnet_ids: Vec<String>,
    #[serde(default)]
    source_backup_id: Option<String>,
    #[serde(default)]
    tag_list: Vec<Tag>,
    #[serde(default)]
    backup_retention_policy: Option<Value>,
    #[serde(default)]
    network_type: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

/// `DescribeClustersRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeClustersRequest {
    #[serde(default)]
    filters: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
}

/// `InitializeClusterRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InitializeClusterRequest {
    cluster_id: String,
    signed_cert: String,
    trust_anchor: String,
}

/// `CreateHsmRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateHsmRequest {
    cluster_id: String,
    availability_zone: String,
    #[serde(default)]
    ip_address: Option<String>,
}

/// `DeleteHsmRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeleteHsmRequest {
    cluster_id: String,
    #[serde(default)]
    hsm_id: Option<String>,
    #[serde(default)]
    eni_id: Option<String>,
    #[serde(default)]
    eni_ip: Option<String>,
}

/// `DeleteClusterRequest` (also the shape of requests naming only a cluster).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ClusterIdRequest {
    pub(crate) cluster_id: String,
}

fn now() -> f64 {
    let ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    (ns / 1_000_000) as f64 / 1000.0
}

fn valid_subnet_id(s: &str) -> bool {
    s.strip_prefix("subnet-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `((p|)hsm[0-9][a-z.]*\.[a-zA-Z]+)`, at most 32 characters.
fn valid_hsm_type(s: &str) -> bool {
    let rest = s.strip_prefix('p').unwrap_or(s);
    let Some(rest) = rest.strip_prefix("hsm") else {
        return false;
    };
    let mut chars = rest.chars();
    let digit = chars.next().is_some_and(|c| c.is_ascii_digit());
    let tail: String = chars.collect();
    let Some((mid, last)) = tail.rsplit_once('.') else {
        return false;
    };
    s.len() <= 32
        && digit
        && mid.chars().all(|c| c.is_ascii_lowercase() || c == '.')
        && !last.is_empty()
        && last.chars().all(|c| c.is_ascii_alphabetic())
}

/// `cluster-[2-7a-zA-Z]{11,16}`.
pub(crate) fn valid_cluster_id(s: &str) -> bool {
    s.strip_prefix("cluster-").is_some_and(|t| {
        (11..=16).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b))
    })
}

fn looks_like_certificate(s: &str) -> bool {
    s.contains("-----BEGIN CERTIFICATE-----") && s.contains("-----END CERTIFICATE-----")
}

/// `CloudHsmResourceNotFoundException` for a cluster.
pub(crate) fn cluster_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Cluster {id} not found."))
}

fn fake_csr() -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    let mut body = String::new();
    for line in 0..6 {
        if line > 0 {
            body.push('\n');
        }
        for _ in 0..64 {
            body.push(char::from(B64[rng.gen_range(0..B64.len())]));
        }
    }
    format!("-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n")
}

/// The wire form of an HSM.
pub(crate) fn hsm_json(cluster_id: &str, hsm_type: &str, h: &HsmRec) -> Value {
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

/// The wire form of a cluster.
pub(crate) fn cluster_json(c: &ClusterRec) -> Value {
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
        "Hsms": c.hsms.iter().map(|h| hsm_json(&c.cluster_id, &c.hsm_type, h)).collect::<Vec<_>>(),
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

impl ClusterService {
    /// `CreateCluster`: a new `UNINITIALIZED` cluster over the given subnets.
    pub(crate) fn create_cluster(
        &self,
        account: &str,
        region: &str,
        req: CreateClusterRequest,
    ) -> Result<Value, ApiError> {
        let _ = (&req.backup_retention_policy, &req.network_type, &req.mode);
        if !valid_hsm_type(&req.hsm_type) {
            return Err(ApiError::invalid(format!(
                "Invalid HsmType {:?}.",
                req.hsm_type.chars().take(40).collect::<String>()
            )));
        }
        if req.subnet_ids.is_empty() || req.subnet_ids.len() > 10 {
            return Err(ApiError::invalid("SubnetIds must name 1 to 10 subnets."));
        }
        if let Some(bad) = req.subnet_ids.iter().find(|s| !valid_subnet_id(s)) {
            return Err(ApiError::invalid(format!(
                "Invalid subnet id {:?}.",
                bad.chars().take(40).collect::<String>()
            )));
        }
        let mapping = zones_for(region, &req.subnet_ids).ok_or_else(|| {
            ApiError::invalid("A cluster can use at most one subnet per Availability Zone.")
        })?;
        let mut st = self.lock();
        if let Some(gone) = mapping
            .values()
            .find(|s| st.subnet(account, region, s).is_some_and(|r| r.removed))
        {
            return Err(ApiError::invalid(format!("Subnet {gone} does not exist.")));
        }
        let cluster_id = loop {
            let id = new_id("cluster");
            if !st.clusters.contains_key(&id) {
                break id;
            }
        };
        // A backup is named after its cluster (`backup-<id chars>`; an ARN is accepted too).
        let source = match &req.source_backup_id {
            None => None,
            Some(b) => {
                let id = b
                    .rsplit('/')
                    .next()
                    .and_then(|b| b.strip_prefix("backup-"))
                    .map(|t| format!("cluster-{t}"))
                    .ok_or_else(|| ApiError::invalid("Invalid SourceBackupId."))?;
                let src = st
                    .cluster(account, region, &id)
                    .filter(|c| c.token_label.is_some())
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "Backup {} not found.",
                            b.chars().take(80).collect::<String>()
                        ))
                    })?;
                Some(src)
            }
        };
        let mut rec = ClusterRec {
            cluster_id: cluster_id.clone(),
            account: account.to_string(),
            region: region.to_string(),
            state: cluster_state::UNINITIALIZED.to_string(),
            hsm_type: req.hsm_type,
            source_backup_id: req.source_backup_id,
            subnet_mapping: mapping,
            vpc_id: new_hex_id("vpc"),
            security_group: new_hex_id("sg"),
            create_timestamp: now(),
            hsms: Vec::new(),
            csr: String::new(),
            cluster_certificate: None,
            trust_anchor: None,
            module_path: self.inner.module_path.clone(),
            token_label: None,
            kmsuser: None,
            user_pin_set: false,
            tags: req.tag_list.into_iter().map(|t| (t.key, t.value)).collect(),
            lineage: cluster_id.clone(),
        };
        if let Some(src) = source {
            // Restored: certificates, token (users and keys) and lineage come from the backup.
            rec.state = cluster_state::ACTIVE.to_string();
            rec.cluster_certificate = src.cluster_certificate;
            rec.trust_anchor = src.trust_anchor;
            rec.module_path = src.module_path;
            rec.token_label = src.token_label;
            rec.user_pin_set = src.user_pin_set;
            rec.kmsuser = src.kmsuser.map(|u| UserRec {
                logged_in: false,
                ..u
            });
            rec.lineage = if src.lineage.is_empty() {
                src.cluster_id
            } else {
                src.lineage
            };
        }
        let out = cluster_json(&rec);
        st.clusters.insert(cluster_id.clone(), rec);
        self.save(&st)?;
        tracing::info!(cluster_id = %cluster_id, "CloudHSM cluster created");
        Ok(json!({ "Cluster": out }))
    }

    /// `DescribeClusters`: filters `clusterIds`, `states`, `vpcIds`; pages in id order.
    pub(crate) fn describe_clusters(
        &self,
        account: &str,
        region: &str,
        req: DescribeClustersRequest,
    ) -> Result<Value, ApiError> {
        if let Some(bad) = req
            .filters
            .keys()
            .find(|k| !matches!(k.as_str(), "clusterIds" | "states" | "vpcIds"))
        {
            return Err(ApiError::invalid(format!(
                "Invalid filter {:?}.",
                bad.chars().take(40).collect::<String>()
            )));
        }
        let limit = match req.max_results {
            None => usize::MAX,
            Some(n @ 1..=25) => n as usize,
            Some(_) => return Err(ApiError::invalid("MaxResults must be between 1 and 25.")),
        };
        let pass = |key: &str, value: &str| {
            req.filters
                .get(key)
                .is_none_or(|vs| vs.iter().any(|v| v == value))
        };
        let st = self.lock();
        let mut matching = st.clusters.values().filter(|c| {
            c.account == account
                && c.region == region
                && pass("clusterIds", &c.cluster_id)
                && pass("states", &c.state)
                && pass("vpcIds", &c.vpc_id)
                && req
                    .next_token
                    .as_deref()
                    .is_none_or(|after| c.cluster_id.as_str() > after)
        });
        let page: Vec<&ClusterRec> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        let mut out =
            json!({ "Clusters": page.iter().map(|c| cluster_json(c)).collect::<Vec<_>>() });
        if let (true, Some(last), Some(obj)) = (more, page.last(), out.as_object_mut()) {
            obj.insert("NextToken".into(), json!(last.cluster_id));
        }
        Ok(out)
    }

    /// `InitializeCluster`: records the signed cluster certificate and the trust anchor.
    pub(crate) fn initialize_cluster(
        &self,
        account: &str,
        region: &str,
        req: InitializeClusterRequest,
    ) -> Result<Value, ApiError> {
        if !looks_like_certificate(&req.signed_cert) || !looks_like_certificate(&req.trust_anchor) {
            return Err(ApiError::invalid(
                "SignedCert and TrustAnchor must be PEM-encoded certificates.",
            ));
        }
        let mut st = self.lock();
        let c = live_cluster(&mut st, account, region, &req.cluster_id)?;
        if c.state != cluster_state::UNINITIALIZED {
            return Err(ApiError::invalid(format!(
                "Cluster {} is in state {}; only an UNINITIALIZED cluster can be initialized.",
                c.cluster_id, c.state
            )));
        }
        if c.hsms.is_empty() {
            return Err(ApiError::invalid(format!(
                "Cluster {} has no HSM yet: create one to get the cluster CSR.",
                c.cluster_id
            )));
        }
        c.state = cluster_state::INITIALIZED.to_string();
        c.cluster_certificate = Some(req.signed_cert);
        c.trust_anchor = Some(req.trust_anchor);
        self.save(&st)?;
        Ok(
            json!({ "State": cluster_state::INITIALIZED, "StateMessage": "Cluster is initialized." }),
        )
    }

    /// `CreateHsm`: an `ACTIVE` HSM in the subnet of the given availability zone.
    pub(crate) fn create_hsm(
        &self,
        account: &str,
        region: &str,
        req: CreateHsmRequest,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let c = live_cluster(&mut st, account, region, &req.cluster_id)?;
        let subnet = c
            .subnet_mapping
            .get(&req.availability_zone)
            .cloned()
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Cluster {} has no subnet in Availability Zone {:?}.",
                    c.cluster_id,
                    req.availability_zone.chars().take(40).collect::<String>()
                ))
            })?;
        let (cluster_id, hsm_type) = (c.cluster_id.clone(), c.hsm_type.clone());
        let first = c.hsms.is_empty() && c.csr.is_empty();
        let s = st.subnet_mut(account, region, &subnet);
        if s.removed {
            return Err(ApiError::invalid(format!(
                "Subnet {subnet} does not exist."
            )));
        }
        if s.free_addresses == 0 {
            return Err(ApiError::invalid(format!(
                "Subnet {subnet} has no free IP address."
            )));
        }
        let prefix = subnet_prefix(&subnet);
        let ip = match req.ip_address {
            Some(ip) if ip.starts_with(&format!("{prefix}.")) => ip,
            Some(ip) => {
                return Err(ApiError::invalid(format!(
                    "IpAddress {:?} is not in subnet {subnet} ({prefix}.0/24).",
                    ip.chars().take(40).collect::<String>()
                )))
            }
            None => {
                let ip = format!("{prefix}.{}", s.next_host);
                s.next_host = if s.next_host >= 254 {
                    10
                } else {
                    s.next_host + 1
                };
                ip
            }
        };
        s.free_addresses -= 1;
        let hsm = HsmRec {
            hsm_id: new_id("hsm"),
            availability_zone: req.availability_zone,
            subnet_id: subnet,
            eni_id: new_hex_id("eni"),
            eni_ip: ip,
            state: hsm_state::ACTIVE.to_string(),
        };
        let out = hsm_json(&cluster_id, &hsm_type, &hsm);
        let c = live_cluster(&mut st, account, region, &cluster_id)?;
        if first {
            c.csr = fake_csr();
        }
        c.hsms.push(hsm);
        self.save(&st)?;
        Ok(json!({ "Hsm": out }))
    }

    /// `DeleteHsm`: by `HsmId`, `EniId` or `EniIp`.
    pub(crate) fn delete_hsm(
        &self,
        account: &str,
        region: &str,
        req: DeleteHsmRequest,
    ) -> Result<Value, ApiError> {
        if req.hsm_id.is_none() && req.eni_id.is_none() && req.eni_ip.is_none() {
            return Err(ApiError::invalid("Specify one of HsmId, EniId or EniIp."));
        }
        let mut st = self.lock();
        let c = live_cluster(&mut st, account, region, &req.cluster_id)?;
        let pos = c
            .hsms
            .iter()
            .position(|h| {
                req.hsm_id.as_ref().is_none_or(|x| *x == h.hsm_id)
                    && req.eni_id.as_ref().is_none_or(|x| *x == h.eni_id)
                    && req.eni_ip.as_ref().is_none_or(|x| *x == h.eni_ip)
            })
            .ok_or_else(|| ApiError::not_found("HSM not found in the cluster."))?;
        let hsm = c.hsms.remove(pos);
        let s = st.subnet_mut(account, region, &hsm.subnet_id);
        s.free_addresses = s.free_addresses.saturating_add(1);
        self.save(&st)?;
        Ok(json!({ "HsmId": hsm.hsm_id }))
    }

    /// `DeleteCluster`: refused while the cluster has HSMs.
    pub(crate) fn delete_cluster(
        &self,
        account: &str,
        region: &str,
        req: ClusterIdRequest,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let c = live_cluster(&mut st, account, region, &req.cluster_id)?;
        if !c.hsms.is_empty() {
            return Err(ApiError::invalid(format!(
                "Cluster {} still contains HSMs; delete them first.",
                c.cluster_id
            )));
        }
        // The cluster's backup (users, certificates) stays restorable.
        c.state = cluster_state::DELETED.to_string();
        let out = cluster_json(c);
        self.save(&st)?;
        tracing::info!(cluster_id = %req.cluster_id, "CloudHSM cluster deleted");
        Ok(json!({ "Cluster": out }))
    }
}

/// The cluster `id` unless absent or deleted (`CloudHsmResourceNotFoundException`).
pub(crate) fn live_cluster<'a>(
    st: &'a mut crate::state::State,
    account: &str,
    region: &str,
    id: &str,
) -> Result<&'a mut ClusterRec, ApiError> {
    if !valid_cluster_id(id) {
        return Err(ApiError::invalid(format!(
            "Invalid cluster id {:?}.",
            id.chars().take(40).collect::<String>()
        )));
    }
    st.cluster_mut(account, region, id)
        .filter(|c| c.state != cluster_state::DELETED)
        .ok_or_else(|| cluster_not_found(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_validate_like_the_model() {
        assert!(valid_hsm_type("hsm1.medium"));
        assert!(valid_hsm_type("hsm2m.medium"));
        assert!(!valid_hsm_type("m5.large"));
        assert!(valid_subnet_id("subnet-0123abcd"));
        assert!(!valid_subnet_id("subnet-xyz"));
        assert!(valid_cluster_id("cluster-abcdefg2345"));
        assert!(!valid_cluster_id("cluster-abc"));
    }
}
