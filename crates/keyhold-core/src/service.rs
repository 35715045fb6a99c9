//! The KMS API as Keyhold answers it: `impl KmsService for Kms`.
//!
//! The generated [`KmsService`] trait has one method per operation of the pinned model, each
//! answering `UnsupportedOperationException` until it is implemented here. This file is the
//! table of contents of the implemented API: each method hands the typed request to the
//! domain module that owns the operation family (`keys`, `custom_key_stores`, ...). To add an
//! operation, implement its method here and the operation in its family's module; the
//! server's dispatch is generated and needs no change.

use keyhold_kms_model::service::KmsService;
use keyhold_kms_model::shapes::*;
use keyhold_kms_model::Exception;

use crate::{Kms, KmsError, KmsResult, RequestContext};

impl KmsService for Kms {
    type Context = RequestContext;
    type Error = KmsError;

    fn exception(exception: Exception, message: String) -> KmsError {
        KmsError::new(exception, message)
    }

    // Keys: creation, description, listing (`keys/create.rs`, `keys/mod.rs`).

    async fn create_key(
        &self,
        ctx: &RequestContext,
        input: CreateKeyRequest,
    ) -> KmsResult<CreateKeyResponse> {
        let mut facts = vec![(
            "kms:BypassPolicyLockoutSafetyCheck",
            input
                .bypass_policy_lockout_safety_check
                .unwrap_or(false)
                .to_string(),
        )];
        if let Some(spec) = input.key_spec {
            facts.push(("kms:KeySpec", spec.as_str().to_string()));
        }
        if let Some(usage) = input.key_usage {
            facts.push(("kms:KeyUsage", usage.as_str().to_string()));
        }
        if let Some(origin) = input.origin {
            facts.push(("kms:KeyOrigin", origin.as_str().to_string()));
        }
        facts.push((
            "kms:MultiRegion",
            input.multi_region.unwrap_or(false).to_string(),
        ));
        self.account_action(ctx, "kms:CreateKey", &facts)?;
        self.keys.create_key(ctx, input).await
    }

    async fn describe_key(
        &self,
        ctx: &RequestContext,
        input: DescribeKeyRequest,
    ) -> KmsResult<DescribeKeyResponse> {
        self.keys.describe_key(ctx, input).await
    }

    async fn list_keys(
        &self,
        ctx: &RequestContext,
        input: ListKeysRequest,
    ) -> KmsResult<ListKeysResponse> {
        self.account_action(ctx, "kms:ListKeys", &[])?;
        self.keys.list_keys(ctx, input).await
    }

    // Cryptographic operations (`keys/crypto_ops.rs`, `keys/data_keys.rs`, `keys/cloudhsm.rs`).

    async fn encrypt(
        &self,
        ctx: &RequestContext,
        input: EncryptRequest,
    ) -> KmsResult<EncryptResponse> {
        self.keys.encrypt(ctx, input).await
    }

    async fn decrypt(
        &self,
        ctx: &RequestContext,
        input: DecryptRequest,
    ) -> KmsResult<DecryptResponse> {
        self.keys.decrypt(ctx, input).await
    }

