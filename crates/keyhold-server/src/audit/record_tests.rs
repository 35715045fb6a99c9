//! The hand-written record is checked against the event as it was built before, with
//! `serde_json::json!` from the same call: [`oracle`] states each member's rule plainly, and
//! every case must give the same JSON (apart from `eventID` and `eventTime`, which are new
//! each time and checked on their own).

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::*;
use crate::audit::Call;

/// The record of `call` built from plain rules (the pre-hand-written event, as the oracle).
fn oracle(call: &Call, request_id: &str, error: Option<(&str, &str)>) -> Value {
    let caller = call.context.as_ref();
    // The credential scope, read here with a plain split.
    let authorization = call.authorization.as_ref().and_then(|h| h.to_str().ok());
    let credential = authorization
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|c| c.split([',', ' ']).next().unwrap_or(""));
    let access_key_id = credential.and_then(|c| c.split('/').next());
    let region = match (caller, credential.and_then(|c| c.split('/').nth(2))) {
        (Some(c), _) => c.region.clone(),
        (None, Some(r)) => r.to_owned(),
        (None, None) => "us-east-1".to_owned(),
    };
    let peek = match (&call.response, error) {
        (Some(peek), None) if call.source == Source::Kms => peek.clone(),
        _ => ResponsePeek::default(),
    };
    let request_value = call.request_parameters.as_ref().map(|p| p.to_value());
    let request = request_value.as_ref();
    let mut arns: Vec<String> = Vec::new();
    if let (Source::Kms, Some(caller)) = (call.source, caller) {
        let meta_arn = |m: &Option<Map<String, Value>>| {
            m.as_ref()
                .and_then(|m| m.get("Arn"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        arns = [
            meta_arn(&peek.key_metadata),
            meta_arn(&peek.replica_key_metadata),
            peek.source_key_id.as_deref().map(str::to_owned),
            peek.key_id.as_deref().map(str::to_owned),
        ]
        .into_iter()
        .flatten()
        .filter(|a| a.starts_with("arn:"))
        .collect();
        if arns.is_empty() {
            for name in ["keyId", "targetKeyId", "destinationKeyId"] {
                let Some(k) = request.and_then(|r| r.get(name)).and_then(Value::as_str) else {
                    continue;
                };
                if k.starts_with("arn:") {
                    if k.contains(":key/") {
                        arns.push(k.to_owned());
                    }
                } else if !k.is_empty() && !k.starts_with("alias/") {
                    arns.push(keyhold_core::arn::key_arn(&region, &caller.account_id, k));
                }
            }
        }
        arns.dedup();
    }
    let mut request_parameters = request_value.clone();
    if call.source == Source::Kms && matches!(call.event_name, "Encrypt" | "Decrypt") {
        if let Some(Value::Object(p)) = request_parameters.as_mut() {
            p.entry("encryptionAlgorithm")
                .or_insert_with(|| Value::String("SYMMETRIC_DEFAULT".into()));
        }
    }
    let response_elements = match (call.source, error) {
        (Source::Kms, None) => {
            params::response_elements(call.event_name, &peek, arns.first().map(String::as_str))
        }
        _ => None,
    };
    let mut identity = Map::new();
    match caller {
        None => {
            identity.insert("type".into(), json!("Unknown"));
        }
        Some(c) => {
            let resource = c.principal_arn.splitn(6, ':').nth(5).unwrap_or("");
            let name = resource.rsplit('/').next().unwrap_or("");
            // The rule as a table: the resource's prefix names the identity type.
            let types = [
                ("user/", "IAMUser"),
                ("role/", "AssumedRole"),
                ("assumed-role/", "AssumedRole"),
            ];
            let root = c.principal_arn == format!("arn:aws:iam::{}:root", c.account_id);
            let kind = match types
                .iter()
                .find(|(prefix, _)| resource.starts_with(prefix))
            {
                _ if root => "Root",
                Some((_, kind)) => kind,
                None => "Unknown",
            };
            let principal = if root { c.account_id.as_str() } else { name };
            let user = (kind == "IAMUser").then_some(name);
            identity.insert("type".into(), json!(kind));
            identity.insert("principalId".into(), json!(principal));
            identity.insert("arn".into(), json!(c.principal_arn));
            identity.insert("accountId".into(), json!(c.account_id));
            if let Some(user) = user {
                identity.insert("userName".into(), json!(user));
            }
        }
    }
    if let Some(akid) = access_key_id {
        identity.insert("accessKeyId".into(), json!(akid));
    }
    let user_agent: String = call
        .user_agent
        .as_ref()
        .and_then(|h| std::str::from_utf8(h.as_bytes()).ok())
        .unwrap_or("")
        .chars()
        .take(1024)
        .collect();
    let mut event = json!({
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventSource": call.source.event_source(),
        "eventName": call.event_name,
        "awsRegion": region,
        "sourceIPAddress": call.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        "userAgent": user_agent,
        "requestParameters": request_parameters,
        "responseElements": response_elements,
        "requestID": request_id,
        "readOnly": read_only(call.event_name),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "eventCategory": "Management",
    });
    let obj = event.as_object_mut().expect("object");
    if let Some((name, message)) = error {
        obj.insert("errorCode".into(), json!(name));
        if !message.is_empty() {
            obj.insert("errorMessage".into(), json!(message));
        }
    }
    let mut extra = Map::new();
    let store = peek
        .key_metadata
        .as_ref()
        .or(peek.replica_key_metadata.as_ref())
        .and_then(|m| m.get("CustomKeyStoreId"))
        .and_then(Value::as_str);
    for (name, v) in [
        ("keyMaterialId", peek.key_material_id.as_deref()),
        (
            "sourceKeyMaterialId",
            peek.source_key_material_id.as_deref(),
        ),
        (
            "destinationKeyMaterialId",
            peek.destination_key_material_id.as_deref(),
        ),
        ("customKeyStoreId", store),
    ] {
        if let Some(v) = v {
            extra.insert(name.into(), json!(v));
        }
    }
    if !extra.is_empty() {
        obj.insert("additionalEventData".into(), Value::Object(extra));
    }
    if !arns.is_empty() {
        let resources: Vec<Value> = arns
            .iter()
            .map(|a| json!({"accountId": a.split(':').nth(4).unwrap_or(""), "type": "AWS::KMS::Key", "ARN": a}))
            .collect();
        obj.insert("resources".into(), Value::Array(resources));
    }
    if let Some(c) = caller {
        obj.insert("recipientAccountId".into(), json!(c.account_id));
    }
    event
}

const ACCOUNT: &str = "111122223333";
const KEY_ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// A call of `event_name`, authenticated as `principal` when given (in Region eu-west-1; the
/// header's credential scope names eu-central-1, which only an unauthenticated call shows).
fn call(event_name: &'static str, principal: Option<&str>) -> Call {
    Call {
        source: Source::Kms,
        event_name,
        authorization: Some(http::HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/eu-central-1/kms/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=0123",
        )),
        context: principal.map(|p| keyhold_core::RequestContext {
            account_id: ACCOUNT.to_owned(),
            region: "eu-west-1".to_owned(),
            principal_arn: p.to_owned(),
            request_id: "req-1".to_owned(),
            identity_policies: Default::default(),
            source_ip: None,
            secure_transport: false,
        }),
        user_agent: Some(http::HeaderValue::from_static("aws-cli/2.15 Python/3.11")),
        source_ip: Some("127.0.0.1".parse().expect("ip")),
        request_parameters: None,
        response: None,
    }
}

/// Request parameters holding `value`.
fn params_of(value: Value) -> params::RequestParameters {
    params::RequestParameters::from_value(&value)
}

/// The peek of a response body, as the record is given it.
fn peek_of(body: &str) -> ResponsePeek<'static> {
    ResponsePeek::read(body.as_bytes()).into_owned()
}

