//! The CloudHSM port of custom key stores, and the `kmsuser` login shared by Connect and
//! `KeyholdUserLogin`.

use async_trait::async_trait;
use keyhold_core::ports::cloudhsm::{
    CloudHsmFailure, ClusterFacts, HsmCause, HsmClusters, HsmGcmOutput, HsmKeyFailure, HsmTarget,
};
use keyhold_crypto::SecretBytes;
use keyhold_pkcs11::{Ckr, Pin, Pkcs11Error};

use crate::state::{cluster_state, hsm_state, ClusterRec, MAX_FAILED_LOGINS};
use crate::ClusterService;

/// The crypto user Keyhold logs in as.
const KMSUSER: &str = "kmsuser";

/// The typed PKCS#11 cause of a failed login, as a connection failure: the CKR table.
pub(crate) fn failure_of(e: &Pkcs11Error) -> CloudHsmFailure {
    let text = e.to_string();
    // Keyhold logs in to a cluster's token only as its crypto user, kmsuser.
    let ckr = match e {
        Pkcs11Error::Ckr { function, rv, .. } => HsmCause::Token {
            function: (*function).to_string(),
            user: KMSUSER.to_string(),
            return_value: rv.to_string(),
        },
        other => HsmCause::Keyhold {
            reason: other.to_string(),
        },
    };
    match e.ckr() {
        Some(Ckr::PinIncorrect) | Some(Ckr::PinInvalid) | Some(Ckr::PinLenRange) => {
            CloudHsmFailure::InvalidCredentials { ckr }
        }
        Some(Ckr::PinLocked) => CloudHsmFailure::UserLockedOut { ckr },
        Some(Ckr::UserPinNotInitialized) => CloudHsmFailure::UserNotFound { ckr },
        Some(Ckr::UserAlreadyLoggedIn) | Some(Ckr::UserAnotherAlreadyLoggedIn) => {
            CloudHsmFailure::UserLoggedIn
        }
        _ if e.is_session_exhaustion() => CloudHsmFailure::SessionsExhausted { detail: text },
        _ if e.is_device_failure() || matches!(e, Pkcs11Error::TokenNotFound { .. }) => {
            CloudHsmFailure::Device { detail: text }
        }
        _ => CloudHsmFailure::Internal { detail: text },
    }
}

/// What Connect checks before logging in: subnets, then active HSMs.
fn check_reachable(svc: &ClusterService, c: &ClusterRec) -> Result<(), CloudHsmFailure> {
    if c.network_partitioned {
        return Err(CloudHsmFailure::Device {
            detail: "no network path to the cluster's HSMs (fault injected)".to_string(),
        });
    }
    let st = svc.lock();
    for subnet in c.subnet_mapping.values() {
        if let Some(s) = st.subnet(&c.account, &c.region, subnet) {
            if s.removed {
                return Err(CloudHsmFailure::SubnetNotFound {
                    subnet: subnet.clone(),
                });
            }
            if s.free_addresses == 0 {
                return Err(CloudHsmFailure::NoFreeAddress {
                    subnet: subnet.clone(),
                });
            }
        }
    }
    if !c.hsms.iter().any(|h| h.state == hsm_state::ACTIVE) {
        return Err(CloudHsmFailure::NoActiveHsm);
    }
    Ok(())
}

impl ClusterService {
    /// A copy of the live cluster `id` of the account and Region.
    pub(crate) fn live_copy(&self, account: &str, region: &str, id: &str) -> Option<ClusterRec> {
        self.lock()
            .cluster(account, region, id)
            .filter(|c| c.state != cluster_state::DELETED)
            .cloned()
    }

    /// Logs in as `kmsuser` with `password` on the cluster's token and logs out again,
    /// counting failures (five lock the user, as CloudHSM does). With `as_store`, the user
    /// must not be logged in elsewhere (`USER_LOGGED_IN`); otherwise a success leaves the user
    /// recorded as logged in (CloudHSM CLI `login`).
    pub(crate) async fn login_kmsuser(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
        password: Pin,
        as_store: bool,
    ) -> Result<(), CloudHsmFailure> {
        self.refresh_quietly(account, region, cluster_id).await;
        let c = self
            .live_copy(account, region, cluster_id)
            .ok_or(CloudHsmFailure::ClusterNotFound)?;
        let Some(label) = c.token_label.clone() else {
            return Err(CloudHsmFailure::Internal {
                detail: format!("cluster {cluster_id} is {} (not activated)", c.state),
            });
        };
        if as_store {
            check_reachable(self, &c)?;
        }
        match &c.kmsuser {
            // Deleted: the token's PIN is a secret nobody knows, so Keyhold's record answers.
            None if c.user_pin_set => {
                return Err(CloudHsmFailure::UserNotFound {
                    ckr: "kmsuser was deleted".into(),
                })
            }
            // Never created: the module answers CKR_USER_PIN_NOT_INITIALIZED.
            None => {}
            Some(user) if user.failed_logins >= MAX_FAILED_LOGINS => {
                return Err(CloudHsmFailure::UserLockedOut {
                    ckr: format!("{MAX_FAILED_LOGINS} failed logins").into(),
                })
            }
            Some(user) if as_store && user.logged_in => return Err(CloudHsmFailure::UserLoggedIn),
            Some(_) => {}
        }
        let module = c.module_path.clone();
        let lock = std::sync::Arc::clone(&self.inner.login_lock);
        let this = self.clone();
        let (acc, reg, cid) = (
            account.to_string(),
            region.to_string(),
            cluster_id.to_string(),
        );
        let result = tokio::task::spawn_blocking(move || {
            // This process's own kmsuser pool would make the module skip the PIN check. It is
            // logged out under the login lock, so no request opens it again before the check.
            let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
            this.suspend_key_sessions(&acc, &reg, &cid);
            keyhold_pkcs11::admin::verify_user_pin(&module, &label, &password)
        })
        .await
        .map_err(|e| CloudHsmFailure::Internal {
            detail: e.to_string(),
        })?;
        let failure = result.as_ref().err().map(failure_of);
        self.record_login(account, region, cluster_id, failure.as_ref(), as_store)
            .await;
        match failure {
            None => Ok(()),
            Some(f) => Err(f),
        }
    }
}

