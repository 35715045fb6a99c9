//! The wire form of the stored records: every response shape of the AWS operations is built
//! here from [`ClusterRec`] and [`HsmRec`] with the generated `keyhold-cloudhsm-model` shapes,
//! so member names, enum values (`ClusterState`, `HsmState`, ...) and timestamps (epoch
//! seconds as a JSON number) come from botocore's model.

use keyhold_cloudhsm_model::enums::{
    BackupPolicy, BackupRetentionType, ClusterState, HsmState, NetworkType,
};
use keyhold_cloudhsm_model::shapes::{
    BackupRetentionPolicy, Certificates, Cluster, Hsm, InitializeClusterResponse, Tag,
};
use keyhold_cloudhsm_model::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::state::{cluster_state, hsm_state, ClusterRec, HsmRec};
use crate::ApiError;

/// The backup retention every cluster reports (AWS's default: 90 days).
const RETENTION_DAYS: &str = "90";

/// The wire form of the HSM `h` of cluster `c`.
pub(crate) fn hsm(c: &ClusterRec, h: &HsmRec) -> Hsm {
    let message = if h.state == hsm_state::ACTIVE {
        "HSM is active."
    } else {
        "HSM is degraded."
    };
    Hsm {
        availability_zone: Some(h.availability_zone.clone()),
        cluster_id: Some(c.cluster_id.clone()),
        subnet_id: Some(h.subnet_id.clone()),
        eni_id: Some(h.eni_id.clone()),
        eni_ip: Some(h.eni_ip.clone()),
        hsm_id: h.hsm_id.clone(),
        hsm_type: Some(c.hsm_type.clone()),
        state: h.state.parse::<HsmState>().ok(),
        state_message: Some(message.to_string()),
        ..Hsm::default()
    }
}

/// Tags as the model's `TagList`, in the order they were added.
pub(crate) fn tags<'a>(tags: impl IntoIterator<Item = &'a (String, String)>) -> Vec<Tag> {
    tags.into_iter()
        .map(|(key, value)| Tag {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

impl From<&ClusterRec> for Cluster {
    /// The wire form of a cluster. The CSR is shown only while the cluster is
    /// `UNINITIALIZED`; `Certificates` and `TagList` are always present (possibly empty). The
    /// record's state is one of the model's `ClusterState` values (a value the model does not
    /// know, which Keyhold never writes, would be left out, as would an unknown HSM state).
    fn from(c: &ClusterRec) -> Cluster {
        let csr_shown = !c.csr.is_empty() && c.state == cluster_state::UNINITIALIZED;
        Cluster {
            backup_policy: Some(BackupPolicy::Default),
            backup_retention_policy: Some(BackupRetentionPolicy {
                type_: Some(BackupRetentionType::Days),
                value: Some(RETENTION_DAYS.to_string()),
            }),
            cluster_id: Some(c.cluster_id.clone()),
            create_timestamp: Some(Timestamp(c.create_timestamp)),
            hsms: Some(c.hsms.iter().map(|h| hsm(c, h)).collect()),
            hsm_type: Some(c.hsm_type.clone()),
            security_group: Some(c.security_group.clone()),
            source_backup_id: c.source_backup_id.clone(),
            state: c.state.parse::<ClusterState>().ok(),
            subnet_mapping: Some(c.subnet_mapping.clone()),
            vpc_id: Some(c.vpc_id.clone()),
            network_type: Some(NetworkType::Ipv4),
            certificates: Some(Certificates {
                cluster_csr: csr_shown.then(|| c.csr.clone()),
                cluster_certificate: c.cluster_certificate.clone(),
                ..Certificates::default()
            }),
            tag_list: Some(tags(&c.tags)),
            ..Cluster::default()
        }
    }
}

/// `InitializeCluster`'s answer.
pub(crate) fn initialized() -> InitializeClusterResponse {
    InitializeClusterResponse {
        state: Some(ClusterState::Initialized),
        state_message: Some("Cluster is initialized.".to_string()),
    }
}

/// A response shape as the JSON body of the answer.
pub(crate) fn to_body<T: Serialize>(out: &T) -> Result<Value, ApiError> {
    serde_json::to_value(out).map_err(|e| {
        tracing::error!(error = %e, "a CloudHSM response does not serialise");
        ApiError::internal("The response could not be serialised.")
    })
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
