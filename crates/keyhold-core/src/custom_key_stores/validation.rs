//! Cross-field rules of CreateCustomKeyStore and UpdateCustomKeyStore, the uniqueness claims of
//! a store, and the mapping of claim conflicts and proxy failures to AWS exceptions.
//!
//! Lengths, patterns and enum values are checked by the model before any of this runs.

use keyhold_kms_model::enums::{CustomKeyStoreType, XksProxyConnectivityType};
use keyhold_kms_model::shapes::{CreateCustomKeyStoreRequest, UpdateCustomKeyStoreRequest};
use keyhold_kms_model::Exception;

use crate::error::KmsError;
use crate::ports::xks::XksFailure;
use crate::ports::UniqueClaim;

use super::model::{StoreDoc, XksDoc};

/// Claim scope: store name per account and Region.
pub const SCOPE_NAME: &str = "cks-name";
/// Claim scope: XKS endpoint + path per Region.
pub const SCOPE_XKS_URI: &str = "cks-xks-uri";
/// Claim scope: XKS endpoint per Region (exclusive for VPC stores, shared for public ones).
pub const SCOPE_XKS_ENDPOINT: &str = "cks-xks-endpoint";
/// Claim scope: VPC endpoint service per Region.
pub const SCOPE_XKS_VPCES: &str = "cks-xks-vpc-endpoint-service";
/// Claim scope: CloudHSM cluster per account and Region.
pub const SCOPE_CLOUDHSM_CLUSTER: &str = "cks-cloudhsm-cluster";

fn validation(msg: impl Into<String>) -> KmsError {
    KmsError::new(Exception::Validation, msg.into())
}

fn required_for(param: &str, ty: &str) -> KmsError {
    validation(format!(
        "{param} is required for a custom key store with a CustomKeyStoreType of {ty}."
    ))
}

fn only_for(param: &str, ty: &str) -> KmsError {
    validation(format!(
        "{param} is valid only for custom key stores with a CustomKeyStoreType of {ty}."
    ))
}

fn only_for_vpc(param: &str) -> KmsError {
    validation(format!(
        "{param} is valid only for external key stores with an XksProxyConnectivity of VPC_ENDPOINT_SERVICE."
    ))
}

/// The type a Create request asks for (AWS's default is `AWS_CLOUDHSM`).
pub fn create_type(req: &CreateCustomKeyStoreRequest) -> CustomKeyStoreType {
    req.custom_key_store_type
        .unwrap_or(CustomKeyStoreType::AwsCloudhsm)
}

