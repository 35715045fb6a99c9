//! UpdateCustomKeyStore: which properties may change in which state, and the proxy probe
//! with the new values.

use keyhold_crypto::SecretBytes;
use keyhold_kms_model::enums::{ConnectionStateType, XksProxyConnectivityType};
use keyhold_kms_model::shapes::{UpdateCustomKeyStoreRequest, UpdateCustomKeyStoreResponse};

use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::xks::{HealthCheckReason, XksRequestMetadata};
use crate::ports::StoreError;

use super::model::{unwrap_secret, wrap_secret, LoadedStore, SecretKind, StoreDoc, StoreKind};
use super::operations::{contention, CAS_ATTEMPTS};
use super::validation::{self, claims, conflict_error};
use super::{invalid_state, not_found_id, CustomKeyStores};

impl CustomKeyStores {
    /// `UpdateCustomKeyStore`.
    pub async fn update_custom_key_store(
        &self,
        ctx: &RequestContext,
        req: UpdateCustomKeyStoreRequest,
    ) -> KmsResult<UpdateCustomKeyStoreResponse> {
        let id = &req.custom_key_store_id;
        for _ in 0..CAS_ATTEMPTS {
            let s = self.load(&ctx.account_id, &ctx.region, id).await?;
            let ty = s.store_type()?;
            validation::check_update_type(&req, ty)?;
            let state = s.state()?;

            // Which changes are asked for, and whether they are allowed while CONNECTED.
            let renames = req.new_custom_key_store_name.is_some();
            let online = req.xks_proxy_authentication_credential.is_some()
                || req.xks_proxy_uri_path.is_some();
            let offline = req.cloud_hsm_cluster_id.is_some()
                || req.key_store_password.is_some()
                || req.xks_proxy_uri_endpoint.is_some()
                || req.xks_proxy_vpc_endpoint_service_name.is_some()
                || req.xks_proxy_vpc_endpoint_service_owner.is_some()
                || req.xks_proxy_connectivity.is_some();
            let allowed = match state {
                ConnectionStateType::Disconnected => true,
                ConnectionStateType::Connected => !offline,
                _ => false,
            };
            if !allowed {
                let what = if offline {
                    "Only the custom key store name, and for external key stores the XksProxyUriPath and XksProxyAuthenticationCredential, can be changed while it is CONNECTED; disconnect it to change other properties"
                } else {
                    "Custom key stores can be updated only when they are CONNECTED or DISCONNECTED"
                };
                return Err(invalid_state(format!(
                    "Custom key store {id} is in the {state} connection state. {what}."
                )));
            }
            if !renames && !online && !offline {
                return Ok(UpdateCustomKeyStoreResponse {});
            }
            if let (Some(old), Some(new)) = (s.doc.cloud_hsm(), &req.cloud_hsm_cluster_id) {
                self.check_related_cluster(&s.row.account_id, &s.row.region, &old.cluster_id, new)
                    .await?;
            }

            let name = req
                .new_custom_key_store_name
                .clone()
                .unwrap_or_else(|| s.row.name.clone());
            let mut doc = s.doc.clone();
            let root = &self.inner.root_key;
            let (acct, region) = (&s.row.account_id, &s.row.region);
            if let StoreKind::CloudHsm(hsm) = &mut doc.kind {
                if let Some(c) = &req.cloud_hsm_cluster_id {
                    hsm.cluster_id = c.clone();
                }
                if let Some(pw) = &req.key_store_password {
                    hsm.wrapped_password = wrap_secret(
                        root,
                        acct,
                        region,
                        id,
                        SecretKind::KmsUserPassword,
                        pw.as_bytes(),
                    )?;
                }
            }
            let mut probe_secret: Option<SecretBytes> = None;
            if let (Some(old), Some(x)) = (s.doc.xks(), doc.xks_mut()) {
                if let Some(c) = req.xks_proxy_connectivity {
                    x.connectivity = c;
                }
                if let Some(e) = &req.xks_proxy_uri_endpoint {
                    x.uri_endpoint = e.clone();
                }
                if let Some(p) = &req.xks_proxy_uri_path {
                    x.uri_path = p.clone();
                }
                if x.connectivity == XksProxyConnectivityType::PublicEndpoint {
                    x.vpc_endpoint_service_name = None;
                    x.vpc_endpoint_service_owner = None;
                } else {
                    if let Some(n) = &req.xks_proxy_vpc_endpoint_service_name {
                        x.vpc_endpoint_service_name = Some(n.clone());
                    }
                    if let Some(o) = &req.xks_proxy_vpc_endpoint_service_owner {
                        x.vpc_endpoint_service_owner = Some(o.clone());
                    }
                }
                if let Some(cred) = &req.xks_proxy_authentication_credential {
                    x.access_key_id = cred.access_key_id.to_string();
                    x.wrapped_secret = wrap_secret(
                        root,
                        acct,
                        region,
                        id,
                        SecretKind::XksSecret,
                        cred.raw_secret_access_key.as_bytes(),
                    )?;
                    probe_secret = Some(SecretBytes::from_slice(
                        cred.raw_secret_access_key.as_bytes(),
                    ));
                }
                validation::check_update_xks(&req, old, x)?;
            }

            let xks_changed = doc.xks() != s.doc.xks();
            if xks_changed {
                self.probe_update(ctx, &s, &doc, state, probe_secret)
                    .await?;
            }
            let claims_changed = renames || xks_changed || req.cloud_hsm_cluster_id.is_some();
            let new_claims = claims(acct, region, &name, &doc);
            let next = s.next_with(state, &name, &doc)?;
            let claims_arg = claims_changed.then_some(new_claims.as_slice());
            match self
                .inner
                .store
                .update_custom_key_store(&next, claims_arg)
                .await
            {
                Ok(()) => {
                    tracing::info!(custom_key_store_id = %id, "custom key store updated");
                    return Ok(UpdateCustomKeyStoreResponse {});
                }
                Err(StoreError::Conflict { scope }) => {
                    return Err(conflict_error(&scope, &name, &doc)
                        .unwrap_or_else(|| KmsError::from(StoreError::Conflict { scope })))
                }
                Err(StoreError::VersionMismatch) => continue,
                Err(StoreError::NotFound) => return Err(not_found_id(id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(contention())
    }

    /// Probes the proxy with the new XKS values before an update is applied.
    async fn probe_update(
        &self,
        ctx: &RequestContext,
        s: &LoadedStore,
        new_doc: &StoreDoc,
        state: ConnectionStateType,
        new_secret: Option<SecretBytes>,
    ) -> KmsResult<()> {
        let Some(x) = new_doc.xks() else {
            return Ok(());
        };
        // CONNECTED stores and public endpoints must answer with the new values; a
        // disconnected VPC store's endpoint service must exist and be valid.
        let strict = state == ConnectionStateType::Connected
            || x.connectivity == XksProxyConnectivityType::PublicEndpoint;
        let secret = match new_secret {
            Some(s) => s,
            None => unwrap_secret(
                &self.inner.root_key,
                &s.row,
                SecretKind::XksSecret,
                &x.wrapped_secret,
            )?,
        };
        let target = x.target(&s.row.region, secret);
        let md = XksRequestMetadata {
            aws_principal_arn: ctx.principal_arn.clone(),
            kms_request_id: ctx.request_id.clone(),
            custom_key_store_id: Some(s.row.id.clone()),
        };
        self.probe(&target, HealthCheckReason::Update, &md, strict)
            .await
    }
}
