//! The audit record: one CloudTrail event (`eventType` `AwsApiCall`) per API call, with
//! CloudTrail's member names, so tools that read CloudTrail read Keyhold's log too.
//!
//! The record is written as JSON text straight from borrowed parts of the [`Call`] into the
//! caller's buffer, member by member, rather than built as a struct of owned strings and
//! serialised: every request of an audited server pays for its record before it is answered,
//! and the copies and allocations of an intermediate event were most of that cost. The
//! members, in CloudTrail's order:
//!
//! | member | value |
//! |---|---|
//! | `eventVersion` | [`EVENT_VERSION`] |
//! | `userIdentity` | `type` (`Root`, `IAMUser`, `AssumedRole`, `Unknown`), `principalId`, `arn`, `accountId`, `accessKeyId`, `userName` (IAM users) |
//! | `eventTime` | when the response was ready, ISO-8601 UTC to the second |
//! | `eventSource`, `eventName`, `awsRegion` | the API, the operation, the credential scope's Region |
//! | `sourceIPAddress`, `userAgent` | the client's address and `User-Agent` (cut to 1024 characters) |
//! | `errorCode`, `errorMessage` | on failure: the exception name and its message (when not empty) |
//! | `requestParameters` | what of the request may be shown (see [`params`]), or `null` |
//! | `responseElements` | what of the response AWS logs, usually `null` |
//! | `additionalEventData` | `keyMaterialId`, `customKeyStoreId`, ... where AWS adds them |
//! | `requestID`, `eventID` | the response's `x-amzn-RequestId` and the record's own id |
//! | `readOnly` | reads and cryptographic operations |
//! | `resources` | the keys used (`accountId`, `type` `AWS::KMS::Key`, `ARN`) |
//! | `eventType`, `managementEvent`, `recipientAccountId`, `eventCategory` | `AwsApiCall`, true, the caller's account, `Management` |

use std::borrow::Cow;
use std::io::Write as _;

use serde_json::{Map, Value};

use super::params::{self, ResponsePeek};
use keyhold_core::RequestContext;

use super::{Call, Source};

/// The CloudTrail record format version of AWS's current KMS examples.
pub const EVENT_VERSION: &str = "1.11";

/// Appends the record of a finished call to `out` as one line of JSON, newline included;
/// `error` is the (exception name, message) the response carried.
pub fn write_event(out: &mut Vec<u8>, call: &Call, request_id: &str, error: Option<(&str, &str)>) {
    let caller = call.context.as_ref();
    let (access_key_id, region) = call.scope();
    let none = ResponsePeek::default();
    let peek = match (&call.response, error) {
        (Some(peek), None) if call.source == Source::Kms => peek,
        _ => &none,
    };
    let key_arns = match (call.source, caller) {
        (Source::Kms, Some(caller)) => resources(caller, peek, call),
        _ => Vec::new(),
    };

    out.extend_from_slice(b"{\"eventVersion\":\"");
    out.extend_from_slice(EVENT_VERSION.as_bytes());
    out.extend_from_slice(b"\",\"userIdentity\":");
    write_user_identity(out, caller, access_key_id);
    out.extend_from_slice(b",\"eventTime\":\"");
    with_event_time(|time| out.extend_from_slice(time.as_bytes()));
    out.extend_from_slice(b"\",\"eventSource\":\"");
    out.extend_from_slice(call.source.event_source().as_bytes());
    // Operation names come from the models' tables: nothing to escape.
    out.extend_from_slice(b"\",\"eventName\":\"");
    out.extend_from_slice(call.event_name.as_bytes());
    out.extend_from_slice(b"\",\"awsRegion\":");
    json_str(out, region);
    out.extend_from_slice(b",\"sourceIPAddress\":\"");
    if let Some(ip) = call.source_ip {
        write_ip(out, ip);
    }
    out.extend_from_slice(b"\",\"userAgent\":");
    json_str(out, user_agent(call.user_agent.as_ref()));
    if let Some((name, message)) = error {
        out.extend_from_slice(b",\"errorCode\":");
        json_str(out, name);
        if !message.is_empty() {
            out.extend_from_slice(b",\"errorMessage\":");
            json_str(out, message);
        }
    }
    out.extend_from_slice(b",\"requestParameters\":");
    write_request_parameters(out, call);
    out.extend_from_slice(b",\"responseElements\":");
    let response_elements = match (call.source, error) {
        (Source::Kms, None) => {
            params::response_elements(call.event_name, peek, key_arns.first().map(|a| &**a))
        }
        _ => None,
    };
    json_value(out, response_elements.as_ref());
    write_additional_event_data(out, peek);
    out.extend_from_slice(b",\"requestID\":");
    json_str(out, request_id);
    out.extend_from_slice(b",\"eventID\":\"");
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(
        crate::ids::random_uuid()
            .hyphenated()
            .encode_lower(&mut id)
            .as_bytes(),
    );
    out.extend_from_slice(b"\",\"readOnly\":");
    out.extend_from_slice(if read_only(call.event_name) {
        b"true"
    } else {
        b"false"
    });
    if !key_arns.is_empty() {
        out.extend_from_slice(b",\"resources\":[");
        for (i, arn) in key_arns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"accountId\":");
            json_str(out, arn_field(arn, 4));
            out.extend_from_slice(b",\"type\":\"AWS::KMS::Key\",\"ARN\":");
            json_str(out, arn);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"eventType\":\"AwsApiCall\",\"managementEvent\":true");
    if let Some(caller) = caller {
        out.extend_from_slice(b",\"recipientAccountId\":");
        json_str(out, &caller.account_id);
    }
    out.extend_from_slice(b",\"eventCategory\":\"Management\"}\n");
}

