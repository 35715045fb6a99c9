//! Keyhold's extensions on the `BaldrApiService` prefix: what AWS does through CloudHSM CLI
//! (cluster activation, `kmsuser` management, login/logout) and the fault-injection API.
//!
//! These operations are not in AWS's `cloudhsmv2` model, so their request and response shapes
//! are hand-written here (the AWS operations use the generated `keyhold-cloudhsm-model`
//! shapes). The request shapes also serialise, for `keyhold cloudhsm ...` ([`crate::cli`]).

use keyhold_cloudhsm_model::shapes::Cluster;
use keyhold_core::ports::cloudhsm::CloudHsmFailure;
use keyhold_pkcs11::admin::{init_token, init_user_pin, SlotChoice};
use keyhold_pkcs11::{Ckr, Pin, Pkcs11Error};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::api::cluster_not_found;
use crate::state::{cluster_state, hsm_state, subnet_key, ClusterRec, UserRec, KMSUSER};
use crate::{ApiError, ClusterService};

/// `KeyholdActivateCluster` (CloudHSM CLI `cluster activate`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ActivateRequest {
    pub(crate) cluster_id: String,
    pub(crate) admin_password: String,
}

/// `KeyholdUser*` requests (CloudHSM CLI `user create|delete|change-password`, `login`,
/// `logout`). Passwords are never logged.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UserRequest {
    pub(crate) cluster_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) admin_password: Option<String>,
    pub(crate) username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password: Option<String>,
}

/// `KeyholdActivateCluster`'s answer: the cluster, now `ACTIVE`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ActivateResponse {
    cluster: Cluster,
}

/// The empty answer (`{}`) of the `KeyholdUser*` operations and `KeyholdFaultSetHsmState`.
#[derive(Serialize)]
pub(crate) struct Done {}

/// `KeyholdFaultSetSubnet`'s answer: the subnet as it now is.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SubnetFaultResponse {
    subnet_id: String,
    removed: bool,
    free_addresses: u32,
}

/// `KeyholdFaultSetClusterNetwork`'s answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkFaultResponse {
    cluster_id: String,
    reachable: bool,
}

/// `KeyholdFaultSetSubnet`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SubnetFault {
    subnet_id: String,
    #[serde(default)]
    removed: Option<bool>,
    #[serde(default)]
    free_addresses: Option<u32>,
}

/// `KeyholdFaultSetClusterNetwork`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkFault {
    cluster_id: String,
    reachable: bool,
}

/// `KeyholdFaultSetHsmState`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HsmFault {
    cluster_id: String,
    hsm_id: String,
    state: String,
}

/// CloudHSM passwords are 7 to 32 characters.
fn check_password(what: &str, p: Option<&String>) -> Result<Pin, ApiError> {
    match p {
        Some(p) if (7..=32).contains(&p.chars().count()) => Ok(Pin::new(p.as_str())),
        Some(_) => Err(ApiError::invalid(format!(
            "{what} must be 7 to 32 characters."
        ))),
        None => Err(ApiError::invalid(format!("{what} is required."))),
    }
}

