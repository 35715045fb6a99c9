//! The key-operation side of CloudHSM key stores: one `kmsuser` session pool per cluster,
//! opened when its store becomes `CONNECTED` and closed at Disconnect, through which backing
//! keys are created and AES-256-GCM runs inside the HSM.
//!
//! PKCS#11 login is per process and token: while a pool is open this process is logged in as
//! `kmsuser`, so any other login to the token (an admin operation, a `KeyholdUserLogin`, a
//! Connect's credential check) first suspends the pool ([`ClusterService::suspend_key_sessions`]);
//! the next key operation of a still-`CONNECTED` store opens it again with the stored password.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyhold_core::ports::cloudhsm::{CloudHsmFailure, HsmGcmOutput, HsmKeyFailure, HsmTarget};
use keyhold_crypto::SecretBytes;
use keyhold_pkcs11::{Pin, Pkcs11Error, Token, TokenConfig};

use crate::port::failure_of;
use crate::state::hsm_state;
use crate::ClusterService;

/// Sessions per cluster pool.
const POOL_SIZE: usize = 8;
/// How long an operation waits for a free session before [`HsmKeyFailure::Busy`].
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a key operation checks that the HSM still holds the key it runs on, unchanged
/// (see [`TokenConfig::session_key_copies`]): operations run on a session copy of the key,
/// which SoftHSMv2 keeps in memory, instead of re-reading the token object's file each time.
/// A key destroyed in the HSM by this process suspends the pool first, so it is seen at once;
/// by another process, within this time.
const KEY_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// How old this node's copy of a cluster's records may be when a key operation checks it
/// (HSMs deleted or the cluster deleted through another node show within this time). One
/// metadata read per cluster per interval, not per request.
const RECORDS_MAX_AGE: Duration = Duration::from_secs(2);

type ClusterKey = (String, String, String);

fn key_of(t: &HsmTarget) -> ClusterKey {
    (t.account.clone(), t.region.clone(), t.cluster_id.clone())
}

/// The open `kmsuser` pools, by (account, Region, cluster id).
#[derive(Default)]
pub(crate) struct KeySessions {
    pools: Mutex<HashMap<ClusterKey, Token>>,
    /// When key operations last refreshed each cluster's records.
    refreshed: Mutex<HashMap<ClusterKey, Instant>>,
}

impl KeySessions {
    /// True (and the time noted) when the cluster's records are older than `max_age`: the
    /// caller refreshes them. Noted before refreshing, so concurrent requests refresh once.
    fn refresh_due(&self, k: &ClusterKey, max_age: Duration) -> bool {
        let mut refreshed = self.refreshed.lock().unwrap_or_else(|p| p.into_inner());
        match refreshed.get(k) {
            Some(at) if at.elapsed() < max_age => false,
            _ => {
                refreshed.insert(k.clone(), Instant::now());
                true
            }
        }
    }

    fn get(&self, k: &ClusterKey) -> Option<Token> {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(k)
            .cloned()
    }
    fn insert(&self, k: ClusterKey, t: Token) {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k, t);
    }
    /// Every open pool's use, by cluster id.
    fn counts(&self) -> Vec<(String, keyhold_pkcs11::SessionCounts)> {
        let pools: Vec<(String, Token)> = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((_, _, cluster), t)| (cluster.clone(), t.clone()))
            .collect();
        pools
            .into_iter()
            .map(|(c, t)| (c, t.session_counts()))
            .collect()
    }

    fn remove(&self, k: &ClusterKey) -> Option<Token> {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(k)
    }
}

/// The typed PKCS#11 cause of a failed key operation.
pub(crate) fn key_failure(e: &Pkcs11Error) -> HsmKeyFailure {
    match e {
        Pkcs11Error::KeyNotFound { .. } => HsmKeyFailure::KeyNotFound,
        _ if e.is_session_exhaustion() => HsmKeyFailure::Busy,
        _ if e.is_authentication_failure() => HsmKeyFailure::InvalidCiphertext,
        Pkcs11Error::TokenNotFound { .. } | Pkcs11Error::LibraryLoad { .. } => {
            HsmKeyFailure::Unavailable {
                detail: e.to_string(),
            }
        }
        _ if e.is_device_failure()
            || e.ckr()
                .is_some_and(|c| c == keyhold_pkcs11::Ckr::UserNotLoggedIn) =>
        {
            HsmKeyFailure::Unavailable {
                detail: e.to_string(),
            }
        }
        _ => HsmKeyFailure::Internal {
            detail: e.to_string(),
        },
    }
}

