//! JSON bodies of the XKS Proxy API v1, for both sides: Keyhold's KMS-side client
//! (`keyhold-xks`, which re-exports this crate as `keyhold_xks::wire`) and Keyhold's own XKS
//! proxy (`keyhold-xks-proxy`), plus test proxies.
//!
//! This is a leaf crate on purpose (serde and base64 only): the proxy needs the protocol's
//! types but not the KMS domain, HTTP client or rustls stack that `keyhold-xks` brings, and
//! `cargo xtask check-deps` keeps `keyhold-core` out of the proxy's dependency graph.
//!
//! Parsing is strict where it matters for safety: required fields must be present with the
//! right JSON types and Base64 fields must decode (standard alphabet, RFC 4648 §4), so a proxy
//! answering something odd is reported as `InvalidResponse` instead of being half-understood.
//! Unknown fields are accepted because the spec (Appendix B) lets both sides add fields.
#![warn(missing_docs)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod error_name;

pub use error_name::ErrorName;

/// Bytes carried as standard Base64 in JSON. `Debug` shows only the length, because these
/// fields hold plaintexts and key material that must never reach a log.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl std::fmt::Debug for B64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B64({} bytes)", self.0.len())
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(B64)
            .map_err(|e| serde::de::Error::custom(format!("invalid Base64: {e}")))
    }
}

/// `requestMetadata`. Which fields are present depends on the operation (spec §"request
/// metadata"); only `kmsRequestId` and `kmsOperation` are always there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    /// The caller's principal ARN (absent for GetHealthStatus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_principal_arn: Option<String>,
    /// The KMS operation that caused the call; proxies must accept unknown values.
    pub kms_operation: String,
    /// Opaque KMS request id.
    pub kms_request_id: String,
    /// The KMS key ARN (Encrypt/Decrypt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// Source VPC, when the KMS call came through a VPC endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpc: Option<String>,
    /// Source VPC endpoint, when the KMS call came through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpce: Option<String>,
    /// The AWS service that called KMS on the principal's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_via_service: Option<String>,
}

/// Body of GetHealthStatus, GetKeyMetadata: only metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOnlyRequest {
    /// `requestMetadata`.
    pub request_metadata: RequestMetadata,
}

/// `POST …/health` request body.
pub type HealthRequest = MetadataOnlyRequest;
/// `POST …/keys/{id}/metadata` request body.
pub type GetKeyMetadataRequest = MetadataOnlyRequest;

/// One entry of `ekmFleetDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EkmFleetDetail {
    /// Instance id.
    pub id: String,
    /// Instance model.
    pub model: String,
    /// `ACTIVE`, `DEGRADED` or `UNAVAILABLE`.
    pub health_status: String,
}

/// The `healthStatus` values the spec allows.
pub const HEALTH_STATUSES: [&str; 3] = ["ACTIVE", "DEGRADED", "UNAVAILABLE"];

/// GetHealthStatus response (every field required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// Number of proxy instances (> 0).
    pub xks_proxy_fleet_size: u32,
    /// Proxy vendor.
    pub xks_proxy_vendor: String,
    /// Proxy model.
    pub xks_proxy_model: String,
    /// External key manager vendor.
    pub ekm_vendor: String,
    /// 1–10 external key manager instances.
    pub ekm_fleet_details: Vec<EkmFleetDetail>,
}

impl HealthResponse {
    /// Checks what JSON types cannot: fleet size > 0, 1–10 fleet entries, and known health
    /// statuses. The error text names the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.xks_proxy_fleet_size == 0 {
            return Err("xksProxyFleetSize must be greater than 0".to_string());
        }
        let n = self.ekm_fleet_details.len();
        if !(1..=10).contains(&n) {
            return Err(format!("ekmFleetDetails has {n} entries, expected 1 to 10"));
        }
        if let Some(bad) = self
            .ekm_fleet_details
            .iter()
            .find(|d| !HEALTH_STATUSES.contains(&d.health_status.as_str()))
        {
            return Err(format!("unknown healthStatus {:?}", bad.health_status));
        }
        Ok(())
    }
}