/// Cases covering each member's branches.
fn cases() -> Vec<(Call, Option<(&'static str, &'static str)>)> {
    let root = Some("arn:aws:iam::111122223333:root");
    let mut out = Vec::new();

    let mut c = call("Encrypt", root);
    c.request_parameters = Some(params_of(
        json!({"keyId": "alias/a", "encryptionContext": {"Dept": "Eng"}}),
    ));
    c.response = Some(peek_of(&format!(
        r#"{{"CiphertextBlob":"AAAA","KeyId":"{KEY_ARN}","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#
    )));
    out.push((c, None));

    let mut c = call("Decrypt", Some("arn:aws:iam::111122223333:user/alice"));
    c.request_parameters = Some(params_of(json!({})));
    c.response = Some(peek_of(&format!(
        r#"{{"KeyId":"{KEY_ARN}","Plaintext":"c2VjcmV0","KeyMaterialId":"m\u00e9\"1"}}"#
    )));
    out.push((c, None));

    let mut c = call(
        "Encrypt",
        Some("arn:aws:sts::111122223333:assumed-role/r/sess"),
    );
    c.request_parameters = Some(params_of(
        json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "encryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
    ));
    out.push((
        c,
        Some((
            "NotFoundException",
            "Key 'x' does not exist\n\"quoted\"\t\u{1}",
        )),
    ));

    let mut c = call("ReEncrypt", Some("arn:aws:iam::111122223333:role/admin"));
    c.request_parameters = Some(params_of(json!({"destinationKeyId": KEY_ARN})));
    c.response = Some(peek_of(&format!(
        r#"{{"SourceKeyId":"arn:aws:kms:eu-west-1:111122223333:key/src","KeyId":"{KEY_ARN}",
            "SourceKeyMaterialId":"s","DestinationKeyMaterialId":"d"}}"#
    )));
    out.push((c, None));

    let mut c = call("CreateKey", Some("arn:aws:iam::111122223333:group/odd"));
    c.request_parameters = Some(params_of(
        json!({"description": "d", "tags": [{"tagKey": "k"}]}),
    ));
    c.response = Some(peek_of(&format!(
        r#"{{"KeyMetadata":{{"Arn":"{KEY_ARN}","KeyId":"k","CreationDate":1660171107.0,
            "CustomKeyStoreId":"cks-1234567890abcdef0","Enabled":true}}}}"#
    )));
    out.push((c, None));

    let mut c = call("CreateAlias", root);
    c.request_parameters = Some(params_of(
        json!({"aliasName": "alias/x", "targetKeyId": "k-1"}),
    ));
    c.response = Some(peek_of(""));
    out.push((c, None));

    let mut c = call("ListKeys", None);
    c.authorization = None;
    c.user_agent = None;
    c.source_ip = None;
    out.push((c, Some(("UnrecognizedClientException", ""))));

    let mut c = call("GenerateDataKey", None);
    c.source_ip = Some("::1".parse::<IpAddr>().expect("ip"));
    c.user_agent = Some(
        http::HeaderValue::from_str(&format!("ua \"q\" \\ {}", "é".repeat(1100))).expect("ua"),
    );
    out.push((
        c,
        Some(("InvalidSignatureException", "The signature does not match.")),
    ));

    let mut c = call("CreateCluster", root);
    c.source = Source::CloudHsm;
    c.request_parameters = Some(params_of(json!({"clusterId": "cluster-1"})));
    c.response = Some(peek_of(r#"{"KeyId":"arn:aws:kms:x:1:key/k"}"#));
    out.push((c, None));

    let mut c = call("ScheduleKeyDeletion", root);
    c.request_parameters = Some(params_of(json!({"keyId": KEY_ARN})));
    c.response = Some(peek_of(&format!(
        r#"{{"KeyId":"{KEY_ARN}","DeletionDate":1660171107.0,"KeyState":"PendingDeletion","PendingWindowInDays":7}}"#
    )));
    out.push((c, None));

    // Read from a request body by the scanner, as the server does: the key id for
    // `resources` and the defaulted algorithm come from what it noted.
    let mut c = call("Encrypt", root);
    let encrypt = keyhold_kms_model::input_shape(keyhold_kms_model::Operation::Encrypt);
    c.request_parameters = params::request_parameters(
        encrypt,
        br#"{"Plaintext":"QUJD","KeyId":"k-\u00e9","EncryptionContext":{"a":"b"},"GrantTokens":["t"]}"#,
    );
    assert!(c.request_parameters.is_some());
    out.push((c, Some(("DisabledException", "disabled"))));

    let mut c = call("Decrypt", root);
    c.request_parameters = None;
    c.response = Some(peek_of("not json"));
    out.push((c, None));
    out
}

#[test]
fn hand_written_records_agree_with_the_oracle() {
    for (i, (call, error)) in cases().iter().enumerate() {
        let mut line = Vec::new();
        write_event(&mut line, call, "req-1", *error);
        assert_eq!(line.last(), Some(&b'\n'), "case {i}");
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "case {i}");
        let mut got: Value = serde_json::from_slice(&line).expect("a JSON record");
        let obj = got.as_object_mut().expect("object");
        let id = obj.remove("eventID").expect("eventID");
        let id = uuid::Uuid::parse_str(id.as_str().expect("string")).expect("uuid");
        assert_eq!(id.get_version_num(), 4, "case {i}");
        let time = obj.remove("eventTime").expect("eventTime");
        assert_eq!(time.as_str().map(str::len), Some(20), "case {i}");
        assert_eq!(got, oracle(call, "req-1", *error), "case {i}");
    }
}