/// `userIdentity` of an authenticated caller, or of one whose authentication failed (type
/// `Unknown` with only the access key id it presented).
fn write_user_identity(
    out: &mut Vec<u8>,
    caller: Option<&RequestContext>,
    access_key_id: Option<&str>,
) {
    let Some(caller) = caller else {
        out.extend_from_slice(b"{\"type\":\"Unknown\"");
        if let Some(akid) = access_key_id {
            out.extend_from_slice(b",\"accessKeyId\":");
            json_str(out, akid);
        }
        out.push(b'}');
        return;
    };
    let arn = &caller.principal_arn;
    let resource = after_colons(arn, 5).unwrap_or("");
    let name = resource.rsplit_once('/').map_or(resource, |(_, name)| name);
    // Keyhold has no IAM unique ids: the principal id is the account (root) or the name.
    let (kind, principal_id, user_name) = if caller.is_account_root() {
        ("Root", caller.account_id.as_str(), None)
    } else if resource.starts_with("user/") {
        ("IAMUser", name, Some(name))
    } else if resource.starts_with("role/") || resource.starts_with("assumed-role/") {
        ("AssumedRole", name, None)
    } else {
        ("Unknown", name, None)
    };
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"principalId\":");
    json_str(out, principal_id);
    out.extend_from_slice(b",\"arn\":");
    json_str(out, arn);
    out.extend_from_slice(b",\"accountId\":");
    json_str(out, &caller.account_id);
    if let Some(akid) = access_key_id {
        out.extend_from_slice(b",\"accessKeyId\":");
        json_str(out, akid);
    }
    if let Some(user) = user_name {
        out.extend_from_slice(b",\"userName\":");
        json_str(out, user);
    }
    out.push(b'}');
}

/// `requestParameters`; AWS always shows the algorithm of Encrypt and Decrypt, defaulted
/// when the request did not send one.
fn write_request_parameters(out: &mut Vec<u8>, call: &Call) {
    let Some(params) = &call.request_parameters else {
        out.extend_from_slice(b"null");
        return;
    };
    out.extend_from_slice(params.json());
    let defaulted = call.source == Source::Kms
        && matches!(call.event_name, "Encrypt" | "Decrypt")
        && !params.has_encryption_algorithm();
    if defaulted && out.last() == Some(&b'}') {
        out.pop();
        if out.last() != Some(&b'{') {
            out.push(b',');
        }
        out.extend_from_slice(b"\"encryptionAlgorithm\":\"SYMMETRIC_DEFAULT\"}");
    }
}

/// `additionalEventData`, when the response named key material or a custom key store.
fn write_additional_event_data(out: &mut Vec<u8>, peek: &ResponsePeek) {
    let store = peek
        .key_metadata
        .as_ref()
        .or(peek.replica_key_metadata.as_ref())
        .and_then(|m| m.get("CustomKeyStoreId"))
        .and_then(Value::as_str);
    // In name order, as CloudTrail's examples show them.
    let members = [
        ("customKeyStoreId", store),
        (
            "destinationKeyMaterialId",
            peek.destination_key_material_id.as_deref(),
        ),
        ("keyMaterialId", peek.key_material_id.as_deref()),
        (
            "sourceKeyMaterialId",
            peek.source_key_material_id.as_deref(),
        ),
    ];
    let mut first = true;
    for (name, value) in members {
        let Some(value) = value else { continue };
        out.extend_from_slice(if first {
            b",\"additionalEventData\":{\"".as_slice()
        } else {
            b",\"".as_slice()
        });
        first = false;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, value);
    }
    if !first {
        out.push(b'}');
    }
}

