//! The CloudHSM API contract as Keyhold answers it.
//!
//! * AWS's operations: `impl CloudHsmService for ClusterService` — the generated trait has one
//!   method per operation of the `cloudhsmv2` model, each answering `UnknownOperationException`
//!   until implemented; the methods here hand the typed request to the module that owns it
//!   (`api.rs`, `tags.rs`). The generated dispatch parses, validates and decodes.
//! * Keyhold's extensions (not in AWS's model): [`KeyholdOperation`], a closed enum with one
//!   typed request shape per operation (`admin.rs`), dispatched by [`ClusterService::handle_keyhold`].
//!
//! Every failure becomes an [`ApiError`] carrying a generated [`Exception`].

use keyhold_cloudhsm_model::service::CloudHsmService;
use keyhold_cloudhsm_model::shapes::*;
use keyhold_cloudhsm_model::{BodyError, DispatchError, Exception, OutputWriter};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{wire, ApiError, ClusterService};

/// Who calls the CloudHSM API: the account and Region of the SigV4 credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// 12-digit account id.
    pub account: String,
    /// Region.
    pub region: String,
}

/// Serialises answers into JSON values (the server renders them).
pub(crate) struct JsonValue;

impl OutputWriter for JsonValue {
    type Body = Value;
    type Error = ApiError;
    fn write<T: Serialize>(&self, output: &T) -> Result<Value, ApiError> {
        wire::to_body(output)
    }
}

/// A failed dispatch step as the CloudHSM API answers it: every malformed or invalid request
/// is `CloudHsmInvalidRequestException` (the client error the model declares), with the
/// (Coral) validation wording for constraint violations.
pub(crate) fn dispatch_error(e: DispatchError<ApiError, ApiError>) -> ApiError {
    match e {
        DispatchError::Body(BodyError::NotJson { line, column }) => ApiError::invalid(format!(
            "The request body is not valid for this operation: not JSON (line {line}, column {column})"
        )),
        DispatchError::Body(BodyError::NotObject) => ApiError::invalid(
            "The request body is not valid for this operation: not a JSON object",
        ),
        DispatchError::Validation(v) => ApiError::invalid(v.message),
        DispatchError::Decode(d) => invalid_body(&d.source),
        DispatchError::Service(e) | DispatchError::Output(e) => e,
    }
}

/// `CloudHsmInvalidRequestException` for a body that does not fit the operation's shape.
fn invalid_body(e: &serde_json::Error) -> ApiError {
    ApiError::invalid(format!(
        "The request body is not valid for this operation: {}",
        e.to_string().chars().take(200).collect::<String>()
    ))
}

/// Parses a Keyhold extension's request body (empty means `{}`).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body).map_err(|e| invalid_body(&e))
}

impl CloudHsmService for ClusterService {
    type Context = Caller;
    type Error = ApiError;

    fn exception(exception: Exception, message: String) -> ApiError {
        ApiError::new(exception, message)
    }

    // Clusters and HSMs (`api.rs`).

    async fn create_cluster(
        &self,
        c: &Caller,
        input: CreateClusterRequest,
    ) -> Result<CreateClusterResponse, ApiError> {
        self.serve_create_cluster(&c.account, &c.region, input)
            .await
    }

    async fn describe_clusters(
        &self,
        c: &Caller,
        input: DescribeClustersRequest,
    ) -> Result<DescribeClustersResponse, ApiError> {
        self.serve_describe_clusters(&c.account, &c.region, input)
            .await
    }

    async fn initialize_cluster(
        &self,
        c: &Caller,
        input: InitializeClusterRequest,
    ) -> Result<InitializeClusterResponse, ApiError> {
        self.serve_initialize_cluster(&c.account, &c.region, input)
            .await
    }

    async fn create_hsm(
        &self,
        c: &Caller,
        input: CreateHsmRequest,
    ) -> Result<CreateHsmResponse, ApiError> {
        self.serve_create_hsm(&c.account, &c.region, input).await
    }

    async fn delete_hsm(
        &self,
        c: &Caller,
        input: DeleteHsmRequest,
    ) -> Result<DeleteHsmResponse, ApiError> {
        self.serve_delete_hsm(&c.account, &c.region, input).await
    }

    async fn delete_cluster(
        &self,
        c: &Caller,
        input: DeleteClusterRequest,
    ) -> Result<DeleteClusterResponse, ApiError> {
        self.serve_delete_cluster(&c.account, &c.region, input)
            .await
    }

    // Tags (`tags.rs`).

    async fn tag_resource(
        &self,
        c: &Caller,
        input: TagResourceRequest,
    ) -> Result<TagResourceResponse, ApiError> {
        self.serve_tag_resource(&c.account, &c.region, input).await
    }

    async fn untag_resource(
        &self,
        c: &Caller,
        input: UntagResourceRequest,
    ) -> Result<UntagResourceResponse, ApiError> {
        self.serve_untag_resource(&c.account, &c.region, input)
            .await
    }

    async fn list_tags(
        &self,
        c: &Caller,
        input: ListTagsRequest,
    ) -> Result<ListTagsResponse, ApiError> {
        self.serve_list_tags(&c.account, &c.region, input).await
    }
}