/// GetKeyMetadata response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetKeyMetadataResponse {
    /// `AES_256` for usable keys.
    pub key_spec: String,
    /// Upper-case usages; must include ENCRYPT and DECRYPT for KMS.
    pub key_usage: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub key_status: String,
}

/// Encrypt request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest {
    /// `requestMetadata`.
    pub request_metadata: RequestMetadata,
    /// Plaintext (for KMS: its own inner ciphertext).
    pub plaintext: B64,
    /// `AES_GCM` in v1.
    pub encryption_algorithm: String,
    /// Optional AAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<B64>,
    /// `SHA_256` when a ciphertext data integrity value is wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value_algorithm: Option<String>,
}

/// Encrypt response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    /// Ciphertext, same length as the plaintext.
    pub ciphertext: B64,
    /// 12 or 16 bytes.
    pub initialization_vector: B64,
    /// 16 bytes.
    pub authentication_tag: B64,
    /// Up to 20 bytes, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<B64>,
    /// Present iff the request asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value: Option<B64>,
}

/// Decrypt request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest {
    /// `requestMetadata`.
    pub request_metadata: RequestMetadata,
    /// Ciphertext.
    pub ciphertext: B64,
    /// Metadata returned by Encrypt, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<B64>,
    /// `AES_GCM` in v1.
    pub encryption_algorithm: String,
    /// Optional AAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<B64>,
    /// IV returned by Encrypt.
    pub initialization_vector: B64,
    /// Tag returned by Encrypt.
    pub authentication_tag: B64,
}

/// Decrypt response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptResponse {
    /// The plaintext.
    pub plaintext: B64,
}

