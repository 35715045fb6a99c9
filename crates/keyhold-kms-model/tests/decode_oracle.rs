//! The single-pass decoding of request bodies (`decode_input`) against the reference path
//! (parse, validate, decode: `decode_checked`) for every KMS operation, over bodies made from
//! each operation's input table: both must decode the same input or report the same error.

use keyhold_model_runtime::assert_oracle_for_every_operation;

#[test]
fn single_pass_decoding_answers_as_the_reference_path() {
    let total = assert_oracle_for_every_operation! {
        keyhold_kms_model;
        CancelKeyDeletion => CancelKeyDeletionRequest,
        ConnectCustomKeyStore => ConnectCustomKeyStoreRequest,
        CreateAlias => CreateAliasRequest,
        CreateCustomKeyStore => CreateCustomKeyStoreRequest,
        CreateGrant => CreateGrantRequest,
        CreateKey => CreateKeyRequest,
        Decrypt => DecryptRequest,
        DeleteAlias => DeleteAliasRequest,
        DeleteCustomKeyStore => DeleteCustomKeyStoreRequest,
        DeleteImportedKeyMaterial => DeleteImportedKeyMaterialRequest,
        DeriveSharedSecret => DeriveSharedSecretRequest,
        DescribeCustomKeyStores => DescribeCustomKeyStoresRequest,
        DescribeKey => DescribeKeyRequest,
        DisableKey => DisableKeyRequest,
        DisableKeyRotation => DisableKeyRotationRequest,
        DisconnectCustomKeyStore => DisconnectCustomKeyStoreRequest,
        EnableKey => EnableKeyRequest,
        EnableKeyRotation => EnableKeyRotationRequest,
        Encrypt => EncryptRequest,
        GenerateDataKey => GenerateDataKeyRequest,
        GenerateDataKeyPair => GenerateDataKeyPairRequest,
        GenerateDataKeyPairWithoutPlaintext => GenerateDataKeyPairWithoutPlaintextRequest,
        GenerateDataKeyWithoutPlaintext => GenerateDataKeyWithoutPlaintextRequest,
        GenerateMac => GenerateMacRequest,
        GenerateRandom => GenerateRandomRequest,
        GetKeyLastUsage => GetKeyLastUsageRequest,
        GetKeyPolicy => GetKeyPolicyRequest,
        GetKeyRotationStatus => GetKeyRotationStatusRequest,
        GetParametersForImport => GetParametersForImportRequest,
        GetPublicKey => GetPublicKeyRequest,
        ImportKeyMaterial => ImportKeyMaterialRequest,
        ListAliases => ListAliasesRequest,
        ListGrants => ListGrantsRequest,
        ListKeyPolicies => ListKeyPoliciesRequest,
        ListKeyRotations => ListKeyRotationsRequest,
        ListKeys => ListKeysRequest,
        ListResourceTags => ListResourceTagsRequest,
        ListRetirableGrants => ListRetirableGrantsRequest,
        PutKeyPolicy => PutKeyPolicyRequest,
        ReEncrypt => ReEncryptRequest,
        ReplicateKey => ReplicateKeyRequest,
        RetireGrant => RetireGrantRequest,
        RevokeGrant => RevokeGrantRequest,
        RotateKeyOnDemand => RotateKeyOnDemandRequest,
        ScheduleKeyDeletion => ScheduleKeyDeletionRequest,
        Sign => SignRequest,
        TagResource => TagResourceRequest,
        UntagResource => UntagResourceRequest,
        UpdateAlias => UpdateAliasRequest,
        UpdateCustomKeyStore => UpdateCustomKeyStoreRequest,
        UpdateKeyDescription => UpdateKeyDescriptionRequest,
        UpdatePrimaryRegion => UpdatePrimaryRegionRequest,
        Verify => VerifyRequest,
        VerifyMac => VerifyMacRequest,
    };
    eprintln!("{total:?}");
}
