//! [`XksClient`] as the domain's [`XksConnector`]: the domain's requests turned into the wire
//! bodies of XKS API v1, and the answers back into the domain's types.

use async_trait::async_trait;
use keyhold_core::ports::xks::{
    EkmFleetMember, HealthCheckReason, XksConnector, XksDecryptInput, XksEncryptInput,
    XksEncryptOutput, XksFailure, XksHealth, XksKeyCall, XksKeyMetadata, XksKeyRequestMetadata,
    XksRequestMetadata, XksTarget,
};
use keyhold_crypto::SecretBytes;

use super::XksClient;
use crate::wire;

#[async_trait]
impl XksConnector for XksClient {
    async fn get_health_status(
        &self,
        target: &XksTarget,
        reason: HealthCheckReason,
        metadata: &XksRequestMetadata,
    ) -> Result<XksHealth, XksFailure> {
        let request = wire::HealthRequest {
            request_metadata: wire::RequestMetadata {
                kms_operation: kms_operation(reason).to_string(),
                kms_request_id: metadata.kms_request_id.clone(),
                ..Default::default()
            },
        };
        let health: wire::HealthResponse = self.call(target, "/health", &request).await?;
        health
            .validate()
            .map_err(|detail| XksFailure::InvalidResponse { detail })?;
        if health
            .ekm_fleet_details
            .iter()
            .all(|d| d.health_status == "UNAVAILABLE")
        {
            return Err(XksFailure::AllEkmsUnavailable);
        }
        Ok(XksHealth {
            xks_proxy_fleet_size: health.xks_proxy_fleet_size,
            xks_proxy_vendor: health.xks_proxy_vendor,
            xks_proxy_model: health.xks_proxy_model,
            ekm_vendor: health.ekm_vendor,
            ekm_fleet_details: health
                .ekm_fleet_details
                .into_iter()
                .map(|d| EkmFleetMember {
                    id: d.id,
                    model: d.model,
                    health_status: d.health_status,
                })
                .collect(),
        })
    }

    async fn get_key_metadata(&self, call: XksKeyCall<'_>) -> Result<XksKeyMetadata, XksFailure> {
        let request = wire::GetKeyMetadataRequest {
            request_metadata: key_metadata(call.metadata),
        };
        let answer =
            XksClient::get_key_metadata(self, call.target, call.external_key_id, &request).await?;
        Ok(XksKeyMetadata {
            key_spec: answer.key_spec,
            key_usage: answer.key_usage,
            key_status: answer.key_status,
        })
    }

    async fn encrypt(
        &self,
        call: XksKeyCall<'_>,
        input: &XksEncryptInput,
    ) -> Result<XksEncryptOutput, XksFailure> {
        let request = wire::EncryptRequest {
            request_metadata: key_metadata(call.metadata),
            plaintext: wire::B64(input.plaintext.clone()),
            encryption_algorithm: AES_GCM.to_string(),
            additional_authenticated_data: (!input.aad.is_empty())
                .then(|| wire::B64(input.aad.clone())),
            ciphertext_data_integrity_value_algorithm: input
                .request_cdiv
                .then(|| SHA_256.to_string()),
        };
        let answer = XksClient::encrypt(self, call.target, call.external_key_id, &request).await?;
        Ok(XksEncryptOutput {
            ciphertext: answer.ciphertext.0,
            iv: answer.initialization_vector.0,
            tag: answer.authentication_tag.0,
            ciphertext_metadata: answer.ciphertext_metadata.map(|m| m.0).unwrap_or_default(),
            cdiv: answer.ciphertext_data_integrity_value.map(|c| c.0),
        })
    }

    async fn decrypt(
        &self,
        call: XksKeyCall<'_>,
        input: &XksDecryptInput,
    ) -> Result<SecretBytes, XksFailure> {
        let request = wire::DecryptRequest {
            request_metadata: key_metadata(call.metadata),
            ciphertext: wire::B64(input.ciphertext.clone()),
            ciphertext_metadata: (!input.ciphertext_metadata.is_empty())
                .then(|| wire::B64(input.ciphertext_metadata.clone())),
            encryption_algorithm: AES_GCM.to_string(),
            additional_authenticated_data: (!input.aad.is_empty())
                .then(|| wire::B64(input.aad.clone())),
            initialization_vector: wire::B64(input.iv.clone()),
            authentication_tag: wire::B64(input.tag.clone()),
        };
        let answer = XksClient::decrypt(self, call.target, call.external_key_id, &request).await?;
        Ok(SecretBytes::new(answer.plaintext.0))
    }
}

/// The only `encryptionAlgorithm` of XKS API v1.
pub const AES_GCM: &str = "AES_GCM";
/// The only `ciphertextDataIntegrityValueAlgorithm` of XKS API v1.
pub const SHA_256: &str = "SHA_256";

fn key_metadata(m: &XksKeyRequestMetadata) -> wire::RequestMetadata {
    wire::RequestMetadata {
        aws_principal_arn: Some(m.aws_principal_arn.clone()),
        kms_operation: m.kms_operation.clone(),
        kms_request_id: m.kms_request_id.clone(),
        kms_key_arn: m.kms_key_arn.clone(),
        ..Default::default()
    }
}

/// The `kmsOperation` value for a health check.
pub fn kms_operation(reason: HealthCheckReason) -> &'static str {
    match reason {
        HealthCheckReason::Create => "CreateCustomKeyStore",
        HealthCheckReason::Connect => "ConnectCustomKeyStore",
        HealthCheckReason::Update => "UpdateCustomKeyStore",
        HealthCheckReason::Periodic => "KmsHealthCheck",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reasons_name_the_kms_operation() {
        assert_eq!(
            kms_operation(HealthCheckReason::Create),
            "CreateCustomKeyStore"
        );
        assert_eq!(
            kms_operation(HealthCheckReason::Connect),
            "ConnectCustomKeyStore"
        );
        assert_eq!(
            kms_operation(HealthCheckReason::Update),
            "UpdateCustomKeyStore"
        );
        assert_eq!(kms_operation(HealthCheckReason::Periodic), "KmsHealthCheck");
    }
}