/// `ip` as text: an IPv4 address octet by octet (what nearly every client has; through
/// `Display` it cost about a thousand instructions per record), anything else through
/// `Display`.
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    let std::net::IpAddr::V4(v4) = ip else {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{ip}");
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if octet >= 100 {
            out.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            out.push(b'0' + octet / 10 % 10);
        }
        out.push(b'0' + octet % 10);
    }
}

/// What follows the `n`th colon of `arn` (its resource, for `n` = 5; all of it for 0), when
/// it has that many.
/// A byte loop rather than `str::split`: ARNs are short, and the splitter's set-up cost more
/// than the search.
fn after_colons(arn: &str, n: usize) -> Option<&str> {
    if n == 0 {
        return Some(arn);
    }
    let mut seen = 0;
    for (i, b) in arn.bytes().enumerate() {
        if b == b':' {
            seen += 1;
            if seen == n {
                return Some(&arn[i + 1..]);
            }
        }
    }
    None
}

/// Field `n` (from 0) of `arn`'s colon-separated fields (4: the account), or empty.
fn arn_field(arn: &str, n: usize) -> &str {
    let rest = after_colons(arn, n).unwrap_or("");
    rest.split_once(':').map_or(rest, |(field, _)| field)
}

/// The `User-Agent` as shown: its first 1024 characters, or empty when it is not UTF-8.
fn user_agent(header: Option<&http::HeaderValue>) -> &str {
    // Not `HeaderValue::to_str`, which refuses anything but visible ASCII a byte at a time.
    let text = header
        .and_then(|h| std::str::from_utf8(h.as_bytes()).ok())
        .unwrap_or("");
    // No more bytes than the limit means no more characters: nothing to count.
    if text.len() <= 1024 {
        return text;
    }
    match text.char_indices().nth(1024) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The key ARN `key_ref` names in the caller's account and Region, when it names a key (an
/// ARN or a key id); aliases are not resolved here.
fn key_arn<'a>(caller: &RequestContext, key_ref: Cow<'a, str>) -> Option<Cow<'a, str>> {
    if key_ref.starts_with("arn:") {
        return key_ref.contains(":key/").then_some(key_ref);
    }
    if key_ref.is_empty() || key_ref.starts_with("alias/") {
        return None;
    }
    Some(Cow::Owned(caller.key_arn(&key_ref)))
}

/// The keys a KMS call used, in AWS's order (ReEncrypt: source, then destination): from the
/// response when it names them, otherwise from the request's key id.
fn resources<'a>(
    caller: &RequestContext,
    peek: &'a ResponsePeek<'a>,
    call: &'a Call,
) -> Vec<Cow<'a, str>> {
    let meta_arn = |m: &'a Option<Map<String, Value>>| {
        m.as_ref()
            .and_then(|m| m.get("Arn"))
            .and_then(Value::as_str)
    };
    let mut arns: Vec<Cow<'a, str>> = [
        meta_arn(&peek.key_metadata),
        meta_arn(&peek.replica_key_metadata),
        peek.source_key_id.as_deref(),
        peek.key_id.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|a| a.starts_with("arn:"))
    .map(Cow::Borrowed)
    .collect();
    if let (true, Some(request)) = (arns.is_empty(), &call.request_parameters) {
        arns.extend(
            (0..super::params::KEY_REF_MEMBERS.len())
                .filter_map(|slot| key_arn(caller, request.key_ref(slot)?)),
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

/// Calls `f` with the current time as CloudTrail's `eventTime`. Formatted once per second per
/// thread: a busy server writes thousands of records with the same one.
fn with_event_time(f: impl FnOnce(&str)) {
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
        f(text)
    });
}

/// Appends `value` as JSON, or `null`.
fn json_value(out: &mut Vec<u8>, value: Option<&Value>) {
    let Some(value) = value else {
        out.extend_from_slice(b"null");
        return;
    };
    let mark = out.len();
    // A `Value` always serialises (its keys are strings); `null` stands in if it ever did not.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"null");
    }
}

/// Whether `s` has no `"`, no `\\` and no control character. Every byte is looked at, with no
/// early exit, so that the compiler checks sixteen at a time (a word-at-a-time loop cost about
/// 500 instructions for a 150-byte `User-Agent`); the strings of a record are short and
/// nearly always clean.
fn needs_no_escape(s: &[u8]) -> bool {
    s.iter().fold(0u8, |bad, &b| {
        bad | u8::from(b < 0x20 || b == b'"' || b == b'\\')
    }) == 0
}

/// Appends `s` as a JSON string (serde_json's escaping).
pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes only `"`, `\\` and control characters; the ids, ARNs and names of a
    // record have none, and are copied as they are without its serializer's set-up.
    if needs_no_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    let mark = out.len();
    // Writing to a `Vec` cannot fail; an empty string stands in if it ever did.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