impl ClusterService {
    /// The use of this node's open `kmsuser` session pools, by cluster id (for `/metrics`;
    /// cheap: one lock per pool, no call to a token).
    pub fn session_pools(&self) -> Vec<(String, keyhold_pkcs11::SessionCounts)> {
        let mut out = self.inner.key_sessions.counts();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Logs out and forgets the cluster's `kmsuser` pool, if one is open (before another
    /// login to its token). Blocks briefly on the module.
    pub(crate) fn suspend_key_sessions(&self, account: &str, region: &str, cluster_id: &str) {
        let k = (
            account.to_string(),
            region.to_string(),
            cluster_id.to_string(),
        );
        if let Some(token) = self.inner.key_sessions.remove(&k) {
            if let Err(e) = token.logout() {
                tracing::warn!(cluster_id, error = %e, "logging the kmsuser session pool out failed");
            }
            tracing::info!(cluster_id, "kmsuser session pool closed");
        }
    }

    /// Opens the cluster's `kmsuser` pool with `password`, unless one is open already.
    pub(crate) async fn open_pool(
        &self,
        target: &HsmTarget,
        password: &SecretBytes,
    ) -> Result<(), CloudHsmFailure> {
        let Ok(text) = std::str::from_utf8(password.expose()) else {
            return Err(CloudHsmFailure::InvalidCredentials {
                ckr: "the password is not UTF-8".into(),
            });
        };
        self.refresh_quietly(&target.account, &target.region, &target.cluster_id)
            .await;
        let c = self
            .live_copy(&target.account, &target.region, &target.cluster_id)
            .ok_or(CloudHsmFailure::ClusterNotFound)?;
        let label = c
            .token_label
            .clone()
            .ok_or_else(|| CloudHsmFailure::Internal {
                detail: format!("cluster {} is not activated", target.cluster_id),
            })?;
        let this = self.clone();
        let (t, pin) = (target.clone(), Pin::new(text));
        let module = c.module_path.clone();
        tokio::task::spawn_blocking(move || {
            let _g = this
                .inner
                .login_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // Opened meanwhile by a concurrent request (a Connect suspends the pool before
            // its credential check, so it always opens a fresh one).
            if this.inner.key_sessions.get(&key_of(&t)).is_some() {
                return Ok(());
            }
            let mut config = TokenConfig::new(module, label, pin);
            config.pool_size = POOL_SIZE;
            config.checkout_timeout = CHECKOUT_TIMEOUT;
            config.session_key_copies = Some(KEY_CHECK_INTERVAL);
            let token = Token::open(config).map_err(|e| failure_of(&e))?;
            this.inner.key_sessions.insert(key_of(&t), token);
            tracing::info!(cluster_id = %t.cluster_id, "kmsuser session pool opened");
            Ok(())
        })
        .await
        .map_err(|e| CloudHsmFailure::Internal {
            detail: e.to_string(),
        })?
    }

    /// Reloads the cluster's records from the metadata store if this node's copy is older
    /// than `max_age` (`key` is the cluster's, made once by the caller).
    async fn refresh_if_stale(&self, t: &HsmTarget, key: &ClusterKey, max_age: Duration) {
        if self.inner.key_sessions.refresh_due(key, max_age) {
            self.refresh_quietly(&t.account, &t.region, &t.cluster_id)
                .await;
        }
    }

    /// Why KMS cannot use the cluster's HSMs right now, as this node's records show it: the
    /// cluster was deleted, has no `ACTIVE` HSM, or its network path is cut (fault injection).
    /// AWS answers a cryptographic operation with KMSInvalidStateException in each case.
    fn unreachable_reason(&self, t: &HsmTarget) -> Option<String> {
        let id = &t.cluster_id;
        // Read in place under the lock: this runs on every key operation, and a copy of the
        // record (HSMs, users, tags) would cost more than the checks.
        let st = self.lock();
        match st
            .cluster(&t.account, &t.region, id)
            .filter(|c| c.state != crate::state::cluster_state::DELETED)
        {
            None => Some(format!("cluster {id} was deleted")),
            Some(c) if c.network_partitioned => {
                Some(format!("no network path to cluster {id} (fault injected)"))
            }
            Some(c) if !c.hsms.iter().any(|h| h.state == hsm_state::ACTIVE) => {
                Some(format!("cluster {id} has no active HSM"))
            }
            Some(_) => None,
        }
    }

    /// Runs `f` on the cluster's pool in a blocking task.
    pub(crate) async fn with_pool<T: Send + 'static>(
        &self,
        target: &HsmTarget,
        f: impl FnOnce(&Token) -> Result<T, Pkcs11Error> + Send + 'static,
    ) -> Result<T, HsmKeyFailure> {
        let token = self.usable_pool(target).await?;
        Self::blocking(token, f).await
    }

