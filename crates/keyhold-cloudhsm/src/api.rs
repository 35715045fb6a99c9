//! The AWS CloudHSM v2 operations: CreateCluster, DescribeClusters, InitializeCluster,
//! CreateHsm, DeleteHsm and DeleteCluster. Request and response shapes are generated from
//! botocore's `cloudhsmv2` 2017-04-28 model (`keyhold-cloudhsm-model`; responses are built from
//! the records in [`crate::wire`]), and every request body of an AWS operation is first checked
//! against the model's constraints ([`validate_body`]).

use crate::state::{
    cluster_state, hsm_state, new_hex_id, new_id, subnet_prefix, zones_for, ClusterRec, HsmRec,
    UserRec,
};
use crate::{pki, wire};
use crate::{ApiError, ClusterService};
use keyhold_cloudhsm_model::shapes::{
    Cluster, CreateClusterRequest, CreateClusterResponse, CreateHsmRequest, CreateHsmResponse,
    DeleteClusterRequest, DeleteClusterResponse, DeleteHsmRequest, DeleteHsmResponse,
    DescribeClustersRequest, DescribeClustersResponse, InitializeClusterRequest,
    InitializeClusterResponse,
};

fn now() -> f64 {
    let ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    (ns / 1_000_000) as f64 / 1000.0
}

/// `cluster-[2-7a-zA-Z]{11,16}`.
pub(crate) fn valid_cluster_id(s: &str) -> bool {
    s.strip_prefix("cluster-").is_some_and(|t| {
        (11..=16).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b))
    })
}

/// `CloudHsmResourceNotFoundException` for a cluster.
pub(crate) fn cluster_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Cluster {id} not found."))
}

/// Whether a cluster is waiting for its first HSM's CSR: no HSM yet and no CSR made by this
/// release (records of earlier releases held a placeholder without a key).
fn needs_csr(c: &ClusterRec) -> bool {
    c.state == cluster_state::UNINITIALIZED && c.hsms.is_empty() && c.csr_key.is_none()
}

/// `InitializeCluster`'s state checks: `UNINITIALIZED`, with an HSM (hence a CSR).
fn check_initializable(c: &ClusterRec) -> Result<(), ApiError> {
    if c.state != cluster_state::UNINITIALIZED {
        return Err(ApiError::invalid(format!(
            "Cluster {} is in state {}; only an UNINITIALIZED cluster can be initialized.",
            c.cluster_id, c.state
        )));
    }
    if c.hsms.is_empty() || c.csr.is_empty() {
        return Err(ApiError::invalid(format!(
            "Cluster {} has no HSM yet: create one to get the cluster CSR.",
            c.cluster_id
        )));
    }
    Ok(())
}

impl ClusterService {
    /// A new key pair and CSR for `cluster_id`, made on a blocking thread (RSA key
    /// generation is CPU-bound).
    async fn new_csr(&self, cluster_id: &str, hsm_id: &str) -> Result<pki::ClusterCsr, ApiError> {
        let root = std::sync::Arc::clone(&self.inner.root_key);
        let (cluster, hsm) = (cluster_id.to_string(), hsm_id.to_string());
        tokio::task::spawn_blocking(move || pki::new_cluster_csr(&root, &cluster, &hsm))
            .await
            .map_err(|e| ApiError::internal(format!("generating the cluster CSR: {e}")))?
            .map_err(|e| {
                tracing::error!(cluster_id, error = %e, "generating the cluster CSR failed");
                ApiError::internal("The cluster CSR could not be generated.")
            })
    }

