//! HMAC keys: `GenerateMac` and `VerifyMac`. The key's material is the HMAC key itself (as
//! long as the spec's hash: `HMAC_256` → 32 bytes), wrapped by the root key like any material.

use keyhold_crypto::asym;
use keyhold_kms_model::enums::{KeyUsageType, MacAlgorithmSpec};
use keyhold_kms_model::shapes::{
    GenerateMacRequest, GenerateMacResponse, VerifyMacRequest, VerifyMacResponse,
};
use keyhold_kms_model::{Blob, Exception};

use super::asymmetric::require_usage;
use super::crypto_ops::{dry_run, require_usable};
use super::specs::key_spec_info;
use super::{Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};

/// The MAC algorithm `requested`, if the key's spec offers it.
fn mac_algorithm(key: &LoadedKey, requested: MacAlgorithmSpec) -> KmsResult<asym::MacAlgorithm> {
    let refused = || {
        KmsError::new(
            Exception::InvalidKeyUsage,
            format!(
                "Algorithm {requested} is incompatible with key spec {}.",
                key.doc.key_spec
            ),
        )
    };
    if !key_spec_info(key.doc.key_spec).mac.contains(&requested) {
        return Err(refused());
    }
    asym::MacAlgorithm::from_aws_name(requested.as_str()).ok_or_else(refused)
}

impl Keys {
    /// `GenerateMac`.
    pub async fn generate_mac(
        &self,
        ctx: &RequestContext,
        req: GenerateMacRequest,
    ) -> KmsResult<GenerateMacResponse> {
        let access = Access::new(KeyAction::GenerateMac)
            .with_fact("kms:MacAlgorithm", req.mac_algorithm.as_str());
        let key = self.load_for_use(ctx, &req.key_id, &access).await?;
        require_usable(&key)?;
        require_usage(&key, KeyUsageType::GenerateVerifyMac, "GenerateMac")?;
        let algorithm = mac_algorithm(&key, req.mac_algorithm)?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let secret = self.private_key(&key).await?;
        let mac = asym::mac(algorithm, secret.expose(), req.message.as_bytes());
        self.record_use(ctx, &key, "GenerateMac");
        Ok(GenerateMacResponse {
            mac: Some(Blob::from(mac)),
            mac_algorithm: Some(req.mac_algorithm),
            key_id: Some(key.arn()),
        })
    }

    /// `VerifyMac`: a MAC that does not verify is `KMSInvalidMacException`.
    pub async fn verify_mac(
        &self,
        ctx: &RequestContext,
        req: VerifyMacRequest,
    ) -> KmsResult<VerifyMacResponse> {
        let access = Access::new(KeyAction::VerifyMac)
            .with_fact("kms:MacAlgorithm", req.mac_algorithm.as_str());
        let key = self.load_for_use(ctx, &req.key_id, &access).await?;
        require_usable(&key)?;
        require_usage(&key, KeyUsageType::GenerateVerifyMac, "VerifyMac")?;
        let algorithm = mac_algorithm(&key, req.mac_algorithm)?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let secret = self.private_key(&key).await?;
        if !asym::verify_mac(
            algorithm,
            secret.expose(),
            req.message.as_bytes(),
            req.mac.as_bytes(),
        ) {
            return Err(KmsError::new(Exception::KMSInvalidMac, String::new()));
        }
        self.record_use(ctx, &key, "VerifyMac");
        Ok(VerifyMacResponse {
            key_id: Some(key.arn()),
            mac_valid: Some(true),
            mac_algorithm: Some(req.mac_algorithm),
        })
    }
}
