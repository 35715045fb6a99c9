//! The stored form of a custom key store and its wire view.
//!
//! A store is a [`StoredCustomKeyStore`] row: name, type and `ConnectionState` are columns, the
//! rest is a [`StoreDoc`] in JSON. Secrets (the XKS secret access key, the kmsuser password)
//! are wrapped by the root key with associated data naming the row and the secret, so they are
//! never at rest in clear and a wrapped value copied to another row does not unwrap.

use base64::Engine;
use keyhold_crypto::{RootKey, SecretBytes};
use keyhold_kms_model::enums::{
    ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType, XksProxyConnectivityType,
};
use keyhold_kms_model::shapes::{CustomKeyStoresListEntry, XksProxyConfigurationType};
use keyhold_kms_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{KmsError, KmsResult};
use crate::ports::xks::{XksConnectivity, XksTarget};
use crate::ports::StoredCustomKeyStore;

/// The JSON document of a custom key store row.
///
/// The kind-specific properties are one [`StoreKind`], so a store is exactly one of the two
/// kinds. In JSON the document keeps the shape every release has written (`cloud_hsm` and
/// `xks` as two nullable objects, see [`StoredShape`]): documents already in databases load
/// unchanged, and a document written now still loads in the previous release (rollback).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "StoredShape", into = "StoredShape")]
pub struct StoreDoc {
    /// Creation time, seconds since the epoch (millisecond precision).
    pub creation_date: f64,
    /// Set exactly while the store is `FAILED`.
    pub connection_error_code: Option<ConnectionErrorCodeType>,
    /// The properties of the store's type.
    pub kind: StoreKind,
}

/// The type-specific properties of a custom key store.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreKind {
    /// An `AWS_CLOUDHSM` store.
    CloudHsm(CloudHsmDoc),
    /// An `EXTERNAL_KEY_STORE` store.
    External(XksDoc),
}

/// The stored JSON form of a [`StoreDoc`]: the type's properties in one of two nullable
/// fields. Exactly one must be set; a document with neither or both fails to load (no release
/// writes one).
#[derive(Serialize, Deserialize)]
struct StoredShape {
    creation_date: f64,
    #[serde(default)]
    connection_error_code: Option<ConnectionErrorCodeType>,
    #[serde(default)]
    cloud_hsm: Option<CloudHsmDoc>,
    #[serde(default)]
    xks: Option<XksDoc>,
}

impl TryFrom<StoredShape> for StoreDoc {
    type Error = String;

    fn try_from(s: StoredShape) -> Result<Self, String> {
        let kind = match (s.cloud_hsm, s.xks) {
            (Some(c), None) => StoreKind::CloudHsm(c),
            (None, Some(x)) => StoreKind::External(x),
            (None, None) => return Err("custom key store document without properties".into()),
            (Some(_), Some(_)) => {
                return Err("custom key store document with properties of both types".into())
            }
        };
        Ok(Self {
            creation_date: s.creation_date,
            connection_error_code: s.connection_error_code,
            kind,
        })
    }
}

impl From<StoreDoc> for StoredShape {
    fn from(d: StoreDoc) -> Self {
        let (cloud_hsm, xks) = match d.kind {
            StoreKind::CloudHsm(c) => (Some(c), None),
            StoreKind::External(x) => (None, Some(x)),
        };
        Self {
            creation_date: d.creation_date,
            connection_error_code: d.connection_error_code,
            cloud_hsm,
            xks,
        }
    }
}

impl StoreDoc {
    /// The `AWS_CLOUDHSM` properties, for a CloudHSM store.
    pub fn cloud_hsm(&self) -> Option<&CloudHsmDoc> {
        match &self.kind {
            StoreKind::CloudHsm(c) => Some(c),
            StoreKind::External(_) => None,
        }
    }

    /// The `EXTERNAL_KEY_STORE` properties, for an external key store.
    pub fn xks(&self) -> Option<&XksDoc> {
        match &self.kind {
            StoreKind::External(x) => Some(x),
            StoreKind::CloudHsm(_) => None,
        }
    }

    /// The `EXTERNAL_KEY_STORE` properties, mutable, for an external key store.
    pub fn xks_mut(&mut self) -> Option<&mut XksDoc> {
        match &mut self.kind {
            StoreKind::External(x) => Some(x),
            StoreKind::CloudHsm(_) => None,
        }
    }
}

/// Properties of an `AWS_CLOUDHSM` store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CloudHsmDoc {
    /// `CloudHsmClusterId`.
    pub cluster_id: String,
    /// `TrustAnchorCertificate`.
    pub trust_anchor_certificate: String,
    /// The kmsuser password, wrapped by the root key (base64).
    pub wrapped_password: String,
}

