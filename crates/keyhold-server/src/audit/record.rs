//! The audit record: one CloudTrail event (`eventType` `AwsApiCall`) per API call, with
//! CloudTrail's member names, so tools that read CloudTrail read Keyhold's log too.

use serde::Serialize;
use serde_json::{Map, Value};

use keyhold_core::RequestContext;

use super::params::{self, ResponsePeek};
use super::{Call, Source};

/// The CloudTrail record format version of AWS's current KMS examples.
pub const EVENT_VERSION: &str = "1.11";

/// One CloudTrail event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// [`EVENT_VERSION`].
    pub event_version: &'static str,
    /// Who called, as authenticated.
    pub user_identity: UserIdentity,
    /// When the response was ready, ISO-8601 UTC to the second (`2026-12-04T15:00:00Z`).
    pub event_time: String,
    /// `kms.amazonaws.com` or `cloudhsm.amazonaws.com`.
    pub event_source: &'static str,
    /// The operation, e.g. `Encrypt`.
    pub event_name: String,
    /// The Region of the request's credential scope.
    pub aws_region: String,
    /// The client's IP address.
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    /// The request's `User-Agent`.
    pub user_agent: String,
    /// The exception name sent, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The exception message sent, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// What of the request may be shown (see [`params`]); `null` when unknown.
    pub request_parameters: Option<Value>,
    /// What of the response AWS logs; `null` for most operations.
    pub response_elements: Option<Value>,
    /// `keyMaterialId`, `customKeyStoreId`, ... where AWS adds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Map<String, Value>>,
    /// The `x-amzn-RequestId` of the response.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// This record's own id.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// Whether the operation only reads (AWS counts cryptographic operations as read-only).
    pub read_only: bool,
    /// The keys the call used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    /// Always `AwsApiCall`.
    pub event_type: &'static str,
    /// Always true: AWS logs KMS and CloudHSM calls as management events.
    pub management_event: bool,
    /// The account the call was made in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    /// Always `Management`.
    pub event_category: &'static str,
}

/// CloudTrail's `userIdentity`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `Root`, `IAMUser`, `AssumedRole`, or `Unknown` (a call that failed authentication).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The account id for the root; the user or role name otherwise (Keyhold has no IAM
    /// unique ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// The principal's ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The principal's account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The access key the request was signed with (never its secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The IAM user's name (`IAMUser` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// One entry of `resources`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Resource {
    /// The key's account.
    #[serde(rename = "accountId")]
    pub account_id: String,
    /// `AWS::KMS::Key`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The key ARN.
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// `userIdentity` of an authenticated caller, or of one whose authentication failed.
fn user_identity(ctx: Option<&RequestContext>, access_key_id: Option<&str>) -> UserIdentity {
    let access_key_id = access_key_id.map(str::to_owned);
    let Some(ctx) = ctx else {
        return UserIdentity {
            kind: "Unknown",
            principal_id: None,
            arn: None,
            account_id: None,
            access_key_id,
            user_name: None,
        };
    };
    let arn = &ctx.principal_arn;
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    let name = resource.rsplit('/').next().unwrap_or("").to_owned();
    let (kind, principal_id, user_name) = if ctx.is_account_root() {
        ("Root", ctx.account_id.clone(), None)
    } else if resource.starts_with("user/") {
        ("IAMUser", name.clone(), Some(name))
    } else if resource.starts_with("role/") || resource.starts_with("assumed-role/") {
        ("AssumedRole", name, None)
    } else {
        ("Unknown", name, None)
    };
    UserIdentity {
        kind,
        principal_id: Some(principal_id),
        arn: Some(arn.clone()),
        account_id: Some(ctx.account_id.clone()),
        access_key_id,
        user_name,
    }
}

/// The key ARN `key_ref` names, when it names a key (an ARN or a key id); aliases are not
/// resolved here.
fn key_arn(ctx: &RequestContext, key_ref: &str) -> Option<String> {
    if key_ref.starts_with("arn:") {
        return key_ref.contains(":key/").then(|| key_ref.to_owned());
    }
    if key_ref.is_empty() || key_ref.starts_with("alias/") {
        return None;
    }
    Some(ctx.key_arn(key_ref))
}

/// The account of a key ARN (`arn:aws:kms:<region>:<account>:key/<id>`).
fn arn_account(arn: &str) -> String {
    arn.split(':').nth(4).unwrap_or("").to_owned()
}