#[async_trait]
impl HsmClusters for ClusterService {
    async fn cluster_facts(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
    ) -> Result<Option<ClusterFacts>, CloudHsmFailure> {
        self.check_available()?;
        self.refresh_quietly(account, region, cluster_id).await;
        let c = self.lock().cluster(account, region, cluster_id).cloned();
        Ok(c.map(|c| ClusterFacts {
            cluster_id: c.cluster_id.clone(),
            state: c.state.clone(),
            trust_anchor: c.trust_anchor.clone(),
            active_hsm_zones: c
                .hsms
                .iter()
                .filter(|h| h.state == hsm_state::ACTIVE)
                .map(|h| h.availability_zone.clone())
                .collect(),
            lineage: if c.lineage.is_empty() {
                c.cluster_id.clone()
            } else {
                c.lineage.clone()
            },
        }))
    }

    async fn connect(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
        password: &SecretBytes,
    ) -> Result<(), CloudHsmFailure> {
        self.check_available()?;
        let Ok(text) = std::str::from_utf8(password.expose()) else {
            return Err(CloudHsmFailure::InvalidCredentials {
                ckr: "the password is not UTF-8".into(),
            });
        };
        self.login_kmsuser(account, region, cluster_id, Pin::new(text), true)
            .await
    }

    async fn change_password(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
        old: &SecretBytes,
        new: &SecretBytes,
    ) -> Result<(), CloudHsmFailure> {
        self.check_available()?;
        let pin = |s: &SecretBytes| {
            std::str::from_utf8(s.expose()).map(Pin::new).map_err(|_| {
                CloudHsmFailure::InvalidCredentials {
                    ckr: "the password is not UTF-8".into(),
                }
            })
        };
        let (old, new) = (pin(old)?, pin(new)?);
        self.refresh_quietly(account, region, cluster_id).await;
        let c = self
            .live_copy(account, region, cluster_id)
            .ok_or(CloudHsmFailure::ClusterNotFound)?;
        let label = c.token_label.ok_or_else(|| CloudHsmFailure::Internal {
            detail: format!("cluster {cluster_id} is not activated"),
        })?;
        let module = c.module_path;
        let lock = std::sync::Arc::clone(&self.inner.login_lock);
        tokio::task::spawn_blocking(move || {
            let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
            keyhold_pkcs11::admin::change_user_pin(&module, &label, &old, &new)
        })
        .await
        .map_err(|e| CloudHsmFailure::Internal {
            detail: e.to_string(),
        })?
        .map_err(|e| failure_of(&e))
    }

    async fn open_key_sessions(
        &self,
        target: &HsmTarget,
        password: &SecretBytes,
    ) -> Result<(), CloudHsmFailure> {
        self.check_available()?;
        self.open_pool(target, password).await
    }

    async fn close_key_sessions(&self, target: &HsmTarget) {
        let this = self.clone();
        let t = target.clone();
        let _ = tokio::task::spawn_blocking(move || {
            this.suspend_key_sessions(&t.account, &t.region, &t.cluster_id)
        })
        .await;
    }

    async fn create_key(&self, target: &HsmTarget, label: &str) -> Result<(), HsmKeyFailure> {
        let label = label.to_string();
        self.with_pool(target, move |t| t.generate_aes_key(&label))
            .await
    }

    async fn encrypt(
        &self,
        target: &HsmTarget,
        label: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<HsmGcmOutput, HsmKeyFailure> {
        self.hsm_encrypt(target, label, aad, plaintext).await
    }

    async fn decrypt(
        &self,
        target: &HsmTarget,
        label: &str,
        iv: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, HsmKeyFailure> {
        self.hsm_decrypt(target, label, iv, aad, sealed).await
    }

    async fn generate_random(
        &self,
        target: &HsmTarget,
        n: usize,
    ) -> Result<Vec<u8>, HsmKeyFailure> {
        self.with_pool(target, move |t| t.generate_random(n)).await
    }

    async fn destroy_key(&self, target: &HsmTarget, label: &str) -> Result<(), HsmKeyFailure> {
        let label = label.to_string();
        self.with_pool(target, move |t| t.destroy_key(&label)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vanished_token_is_a_device_failure() {
        let e = Pkcs11Error::TokenNotFound {
            label: "cluster-abcdefghijk".into(),
        };
        let f = failure_of(&e);
        assert!(matches!(f, CloudHsmFailure::Device { .. }), "{f:?}");
        assert_eq!(f.connection_error_code().as_str(), "NETWORK_ERRORS");
    }
}
