//! Cluster, HSM and subnet records (persisted by [`crate::records`]) and the id and address
//! derivations of the CloudHSM API.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Cluster states as AWS names them.
pub mod cluster_state {
    /// Created, no certificate signed yet.
    pub const UNINITIALIZED: &str = "UNINITIALIZED";
    /// `InitializeCluster` done; not yet activated.
    pub const INITIALIZED: &str = "INITIALIZED";
    /// Activated (CloudHSM CLI `cluster activate`).
    pub const ACTIVE: &str = "ACTIVE";
    /// Deleted (kept for DescribeClusters).
    pub const DELETED: &str = "DELETED";
}

/// HSM states as AWS names them.
pub mod hsm_state {
    /// Serving.
    pub const ACTIVE: &str = "ACTIVE";
    /// Not serving (Keyhold's fault-injection API sets it).
    pub const DEGRADED: &str = "DEGRADED";
}

/// The free addresses of a subnet nobody has touched (a /24 less AWS's five reserved).
pub const DEFAULT_FREE_ADDRESSES: u32 = 251;

/// Failed logins after which CloudHSM locks a crypto user.
pub const MAX_FAILED_LOGINS: u32 = 5;

/// The one crypto user Keyhold manages (the PKCS#11 user of the cluster's token).
pub const KMSUSER: &str = "kmsuser";

/// One HSM of a cluster: an availability record over the cluster's token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HsmRec {
    /// `hsm-...`.
    pub hsm_id: String,
    /// Availability zone.
    pub availability_zone: String,
    /// Subnet of that zone in the cluster's subnet mapping.
    pub subnet_id: String,
    /// `eni-...`.
    pub eni_id: String,
    /// The ENI's address in the subnet.
    pub eni_ip: String,
    /// `ACTIVE` or `DEGRADED`.
    pub state: String,
}

/// What Keyhold knows about `kmsuser` beyond the token's PIN.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserRec {
    /// Consecutive failed logins (SoftHSM never locks a PIN, so Keyhold counts).
    pub failed_logins: u32,
    /// Logged in through `KeyholdUserLogin` (the CloudHSM CLI equivalent) and not out yet.
    pub logged_in: bool,
}

/// One cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRec {
    /// `cluster-...`.
    pub cluster_id: String,
    /// Owning account.
    pub account: String,
    /// Region.
    pub region: String,
    /// Cluster state.
    pub state: String,
    /// `HsmType` of the request.
    pub hsm_type: String,
    /// `SourceBackupId` of the request.
    pub source_backup_id: Option<String>,
    /// Availability zone → subnet id.
    pub subnet_mapping: BTreeMap<String, String>,
    /// `vpc-...`.
    pub vpc_id: String,
    /// `sg-...`.
    pub security_group: String,
    /// Seconds since the epoch.
    pub create_timestamp: f64,
    /// HSMs, in creation order.
    pub hsms: Vec<HsmRec>,
    /// The cluster CSR (PEM PKCS#10) shown once the first HSM exists.
    pub csr: String,
    /// The CSR's RSA private key, PKCS#8 wrapped by the root key, base64 ([`crate::pki`]).
    #[serde(default)]
    pub csr_key: Option<String>,
    /// The `SignedCert` given to `InitializeCluster`.
    pub cluster_certificate: Option<String>,
    /// The `TrustAnchor` given to `InitializeCluster`.
    pub trust_anchor: Option<String>,
    /// PKCS#11 module of the cluster's token.
    pub module_path: PathBuf,
    /// Label of the cluster's token (created at activation).
    pub token_label: Option<String>,
    /// `kmsuser`, when it exists.
    pub kmsuser: Option<UserRec>,
    /// Whether the token's user PIN was ever set (`C_InitPIN`). Until then the module itself
    /// answers a login with `CKR_USER_PIN_NOT_INITIALIZED`.
    #[serde(default)]
    pub user_pin_set: bool,
    /// Tags (`TagList`).
    pub tags: Vec<(String, String)>,
    /// Fault injection: the network path from KMS to the cluster's HSMs is down (what AWS
    /// reports as `NETWORK_ERRORS`). Set by `KeyholdFaultSetClusterNetwork`.
    #[serde(default)]
    pub network_partitioned: bool,
    /// The id of the first cluster of this backup lineage (itself unless restored from a
    /// backup).
    #[serde(default)]
    pub lineage: String,
}

impl ClusterRec {
    /// The id of this cluster's backup: `backup-` and the cluster id's own characters.
    pub fn backup_id(&self) -> String {
        self.cluster_id.replacen("cluster-", "backup-", 1)
    }
}