    /// `CreateCluster`: a new `UNINITIALIZED` cluster over the given subnets.
    pub(crate) async fn serve_create_cluster(
        &self,
        account: &str,
        region: &str,
        req: CreateClusterRequest,
    ) -> Result<CreateClusterResponse, ApiError> {
        let _ = (&req.backup_retention_policy, &req.network_type, &req.mode);
        // HsmType, the number of subnets and their ids were checked against the model.
        let mapping = zones_for(region, &req.subnet_ids).ok_or_else(|| {
            ApiError::invalid("A cluster can use at most one subnet per Availability Zone.")
        })?;
        for subnet in mapping.values() {
            if self
                .records()
                .subnet(account, region, subnet)
                .await?
                .removed
            {
                return Err(ApiError::invalid(format!(
                    "Subnet {subnet} does not exist."
                )));
            }
        }
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
                let src = self
                    .refresh_cluster(account, region, &id)
                    .await?
                    .filter(|c| c.token_label.is_some())
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
            cluster_id: String::new(),
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
            csr_key: None,
            cluster_certificate: None,
            trust_anchor: None,
            module_path: self.inner.module_path.clone(),
            token_label: None,
            kmsuser: None,
            user_pin_set: false,
            tags: req
                .tag_list
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
            lineage: String::new(),
            network_partitioned: false,
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
        // Ids are unique across accounts (a claim in the store); draw again on a clash.
        let restored = !rec.lineage.is_empty();
        loop {
            rec.cluster_id = new_id("cluster");
            if !restored {
                rec.lineage.clone_from(&rec.cluster_id);
            }
            if self.records().insert_cluster(&rec).await? {
                break;
            }
        }
        self.lock()
            .clusters
            .insert(rec.cluster_id.clone(), rec.clone());
        tracing::info!(cluster_id = %rec.cluster_id, "CloudHSM cluster created");
        Ok(CreateClusterResponse {
            cluster: Some(Cluster::from(&rec)),
        })
    }