    /// Runs the short operation `f` (AES-GCM on one key) on `token` in place, when the module
    /// computes inside this process and a session is free at once; `None` when the caller must
    /// use a blocking task ([`ClusterService::blocking`]). Why: on SoftHSMv2 the operation on
    /// a cached key takes a few microseconds of CPU and no I/O, less than the hand-off to a
    /// blocking thread and back (context switches were a third of the server's time under
    /// load), and in place its inputs need not be copied. A module with a device or network
    /// behind it always gets the blocking task, as does any operation when no session is free.
    fn in_place<T>(
        token: &Token,
        f: impl FnOnce(&Token) -> Result<T, Pkcs11Error>,
    ) -> Option<Result<T, HsmKeyFailure>> {
        if !token.in_process() {
            return None;
        }
        match f(&token.without_waiting()) {
            Err(Pkcs11Error::SessionBusy) => None,
            done => Some(done.map_err(|e| key_failure(&e))),
        }
    }

    /// Runs `f` on `token` in a blocking task.
    async fn blocking<T: Send + 'static>(
        token: Token,
        f: impl FnOnce(&Token) -> Result<T, Pkcs11Error> + Send + 'static,
    ) -> Result<T, HsmKeyFailure> {
        tokio::task::spawn_blocking(move || f(&token))
            .await
            .map_err(|e| HsmKeyFailure::Internal {
                detail: e.to_string(),
            })?
            .map_err(|e| key_failure(&e))
    }

    /// The cluster's open pool, once the cluster is known to be usable.
    async fn usable_pool(&self, target: &HsmTarget) -> Result<Token, HsmKeyFailure> {
        // No pool yet (say, after a restart) comes first: the caller opens one, which also
        // loads the cluster's records on this node.
        let key = key_of(target);
        let token =
            self.inner
                .key_sessions
                .get(&key)
                .ok_or_else(|| HsmKeyFailure::NotConnected {
                    detail: format!("no kmsuser session pool for {}", target.cluster_id),
                })?;
        self.refresh_if_stale(target, &key, RECORDS_MAX_AGE).await;
        if let Some(detail) = self.unreachable_reason(target) {
            return Err(HsmKeyFailure::Unavailable { detail });
        }
        Ok(token)
    }

    /// AES-256-GCM inside the HSM. The 96-bit IV is drawn here, from the thread's CSPRNG
    /// (as the default key store draws its IVs), not from the HSM's RNG: that saves one
    /// PKCS#11 call per Encrypt (`C_GenerateRandom`, a round trip on a network HSM; 7% of the
    /// server's time on SoftHSMv2). A retry after a device failure reuses the IV with the same
    /// plaintext and AAD, so it can only give the same ciphertext again.
    pub(crate) async fn hsm_encrypt(
        &self,
        target: &HsmTarget,
        label: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<HsmGcmOutput, HsmKeyFailure> {
        let iv: [u8; keyhold_pkcs11::GCM_IV_LEN] = rand::random();
        let token = self.usable_pool(target).await?;
        if let Some(done) = Self::in_place(&token, |t| seal(t, label, iv, aad, plaintext)) {
            return done;
        }
        let (label, aad) = (label.to_string(), aad.to_vec());
        let plaintext = SecretBytes::new(plaintext.to_vec());
        Self::blocking(token, move |t| {
            seal(t, &label, iv, &aad, plaintext.expose())
        })
        .await
    }

    /// AES-256-GCM decryption inside the HSM.
    pub(crate) async fn hsm_decrypt(
        &self,
        target: &HsmTarget,
        label: &str,
        iv: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, HsmKeyFailure> {
        let tag_len = keyhold_pkcs11::GCM_TAG_LEN;
        let iv: [u8; keyhold_pkcs11::GCM_IV_LEN] = iv
            .try_into()
            .map_err(|_| HsmKeyFailure::InvalidCiphertext)?;
        if sealed.len() < tag_len {
            return Err(HsmKeyFailure::InvalidCiphertext);
        }
        let (ct, tag) = sealed.split_at(sealed.len() - tag_len);
        let tag: [u8; keyhold_pkcs11::GCM_TAG_LEN] = tag
            .try_into()
            .map_err(|_| HsmKeyFailure::InvalidCiphertext)?;
        let token = self.usable_pool(target).await?;
        let open = move |t: &Token, label: &str, aad: &[u8], ct: &[u8]| {
            let pt = t.aes_gcm_decrypt(label, &iv, aad, ct, &tag)?;
            Ok(SecretBytes::new(pt.to_vec()))
        };
        if let Some(done) = Self::in_place(&token, |t| open(t, label, aad, ct)) {
            return done;
        }
        let (label, aad, ct) = (label.to_string(), aad.to_vec(), ct.to_vec());
        Self::blocking(token, move |t| open(t, &label, &aad, &ct)).await
    }
}

/// AES-256-GCM under `label`'s key with `iv`: the ciphertext with its tag appended.
fn seal(
    t: &Token,
    label: &str,
    iv: [u8; keyhold_pkcs11::GCM_IV_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<HsmGcmOutput, Pkcs11Error> {
    let out = t.aes_gcm_encrypt_with_iv(label, iv, aad, plaintext)?;
    let mut sealed = out.ciphertext;
    sealed.extend_from_slice(&out.tag);
    Ok(HsmGcmOutput {
        iv: out.iv.to_vec(),
        sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node B deletes the HSMs of a cluster node A has cached: A's key-operation check sees it
    /// once its copy is refreshed (immediately with a zero age, not within a long one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_nodes_hsm_deletion_shows_after_a_refresh() {
        use std::sync::Arc;

        use keyhold_core::ports::MetadataStore;
        use serde_json::json;

        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("keyhold.sqlite");
        let open = |store: Arc<dyn MetadataStore>, sub: &str| {
            let config = crate::CloudHsmConfig {
                enabled: Some(true),
                ..crate::CloudHsmConfig::default()
            };
            ClusterService::open(
                config,
                &dir.path().join(sub),
                store,
                std::sync::Arc::new(keyhold_crypto::RootKey::new(&[9u8; 32]).expect("root key")),
            )
            .expect("node")
        };
        let a = open(
            Arc::new(keyhold_store::SqliteStore::open(&path).await.expect("a")),
            "a",
        );
        let b = open(
            Arc::new(keyhold_store::SqliteStore::open(&path).await.expect("b")),
            "b",
        );
        let (acct, region) = ("111122223333", "us-east-1");
        let call = |node: &ClusterService, op: &'static str, body: serde_json::Value| {
            let node = node.clone();
            async move {
                node.handle(op, acct, region, body.to_string().as_bytes())
                    .await
                    .unwrap_or_else(|e| panic!("{op}: {e}"))
            }
        };
        let created = call(
            &a,
            "CreateCluster",
            json!({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-1a1a1a1a"]}),
        )
        .await;
        let id = created["Cluster"]["ClusterId"]
            .as_str()
            .expect("id")
            .to_string();
        let zone = created["Cluster"]["SubnetMapping"]
            .as_object()
            .and_then(|m| m.keys().next().cloned())
            .expect("zone");
        let hsm = call(
            &a,
            "CreateHsm",
            json!({"ClusterId": id, "AvailabilityZone": zone}),
        )
        .await["Hsm"]["HsmId"]
            .as_str()
            .expect("hsm")
            .to_string();
        let target = HsmTarget {
            account: acct.into(),
            region: region.into(),
            cluster_id: id.clone(),
        };
        assert_eq!(a.unreachable_reason(&target), None);

        call(&b, "DeleteHsm", json!({"ClusterId": id, "HsmId": hsm})).await;
        a.refresh_if_stale(&target, &key_of(&target), Duration::ZERO)
            .await;
        assert!(
            a.unreachable_reason(&target)
                .is_some_and(|r| r.contains("no active HSM")),
            "node A sees the deletion after a refresh"
        );
        // Within the age limit nothing is read again (B re-creates an HSM; A keeps its copy).
        call(
            &b,
            "CreateHsm",
            json!({"ClusterId": id, "AvailabilityZone": zone}),
        )
        .await;
        a.refresh_if_stale(&target, &key_of(&target), Duration::from_secs(3600))
            .await;
        assert!(a.unreachable_reason(&target).is_some());
        a.refresh_if_stale(&target, &key_of(&target), Duration::ZERO)
            .await;
        assert_eq!(a.unreachable_reason(&target), None);
    }

    #[test]
    fn pkcs11_causes_map_to_key_failures() {
        let missing = Pkcs11Error::KeyNotFound {
            label: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
        };
        assert_eq!(key_failure(&missing), HsmKeyFailure::KeyNotFound);
        assert_eq!(
            key_failure(&Pkcs11Error::PoolExhausted),
            HsmKeyFailure::Busy
        );
        let gone = Pkcs11Error::TokenNotFound {
            label: "cluster-abcdefghijk".into(),
        };
        assert!(matches!(
            key_failure(&gone),
            HsmKeyFailure::Unavailable { .. }
        ));
        assert!(matches!(
            key_failure(&Pkcs11Error::Malformed("x")),
            HsmKeyFailure::Internal { .. }
        ));
    }
}