/// The keys a KMS call used, in AWS's order (ReEncrypt: source, then destination): from the
/// response when it names them, otherwise from the request's key id.
fn resources(ctx: &RequestContext, peek: &ResponsePeek, request: Option<&Value>) -> Vec<String> {
    let meta_arn = |m: &Option<Map<String, Value>>| {
        m.as_ref()
            .and_then(|m| m.get("Arn"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut arns: Vec<String> = [
        meta_arn(&peek.key_metadata),
        meta_arn(&peek.replica_key_metadata),
        peek.source_key_id.clone(),
        peek.key_id.clone(),
    ]
    .into_iter()
    .flatten()
    .filter(|a| a.starts_with("arn:"))
    .collect();
    if arns.is_empty() {
        let req_key = |name: &str| {
            request
                .and_then(|r| r.get(name))
                .and_then(Value::as_str)
                .and_then(|k| key_arn(ctx, k))
        };
        arns.extend(
            ["keyId", "targetKeyId", "destinationKeyId"]
                .iter()
                .filter_map(|n| req_key(n)),
        );
    }
    arns.dedup();
    arns
}

/// `readOnly`: AWS marks reads and cryptographic operations read-only.
pub fn read_only(op: &str) -> bool {
    const READS: &[&str] = &[
        "Describe",
        "List",
        "Get",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "Generate",
        "Sign",
        "Verify",
        "DeriveSharedSecret",
    ];
    READS.iter().any(|p| op.starts_with(p))
}

/// The current time as CloudTrail's `eventTime`. Formatted once per second per thread: a
/// busy server writes thousands of records with the same one.
fn event_time() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const {
            std::cell::RefCell::new((i64::MIN, String::new()))
        };
    }
    let now = time::OffsetDateTime::now_utc();
    LAST.with_borrow_mut(|(second, text)| {
        if *second != now.unix_timestamp() {
            *second = now.unix_timestamp();
            *text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            );
        }
        text.clone()
    })
}

/// Builds the event of a finished call; `error` is the (exception name, message) sent.
pub fn event(call: Call, request_id: &str, error: Option<(&str, &str)>) -> Event {
    let ctx = call.identity.as_ref();
    let peek = match (&call.response, error) {
        (Some(body), None) if call.source == Source::Kms => ResponsePeek::read(body),
        _ => ResponsePeek::default(),
    };
    let request = call.request_parameters.as_ref();
    let key_arns = match (call.source, ctx) {
        (Source::Kms, Some(ctx)) => resources(ctx, &peek, request),
        _ => Vec::new(),
    };
    let mut request_parameters = call.request_parameters;
    // AWS always shows the algorithm of Encrypt and Decrypt, defaulted when not sent.
    if call.source == Source::Kms && matches!(call.event_name.as_str(), "Encrypt" | "Decrypt") {
        if let Some(Value::Object(p)) = request_parameters.as_mut() {
            p.entry("encryptionAlgorithm")
                .or_insert_with(|| Value::String("SYMMETRIC_DEFAULT".into()));
        }
    }
    let response_elements = match (call.source, error) {
        (Source::Kms, None) => params::response_elements(
            &call.event_name,
            &peek,
            key_arns.first().map(String::as_str),
        ),
        _ => None,
    };
    let mut extra = Map::new();
    let mut add = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            extra.insert(name.to_owned(), Value::String(v.clone()));
        }
    };
    add("keyMaterialId", &peek.key_material_id);
    add("sourceKeyMaterialId", &peek.source_key_material_id);
    add(
        "destinationKeyMaterialId",
        &peek.destination_key_material_id,
    );
    let store = peek
        .key_metadata
        .as_ref()
        .or(peek.replica_key_metadata.as_ref())
        .and_then(|m| m.get("CustomKeyStoreId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    add("customKeyStoreId", &store);
    Event {
        event_version: EVENT_VERSION,
        user_identity: user_identity(ctx, call.access_key_id.as_deref()),
        event_time: event_time(),
        event_source: call.source.event_source(),
        read_only: read_only(&call.event_name),
        event_name: call.event_name,
        aws_region: call.region,
        source_ip_address: call.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        user_agent: call.user_agent,
        error_code: error.map(|(name, _)| name.to_owned()),
        error_message: error
            .map(|(_, message)| message)
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        request_parameters,
        response_elements,
        additional_event_data: (!extra.is_empty()).then_some(extra),
        request_id: request_id.to_owned(),
        event_id: crate::ids::request_uuid(),
        resources: key_arns
            .into_iter()
            .map(|arn| Resource {
                account_id: arn_account(&arn),
                kind: "AWS::KMS::Key",
                arn,
            })
            .collect(),
        event_type: "AwsApiCall",
        management_event: true,
        recipient_account_id: ctx.map(|c| c.account_id.clone()),
        event_category: "Management",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_is_the_current_second_in_iso_8601() {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        for _ in 0..3 {
            let before = time::OffsetDateTime::now_utc().unix_timestamp();
            let text = event_time();
            let after = time::OffsetDateTime::now_utc().unix_timestamp();
            let parsed = time::PrimitiveDateTime::parse(&text, &format)
                .expect("ISO 8601")
                .assume_utc()
                .unix_timestamp();
            assert!(before <= parsed && parsed <= after, "{text}");
        }
    }
}