/// Error body of every non-200 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// E.g. `AuthenticationFailedException`. Kept as text because a proxy may send a name the
    /// spec does not define; [`ErrorBody::name`] reads it as an [`ErrorName`].
    pub error_name: String,
    /// Free text (< 512 printable ASCII), optional; KMS only logs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl ErrorBody {
    /// The body of an error answer naming `name`.
    pub fn new(name: ErrorName, error_message: Option<String>) -> Self {
        Self {
            error_name: name.as_str().to_string(),
            error_message,
        }
    }

    /// The spec's name for `error_name`, or `None` when the proxy sent a name the spec does
    /// not define (see [`ErrorName::from_wire`]).
    pub fn name(&self) -> Option<ErrorName> {
        ErrorName::from_wire(&self.error_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTH: &str = r#"{"xksProxyFleetSize":2,"xksProxyVendor":"V","xksProxyModel":"M",
        "ekmVendor":"E","ekmFleetDetails":[{"id":"h1","model":"m","healthStatus":"ACTIVE"}],
        "futureField":{"x":1}}"#;

    #[test]
    fn health_parses_and_tolerates_unknown_fields() {
        let h: HealthResponse = serde_json::from_str(HEALTH).expect("valid");
        assert_eq!(h.xks_proxy_fleet_size, 2);
        assert_eq!(h.ekm_fleet_details[0].health_status, "ACTIVE");
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn health_rejects_missing_fields_and_wrong_types() {
        let missing = HEALTH.replace(r#""ekmVendor":"E","#, "");
        assert!(serde_json::from_str::<HealthResponse>(&missing).is_err());
        let as_string = HEALTH.replace(r#""xksProxyFleetSize":2"#, r#""xksProxyFleetSize":"2""#);
        assert!(serde_json::from_str::<HealthResponse>(&as_string).is_err());
        let negative = HEALTH.replace(r#""xksProxyFleetSize":2"#, r#""xksProxyFleetSize":-1"#);
        assert!(serde_json::from_str::<HealthResponse>(&negative).is_err());
        let null = HEALTH.replace(r#""xksProxyVendor":"V""#, r#""xksProxyVendor":null"#);
        assert!(serde_json::from_str::<HealthResponse>(&null).is_err());
        assert!(serde_json::from_str::<HealthResponse>("[]").is_err());
    }

    #[test]
    fn health_semantic_checks() {
        let mut h: HealthResponse = serde_json::from_str(HEALTH).expect("valid");
        h.ekm_fleet_details[0].health_status = "SICK".to_string();
        assert!(h.validate().is_err());
        h.ekm_fleet_details.clear();
        assert!(h.validate().is_err());
        let zero = HEALTH.replace(r#""xksProxyFleetSize":2"#, r#""xksProxyFleetSize":0"#);
        let h: HealthResponse = serde_json::from_str(&zero).expect("types are right");
        assert!(h.validate().is_err());
    }

    #[test]
    fn health_request_has_exactly_the_spec_fields() {
        let req = HealthRequest {
            request_metadata: RequestMetadata {
                kms_operation: "KmsHealthCheck".to_string(),
                kms_request_id: "r-1".to_string(),
                ..Default::default()
            },
        };
        assert_eq!(
            serde_json::to_string(&req).expect("serializes"),
            r#"{"requestMetadata":{"kmsOperation":"KmsHealthCheck","kmsRequestId":"r-1"}}"#
        );
    }

    #[test]
    fn base64_fields_are_strict_and_round_trip() {
        let ok = r#"{"ciphertext":"AAEC","initializationVector":"AAAAAAAAAAAAAAAA",
            "authenticationTag":"AAAAAAAAAAAAAAAAAAAAAA=="}"#;
        let r: EncryptResponse = serde_json::from_str(ok).expect("valid");
        assert_eq!(r.ciphertext.0, vec![0, 1, 2]);
        assert_eq!(r.ciphertext_metadata, None);
        assert_eq!(format!("{:?}", r.ciphertext), "B64(3 bytes)");
        let url_safe = ok.replace("AAEC", "-_-_");
        assert!(serde_json::from_str::<EncryptResponse>(&url_safe).is_err());
        let no_tag = r#"{"ciphertext":"AAEC","initializationVector":"AAAAAAAAAAAAAAAA"}"#;
        assert!(serde_json::from_str::<EncryptResponse>(no_tag).is_err());
        let d: DecryptResponse = serde_json::from_str(r#"{"plaintext":"aGk="}"#).expect("valid");
        assert_eq!(d.plaintext.0, b"hi");
        assert!(serde_json::from_str::<DecryptResponse>(r#"{"plaintext":5}"#).is_err());
        let back: DecryptResponse =
            serde_json::from_str(&serde_json::to_string(&d).expect("ser")).expect("de");
        assert_eq!(back, d);
    }

    #[test]
    fn key_metadata_and_error_body() {
        let m: GetKeyMetadataResponse = serde_json::from_str(
            r#"{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}"#,
        )
        .expect("valid");
        assert_eq!(m.key_usage.len(), 2);
        assert!(serde_json::from_str::<GetKeyMetadataResponse>(
            r#"{"keySpec":"AES_256","keyUsage":"ENCRYPT","keyStatus":"ENABLED"}"#
        )
        .is_err());
        let e: ErrorBody =
            serde_json::from_str(r#"{"errorName":"ThrottlingException"}"#).expect("valid");
        assert_eq!(e.error_message, None);
        assert_eq!(e.name(), Some(ErrorName::Throttling));
        assert!(serde_json::from_str::<ErrorBody>(r#"{"errorMessage":"x"}"#).is_err());
        let unknown: ErrorBody =
            serde_json::from_str(r#"{"errorName":"TeapotException"}"#).expect("valid");
        assert_eq!(unknown.name(), None);
        let built = ErrorBody::new(ErrorName::KeyNotFound, Some("gone".to_string()));
        assert_eq!(
            serde_json::to_string(&built).expect("serializes"),
            r#"{"errorName":"KeyNotFoundException","errorMessage":"gone"}"#
        );
        assert_eq!(
            serde_json::to_string(&ErrorBody::new(ErrorName::Internal, None)).expect("ser"),
            r#"{"errorName":"InternalException"}"#
        );
    }
}