/// A PKCS#11 failure of an admin (SO) operation.
fn admin_error(e: &Pkcs11Error) -> ApiError {
    match e.ckr() {
        Some(Ckr::PinIncorrect) | Some(Ckr::PinLocked) => {
            ApiError::denied("Admin login failed: incorrect admin password.")
        }
        _ => {
            tracing::error!(error = %e, "PKCS#11 admin operation failed");
            ApiError::internal(format!("The HSM failed: {e}"))
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Pkcs11Error> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| admin_error(&e)),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

impl ClusterService {
    /// Runs the admin (SO) operation `f` on a blocking thread, holding the login lock, after
    /// logging this process's `kmsuser` pool out. Why: SoftHSM keeps one login state per
    /// process, so a pool logged in as `kmsuser` makes the SO login fail with
    /// `CKR_USER_ANOTHER_ALREADY_LOGGED_IN`; and a request that opens the pool again takes the
    /// same lock, so it cannot log `kmsuser` back in between the logout and `f`.
    async fn exclusive<T: Send + 'static>(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
        f: impl FnOnce() -> Result<T, Pkcs11Error> + Send + 'static,
    ) -> Result<T, ApiError> {
        let this = self.clone();
        let (account, region, cluster_id) =
            (account.to_owned(), region.to_owned(), cluster_id.to_owned());
        blocking(move || {
            let _g = this
                .inner
                .login_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            this.suspend_key_sessions(&account, &region, &cluster_id);
            f()
        })
        .await
    }

    /// `KeyholdActivateCluster`: creates the cluster's token with the admin password as its SO
    /// PIN and makes the cluster `ACTIVE`. Needs an `INITIALIZED` cluster with an active HSM.
    pub(crate) async fn activate(
        &self,
        account: &str,
        region: &str,
        req: ActivateRequest,
    ) -> Result<ActivateResponse, ApiError> {
        let so = check_password("AdminPassword", Some(&req.admin_password))?;
        let module = {
            let c = self.live_cluster(account, region, &req.cluster_id).await?;
            if c.state != cluster_state::INITIALIZED {
                return Err(ApiError::invalid(format!(
                    "Cluster {} is in state {}; only an INITIALIZED cluster can be activated.",
                    c.cluster_id, c.state
                )));
            }
            if !c.hsms.iter().any(|h| h.state == hsm_state::ACTIVE) {
                return Err(ApiError::invalid(format!(
                    "Cluster {} has no active HSM to activate.",
                    c.cluster_id
                )));
            }
            c.module_path.clone()
        };
        let label = req.cluster_id.clone();
        blocking(move || init_token(&module, SlotChoice::FirstFree, &label, &so, None)).await?;
        let (out, _) = self
            .with_cluster(account, region, &req.cluster_id, |c| {
                c.state = cluster_state::ACTIVE.to_string();
                c.token_label = Some(req.cluster_id.clone());
                Ok(Cluster::from(&*c))
            })
            .await?;
        tracing::info!(cluster_id = %req.cluster_id, "CloudHSM cluster activated");
        Ok(ActivateResponse { cluster: out })
    }

    /// The token of an `ACTIVE` cluster and whether it has `kmsuser`.
    async fn active_token(
        &self,
        account: &str,
        region: &str,
        req: &UserRequest,
    ) -> Result<(std::path::PathBuf, String, bool), ApiError> {
        if req.username != KMSUSER {
            return Err(ApiError::invalid(format!(
                "Keyhold manages only the {KMSUSER} crypto user."
            )));
        }
        let c = self.live_cluster(account, region, &req.cluster_id).await?;
        match (&c.token_label, c.state == cluster_state::ACTIVE) {
            (Some(label), true) => Ok((c.module_path.clone(), label.clone(), c.kmsuser.is_some())),
            _ => Err(ApiError::invalid(format!(
                "Cluster {} is not active.",
                c.cluster_id
            ))),
        }
    }

    /// Applies `f` to the cluster's `kmsuser` record (compare-and-set with retries).
    async fn set_user(
        &self,
        account: &str,
        region: &str,
        id: &str,
        f: impl Fn(&mut ClusterRec),
    ) -> Result<Done, ApiError> {
        self.with_cluster(account, region, id, |c| {
            f(c);
            Ok(())
        })
        .await?;
        Ok(Done {})
    }

    /// `KeyholdUserCreate`: `C_InitPIN` as SO on the cluster's token.
    pub(crate) async fn user_create(
        &self,
        account: &str,
        region: &str,
        req: UserRequest,
    ) -> Result<Done, ApiError> {
        let so = check_password("AdminPassword", req.admin_password.as_ref())?;
        let pw = check_password("Password", req.password.as_ref())?;
        let (module, label, exists) = self.active_token(account, region, &req).await?;
        if exists {
            return Err(ApiError::invalid(format!("User {KMSUSER} already exists.")));
        }
        self.exclusive(account, region, &req.cluster_id, move || {
            init_user_pin(&module, &label, &so, &pw)
        })
        .await?;
        tracing::info!(cluster_id = %req.cluster_id, "kmsuser created");
        self.set_user(account, region, &req.cluster_id, |c| {
            c.kmsuser = Some(UserRec::default());
            c.user_pin_set = true;
        })
        .await
    }

    /// `KeyholdUserDelete`: the token's user PIN becomes a random secret nobody knows and
    /// Keyhold forgets the user (PKCS#11 cannot remove a user without wiping the token).
    pub(crate) async fn user_delete(
        &self,
        account: &str,
        region: &str,
        req: UserRequest,
    ) -> Result<Done, ApiError> {
        let so = check_password("AdminPassword", req.admin_password.as_ref())?;
        let (module, label, exists) = self.active_token(account, region, &req).await?;
        if !exists {
            return Err(ApiError::not_found(format!("User {KMSUSER} not found.")));
        }
        let random: String = {
            let mut rng = rand::thread_rng();
            (0..32)
                .map(|_| char::from(rng.gen_range(b'a'..=b'z')))
                .collect()
        };
        self.exclusive(account, region, &req.cluster_id, move || {
            init_user_pin(&module, &label, &so, &Pin::new(random))
        })
        .await?;
        tracing::info!(cluster_id = %req.cluster_id, "kmsuser deleted");
        self.set_user(account, region, &req.cluster_id, |c| c.kmsuser = None)
            .await
    }

    /// `KeyholdUserChangePassword` (as admin): sets the PIN and unlocks the user.
    pub(crate) async fn user_change_password(
        &self,
        account: &str,
        region: &str,
        req: UserRequest,
    ) -> Result<Done, ApiError> {
        let so = check_password("AdminPassword", req.admin_password.as_ref())?;
        let pw = check_password("Password", req.password.as_ref())?;
        let (module, label, exists) = self.active_token(account, region, &req).await?;
        if !exists {
            return Err(ApiError::not_found(format!("User {KMSUSER} not found.")));
        }
        self.exclusive(account, region, &req.cluster_id, move || {
            init_user_pin(&module, &label, &so, &pw)
        })
        .await?;
        tracing::info!(cluster_id = %req.cluster_id, "kmsuser password changed");
        self.set_user(account, region, &req.cluster_id, |c| {
            if let Some(u) = &mut c.kmsuser {
                u.failed_logins = 0;
            }
        })
        .await
    }

    /// `KeyholdUserLogin`: a real login (failures count toward the lock-out); the user stays
    /// recorded as logged in until `KeyholdUserLogout`.
    pub(crate) async fn user_login(
        &self,
        account: &str,
        region: &str,
        req: UserRequest,
    ) -> Result<Done, ApiError> {
        let pw = check_password("Password", req.password.as_ref())?;
        self.active_token(account, region, &req).await?;
        match self
            .login_kmsuser(account, region, &req.cluster_id, pw, false)
            .await
        {
            Ok(()) => Ok(Done {}),
            Err(CloudHsmFailure::UserNotFound { .. }) => {
                Err(ApiError::not_found(format!("User {KMSUSER} not found.")))
            }
            Err(CloudHsmFailure::ClusterNotFound) => Err(cluster_not_found(&req.cluster_id)),
            Err(CloudHsmFailure::UserLockedOut { .. }) => Err(ApiError::denied(format!(
                "User {KMSUSER} is locked out; an admin must change its password."
            ))),
            Err(CloudHsmFailure::InvalidCredentials { .. }) => {
                Err(ApiError::denied("Login failed: incorrect password."))
            }
            Err(f) => Err(ApiError::internal(f.to_string())),
        }
    }

    /// `KeyholdUserLogout`.
    pub(crate) async fn user_logout(
        &self,
        account: &str,
        region: &str,
        req: UserRequest,
    ) -> Result<Done, ApiError> {
        self.active_token(account, region, &req).await?;
        self.set_user(account, region, &req.cluster_id, |c| {
            if let Some(u) = &mut c.kmsuser {
                u.logged_in = false;
            }
        })
        .await
    }

    /// `KeyholdFaultSetSubnet`: removes or restores a subnet, or sets its free addresses.
    pub(crate) async fn fault_set_subnet(
        &self,
        account: &str,
        region: &str,
        req: SubnetFault,
    ) -> Result<SubnetFaultResponse, ApiError> {
        let ((), s) = self
            .records()
            .update_subnet(account, region, &req.subnet_id, |s| {
                if let Some(r) = req.removed {
                    s.removed = r;
                }
                if let Some(n) = req.free_addresses {
                    s.free_addresses = n;
                }
                Ok(())
            })
            .await?;
        self.lock()
            .subnets
            .insert(subnet_key(account, region, &req.subnet_id), s.clone());
        tracing::warn!(subnet_id = %req.subnet_id, "CloudHSM fault injected on a subnet");
        Ok(SubnetFaultResponse {
            subnet_id: req.subnet_id,
            removed: s.removed,
            free_addresses: s.free_addresses,
        })
    }

    /// `KeyholdFaultSetClusterNetwork`: cuts (`Reachable: false`) or restores the network path
    /// from KMS to the cluster's HSMs. While cut, Connect fails with `NETWORK_ERRORS` and
    /// operations on the store's keys fail; restoring it needs no restart.
    pub(crate) async fn fault_set_cluster_network(
        &self,
        account: &str,
        region: &str,
        req: NetworkFault,
    ) -> Result<NetworkFaultResponse, ApiError> {
        self.with_cluster(account, region, &req.cluster_id, |c| {
            c.network_partitioned = !req.reachable;
            Ok(())
        })
        .await?;
        tracing::warn!(cluster_id = %req.cluster_id, reachable = req.reachable, "CloudHSM fault injected on the network path");
        Ok(NetworkFaultResponse {
            cluster_id: req.cluster_id,
            reachable: req.reachable,
        })
    }

    /// `KeyholdFaultSetHsmState`: `ACTIVE` or `DEGRADED`.
    pub(crate) async fn fault_set_hsm_state(
        &self,
        account: &str,
        region: &str,
        req: HsmFault,
    ) -> Result<Done, ApiError> {
        if req.state != hsm_state::ACTIVE && req.state != hsm_state::DEGRADED {
            return Err(ApiError::invalid("State must be ACTIVE or DEGRADED."));
        }
        self.with_cluster(account, region, &req.cluster_id, |c| {
            let h = c
                .hsms
                .iter_mut()
                .find(|h| h.hsm_id == req.hsm_id)
                .ok_or_else(|| ApiError::not_found("HSM not found in the cluster."))?;
            h.state.clone_from(&req.state);
            Ok(())
        })
        .await?;
        tracing::warn!(hsm_id = %req.hsm_id, "CloudHSM fault injected on an HSM");
        Ok(Done {})
    }
}