#[test]
fn json_strings_are_escaped_as_serde_json_escapes_them() {
    let mut samples: Vec<String> = (0u8..=0x7f).map(|b| format!("a{}b", b as char)).collect();
    samples.extend(["", "\"", "\\\\", "é€😀", "\u{7f}\u{80}", "x\u{0}y\u{1f}"].map(String::from));
    for s in samples {
        let mut out = Vec::new();
        json_str(&mut out, &s);
        assert_eq!(out, serde_json::to_vec(&s).expect("json"), "{s:?}");
    }
}

#[test]
fn event_time_is_the_current_second_in_iso_8601() {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    for _ in 0..3 {
        let before = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut text = String::new();
        with_event_time(|t| text = t.to_owned());
        let after = time::OffsetDateTime::now_utc().unix_timestamp();
        let parsed = time::PrimitiveDateTime::parse(&text, &format)
            .expect("ISO 8601")
            .assume_utc()
            .unix_timestamp();
        assert!(before <= parsed && parsed <= after, "{text}");
    }
}

#[test]
fn addresses_are_written_as_display_writes_them() {
    let samples = [
        "0.0.0.0",
        "127.0.0.1",
        "10.0.100.9",
        "192.168.20.255",
        "255.255.255.255",
        "::1",
        "::ffff:10.1.2.3",
        "2001:db8::8a2e:370:7334",
    ];
    for s in samples {
        let ip: std::net::IpAddr = s.parse().expect("ip");
        let mut out = Vec::new();
        write_ip(&mut out, ip);
        assert_eq!(String::from_utf8(out).expect("text"), ip.to_string());
    }
}

