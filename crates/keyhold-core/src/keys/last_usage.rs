//! `GetKeyLastUsage`: when each key was last used in a successful cryptographic operation.
//!
//! Recording must not slow the cryptographic operations down, so it never writes on the
//! request's path: a successful operation replaces its key's entry in an in-memory table (one
//! short lock), and [`Keys::flush_key_usage`] — run every few seconds in the background —
//! writes the entries as documents of kind [`KEY_USAGE_KIND`] (one per key), keeping the
//! newest when several nodes write the same key. `GetKeyLastUsage` reads this node's pending
//! entry first, so a node always answers with its own latest use; another node's use shows
//! once that node has flushed.

use std::collections::HashMap;
use std::sync::Mutex;

use keyhold_kms_model::enums::KeyLastUsageTrackingOperation;
use keyhold_kms_model::shapes::{
    GetKeyLastUsageRequest, GetKeyLastUsageResponse, KeyLastUsageData,
};
use keyhold_kms_model::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::{StoreError, StoredDocument, DOCUMENT_ID_SCOPE};

/// The document kind of last-usage records; the document id is the key id.
pub const KEY_USAGE_KIND: &str = "kms-key-usage";
/// How often a record is retried when another node wrote it meanwhile.
const WRITE_ATTEMPTS: usize = 4;

/// One key's last successful cryptographic use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyUsage {
    /// The operation.
    pub operation: KeyLastUsageTrackingOperation,
    /// When, in seconds since the epoch.
    pub timestamp: f64,
    /// The request id of that request.
    pub request_id: String,
}

/// (account, Region, key id).
type KeyAddress = (String, String, String);

/// Uses recorded since the last flush; the newest per key.
#[derive(Debug, Default)]
pub(super) struct UsageTable {
    pending: Mutex<HashMap<KeyAddress, KeyUsage>>,
}

impl UsageTable {
    fn record(&self, address: KeyAddress, usage: KeyUsage) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(address, usage);
        }
    }

    fn get(&self, address: &KeyAddress) -> Option<KeyUsage> {
        self.pending.lock().ok()?.get(address).cloned()
    }

    fn drain(&self) -> Vec<(KeyAddress, KeyUsage)> {
        match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn address_of(key: &LoadedKey) -> KeyAddress {
    let r = &key.row;
    (r.account_id.clone(), r.region.clone(), r.key_id.clone())
}

impl Keys {
    /// Records that `operation` just succeeded with `key` (a name that is not a tracked
    /// operation is ignored).
    pub(super) fn record_use(&self, ctx: &RequestContext, key: &LoadedKey, operation: &str) {
        let Ok(operation) = KeyLastUsageTrackingOperation::try_from(operation) else {
            return;
        };
        self.usage.record(
            address_of(key),
            KeyUsage {
                operation,
                timestamp: self.now_seconds(),
                request_id: ctx.request_id.clone(),
            },
        );
    }

    /// `GetKeyLastUsage`. Keyhold tracks a key's use from its creation, so the tracking start
    /// date is the creation date.
    pub async fn get_key_last_usage(
        &self,
        ctx: &RequestContext,
        req: GetKeyLastUsageRequest,
    ) -> KmsResult<GetKeyLastUsageResponse> {
        let access = Access::new(KeyAction::GetKeyLastUsage);
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        let usage = match self.usage.get(&address_of(&key)) {
            Some(u) => Some(u),
            None => self.stored_usage(&key).await?.map(|(u, _)| u),
        };
        Ok(GetKeyLastUsageResponse {
            key_id: Some(key.arn()),
            key_last_usage: Some(usage.map_or_else(KeyLastUsageData::default, |u| {
                KeyLastUsageData {
                    operation: Some(u.operation),
                    timestamp: Some(Timestamp(u.timestamp)),
                    kms_request_id: Some(u.request_id),
                    cloud_trail_event_id: None,
                }
            })),
            tracking_start_date: Some(Timestamp(key.doc.creation_date)),
            key_creation_date: Some(Timestamp(key.doc.creation_date)),
        })
    }

    async fn stored_usage(&self, key: &LoadedKey) -> KmsResult<Option<(KeyUsage, StoredDocument)>> {
        let r = &key.row;
        let Some(doc) = self
            .store
            .get_document(KEY_USAGE_KIND, &r.account_id, &r.region, &r.key_id)
            .await?
        else {
            return Ok(None);
        };
        let usage: KeyUsage = serde_json::from_str(&doc.doc).map_err(KmsError::internal)?;
        Ok(Some((usage, doc)))
    }

    /// Writes the uses recorded since the last flush; returns how many records were written.
    /// A record that fails to write is kept for the next flush unless a newer one arrived.
    pub async fn flush_key_usage(&self) -> KmsResult<usize> {
        let mut written = 0;
        let mut first_error = None;
        for (address, usage) in self.usage.drain() {
            match self.write_usage(&address, &usage).await {
                Ok(()) => written += 1,
                Err(e) => {
                    if let Ok(mut pending) = self.usage.pending.lock() {
                        pending.entry(address).or_insert(usage);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    /// Upserts one record, keeping the newer of the stored and the new use.
    async fn write_usage(
        &self,
        (account, region, key_id): &KeyAddress,
        usage: &KeyUsage,
    ) -> KmsResult<()> {
        let body = serde_json::to_string(usage).map_err(KmsError::internal)?;
        for _ in 0..WRITE_ATTEMPTS {
            let existing = self
                .store
                .get_document(KEY_USAGE_KIND, account, region, key_id)
                .await?;
            let result = match existing {
                None => {
                    let row = StoredDocument {
                        kind: KEY_USAGE_KIND.into(),
                        account_id: account.clone(),
                        region: region.clone(),
                        id: key_id.clone(),
                        created_at_ms: (usage.timestamp * 1000.0) as i64,
                        version: 1,
                        doc: body.clone(),
                    };
                    self.store.insert_document(&row, &[], &[]).await
                }
                Some(row) => {
                    let stored: Option<KeyUsage> = serde_json::from_str(&row.doc).ok();
                    if stored.is_some_and(|s| s.timestamp >= usage.timestamp) {
                        return Ok(());
                    }
                    let mut next = row.clone();
                    next.version += 1;
                    next.doc.clone_from(&body);
                    self.store.update_document(&next, None, None).await
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(StoreError::VersionMismatch | StoreError::NotFound) => continue,
                Err(StoreError::Conflict { scope }) if scope == DOCUMENT_ID_SCOPE => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Forgets the last use of a deleted key (best effort; a failure is logged).
    pub(super) async fn forget_usage(&self, key: &LoadedKey) {
        let r = &key.row;
        if let Ok(mut pending) = self.usage.pending.lock() {
            pending.remove(&address_of(key));
        }
        let Ok(Some(doc)) = self
            .store
            .get_document(KEY_USAGE_KIND, &r.account_id, &r.region, &r.key_id)
            .await
        else {
            return;
        };
        if let Err(e) = self
            .store
            .delete_document(
                KEY_USAGE_KIND,
                &r.account_id,
                &r.region,
                &r.key_id,
                doc.version,
            )
            .await
        {
            tracing::warn!(key_arn = %key.arn(), error = %e, "deleting the last-usage record of a deleted key failed");
        }
    }

    /// Flushes recorded uses every `interval`, forever (spawn it).
    pub async fn run_usage_flush(&self, interval: std::time::Duration) {
        loop {
            tokio::time::sleep(interval).await;
            if let Err(e) = self.flush_key_usage().await {
                tracing::warn!(error = %e, "writing key last-usage records failed; retried at the next flush");
            }
        }
    }
}