/// A subnet, as far as Keyhold models it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubnetRec {
    /// Free IP addresses.
    pub free_addresses: u32,
    /// Removed through the fault-injection API.
    pub removed: bool,
    /// Next host number handed to an ENI.
    pub next_host: u32,
}

impl Default for SubnetRec {
    fn default() -> Self {
        Self {
            free_addresses: DEFAULT_FREE_ADDRESSES,
            removed: false,
            next_host: 10,
        }
    }
}

/// This node's cache of the records it last read or wrote (the store is the truth).
#[derive(Debug, Default)]
pub struct State {
    /// Clusters by id.
    pub clusters: BTreeMap<String, ClusterRec>,
    /// Subnets by `account/region/subnet-id`.
    pub subnets: BTreeMap<String, SubnetRec>,
}

impl State {
    /// The cluster `id` of the account and Region (deleted ones included).
    pub fn cluster(&self, account: &str, region: &str, id: &str) -> Option<&ClusterRec> {
        self.clusters
            .get(id)
            .filter(|c| c.account == account && c.region == region)
    }

    /// The cluster `id` of the account and Region, mutably.
    pub fn cluster_mut(
        &mut self,
        account: &str,
        region: &str,
        id: &str,
    ) -> Option<&mut ClusterRec> {
        self.clusters
            .get_mut(id)
            .filter(|c| c.account == account && c.region == region)
    }

    /// The record of a subnet (created with defaults on first use).
    pub fn subnet_mut(&mut self, account: &str, region: &str, subnet: &str) -> &mut SubnetRec {
        self.subnets
            .entry(subnet_key(account, region, subnet))
            .or_default()
    }

    /// The record of a subnet, if ever touched.
    pub fn subnet(&self, account: &str, region: &str, subnet: &str) -> Option<&SubnetRec> {
        self.subnets.get(&subnet_key(account, region, subnet))
    }
}

/// The cache key of a subnet.
pub(crate) fn subnet_key(account: &str, region: &str, subnet: &str) -> String {
    format!("{account}/{region}/{subnet}")
}

/// The alphabet of CloudHSM ids (`[2-7a-z]`).
const ID_ALPHABET: &[u8] = b"234567abcdefghijklmnopqrstuvwxyz";

/// `prefix-` followed by 11 characters of `[2-7a-z]`.
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..11)
        .map(|_| char::from(ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())]))
        .collect();
    format!("{prefix}-{tail}")
}

/// `prefix-` followed by 17 lowercase hex digits (VPC, security group and ENI ids).
pub fn new_hex_id(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..17)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect();
    format!("{prefix}-{tail}")
}

/// FNV-1a, for deterministic derivations from ids.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Availability zones for `subnets` in `region`: each subnet's zone letter is derived from a
/// hash of its id, moving to the next free letter when two subnets of one request collide.
/// `None` when there are more subnets than zones (six).
pub fn zones_for(region: &str, subnets: &[String]) -> Option<BTreeMap<String, String>> {
    const LETTERS: &[u8] = b"abcdef";
    let mut sorted = subnets.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() > LETTERS.len() {
        return None;
    }
    let mut out = BTreeMap::new();
    for s in sorted {
        let mut i = (fnv1a(&s) % LETTERS.len() as u64) as usize;
        loop {
            let az = format!("{region}{}", char::from(LETTERS[i]));
            if let std::collections::btree_map::Entry::Vacant(e) = out.entry(az) {
                e.insert(s);
                break;
            }
            i = (i + 1) % LETTERS.len();
        }
    }
    Some(out)
}

/// The /24 a subnet id stands for: `10.x.y.0`, derived from its hash.
pub fn subnet_prefix(subnet: &str) -> String {
    let h = fnv1a(subnet);
    format!("10.{}.{}", (h >> 8) & 0xff, h & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_aws_shape() {
        let id = new_id("cluster");
        assert_eq!(id.len(), 19);
        assert!(id[8..].bytes().all(|b| ID_ALPHABET.contains(&b)));
    }

    #[test]
    fn zones_are_deterministic_and_distinct() {
        let subnets = vec!["subnet-0123abcd".to_string(), "subnet-4567ef01".to_string()];
        let a = zones_for("us-east-1", &subnets).expect("zones");
        let b = zones_for("us-east-1", &[subnets[1].clone(), subnets[0].clone()]).expect("z");
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert!(a.keys().all(|z| z.starts_with("us-east-1")));
    }
}