    async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        input: GenerateDataKeyRequest,
    ) -> KmsResult<GenerateDataKeyResponse> {
        self.keys.generate_data_key(ctx, input).await
    }

    async fn generate_data_key_without_plaintext(
        &self,
        ctx: &RequestContext,
        input: GenerateDataKeyWithoutPlaintextRequest,
    ) -> KmsResult<GenerateDataKeyWithoutPlaintextResponse> {
        self.keys
            .generate_data_key_without_plaintext(ctx, input)
            .await
    }

    async fn re_encrypt(
        &self,
        ctx: &RequestContext,
        input: ReEncryptRequest,
    ) -> KmsResult<ReEncryptResponse> {
        self.keys.re_encrypt(ctx, input).await
    }

    async fn generate_random(
        &self,
        ctx: &RequestContext,
        input: GenerateRandomRequest,
    ) -> KmsResult<GenerateRandomResponse> {
        self.account_action(ctx, "kms:GenerateRandom", &[])?;
        self.keys.generate_random(ctx, input).await
    }

    // Key deletion (`keys/deletion.rs`).

    async fn schedule_key_deletion(
        &self,
        ctx: &RequestContext,
        input: ScheduleKeyDeletionRequest,
    ) -> KmsResult<ScheduleKeyDeletionResponse> {
        self.keys.schedule_key_deletion(ctx, input).await
    }

    async fn cancel_key_deletion(
        &self,
        ctx: &RequestContext,
        input: CancelKeyDeletionRequest,
    ) -> KmsResult<CancelKeyDeletionResponse> {
        self.keys.cancel_key_deletion(ctx, input).await
    }

    // Custom key stores (`custom_key_stores/operations.rs`, `custom_key_stores/update.rs`).

    async fn create_custom_key_store(
        &self,
        ctx: &RequestContext,
        input: CreateCustomKeyStoreRequest,
    ) -> KmsResult<CreateCustomKeyStoreResponse> {
        self.account_action(ctx, "kms:CreateCustomKeyStore", &[])?;
        self.custom_key_stores
            .create_custom_key_store(ctx, input)
            .await
    }

    async fn describe_custom_key_stores(
        &self,
        ctx: &RequestContext,
        input: DescribeCustomKeyStoresRequest,
    ) -> KmsResult<DescribeCustomKeyStoresResponse> {
        self.account_action(ctx, "kms:DescribeCustomKeyStores", &[])?;
        self.custom_key_stores
            .describe_custom_key_stores(ctx, input)
            .await
    }

    async fn connect_custom_key_store(
        &self,
        ctx: &RequestContext,
        input: ConnectCustomKeyStoreRequest,
    ) -> KmsResult<ConnectCustomKeyStoreResponse> {
        self.account_action(ctx, "kms:ConnectCustomKeyStore", &[])?;
        self.custom_key_stores
            .connect_custom_key_store(ctx, input)
            .await
    }

    async fn disconnect_custom_key_store(
        &self,
        ctx: &RequestContext,
        input: DisconnectCustomKeyStoreRequest,
    ) -> KmsResult<DisconnectCustomKeyStoreResponse> {
        self.account_action(ctx, "kms:DisconnectCustomKeyStore", &[])?;
        self.custom_key_stores
            .disconnect_custom_key_store(ctx, input)
            .await
    }

    async fn update_custom_key_store(
        &self,
        ctx: &RequestContext,
        input: UpdateCustomKeyStoreRequest,
    ) -> KmsResult<UpdateCustomKeyStoreResponse> {
        self.account_action(ctx, "kms:UpdateCustomKeyStore", &[])?;
        self.custom_key_stores
            .update_custom_key_store(ctx, input)
            .await
    }

    async fn delete_custom_key_store(
        &self,
        ctx: &RequestContext,
        input: DeleteCustomKeyStoreRequest,
    ) -> KmsResult<DeleteCustomKeyStoreResponse> {
        self.account_action(ctx, "kms:DeleteCustomKeyStore", &[])?;
        self.custom_key_stores
            .delete_custom_key_store(ctx, input)
            .await
    }

    // Managing keys (`keys/manage.rs`).

    async fn enable_key(&self, ctx: &RequestContext, input: EnableKeyRequest) -> KmsResult<()> {
        self.keys.enable_key(ctx, input).await
    }

    async fn disable_key(&self, ctx: &RequestContext, input: DisableKeyRequest) -> KmsResult<()> {
        self.keys.disable_key(ctx, input).await
    }

    async fn update_key_description(
        &self,
        ctx: &RequestContext,
        input: UpdateKeyDescriptionRequest,
    ) -> KmsResult<()> {
        self.keys.update_key_description(ctx, input).await
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceRequest) -> KmsResult<()> {
        self.keys.tag_resource(ctx, input).await
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceRequest,
    ) -> KmsResult<()> {
        self.keys.untag_resource(ctx, input).await
    }

    async fn list_resource_tags(
        &self,
        ctx: &RequestContext,
        input: ListResourceTagsRequest,
    ) -> KmsResult<ListResourceTagsResponse> {
        self.keys.list_resource_tags(ctx, input).await
    }

    async fn get_key_policy(
        &self,
        ctx: &RequestContext,
        input: GetKeyPolicyRequest,
    ) -> KmsResult<GetKeyPolicyResponse> {
        self.keys.get_key_policy(ctx, input).await
    }

    async fn list_key_policies(
        &self,
        ctx: &RequestContext,
        input: ListKeyPoliciesRequest,
    ) -> KmsResult<ListKeyPoliciesResponse> {
        self.keys.list_key_policies(ctx, input).await
    }

    async fn put_key_policy(
        &self,
        ctx: &RequestContext,
        input: PutKeyPolicyRequest,
    ) -> KmsResult<()> {
        self.keys.put_key_policy(ctx, input).await
    }

    async fn get_key_last_usage(
        &self,
        ctx: &RequestContext,
        input: GetKeyLastUsageRequest,
    ) -> KmsResult<GetKeyLastUsageResponse> {
        self.keys.get_key_last_usage(ctx, input).await
    }

    // Asymmetric and HMAC keys (`keys/asymmetric.rs`, `keys/mac.rs`, `keys/data_key_pairs.rs`).

    async fn sign(&self, ctx: &RequestContext, input: SignRequest) -> KmsResult<SignResponse> {
        self.keys.sign(ctx, input).await
    }

    async fn verify(
        &self,
        ctx: &RequestContext,
        input: VerifyRequest,
    ) -> KmsResult<VerifyResponse> {
        self.keys.verify(ctx, input).await
    }

    async fn get_public_key(
        &self,
        ctx: &RequestContext,
        input: GetPublicKeyRequest,
    ) -> KmsResult<GetPublicKeyResponse> {
        self.keys.get_public_key(ctx, input).await
    }

    async fn derive_shared_secret(
        &self,
        ctx: &RequestContext,
        input: DeriveSharedSecretRequest,
    ) -> KmsResult<DeriveSharedSecretResponse> {
        self.keys.derive_shared_secret(ctx, input).await
    }

    async fn generate_mac(
        &self,
        ctx: &RequestContext,
        input: GenerateMacRequest,
    ) -> KmsResult<GenerateMacResponse> {
        self.keys.generate_mac(ctx, input).await
    }

    async fn verify_mac(
        &self,
        ctx: &RequestContext,
        input: VerifyMacRequest,
    ) -> KmsResult<VerifyMacResponse> {
        self.keys.verify_mac(ctx, input).await
    }

    async fn generate_data_key_pair(
        &self,
        ctx: &RequestContext,
        input: GenerateDataKeyPairRequest,
    ) -> KmsResult<GenerateDataKeyPairResponse> {
        self.keys.generate_data_key_pair(ctx, input).await
    }

    async fn generate_data_key_pair_without_plaintext(
        &self,
        ctx: &RequestContext,
        input: GenerateDataKeyPairWithoutPlaintextRequest,
    ) -> KmsResult<GenerateDataKeyPairWithoutPlaintextResponse> {
        self.keys
            .generate_data_key_pair_without_plaintext(ctx, input)
            .await
    }

    // Rotation (`keys/rotation.rs`).

    async fn enable_key_rotation(
        &self,
        ctx: &RequestContext,
        input: EnableKeyRotationRequest,
    ) -> KmsResult<()> {
        self.keys.enable_key_rotation(ctx, input).await
    }

    async fn disable_key_rotation(
        &self,
        ctx: &RequestContext,
        input: DisableKeyRotationRequest,
    ) -> KmsResult<()> {
        self.keys.disable_key_rotation(ctx, input).await
    }

    async fn get_key_rotation_status(
        &self,
        ctx: &RequestContext,
        input: GetKeyRotationStatusRequest,
    ) -> KmsResult<GetKeyRotationStatusResponse> {
        self.keys.get_key_rotation_status(ctx, input).await
    }

    // Multi-Region keys (`keys/multi_region.rs`).

    async fn replicate_key(
        &self,
        ctx: &RequestContext,
        input: ReplicateKeyRequest,
    ) -> KmsResult<ReplicateKeyResponse> {
        self.keys.replicate_key(ctx, input).await
    }

    async fn update_primary_region(
        &self,
        ctx: &RequestContext,
        input: UpdatePrimaryRegionRequest,
    ) -> KmsResult<()> {
        self.keys.update_primary_region(ctx, input).await
    }

    async fn rotate_key_on_demand(
        &self,
        ctx: &RequestContext,
        input: RotateKeyOnDemandRequest,
    ) -> KmsResult<RotateKeyOnDemandResponse> {
        self.keys.rotate_key_on_demand(ctx, input).await
    }

    async fn list_key_rotations(
        &self,
        ctx: &RequestContext,
        input: ListKeyRotationsRequest,
    ) -> KmsResult<ListKeyRotationsResponse> {
        self.keys.list_key_rotations(ctx, input).await
    }

    // Grants (`keys/grant_ops.rs`, `keys/grants.rs`).

    async fn create_grant(
        &self,
        ctx: &RequestContext,
        input: CreateGrantRequest,
    ) -> KmsResult<CreateGrantResponse> {
        self.keys.create_grant(ctx, input).await
    }

    async fn list_grants(
        &self,
        ctx: &RequestContext,
        input: ListGrantsRequest,
    ) -> KmsResult<ListGrantsResponse> {
        self.keys.list_grants(ctx, input).await
    }

    async fn list_retirable_grants(
        &self,
        ctx: &RequestContext,
        input: ListRetirableGrantsRequest,
    ) -> KmsResult<ListGrantsResponse> {
        self.keys.list_retirable_grants(ctx, input).await
    }

    async fn retire_grant(&self, ctx: &RequestContext, input: RetireGrantRequest) -> KmsResult<()> {
        self.keys.retire_grant(ctx, input).await
    }

    async fn revoke_grant(&self, ctx: &RequestContext, input: RevokeGrantRequest) -> KmsResult<()> {
        self.keys.revoke_grant(ctx, input).await
    }

    // Imported key material (`keys/import.rs`).

    async fn get_parameters_for_import(
        &self,
        ctx: &RequestContext,
        input: GetParametersForImportRequest,
    ) -> KmsResult<GetParametersForImportResponse> {
        self.keys.get_parameters_for_import(ctx, input).await
    }

    async fn import_key_material(
        &self,
        ctx: &RequestContext,
        input: ImportKeyMaterialRequest,
    ) -> KmsResult<ImportKeyMaterialResponse> {
        self.keys.import_key_material(ctx, input).await
    }

    async fn delete_imported_key_material(
        &self,
        ctx: &RequestContext,
        input: DeleteImportedKeyMaterialRequest,
    ) -> KmsResult<DeleteImportedKeyMaterialResponse> {
        self.keys.delete_imported_key_material(ctx, input).await
    }

    // Aliases (`keys/aliases.rs`).

    async fn create_alias(&self, ctx: &RequestContext, input: CreateAliasRequest) -> KmsResult<()> {
        self.keys.create_alias(ctx, input).await
    }

    async fn update_alias(&self, ctx: &RequestContext, input: UpdateAliasRequest) -> KmsResult<()> {
        self.keys.update_alias(ctx, input).await
    }

    async fn delete_alias(&self, ctx: &RequestContext, input: DeleteAliasRequest) -> KmsResult<()> {
        self.keys.delete_alias(ctx, input).await
    }

    async fn list_aliases(
        &self,
        ctx: &RequestContext,
        input: ListAliasesRequest,
    ) -> KmsResult<ListAliasesResponse> {
        self.account_action(ctx, "kms:ListAliases", &[])?;
        self.keys.list_aliases(ctx, input).await
    }
}

impl Kms {
    /// Authorizes an operation without a key resource by the caller's identity policies
    /// ([`crate::authz::authorize_account_action`]).
    fn account_action(
        &self,
        ctx: &RequestContext,
        action: &str,
        facts: &[(&'static str, String)],
    ) -> KmsResult<()> {
        crate::authz::authorize_account_action(ctx, action, self.keys.now_seconds(), facts)
    }
}
