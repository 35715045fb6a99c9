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
}

impl RequestContext {
    /// A context for `account_id` in `region`, with the account root as principal.
    pub fn new(account_id: &str, region: &str, request_id: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            region: region.to_string(),
            principal_arn: format!("arn:aws:iam::{account_id}:root"),
            request_id: request_id.to_string(),
        }
    }

    /// The ARN of a key of this account and Region.
    pub fn key_arn(&self, key_id: &str) -> String {
        crate::arn::key_arn(&self.region, &self.account_id, key_id)
    }
}
