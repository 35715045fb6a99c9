//! The single-pass decoding of request bodies (`decode_input`) against the reference path
//! (parse, validate, decode: `decode_checked`) for every KMS operation, over bodies made from
//! each operation's input table: both must decode the same input or report the same error.

use keyhold_kms_model::{input_shape, shapes, Operation};
use keyhold_model_runtime::oracle::{assert_same_on, Tally};

/// Compares both paths for each listed operation (with its input type); every operation of
/// the model must be listed.
macro_rules! oracle {
    ($($op:ident => $input:ident,)*) => {{
        let mut total = Tally::default();
        let mut covered = Vec::new();
        $(
            let t = assert_same_on::<shapes::$input>(
                Operation::$op.name(),
                input_shape(Operation::$op),
            );
            assert!(t.decoded > 0, "{}: no body decoded", stringify!($op));
            total.decoded += t.decoded;
            total.refused += t.refused;
            covered.push(Operation::$op);
        )*
        for op in Operation::ALL {
            assert!(covered.contains(op), "{} is not compared", op.name());
        }
        total
    }};
}

#[test]
fn single_pass_decoding_answers_as_the_reference_path() {
    let total = oracle! {
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