/// Properties of an `EXTERNAL_KEY_STORE` store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct XksDoc {
    /// `XksProxyConnectivity`.
    pub connectivity: XksProxyConnectivityType,
    /// `XksProxyUriEndpoint`.
    pub uri_endpoint: String,
    /// `XksProxyUriPath`.
    pub uri_path: String,
    /// `XksProxyVpcEndpointServiceName` (VPC connectivity only).
    #[serde(default)]
    pub vpc_endpoint_service_name: Option<String>,
    /// `XksProxyVpcEndpointServiceOwner` (VPC connectivity only).
    #[serde(default)]
    pub vpc_endpoint_service_owner: Option<String>,
    /// `AccessKeyId` of the proxy credential.
    pub access_key_id: String,
    /// `RawSecretAccessKey`, wrapped by the root key (base64).
    pub wrapped_secret: String,
}

/// Which secret of a store a wrapped value is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SecretKind {
    /// The XKS proxy's SigV4 secret access key.
    XksSecret,
    /// The CloudHSM kmsuser password.
    KmsUserPassword,
}

/// The associated data binding a wrapped secret to its row.
fn secret_aad(account: &str, region: &str, id: &str, kind: SecretKind) -> Vec<u8> {
    let what = match kind {
        SecretKind::XksSecret => "xks-secret-access-key",
        SecretKind::KmsUserPassword => "kmsuser-password",
    };
    format!("keyhold/custom-key-store/v1/{account}/{region}/{id}/{what}").into_bytes()
}

/// Wraps `secret` for the store `(account, region, id)`; returns base64.
pub(crate) fn wrap_secret(
    root: &RootKey,
    account: &str,
    region: &str,
    id: &str,
    kind: SecretKind,
    secret: &[u8],
) -> KmsResult<String> {
    let wrapped = root
        .wrap(&secret_aad(account, region, id, kind), secret)
        .map_err(KmsError::internal)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(wrapped))
}

/// Unwraps a secret of the store `row`.
pub(crate) fn unwrap_secret(
    root: &RootKey,
    row: &StoredCustomKeyStore,
    kind: SecretKind,
    wrapped_b64: &str,
) -> KmsResult<SecretBytes> {
    let wrapped = base64::engine::general_purpose::STANDARD
        .decode(wrapped_b64)
        .map_err(KmsError::internal)?;
    root.unwrap(
        &secret_aad(&row.account_id, &row.region, &row.id, kind),
        &wrapped,
    )
    .map_err(KmsError::internal)
}

/// A loaded store: its row and parsed document.
#[derive(Debug, Clone)]
pub struct LoadedStore {
    /// The row.
    pub row: StoredCustomKeyStore,
    /// The parsed document.
    pub doc: StoreDoc,
}

impl LoadedStore {
    /// Parses a row.
    pub fn from_row(row: StoredCustomKeyStore) -> KmsResult<Self> {
        let doc: StoreDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
        Ok(Self { row, doc })
    }

    /// The row's `ConnectionState` (an unknown stored value is an internal error).
    pub fn state(&self) -> KmsResult<ConnectionStateType> {
        ConnectionStateType::try_from(self.row.connection_state.as_str()).map_err(|_| {
            KmsError::internal(std::io::Error::other(format!(
                "custom key store {} has an unknown connection state",
                self.row.id
            )))
        })
    }

    /// The row's `CustomKeyStoreType`.
    pub fn store_type(&self) -> KmsResult<CustomKeyStoreType> {
        CustomKeyStoreType::try_from(self.row.store_type.as_str()).map_err(|_| {
            KmsError::internal(std::io::Error::other(format!(
                "custom key store {} has an unknown type",
                self.row.id
            )))
        })
    }

    /// A copy with `state` and the error code set, the document re-serialized and the version
    /// bumped, ready for a compare-and-set update.
    pub fn next(
        &self,
        state: ConnectionStateType,
        code: Option<ConnectionErrorCodeType>,
    ) -> KmsResult<StoredCustomKeyStore> {
        let mut doc = self.doc.clone();
        doc.connection_error_code = code;
        self.next_with(state, &self.row.name, &doc)
    }

    /// A copy with new state, name and document and the version bumped.
    pub fn next_with(
        &self,
        state: ConnectionStateType,
        name: &str,
        doc: &StoreDoc,
    ) -> KmsResult<StoredCustomKeyStore> {
        Ok(StoredCustomKeyStore {
            name: name.to_string(),
            connection_state: state.as_str().to_string(),
            version: self.row.version + 1,
            doc: serde_json::to_string(doc).map_err(KmsError::internal)?,
            ..self.row.clone()
        })
    }

    /// The wire entry: every field AWS returns for this type and state, never a secret.
    pub fn list_entry(&self) -> CustomKeyStoresListEntry {
        let state = self.state().ok();
        let failed = state == Some(ConnectionStateType::Failed);
        let d = &self.doc;
        CustomKeyStoresListEntry {
            custom_key_store_id: Some(self.row.id.clone()),
            custom_key_store_name: Some(self.row.name.clone()),
            cloud_hsm_cluster_id: d.cloud_hsm().map(|c| c.cluster_id.clone()),
            trust_anchor_certificate: d.cloud_hsm().map(|c| c.trust_anchor_certificate.clone()),
            connection_state: state,
            connection_error_code: failed.then(|| {
                d.connection_error_code
                    .unwrap_or(ConnectionErrorCodeType::InternalError)
            }),
            creation_date: Some(Timestamp(d.creation_date)),
            custom_key_store_type: self.store_type().ok(),
            xks_proxy_configuration: d.xks().map(|x| {
                let vpc = x.connectivity == XksProxyConnectivityType::VpcEndpointService;
                XksProxyConfigurationType {
                    connectivity: Some(x.connectivity),
                    access_key_id: Some(x.access_key_id.as_str().into()),
                    uri_endpoint: Some(x.uri_endpoint.clone()),
                    uri_path: Some(x.uri_path.clone()),
                    vpc_endpoint_service_name: vpc
                        .then(|| x.vpc_endpoint_service_name.clone())
                        .flatten(),
                    vpc_endpoint_service_owner: vpc
                        .then(|| x.vpc_endpoint_service_owner.clone())
                        .flatten(),
                }
            }),
        }
    }
}

