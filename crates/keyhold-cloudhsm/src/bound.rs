//! Clusters bound by configuration to an existing PKCS#11 module and token — a real HSM
//! (or any token all Keyhold nodes reach) instead of a SoftHSM token Keyhold creates:
//!
//! ```toml
//! [[cloudhsm.bound_clusters]]
//! cluster_id = "cluster-abcdefghijk"
//! account_id = "111122223333"
//! region = "us-east-1"
//! module_path = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"
//! token_label = "hsm1"
//! trust_anchor_file = "/etc/keyhold/customerCA.crt"   # optional
//! ```
//!
//! At startup ([`ClusterService::bind_configured_clusters`]) each entry becomes an `ACTIVE`
//! cluster record with two `ACTIVE` HSMs in two zones (what a key store requires), whose token
//! is the configured one and whose `kmsuser` is assumed to exist already (created on the HSM with its own tools); when the record exists
//! (another node, an earlier start), only its module and token label are updated. Every node
//! must see the same module and token: this is how a multi-node deployment shares an HSM.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::state::{
    cluster_state, fnv1a, hsm_state, new_hex_id, new_id, ClusterRec, HsmRec, UserRec,
};
use crate::{ApiError, ClusterService};

/// One `[[cloudhsm.bound_clusters]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundCluster {
    /// The cluster id (`cluster-` and 11 to 16 characters of `[2-7a-zA-Z]`).
    pub cluster_id: String,
    /// Owning account (12 digits).
    pub account_id: String,
    /// Region.
    pub region: String,
    /// The PKCS#11 module of the HSM.
    pub module_path: PathBuf,
    /// Label of the token on that module.
    pub token_label: String,
    /// PEM file of the cluster's trust anchor (the issuing CA certificate), if any.
    #[serde(default)]
    pub trust_anchor_file: Option<PathBuf>,
}

impl BoundCluster {
    /// Checks the entry; the message names what is wrong.
    fn check(&self) -> Result<(), String> {
        if !crate::api::valid_cluster_id(&self.cluster_id) {
            return Err(format!("invalid cluster_id {:?}", self.cluster_id));
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account_id {:?} is not 12 digits", self.account_id));
        }
        if self.region.is_empty() || self.token_label.is_empty() {
            return Err("region and token_label must not be empty".into());
        }
        Ok(())
    }

    /// The record of a newly bound cluster: two `ACTIVE` HSMs in two availability zones, the
    /// minimum a CloudHSM key store needs (a real HSM fleet replicates keys itself; these are
    /// availability records over the one configured token, changeable with CreateHsm/DeleteHsm).
    fn record(&self, trust_anchor: Option<String>) -> ClusterRec {
        let hash = fnv1a(&self.cluster_id) as u32;
        let (hsms, subnet_mapping): (Vec<HsmRec>, BTreeMap<String, String>) = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, letter)| {
                let zone = format!("{}{letter}", self.region);
                let subnet = format!("subnet-{:08x}", hash.wrapping_add(i as u32));
                let hsm = HsmRec {
                    hsm_id: new_id("hsm"),
                    availability_zone: zone.clone(),
                    subnet_id: subnet.clone(),
                    eni_id: new_hex_id("eni"),
                    eni_ip: format!("{}.10", crate::state::subnet_prefix(&subnet)),
                    state: hsm_state::ACTIVE.to_string(),
                };
                (hsm, (zone, subnet))
            })
            .unzip();
        ClusterRec {
            cluster_id: self.cluster_id.clone(),
            account: self.account_id.clone(),
            region: self.region.clone(),
            state: cluster_state::ACTIVE.to_string(),
            hsm_type: "hsm2m.medium".into(),
            source_backup_id: None,
            subnet_mapping,
            vpc_id: new_hex_id("vpc"),
            security_group: new_hex_id("sg"),
            create_timestamp: time::OffsetDateTime::now_utc().unix_timestamp() as f64,
            hsms,
            csr: String::new(),
            csr_key: None,
            cluster_certificate: None,
            trust_anchor,
            module_path: self.module_path.clone(),
            token_label: Some(self.token_label.clone()),
            kmsuser: Some(UserRec::default()),
            user_pin_set: true,
            tags: Vec::new(),
            lineage: self.cluster_id.clone(),
            network_partitioned: false,
        }
    }
}

impl ClusterService {
    /// Creates or updates the records of the `[[cloudhsm.bound_clusters]]` (see [`self`]).
    /// Idempotent; safe when several nodes start at once.
    pub async fn bind_configured_clusters(&self) -> Result<(), ApiError> {
        for b in &self.inner.config.bound_clusters {
            b.check()
                .map_err(|m| ApiError::invalid(format!("[[cloudhsm.bound_clusters]]: {m}")))?;
            let trust_anchor = match &b.trust_anchor_file {
                None => None,
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    ApiError::invalid(format!(
                        "[[cloudhsm.bound_clusters]]: reading {}: {e}",
                        path.display()
                    ))
                })?),
            };
            let rec = b.record(trust_anchor.clone());
            if self.records().insert_cluster(&rec).await? {
                tracing::info!(cluster_id = %b.cluster_id, token = %b.token_label, "bound CloudHSM cluster created");
                continue;
            }
            let bound = self
                .with_cluster(&b.account_id, &b.region, &b.cluster_id, |c| {
                    c.module_path.clone_from(&b.module_path);
                    c.token_label = Some(b.token_label.clone());
                    if trust_anchor.is_some() {
                        c.trust_anchor.clone_from(&trust_anchor);
                    }
                    Ok(())
                })
                .await;
            match bound {
                Ok(_) => {
                    tracing::info!(cluster_id = %b.cluster_id, token = %b.token_label, "bound CloudHSM cluster updated")
                }
                Err(e) => {
                    return Err(ApiError::invalid(format!(
                        "[[cloudhsm.bound_clusters]]: cluster {} exists in another account or \
                         Region, or was deleted: {e}",
                        b.cluster_id
                    )))
                }
            }
        }
        Ok(())
    }
}
