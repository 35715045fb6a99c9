//! CreateCustomKeyStore, DescribeCustomKeyStores, ConnectCustomKeyStore,
//! DisconnectCustomKeyStore and DeleteCustomKeyStore.

use keyhold_crypto::SecretBytes;
use keyhold_kms_model::enums::{ConnectionStateType, CustomKeyStoreType, XksProxyConnectivityType};
use keyhold_kms_model::shapes::{
    ConnectCustomKeyStoreRequest, ConnectCustomKeyStoreResponse, CreateCustomKeyStoreRequest,
    CreateCustomKeyStoreResponse, DeleteCustomKeyStoreRequest, DeleteCustomKeyStoreResponse,
    DescribeCustomKeyStoresRequest, DescribeCustomKeyStoresResponse,
    DisconnectCustomKeyStoreRequest, DisconnectCustomKeyStoreResponse,
};
use keyhold_kms_model::Exception;

use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::paging::Paging;
use crate::ports::xks::{HealthCheckReason, XksRequestMetadata};
use crate::ports::{StoreError, StoredCustomKeyStore};

use super::model::{
    new_store_id, unwrap_secret, wrap_secret, CloudHsmDoc, LoadedStore, SecretKind, StoreDoc,
    StoreKind, XksDoc,
};
use super::validation::{self, claims, conflict_error};
use super::{invalid_state, not_found_id, not_found_name, CustomKeyStores};

/// The metadata store's claim scope for a store id collision (retried with a new id).
const ID_SCOPE: &str = "custom-key-store-id";
/// Compare-and-set attempts before giving up with an internal error.
pub(super) const CAS_ATTEMPTS: usize = 8;
/// DescribeCustomKeyStores paging: AWS's default and maximum `Limit`; markers name the last
/// store id.
const PAGING: Paging = Paging {
    kind: "c1",
    default_limit: 100,
    max_limit: 1000,
};

pub(super) fn contention() -> KmsError {
    KmsError::internal(std::io::Error::other(
        "custom key store changed concurrently too many times",
    ))
}

fn state_error(id: &str, state: ConnectionStateType, op: &str) -> KmsError {
    invalid_state(format!(
        "Custom key store {id} is in the {state} connection state; {op} is not allowed in this state."
    ))
}