#[test]
fn a_user_agent_is_cut_at_1024_characters() {
    let exact = "u".repeat(1024);
    let value = http::HeaderValue::from_str(&exact).expect("ua");
    assert_eq!(user_agent(Some(&value)), exact);
    let long = http::HeaderValue::from_str(&"v".repeat(1500)).expect("ua");
    assert_eq!(user_agent(Some(&long)), "v".repeat(1024));
    assert_eq!(user_agent(None), "");
    // Characters, not bytes; and a value that is not UTF-8 is not shown.
    let accents = http::HeaderValue::from_str(&"é".repeat(1500)).expect("ua");
    assert_eq!(user_agent(Some(&accents)), "é".repeat(1024));
    let bytes = http::HeaderValue::from_bytes(b"ua \xff").expect("ua");
    assert_eq!(user_agent(Some(&bytes)), "");
}

/// The check finds a character to escape wherever it is.
#[test]
fn an_escape_is_found_at_every_position() {
    let specials: Vec<String> = (0u8..0x20)
        .map(|b| (b as char).to_string())
        .chain(["\"", "\\", "\u{7f}", "é", "😀", "~", " "].map(String::from))
        .collect();
    for special in &specials {
        for at in 0..20 {
            for len in [at + 1, 20, 23] {
                let s = format!("{}{special}{}", "x".repeat(at), "y".repeat(len - at - 1));
                let mut out = Vec::new();
                json_str(&mut out, &s);
                assert_eq!(out, serde_json::to_vec(&s).expect("json"), "{s:?}");
            }
        }
    }
}

#[test]
fn arn_fields_are_found_as_split_finds_them() {
    let arns = [
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd",
        "arn:aws:iam::111122223333:user/dev/alice",
        "arn:aws:sts::111122223333:assumed-role/r/s:x",
        "arn:aws:iam::1:root",
        "no colons",
        "",
        ":::::",
    ];
    for arn in arns {
        for n in 0..7 {
            assert_eq!(
                arn_field(arn, n),
                arn.split(':').nth(n).unwrap_or(""),
                "{arn} {n}"
            );
        }
        assert_eq!(
            after_colons(arn, 5).unwrap_or(""),
            arn.splitn(6, ':').nth(5).unwrap_or(""),
            "{arn}"
        );
    }
}