/// Checks the type-specific parameters of a Create request: every parameter the type needs is
/// present, none of the other type's parameters is.
pub fn check_create(req: &CreateCustomKeyStoreRequest) -> Result<(), KmsError> {
    const HSM: &str = "AWS_CLOUDHSM";
    const XKS: &str = "EXTERNAL_KEY_STORE";
    match create_type(req) {
        CustomKeyStoreType::AwsCloudhsm => {
            let xks_params = [
                ("XksProxyUriEndpoint", req.xks_proxy_uri_endpoint.is_some()),
                ("XksProxyUriPath", req.xks_proxy_uri_path.is_some()),
                (
                    "XksProxyVpcEndpointServiceName",
                    req.xks_proxy_vpc_endpoint_service_name.is_some(),
                ),
                (
                    "XksProxyVpcEndpointServiceOwner",
                    req.xks_proxy_vpc_endpoint_service_owner.is_some(),
                ),
                (
                    "XksProxyAuthenticationCredential",
                    req.xks_proxy_authentication_credential.is_some(),
                ),
                ("XksProxyConnectivity", req.xks_proxy_connectivity.is_some()),
            ];
            if let Some((p, _)) = xks_params.iter().find(|(_, given)| *given) {
                return Err(only_for(p, XKS));
            }
            if req.cloud_hsm_cluster_id.is_none() {
                return Err(required_for("CloudHsmClusterId", HSM));
            }
            if req.trust_anchor_certificate.is_none() {
                return Err(required_for("TrustAnchorCertificate", HSM));
            }
            if req.key_store_password.is_none() {
                return Err(required_for("KeyStorePassword", HSM));
            }
        }
        CustomKeyStoreType::ExternalKeyStore => {
            let hsm_params = [
                ("CloudHsmClusterId", req.cloud_hsm_cluster_id.is_some()),
                (
                    "TrustAnchorCertificate",
                    req.trust_anchor_certificate.is_some(),
                ),
                ("KeyStorePassword", req.key_store_password.is_some()),
            ];
            if let Some((p, _)) = hsm_params.iter().find(|(_, given)| *given) {
                return Err(only_for(p, HSM));
            }
            let Some(connectivity) = req.xks_proxy_connectivity else {
                return Err(required_for("XksProxyConnectivity", XKS));
            };
            if req.xks_proxy_uri_endpoint.is_none() {
                return Err(required_for("XksProxyUriEndpoint", XKS));
            }
            if req.xks_proxy_uri_path.is_none() {
                return Err(required_for("XksProxyUriPath", XKS));
            }
            if req.xks_proxy_authentication_credential.is_none() {
                return Err(required_for("XksProxyAuthenticationCredential", XKS));
            }
            match connectivity {
                XksProxyConnectivityType::VpcEndpointService => {
                    if req.xks_proxy_vpc_endpoint_service_name.is_none() {
                        return Err(validation(
                            "XksProxyVpcEndpointServiceName is required for an external key store with an XksProxyConnectivity of VPC_ENDPOINT_SERVICE.",
                        ));
                    }
                }
                XksProxyConnectivityType::PublicEndpoint => {
                    if req.xks_proxy_vpc_endpoint_service_name.is_some() {
                        return Err(only_for_vpc("XksProxyVpcEndpointServiceName"));
                    }
                    if req.xks_proxy_vpc_endpoint_service_owner.is_some() {
                        return Err(only_for_vpc("XksProxyVpcEndpointServiceOwner"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Checks that an Update request names only parameters of the store's type.
pub fn check_update_type(
    req: &UpdateCustomKeyStoreRequest,
    ty: CustomKeyStoreType,
) -> Result<(), KmsError> {
    match ty {
        CustomKeyStoreType::AwsCloudhsm => {
            let xks_params = [
                ("XksProxyUriEndpoint", req.xks_proxy_uri_endpoint.is_some()),
                ("XksProxyUriPath", req.xks_proxy_uri_path.is_some()),
                (
                    "XksProxyVpcEndpointServiceName",
                    req.xks_proxy_vpc_endpoint_service_name.is_some(),
                ),
                (
                    "XksProxyVpcEndpointServiceOwner",
                    req.xks_proxy_vpc_endpoint_service_owner.is_some(),
                ),
                (
                    "XksProxyAuthenticationCredential",
                    req.xks_proxy_authentication_credential.is_some(),
                ),
                ("XksProxyConnectivity", req.xks_proxy_connectivity.is_some()),
            ];
            if let Some((p, _)) = xks_params.iter().find(|(_, given)| *given) {
                return Err(only_for(p, "EXTERNAL_KEY_STORE"));
            }
        }
        CustomKeyStoreType::ExternalKeyStore => {
            let hsm_params = [
                ("CloudHsmClusterId", req.cloud_hsm_cluster_id.is_some()),
                ("KeyStorePassword", req.key_store_password.is_some()),
            ];
            if let Some((p, _)) = hsm_params.iter().find(|(_, given)| *given) {
                return Err(only_for(p, "AWS_CLOUDHSM"));
            }
        }
    }
    Ok(())
}

/// Checks the XKS properties an Update would leave: connectivity switches bring what they need
/// and a public store keeps no VPC endpoint service. `old` is the current configuration.
pub fn check_update_xks(
    req: &UpdateCustomKeyStoreRequest,
    old: &XksDoc,
    new: &XksDoc,
) -> Result<(), KmsError> {
    if new.connectivity != old.connectivity {
        if req.xks_proxy_uri_endpoint.is_none() {
            return Err(validation(format!(
                "To change XksProxyConnectivity to {}, you must also specify a new XksProxyUriEndpoint.",
                new.connectivity
            )));
        }
        if new.connectivity == XksProxyConnectivityType::VpcEndpointService
            && req.xks_proxy_vpc_endpoint_service_name.is_none()
        {
            return Err(validation(
                "To change XksProxyConnectivity to VPC_ENDPOINT_SERVICE, you must also specify XksProxyVpcEndpointServiceName.",
            ));
        }
    }
    if new.connectivity == XksProxyConnectivityType::PublicEndpoint {
        if req.xks_proxy_vpc_endpoint_service_name.is_some() {
            return Err(only_for_vpc("XksProxyVpcEndpointServiceName"));
        }
        if req.xks_proxy_vpc_endpoint_service_owner.is_some() {
            return Err(only_for_vpc("XksProxyVpcEndpointServiceOwner"));
        }
    }
    Ok(())
}

/// The claims a store holds, in the order conflicts are reported: name first.
pub fn claims(account: &str, region: &str, name: &str, doc: &StoreDoc) -> Vec<UniqueClaim> {
    let mut out = vec![UniqueClaim::exclusive(
        SCOPE_NAME,
        format!("{account}/{region}/{name}"),
    )];
    if let Some(x) = doc.xks() {
        // Host names are case-insensitive; paths are not.
        let endpoint = x.uri_endpoint.to_ascii_lowercase();
        out.push(UniqueClaim::exclusive(
            SCOPE_XKS_URI,
            format!("{region}/{endpoint}{}", x.uri_path),
        ));
        let endpoint_value = format!("{region}/{endpoint}");
        match x.connectivity {
            XksProxyConnectivityType::VpcEndpointService => {
                out.push(UniqueClaim::exclusive(SCOPE_XKS_ENDPOINT, endpoint_value));
                if let Some(svc) = &x.vpc_endpoint_service_name {
                    out.push(UniqueClaim::exclusive(
                        SCOPE_XKS_VPCES,
                        format!("{region}/{svc}"),
                    ));
                }
            }
            XksProxyConnectivityType::PublicEndpoint => {
                out.push(UniqueClaim::shared(SCOPE_XKS_ENDPOINT, endpoint_value));
            }
        }
    }
    if let Some(c) = doc.cloud_hsm() {
        out.push(UniqueClaim::exclusive(
            SCOPE_CLOUDHSM_CLUSTER,
            format!("{account}/{region}/{}", c.cluster_id),
        ));
    }
    out
}

/// The exception for a conflict in claim `scope` (None for scopes that are not a caller's
/// fault, such as an id collision).
pub fn conflict_error(scope: &str, name: &str, doc: &StoreDoc) -> Option<KmsError> {
    let other = |name: Exception, message: String| Some(KmsError::new(name, message));
    let xks = doc.xks();
    match scope {
        SCOPE_NAME => other(
 Exception::CustomKeyStoreNameInUse,
            format!("Custom key store name {name} is already in use in this account and Region."),
        ),
        SCOPE_XKS_URI => other(
 Exception::XksProxyUriInUse,
            format!(
                "The XksProxyUriEndpoint and XksProxyUriPath {}{} are already associated with another external key store in this Region.",
                xks.map(|x| x.uri_endpoint.as_str()).unwrap_or_default(),
                xks.map(|x| x.uri_path.as_str()).unwrap_or_default(),
            ),
        ),
        SCOPE_XKS_ENDPOINT => other(
 Exception::XksProxyUriEndpointInUse,
            format!(
                "The XksProxyUriEndpoint {} is already associated with another external key store in this Region. An external key store with VPC_ENDPOINT_SERVICE connectivity cannot share its endpoint with any other external key store.",
                xks.map(|x| x.uri_endpoint.as_str()).unwrap_or_default(),
            ),
        ),
        SCOPE_XKS_VPCES => other(
 Exception::XksProxyVpcEndpointServiceInUse,
            format!(
                "The VPC endpoint service {} is already associated with another external key store in this Region.",
                xks.and_then(|x| x.vpc_endpoint_service_name.as_deref())
                    .unwrap_or_default(),
            ),
        ),
        SCOPE_CLOUDHSM_CLUSTER => other(
 Exception::CloudHsmClusterInUse,
            format!(
                "The CloudHSM cluster {} is already associated with another AWS CloudHSM key store in this account and Region.",
                doc.cloud_hsm()
                    .map(|c| c.cluster_id.as_str())
                    .unwrap_or_default(),
            ),
        ),
        _ => None,
    }
}

/// The exception CreateCustomKeyStore / UpdateCustomKeyStore raise when the proxy probe fails,
/// with the XKS specification's wording.
pub fn probe_error(failure: &XksFailure) -> KmsError {
    let name = failure.create_update_exception();
    if name == Exception::KMSInternal {
        return KmsError::internal(failure.clone());
    }
    let message = match failure {
        XksFailure::AuthenticationFailed => "The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary.",
        XksFailure::AccessDenied => "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again.",
        XksFailure::InvalidUriPath => "The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary.",
        XksFailure::ProxyInternal => "The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy is configured correctly and that the external key manager is available.",
        XksFailure::InvalidResponse { .. }
        | XksFailure::KeyNotFound
        | XksFailure::KeyInvalidState
        | XksFailure::KeyInvalidUsage
        | XksFailure::UnsupportedOperation
        | XksFailure::InvalidCiphertext => "AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.",
        XksFailure::Tls { .. } => "AWS KMS cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, including its certificate.",
        XksFailure::NotReachable { .. } | XksFailure::Network { .. } => "AWS KMS cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external key store.",
        XksFailure::AllEkmsUnavailable => "The external key store proxy reports that all of its external key manager instances are unavailable. Verify that the external key manager is available.",
        XksFailure::TimedOut { .. } => "AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.",
        XksFailure::DependencyTimeout => "The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.",
        XksFailure::Throttled => "The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store.",
        XksFailure::VpcEndpointServiceNotFound => "AWS KMS cannot find the VPC endpoint service for this external key store. Verify the XksProxyVpcEndpointServiceName and that the AWS KMS service principal is an allowed principal of the service.",
        XksFailure::VpcEndpointServiceInvalid { .. } => "The VPC endpoint service for this external key store does not meet the requirements of AWS KMS external key stores.",
        XksFailure::Internal { .. } => "An internal error occurred.",
    };
    KmsError::new(name, message.to_string())
}