impl CustomKeyStores {
    /// `CreateCustomKeyStore`.
    pub async fn create_custom_key_store(
        &self,
        ctx: &RequestContext,
        req: CreateCustomKeyStoreRequest,
    ) -> KmsResult<CreateCustomKeyStoreResponse> {
        validation::check_create(&req)?;
        let ty = validation::create_type(&req);
        let store = &self.inner.store;
        let quota = self.inner.settings.max_custom_key_stores;

        // Cheap early answers in AWS's likely order (name in use, quota) before reaching out to
        // a proxy; the atomic checks happen again at insert.
        let existing = self.all_stores(ctx).await?;
        if let Some(same) = existing
            .iter()
            .find(|s| s.row.name == req.custom_key_store_name)
        {
            if let Some(id) = self.idempotent_cloudhsm_retry(&req, same)? {
                return Ok(CreateCustomKeyStoreResponse {
                    custom_key_store_id: Some(id),
                });
            }
            let doc = self.plain_doc(&req, ty);
            return Err(
                conflict_error(validation::SCOPE_NAME, &req.custom_key_store_name, &doc)
                    .unwrap_or_else(contention),
            );
        }
        if existing.len() >= quota as usize {
            return Err(limit_exceeded(quota));
        }
        if let (CustomKeyStoreType::AwsCloudhsm, Some(cluster), Some(anchor)) =
            (ty, &req.cloud_hsm_cluster_id, &req.trust_anchor_certificate)
        {
            self.check_cloudhsm_cluster(&ctx.account_id, &ctx.region, cluster, anchor)
                .await?;
        }

        if ty == CustomKeyStoreType::ExternalKeyStore {
            let doc = self.plain_doc(&req, ty);
            if let (Some(x), Some(cred)) = (doc.xks(), &req.xks_proxy_authentication_credential) {
                let secret = SecretBytes::from_slice(cred.raw_secret_access_key.as_bytes());
                let target = x.target(&ctx.region, secret);
                let md = XksRequestMetadata {
                    aws_principal_arn: ctx.principal_arn.clone(),
                    kms_request_id: ctx.request_id.clone(),
                    custom_key_store_id: None,
                };
                // A public endpoint must answer now; a VPC store's proxy is reached when it
                // connects, but its endpoint service must exist and be valid now.
                let strict = x.connectivity == XksProxyConnectivityType::PublicEndpoint;
                self.probe(&target, HealthCheckReason::Create, &md, strict)
                    .await?;
            }
        }

        for _ in 0..CAS_ATTEMPTS {
            let id = new_store_id();
            let doc = self.sealed_doc(ctx, &id, &req, ty)?;
            let row = StoredCustomKeyStore {
                account_id: ctx.account_id.clone(),
                region: ctx.region.clone(),
                id: id.clone(),
                name: req.custom_key_store_name.clone(),
                store_type: ty.as_str().to_string(),
                connection_state: ConnectionStateType::Disconnected.as_str().to_string(),
                created_at_ms: (doc.creation_date * 1000.0) as i64,
                version: 1,
                doc: serde_json::to_string(&doc).map_err(KmsError::internal)?,
            };
            let claims = claims(&ctx.account_id, &ctx.region, &row.name, &doc);
            match store.insert_custom_key_store(&row, &claims, quota).await {
                Ok(()) => {
                    tracing::info!(custom_key_store_id = %id, store_type = %ty, "custom key store created");
                    return Ok(CreateCustomKeyStoreResponse {
                        custom_key_store_id: Some(id),
                    });
                }
                Err(StoreError::Conflict { scope }) if scope == ID_SCOPE => continue,
                Err(StoreError::Conflict { scope }) => {
                    return Err(conflict_error(&scope, &row.name, &doc)
                        .unwrap_or_else(|| KmsError::from(StoreError::Conflict { scope })))
                }
                Err(StoreError::QuotaExceeded { limit }) => return Err(limit_exceeded(limit)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(contention())
    }

    /// AWS's documented idempotence: creating an AWS CloudHSM key store with exactly the
    /// properties of an existing *disconnected* one returns that store's id.
    fn idempotent_cloudhsm_retry(
        &self,
        req: &CreateCustomKeyStoreRequest,
        same: &LoadedStore,
    ) -> KmsResult<Option<String>> {
        if validation::create_type(req) != CustomKeyStoreType::AwsCloudhsm
            || same.state()? != ConnectionStateType::Disconnected
        {
            return Ok(None);
        }
        let Some(hsm) = same.doc.cloud_hsm() else {
            return Ok(None);
        };
        if Some(&hsm.cluster_id) != req.cloud_hsm_cluster_id.as_ref()
            || Some(&hsm.trust_anchor_certificate) != req.trust_anchor_certificate.as_ref()
        {
            return Ok(None);
        }
        let password = unwrap_secret(
            &self.inner.root_key,
            &same.row,
            SecretKind::KmsUserPassword,
            &hsm.wrapped_password,
        )?;
        let given = req.key_store_password.as_deref().unwrap_or_default();
        Ok((password.expose() == given.as_bytes()).then(|| same.row.id.clone()))
    }

    /// The document of a Create request without secrets (for probes and messages).
    fn plain_doc(&self, req: &CreateCustomKeyStoreRequest, ty: CustomKeyStoreType) -> StoreDoc {
        let kind = match ty {
            CustomKeyStoreType::AwsCloudhsm => StoreKind::CloudHsm(CloudHsmDoc {
                cluster_id: req.cloud_hsm_cluster_id.clone().unwrap_or_default(),
                trust_anchor_certificate: req.trust_anchor_certificate.clone().unwrap_or_default(),
                wrapped_password: String::new(),
            }),
            CustomKeyStoreType::ExternalKeyStore => {
                let connectivity = req
                    .xks_proxy_connectivity
                    .unwrap_or(XksProxyConnectivityType::PublicEndpoint);
                let vpc = connectivity == XksProxyConnectivityType::VpcEndpointService;
                StoreKind::External(XksDoc {
                    connectivity,
                    uri_endpoint: req.xks_proxy_uri_endpoint.clone().unwrap_or_default(),
                    uri_path: req.xks_proxy_uri_path.clone().unwrap_or_default(),
                    vpc_endpoint_service_name: vpc
                        .then(|| req.xks_proxy_vpc_endpoint_service_name.clone())
                        .flatten(),
                    vpc_endpoint_service_owner: vpc
                        .then(|| req.xks_proxy_vpc_endpoint_service_owner.clone())
                        .flatten(),
                    access_key_id: req
                        .xks_proxy_authentication_credential
                        .as_ref()
                        .map(|c| c.access_key_id.to_string())
                        .unwrap_or_default(),
                    wrapped_secret: String::new(),
                })
            }
        };
        StoreDoc {
            creation_date: self.inner.clock.now_seconds(),
            connection_error_code: None,
            kind,
        }
    }

    /// The document of a Create request with its secret wrapped for the row `id`.
    fn sealed_doc(
        &self,
        ctx: &RequestContext,
        id: &str,
        req: &CreateCustomKeyStoreRequest,
        ty: CustomKeyStoreType,
    ) -> KmsResult<StoreDoc> {
        let mut doc = self.plain_doc(req, ty);
        let root = &self.inner.root_key;
        let (acct, region) = (&ctx.account_id, &ctx.region);
        match &mut doc.kind {
            StoreKind::CloudHsm(hsm) => {
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
            StoreKind::External(x) => {
                if let Some(cred) = &req.xks_proxy_authentication_credential {
                    x.wrapped_secret = wrap_secret(
                        root,
                        acct,
                        region,
                        id,
                        SecretKind::XksSecret,
                        cred.raw_secret_access_key.as_bytes(),
                    )?;
                }
            }
        }
        Ok(doc)
    }

    /// Every store of the caller's account and Region, in id order.
    async fn all_stores(&self, ctx: &RequestContext) -> KmsResult<Vec<LoadedStore>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .inner
                .store
                .list_custom_key_stores(&ctx.account_id, &ctx.region, after.as_deref(), 1000)
                .await?;
            let done = page.len() < 1000;
            after = page.last().map(|r| r.id.clone());
            for row in page {
                out.push(LoadedStore::from_row(row)?);
            }
            if done || after.is_none() {
                return Ok(out);
            }
        }
    }

    /// `DescribeCustomKeyStores`: ordered by id; the marker names the last id returned.
    pub async fn describe_custom_key_stores(
        &self,
        ctx: &RequestContext,
        req: DescribeCustomKeyStoresRequest,
    ) -> KmsResult<DescribeCustomKeyStoresResponse> {
        if req.custom_key_store_id.is_some() && req.custom_key_store_name.is_some() {
            return Err(KmsError::new(Exception::Validation,
                "You cannot specify both CustomKeyStoreId and CustomKeyStoreName. Specify one or neither."
                    .into(),
            ));
        }
        let limit = PAGING.page_size(req.limit);
        let after = PAGING.decode(req.marker.as_deref())?;
        let single = |s: LoadedStore| DescribeCustomKeyStoresResponse {
            custom_key_stores: Some(vec![s.list_entry()]),
            next_marker: None,
            truncated: Some(false),
        };
        if let Some(id) = &req.custom_key_store_id {
            let s = self.load(&ctx.account_id, &ctx.region, id).await?;
            return Ok(single(s));
        }
        if let Some(name) = &req.custom_key_store_name {
            let s = self
                .all_stores(ctx)
                .await?
                .into_iter()
                .find(|s| &s.row.name == name)
                .ok_or_else(|| not_found_name(name))?;
            return Ok(single(s));
        }
        let rows = self
            .inner
            .store
            .list_custom_key_stores(&ctx.account_id, &ctx.region, after.as_deref(), limit + 1)
            .await?;
        let page = PAGING.page(rows, limit, |r| &r.id);
        let entries = page
            .items
            .into_iter()
            .map(|r| LoadedStore::from_row(r).map(|s| s.list_entry()))
            .collect::<KmsResult<Vec<_>>>()?;
        Ok(DescribeCustomKeyStoresResponse {
            custom_key_stores: Some(entries),
            next_marker: page.next_marker,
            truncated: Some(page.truncated),
        })
    }

    /// `ConnectCustomKeyStore`: DISCONNECTED → CONNECTING, finished in the background.
    /// A no-op on CONNECTED and CONNECTING stores.
    pub async fn connect_custom_key_store(
        &self,
        ctx: &RequestContext,
        req: ConnectCustomKeyStoreRequest,
    ) -> KmsResult<ConnectCustomKeyStoreResponse> {
        let id = &req.custom_key_store_id;
        for _ in 0..CAS_ATTEMPTS {
            let s = self.load(&ctx.account_id, &ctx.region, id).await?;
            let state = s.state()?;
            match state {
                ConnectionStateType::Connected => return Ok(ConnectCustomKeyStoreResponse {}),
                ConnectionStateType::Connecting => {
                    // Already under way; make sure a worker is on it (a no-op if one is).
                    self.spawn_drive(&ctx.account_id, &ctx.region, id);
                    return Ok(ConnectCustomKeyStoreResponse {});
                }
                ConnectionStateType::Failed => {
                    return Err(invalid_state(format!(
                        "Custom key store {id} is in the FAILED connection state. Disconnect it (DisconnectCustomKeyStore), correct the error, and connect it again."
                    )))
                }
                ConnectionStateType::Disconnecting => {
                    return Err(state_error(id, state, "ConnectCustomKeyStore"))
                }
                ConnectionStateType::Disconnected => {}
            }
            let next = s.next(ConnectionStateType::Connecting, None)?;
            match self.inner.store.update_custom_key_store(&next, None).await {
                Ok(()) => {
                    tracing::info!(custom_key_store_id = %id, "connecting custom key store");
                    self.spawn_drive(&ctx.account_id, &ctx.region, id);
                    return Ok(ConnectCustomKeyStoreResponse {});
                }
                Err(StoreError::VersionMismatch) => continue,
                Err(StoreError::NotFound) => return Err(not_found_id(id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(contention())
    }

    /// `DisconnectCustomKeyStore`: → DISCONNECTING → DISCONNECTED (error code cleared).
    pub async fn disconnect_custom_key_store(
        &self,
        ctx: &RequestContext,
        req: DisconnectCustomKeyStoreRequest,
    ) -> KmsResult<DisconnectCustomKeyStoreResponse> {
        let id = &req.custom_key_store_id;
        for _ in 0..CAS_ATTEMPTS {
            let s = self.load(&ctx.account_id, &ctx.region, id).await?;
            let state = s.state()?;
            if matches!(
                state,
                ConnectionStateType::Disconnected | ConnectionStateType::Disconnecting
            ) {
                return Err(state_error(id, state, "DisconnectCustomKeyStore"));
            }
            let next = s.next(ConnectionStateType::Disconnecting, None)?;
            match self.inner.store.update_custom_key_store(&next, None).await {
                Ok(()) => {
                    tracing::info!(custom_key_store_id = %id, "disconnecting custom key store");
                    self.spawn_drive(&ctx.account_id, &ctx.region, id);
                    return Ok(DisconnectCustomKeyStoreResponse {});
                }
                Err(StoreError::VersionMismatch) => continue,
                Err(StoreError::NotFound) => return Err(not_found_id(id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(contention())
    }

    /// `DeleteCustomKeyStore`: only DISCONNECTED stores without KMS keys.
    pub async fn delete_custom_key_store(
        &self,
        ctx: &RequestContext,
        req: DeleteCustomKeyStoreRequest,
    ) -> KmsResult<DeleteCustomKeyStoreResponse> {
        let id = &req.custom_key_store_id;
        for _ in 0..CAS_ATTEMPTS {
            let s = self.load(&ctx.account_id, &ctx.region, id).await?;
            let state = s.state()?;
            if state != ConnectionStateType::Disconnected {
                return Err(invalid_state(format!(
                    "Custom key store {id} is in the {state} connection state. Disconnect it before you delete it."
                )));
            }
            match self
                .inner
                .store
                .delete_custom_key_store(&ctx.account_id, &ctx.region, id, s.row.version)
                .await
            {
                Ok(()) => {
                    tracing::info!(custom_key_store_id = %id, "custom key store deleted");
                    self.forget_attempts(&ctx.account_id, &ctx.region, id).await;
                    return Ok(DeleteCustomKeyStoreResponse {});
                }
                Err(StoreError::HasKeys) => {
                    return Err(KmsError::new(Exception::CustomKeyStoreHasCMKs, format!(
                            "Custom key store {id} contains KMS keys. Delete the KMS keys (ScheduleKeyDeletion) and wait for their deletion before deleting the custom key store."
                        )))
                }
                Err(StoreError::VersionMismatch) => continue,
                Err(StoreError::NotFound) => return Err(not_found_id(id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(contention())
    }
}

fn limit_exceeded(limit: u32) -> KmsError {
    KmsError::new(Exception::LimitExceeded, format!(
        "You have reached the maximum number of custom key stores ({limit}) in this account and Region."
    ))
}
