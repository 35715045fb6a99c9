//! One-time import of the cluster file of earlier releases.
//!
//! Before the records moved to the metadata store ([`crate::records`]), a node kept its
//! clusters and subnets in `<data_dir>/cloudhsm/clusters.json`: one pretty-printed JSON object
//! `{"clusters": {<cluster id>: <cluster>}, "subnets": {"<account>/<region>/<subnet id>":
//! <subnet>}}` whose records have the fields of today's [`ClusterRec`] and [`SubnetRec`]
//! (less the ones added since, which default). [`ClusterService::import_legacy_clusters`]
//! copies what the store lacks and renames the file to `clusters.json.imported`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::state::{ClusterRec, SubnetRec};
use crate::{ApiError, ClusterService};

/// The file name of the legacy records under `<data_dir>/cloudhsm`.
pub const LEGACY_FILE: &str = "clusters.json";

/// What the legacy file is renamed to once imported.
pub const IMPORTED_FILE: &str = "clusters.json.imported";

/// The legacy file's content (its `State`).
#[derive(Deserialize)]
struct LegacyState {
    /// Clusters by id.
    #[serde(default)]
    clusters: BTreeMap<String, ClusterRec>,
    /// Subnets by `account/region/subnet-id`.
    #[serde(default)]
    subnets: BTreeMap<String, SubnetRec>,
}

/// The legacy file of the node whose data dir is `data_dir`.
pub fn legacy_path(data_dir: &Path) -> PathBuf {
    data_dir.join("cloudhsm").join(LEGACY_FILE)
}

/// A failure reading the legacy file, logged, as `CloudHsmInternalFailureException`.
fn file_failure(path: &Path, what: &str, e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(path = %path.display(), error = %e, "{what} the legacy CloudHSM cluster file failed");
    ApiError::internal(format!("{what} {} failed: {e}", path.display()))
}

impl ClusterService {
    /// Imports the clusters of an earlier release from `<data_dir>/cloudhsm/clusters.json`
    /// into the metadata store, then renames the file to `clusters.json.imported` so it is
    /// never read again. Returns how many clusters were imported (0 without a file).
    ///
    /// Every cluster (and every subnet record) the store does not have yet is inserted; one it
    /// has is left as it is, so the import is idempotent and safe when several nodes run it at
    /// once, each with its own file or sharing one. Call at start-up, before
    /// [`ClusterService::bind_configured_clusters`] (the configuration wins over an imported
    /// record). A file that cannot be read or decoded is an error and stays in place.
    pub async fn import_legacy_clusters(&self, data_dir: &Path) -> Result<usize, ApiError> {
        let path = legacy_path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(file_failure(&path, "reading", &e)),
        };
        let legacy: LegacyState =
            serde_json::from_slice(&bytes).map_err(|e| file_failure(&path, "decoding", &e))?;
        let (mut imported, mut present) = (0usize, 0usize);
        for (key, rec) in &legacy.clusters {
            if !crate::api::valid_cluster_id(&rec.cluster_id) || *key != rec.cluster_id {
                tracing::warn!(cluster_id = %key, "skipping a legacy CloudHSM cluster with an invalid id");
                continue;
            }
            if self.records().insert_cluster(rec).await? {
                imported += 1;
            } else {
                present += 1;
            }
        }
        for (key, subnet) in &legacy.subnets {
            let mut parts = key.splitn(3, '/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(account), Some(region), Some(id)) => {
                    self.records()
                        .insert_subnet(account, region, id, subnet)
                        .await?;
                }
                _ => tracing::warn!(subnet = %key, "skipping a legacy CloudHSM subnet record"),
            }
        }
        let done = path.with_file_name(IMPORTED_FILE);
        match std::fs::rename(&path, &done) {
            Ok(()) => {}
            // Another node sharing this data dir renamed it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_failure(&path, "renaming", &e)),
        }
        tracing::info!(
            imported,
            already_present = present,
            file = %done.display(),
            "imported the CloudHSM clusters of an earlier release into the metadata store"
        );
        Ok(imported)
    }
}
