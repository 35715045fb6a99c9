//! Who is calling, where: the facts the protocol edge establishes before the domain runs.

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// 12-digit account id of the caller (also the owner of the keys it creates).
    pub account_id: String,
    /// The Region from the request's credential scope.
    pub region: String,
    /// The caller's principal ARN (sent to XKS proxies in `requestMetadata`).
    pub principal_arn: String,
    /// The request id returned in `x-amzn-RequestId`.
    pub request_id: String,
    /// The caller's IAM identity policies (the stand-in for IAM: configured per access key).
    /// Empty for the account root, whose permissions IAM policies do not limit.
    pub identity_policies: IdentityPolicies,
    /// The caller's IP address (`aws:SourceIp`), when the edge knows it.
    pub source_ip: Option<std::net::IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
}

/// The identity-based policies of a caller, parsed once at configuration time and shared by
/// every request of that caller.
#[derive(Debug, Clone, Default)]
pub struct IdentityPolicies(pub std::sync::Arc<[keyhold_policy::Policy]>);

impl PartialEq for IdentityPolicies {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || (self.0.is_empty() && other.0.is_empty())
    }
}

impl Eq for IdentityPolicies {}

impl RequestContext {
    /// A context for `account_id` in `region`, with the account root as principal.
    pub fn new(account_id: &str, region: &str, request_id: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            region: region.to_string(),
            principal_arn: format!("arn:aws:iam::{account_id}:root"),
            request_id: request_id.to_string(),
            identity_policies: IdentityPolicies::default(),
            source_ip: None,
            secure_transport: false,
        }
    }

    /// Whether the caller is the root of its account (IAM policies do not limit the root).
    pub fn is_account_root(&self) -> bool {
        self.principal_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.strip_suffix(":root"))
            == Some(self.account_id.as_str())
    }

    /// The ARN of a key of this account and Region.
    pub fn key_arn(&self, key_id: &str) -> String {
        crate::arn::key_arn(&self.region, &self.account_id, key_id)
    }
}