    /// `DescribeClusters`: filters `clusterIds`, `states`, `vpcIds`; pages in id order.
    pub(crate) async fn serve_describe_clusters(
        &self,
        account: &str,
        region: &str,
        req: DescribeClustersRequest,
    ) -> Result<DescribeClustersResponse, ApiError> {
        let filters = req.filters.unwrap_or_default();
        if let Some(bad) = filters
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
            filters
                .get(key)
                .is_none_or(|vs| vs.iter().any(|v| v == value))
        };
        let clusters = self.records().clusters(account, region).await?;
        let mut matching = clusters.iter().filter(|c| {
            pass("clusterIds", &c.cluster_id)
                && pass("states", &c.state)
                && pass("vpcIds", &c.vpc_id)
                && req
                    .next_token
                    .as_deref()
                    .is_none_or(|after| c.cluster_id.as_str() > after)
        });
        let page: Vec<&ClusterRec> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        Ok(DescribeClustersResponse {
            next_token: page
                .last()
                .filter(|_| more)
                .map(|last| last.cluster_id.clone()),
            clusters: Some(page.into_iter().map(Cluster::from).collect()),
        })
    }

    /// `InitializeCluster`: checks that `SignedCert` was issued for the cluster CSR's key and
    /// signed by `TrustAnchor`'s key ([`pki::verify_initialization`]), then records both.
    pub(crate) async fn serve_initialize_cluster(
        &self,
        account: &str,
        region: &str,
        req: InitializeClusterRequest,
    ) -> Result<InitializeClusterResponse, ApiError> {
        let c = self.live_cluster(account, region, &req.cluster_id).await?;
        check_initializable(&c)?;
        let verified_csr = c.csr.clone();
        let (id, csr) = (c.cluster_id.clone(), c.csr.clone());
        let (cert, anchor) = (req.signed_cert.clone(), req.trust_anchor.clone());
        tokio::task::spawn_blocking(move || pki::verify_initialization(&id, &csr, &cert, &anchor))
            .await
            .map_err(|e| ApiError::internal(format!("verifying the certificates: {e}")))?
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        self.with_cluster(account, region, &req.cluster_id, |c| {
            check_initializable(c)?;
            // The HSMs may have been deleted and a new CSR made meanwhile.
            if c.csr != verified_csr {
                return Err(ApiError::invalid(pki::InitError::KeyMismatch.to_string()));
            }
            c.state = cluster_state::INITIALIZED.to_string();
            c.cluster_certificate = Some(req.signed_cert.clone());
            c.trust_anchor = Some(req.trust_anchor.clone());
            Ok(())
        })
        .await?;
        tracing::info!(cluster_id = %req.cluster_id, "CloudHSM cluster initialized");
        Ok(wire::initialized())
    }

    /// `CreateHsm`: an `ACTIVE` HSM in the subnet of the given availability zone. The address
    /// is taken from the subnet first, then the HSM added to the cluster (each a
    /// compare-and-set); if the cluster vanished meanwhile the address is given back.
    pub(crate) async fn serve_create_hsm(
        &self,
        account: &str,
        region: &str,
        req: CreateHsmRequest,
    ) -> Result<CreateHsmResponse, ApiError> {
        let c = self.live_cluster(account, region, &req.cluster_id).await?;
        let hsm_id = new_id("hsm");
        // The first HSM generates the cluster's key pair and CSR.
        let new_csr = if needs_csr(&c) {
            Some(self.new_csr(&c.cluster_id, &hsm_id).await?)
        } else {
            None
        };
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
        let prefix = subnet_prefix(&subnet);
        let (ip, _) = self
            .records()
            .update_subnet(account, region, &subnet, |s| {
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
                let ip = match &req.ip_address {
                    Some(ip) if ip.starts_with(&format!("{prefix}.")) => ip.clone(),
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
                Ok(ip)
            })
            .await?;
        let rec = HsmRec {
            hsm_id,
            availability_zone: req.availability_zone.clone(),
            subnet_id: subnet.clone(),
            eni_id: new_hex_id("eni"),
            eni_ip: ip,
            state: hsm_state::ACTIVE.to_string(),
        };
        let added = self
            .with_cluster(account, region, &req.cluster_id, |c| {
                if let Some(new) = new_csr.as_ref().filter(|_| needs_csr(c)) {
                    c.csr.clone_from(&new.csr_pem);
                    c.csr_key = Some(new.wrapped_key.clone());
                }
                c.hsms.push(rec.clone());
                Ok(wire::hsm(c, &rec))
            })
            .await;
        match added {
            Ok((out, _)) => Ok(CreateHsmResponse { hsm: Some(out) }),
            Err(e) => {
                self.release_address(account, region, &subnet).await;
                Err(e)
            }
        }
    }

    /// Gives an ENI address back to its subnet (best effort: a failure is logged).
    async fn release_address(&self, account: &str, region: &str, subnet: &str) {
        let freed = self
            .records()
            .update_subnet(account, region, subnet, |s| {
                s.free_addresses = s.free_addresses.saturating_add(1);
                Ok(())
            })
            .await;
        if let Err(e) = freed {
            tracing::warn!(subnet, error = %e, "giving an HSM address back to its subnet failed");
        }
    }

    /// `DeleteHsm`: by `HsmId`, `EniId` or `EniIp`.
    pub(crate) async fn serve_delete_hsm(
        &self,
        account: &str,
        region: &str,
        req: DeleteHsmRequest,
    ) -> Result<DeleteHsmResponse, ApiError> {
        if req.hsm_id.is_none() && req.eni_id.is_none() && req.eni_ip.is_none() {
            return Err(ApiError::invalid("Specify one of HsmId, EniId or EniIp."));
        }
        let (hsm, _) = self
            .with_cluster(account, region, &req.cluster_id, |c| {
                let pos = c
                    .hsms
                    .iter()
                    .position(|h| {
                        req.hsm_id.as_ref().is_none_or(|x| *x == h.hsm_id)
                            && req.eni_id.as_ref().is_none_or(|x| *x == h.eni_id)
                            && req.eni_ip.as_ref().is_none_or(|x| *x == h.eni_ip)
                    })
                    .ok_or_else(|| ApiError::not_found("HSM not found in the cluster."))?;
                Ok(c.hsms.remove(pos))
            })
            .await?;
        self.release_address(account, region, &hsm.subnet_id).await;
        Ok(DeleteHsmResponse {
            hsm_id: Some(hsm.hsm_id),
        })
    }

    /// `DeleteCluster`: refused while the cluster has HSMs.
    pub(crate) async fn serve_delete_cluster(
        &self,
        account: &str,
        region: &str,
        req: DeleteClusterRequest,
    ) -> Result<DeleteClusterResponse, ApiError> {
        let (out, _) = self
            .with_cluster(account, region, &req.cluster_id, |c| {
                if !c.hsms.is_empty() {
                    return Err(ApiError::invalid(format!(
                        "Cluster {} still contains HSMs; delete them first.",
                        c.cluster_id
                    )));
                }
                // The cluster's backup (users, certificates) stays restorable.
                c.state = cluster_state::DELETED.to_string();
                Ok(Cluster::from(&*c))
            })
            .await?;
        tracing::info!(cluster_id = %req.cluster_id, "CloudHSM cluster deleted");
        Ok(DeleteClusterResponse { cluster: Some(out) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids() {
        assert!(valid_cluster_id("cluster-abcdefg2345"));
        assert!(!valid_cluster_id("cluster-abc"));
    }
}