impl XksDoc {
    /// The proxy target these properties describe, with `secret` as the SigV4 secret.
    pub(crate) fn target(&self, region: &str, secret: SecretBytes) -> XksTarget {
        XksTarget {
            uri_endpoint: self.uri_endpoint.clone(),
            uri_path: self.uri_path.clone(),
            connectivity: match self.connectivity {
                XksProxyConnectivityType::PublicEndpoint => XksConnectivity::PublicEndpoint,
                XksProxyConnectivityType::VpcEndpointService => {
                    XksConnectivity::VpcEndpointService {
                        service_name: self.vpc_endpoint_service_name.clone().unwrap_or_default(),
                        owner: self.vpc_endpoint_service_owner.clone(),
                    }
                }
            },
            access_key_id: self.access_key_id.clone(),
            secret_access_key: secret,
            region: region.to_string(),
        }
    }
}

/// A new custom key store id: `cks-` and 17 lowercase hex digits, like AWS's.
pub(crate) fn new_store_id() -> String {
    let bytes = keyhold_crypto::random_bytes(9);
    let hex: String = bytes.expose().iter().map(|b| format!("{b:02x}")).collect();
    format!("cks-{}", &hex[..17])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents exactly as the previous release wrote them (serde_json of the struct with two
    /// nullable kind fields), one per kind.
    const LEGACY_CLOUDHSM: &str = r#"{"creation_date":1700000000.123,"connection_error_code":"USER_LOCKED_OUT","cloud_hsm":{"cluster_id":"cluster-1234567abcd","trust_anchor_certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----","wrapped_password":"AAEC"},"xks":null}"#;
    const LEGACY_XKS: &str = r#"{"creation_date":1700000001.5,"connection_error_code":null,"cloud_hsm":null,"xks":{"connectivity":"VPC_ENDPOINT_SERVICE","uri_endpoint":"https://xks.example.com","uri_path":"/kms/xks/v1","vpc_endpoint_service_name":"com.amazonaws.vpce.us-east-1.vpce-svc-0123","vpc_endpoint_service_owner":null,"access_key_id":"AKIAIOSFODNN7EXAMPLE","wrapped_secret":"AwQF"}}"#;

    #[test]
    fn documents_of_the_previous_release_load_and_are_written_back_byte_identical() {
        let hsm: StoreDoc = serde_json::from_str(LEGACY_CLOUDHSM).expect("cloudhsm doc");
        assert_eq!(
            hsm.connection_error_code,
            Some(ConnectionErrorCodeType::UserLockedOut)
        );
        let StoreKind::CloudHsm(c) = &hsm.kind else {
            panic!("not a CloudHSM store: {hsm:?}");
        };
        assert_eq!(c.cluster_id, "cluster-1234567abcd");
        assert!(hsm.xks().is_none());
        assert_eq!(serde_json::to_string(&hsm).expect("json"), LEGACY_CLOUDHSM);

        let xks: StoreDoc = serde_json::from_str(LEGACY_XKS).expect("xks doc");
        let x = xks.xks().expect("external key store");
        assert_eq!(x.connectivity, XksProxyConnectivityType::VpcEndpointService);
        assert_eq!(x.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert!(xks.cloud_hsm().is_none());
        assert_eq!(serde_json::to_string(&xks).expect("json"), LEGACY_XKS);
    }

    #[test]
    fn optional_fields_may_be_absent_but_the_kind_must_be_exactly_one() {
        let minimal = r#"{"creation_date":1.0,"cloud_hsm":{"cluster_id":"c","trust_anchor_certificate":"t","wrapped_password":"p"}}"#;
        let doc: StoreDoc = serde_json::from_str(minimal).expect("minimal doc");
        assert_eq!(doc.connection_error_code, None);
        assert!(doc.cloud_hsm().is_some());

        let neither = r#"{"creation_date":1.0,"cloud_hsm":null,"xks":null}"#;
        assert!(serde_json::from_str::<StoreDoc>(neither).is_err());
        let both = LEGACY_XKS.replace(
            r#""cloud_hsm":null"#,
            r#""cloud_hsm":{"cluster_id":"c","trust_anchor_certificate":"t","wrapped_password":"p"}"#,
        );
        assert!(serde_json::from_str::<StoreDoc>(&both).is_err());
    }
}