/// Keyhold's extensions on the `BaldrApiService` prefix (not in AWS's model): what AWS does
/// through CloudHSM CLI, and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyholdOperation {
    /// `KeyholdActivateCluster` (CloudHSM CLI `cluster activate`).
    ActivateCluster,
    /// `KeyholdUserCreate`.
    UserCreate,
    /// `KeyholdUserDelete`.
    UserDelete,
    /// `KeyholdUserChangePassword`.
    UserChangePassword,
    /// `KeyholdUserLogin`.
    UserLogin,
    /// `KeyholdUserLogout`.
    UserLogout,
    /// `KeyholdFaultSetSubnet` (fault injection only).
    FaultSetSubnet,
    /// `KeyholdFaultSetHsmState` (fault injection only).
    FaultSetHsmState,
    /// `KeyholdFaultSetClusterNetwork` (fault injection only).
    FaultSetClusterNetwork,
}

impl KeyholdOperation {
    /// Every extension.
    pub const ALL: &'static [KeyholdOperation] = &[
        KeyholdOperation::ActivateCluster,
        KeyholdOperation::UserCreate,
        KeyholdOperation::UserDelete,
        KeyholdOperation::UserChangePassword,
        KeyholdOperation::UserLogin,
        KeyholdOperation::UserLogout,
        KeyholdOperation::FaultSetSubnet,
        KeyholdOperation::FaultSetHsmState,
        KeyholdOperation::FaultSetClusterNetwork,
    ];

    /// The operation name after `BaldrApiService.`.
    pub const fn name(self) -> &'static str {
        match self {
            KeyholdOperation::ActivateCluster => "KeyholdActivateCluster",
            KeyholdOperation::UserCreate => "KeyholdUserCreate",
            KeyholdOperation::UserDelete => "KeyholdUserDelete",
            KeyholdOperation::UserChangePassword => "KeyholdUserChangePassword",
            KeyholdOperation::UserLogin => "KeyholdUserLogin",
            KeyholdOperation::UserLogout => "KeyholdUserLogout",
            KeyholdOperation::FaultSetSubnet => "KeyholdFaultSetSubnet",
            KeyholdOperation::FaultSetHsmState => "KeyholdFaultSetHsmState",
            KeyholdOperation::FaultSetClusterNetwork => "KeyholdFaultSetClusterNetwork",
        }
    }

    /// The extension named `name` exactly.
    pub fn from_name(name: &str) -> Option<KeyholdOperation> {
        KeyholdOperation::ALL
            .iter()
            .copied()
            .find(|o| o.name() == name)
    }

    /// Whether this is a fault-injection operation (answered only with
    /// `[cloudhsm] fault_injection = true`).
    pub const fn is_fault_injection(self) -> bool {
        matches!(
            self,
            KeyholdOperation::FaultSetSubnet
                | KeyholdOperation::FaultSetHsmState
                | KeyholdOperation::FaultSetClusterNetwork
        )
    }
}

impl ClusterService {
    /// Runs one of Keyhold's extensions: parse its typed request, run it, serialise.
    pub(crate) async fn handle_keyhold(
        &self,
        op: KeyholdOperation,
        c: &Caller,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        if op.is_fault_injection() && !self.inner.config.fault_injection {
            return Err(ApiError::denied(
                "The fault-injection API is disabled ([cloudhsm] fault_injection = false).",
            ));
        }
        let (a, r) = (c.account.as_str(), c.region.as_str());
        match op {
            KeyholdOperation::ActivateCluster => reply(self.activate(a, r, parse(body)?).await),
            KeyholdOperation::UserCreate => reply(self.user_create(a, r, parse(body)?).await),
            KeyholdOperation::UserDelete => reply(self.user_delete(a, r, parse(body)?).await),
            KeyholdOperation::UserChangePassword => {
                reply(self.user_change_password(a, r, parse(body)?).await)
            }
            KeyholdOperation::UserLogin => reply(self.user_login(a, r, parse(body)?).await),
            KeyholdOperation::UserLogout => reply(self.user_logout(a, r, parse(body)?).await),
            KeyholdOperation::FaultSetSubnet => {
                reply(self.fault_set_subnet(a, r, parse(body)?).await)
            }
            KeyholdOperation::FaultSetHsmState => {
                reply(self.fault_set_hsm_state(a, r, parse(body)?).await)
            }
            KeyholdOperation::FaultSetClusterNetwork => {
                reply(self.fault_set_cluster_network(a, r, parse(body)?).await)
            }
        }
    }
}

/// An operation's typed answer as the JSON body of the response.
fn reply<T: Serialize>(out: Result<T, ApiError>) -> Result<Value, ApiError> {
    wire::to_body(&out?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyhold_operation_names_round_trip_and_stay_out_of_the_model() {
        for &op in KeyholdOperation::ALL {
            assert_eq!(KeyholdOperation::from_name(op.name()), Some(op));
            assert!(keyhold_cloudhsm_model::Operation::from_name(op.name()).is_none());
        }
        assert_eq!(KeyholdOperation::from_name("KeyholdNope"), None);
    }

    /// Constraint violations answer `CloudHsmInvalidRequestException` with AWS's (Coral)
    /// validation wording.
    #[test]
    fn shapes_validate_like_the_model() {
        use keyhold_cloudhsm_model::{validate_input, Operation};
        let bad = serde_json::json!({"HsmType": "m5.large", "SubnetIds": ["subnet-xyz"]});
        let v = validate_input(Operation::CreateCluster, &bad).unwrap_err();
        let e = dispatch_error(DispatchError::Validation(v));
        assert_eq!(e.name(), "CloudHsmInvalidRequestException");
        assert!(
            e.message
                .starts_with("2 validation errors detected: Value 'm5.large' at 'hsmType'"),
            "{}",
            e.message
        );
        assert!(e.message.contains("'subnetIds.1.member'"), "{}", e.message);
        let good = serde_json::json!({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-0123abcd"]});
        assert!(validate_input(Operation::CreateCluster, &good).is_ok());
    }
}
