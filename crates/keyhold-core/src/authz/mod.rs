//! Authorization as AWS KMS decides it: the key policy, the caller's identity policies and the
//! key's grants, combined per request.
//!
//! Every operation on a key names the [`KeyAction`] it needs when it loads the key
//! ([`crate::keys::Keys::load`] takes an [`Access`]), so no key reaches an operation without
//! having been authorized. Operations without a key resource (CreateKey, ListKeys,
//! GenerateRandom, the custom key store operations, ...) are authorized by the caller's
//! identity policies alone ([`authorize_account_action`]).
//!
//! The rules, as AWS documents them:
//! * An explicit `Deny` in the key policy or in an identity policy wins.
//! * A key policy statement that names the caller (its ARN, `*`, its role) allows it within
//!   the key's account; across accounts the caller's identity policy must allow too.
//! * A statement that names the caller's *account* (its root) delegates to IAM: the caller's
//!   identity policies must allow. The account root itself is not limited by IAM policies.
//! * Otherwise a grant for the caller that includes the operation (and whose encryption
//!   context constraint the request meets) allows it.
//!
//! Policy evaluation itself is the `keyhold-policy` crate's; this module supplies the facts
//! (condition keys) and combines the answers.

mod decide;
pub(crate) mod facts;

use std::collections::BTreeMap;

use keyhold_kms_model::enums::GrantOperation;
use keyhold_kms_model::Exception;

use crate::context::RequestContext;
use crate::error::KmsError;

pub use decide::{authorize_account_action, PolicyCache};
pub(crate) use decide::{could_put_key_policy, not_authorized_plain, Authorized};

/// An action on a KMS key, as policies and grants name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is the KMS action of the same name
pub enum KeyAction {
    CancelKeyDeletion,
    CreateAlias,
    CreateGrant,
    Decrypt,
    DeleteAlias,
    DeleteImportedKeyMaterial,
    DeriveSharedSecret,
    DescribeKey,
    DisableKey,
    DisableKeyRotation,
    EnableKey,
    EnableKeyRotation,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateDataKeyWithoutPlaintext,
    GenerateMac,
    GetKeyLastUsage,
    GetKeyPolicy,
    GetKeyRotationStatus,
    GetParametersForImport,
    GetPublicKey,
    ImportKeyMaterial,
    ListGrants,
    ListKeyPolicies,
    ListKeyRotations,
    ListResourceTags,
    PutKeyPolicy,
    ReEncryptFrom,
    ReEncryptTo,
    ReplicateKey,
    RetireGrant,
    RevokeGrant,
    RotateKeyOnDemand,
    ScheduleKeyDeletion,
    Sign,
    TagResource,
    UntagResource,
    UpdateAlias,
    UpdateKeyDescription,
    UpdatePrimaryRegion,
    Verify,
    VerifyMac,
}

impl KeyAction {
    /// The IAM action name, e.g. `kms:Encrypt`.
    pub fn iam_name(self) -> &'static str {
        use KeyAction as A;
        match self {
            A::CancelKeyDeletion => "kms:CancelKeyDeletion",
            A::CreateAlias => "kms:CreateAlias",
            A::CreateGrant => "kms:CreateGrant",
            A::Decrypt => "kms:Decrypt",
            A::DeleteAlias => "kms:DeleteAlias",
            A::DeleteImportedKeyMaterial => "kms:DeleteImportedKeyMaterial",
            A::DeriveSharedSecret => "kms:DeriveSharedSecret",
            A::DescribeKey => "kms:DescribeKey",
            A::DisableKey => "kms:DisableKey",
            A::DisableKeyRotation => "kms:DisableKeyRotation",
            A::EnableKey => "kms:EnableKey",
            A::EnableKeyRotation => "kms:EnableKeyRotation",
            A::Encrypt => "kms:Encrypt",
            A::GenerateDataKey => "kms:GenerateDataKey",
            A::GenerateDataKeyPair => "kms:GenerateDataKeyPair",
            A::GenerateDataKeyPairWithoutPlaintext => "kms:GenerateDataKeyPairWithoutPlaintext",
            A::GenerateDataKeyWithoutPlaintext => "kms:GenerateDataKeyWithoutPlaintext",
            A::GenerateMac => "kms:GenerateMac",
            A::GetKeyLastUsage => "kms:GetKeyLastUsage",
            A::GetKeyPolicy => "kms:GetKeyPolicy",
            A::GetKeyRotationStatus => "kms:GetKeyRotationStatus",
            A::GetParametersForImport => "kms:GetParametersForImport",
            A::GetPublicKey => "kms:GetPublicKey",
            A::ImportKeyMaterial => "kms:ImportKeyMaterial",
            A::ListGrants => "kms:ListGrants",
            A::ListKeyPolicies => "kms:ListKeyPolicies",
            A::ListKeyRotations => "kms:ListKeyRotations",
            A::ListResourceTags => "kms:ListResourceTags",
            A::PutKeyPolicy => "kms:PutKeyPolicy",
            A::ReEncryptFrom => "kms:ReEncryptFrom",
            A::ReEncryptTo => "kms:ReEncryptTo",
            A::ReplicateKey => "kms:ReplicateKey",
            A::RetireGrant => "kms:RetireGrant",
            A::RevokeGrant => "kms:RevokeGrant",
            A::RotateKeyOnDemand => "kms:RotateKeyOnDemand",
            A::ScheduleKeyDeletion => "kms:ScheduleKeyDeletion",
            A::Sign => "kms:Sign",
            A::TagResource => "kms:TagResource",
            A::UntagResource => "kms:UntagResource",
            A::UpdateAlias => "kms:UpdateAlias",
            A::UpdateKeyDescription => "kms:UpdateKeyDescription",
            A::UpdatePrimaryRegion => "kms:UpdatePrimaryRegion",
            A::Verify => "kms:Verify",
            A::VerifyMac => "kms:VerifyMac",
        }
    }

    /// Whether the action uses the key (cryptographic operations and GetPublicKey) rather
    /// than reading or changing its metadata: only these may be served from the key cache.
    pub fn uses_key(self) -> bool {
        use KeyAction as A;
        matches!(
            self,
            A::Decrypt
                | A::DeriveSharedSecret
                | A::Encrypt
                | A::GenerateDataKey
                | A::GenerateDataKeyPair
                | A::GenerateDataKeyPairWithoutPlaintext
                | A::GenerateDataKeyWithoutPlaintext
                | A::GenerateMac
                | A::GetPublicKey
                | A::ReEncryptFrom
                | A::ReEncryptTo
                | A::Sign
                | A::Verify
                | A::VerifyMac
        )
    }

    /// The grant operation that allows this action, for the actions a grant can allow.
    pub fn grant_operation(self) -> Option<GrantOperation> {
        use GrantOperation as G;
        use KeyAction as A;
        Some(match self {
            A::Decrypt => G::Decrypt,
            A::Encrypt => G::Encrypt,
            A::GenerateDataKey => G::GenerateDataKey,
            A::GenerateDataKeyWithoutPlaintext => G::GenerateDataKeyWithoutPlaintext,
            A::ReEncryptFrom => G::ReEncryptFrom,
            A::ReEncryptTo => G::ReEncryptTo,
            A::Sign => G::Sign,
            A::Verify => G::Verify,
            A::GetPublicKey => G::GetPublicKey,
            A::CreateGrant => G::CreateGrant,
            A::RetireGrant => G::RetireGrant,
            A::DescribeKey => G::DescribeKey,
            A::GenerateDataKeyPair => G::GenerateDataKeyPair,
            A::GenerateDataKeyPairWithoutPlaintext => G::GenerateDataKeyPairWithoutPlaintext,
            A::GenerateMac => G::GenerateMac,
            A::VerifyMac => G::VerifyMac,
            A::DeriveSharedSecret => G::DeriveSharedSecret,
            _ => return None,
        })
    }
}

/// What one request wants to do with a key: the action, and the request's facts that
/// policies' conditions and grants' constraints look at.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// The action.
    pub action: KeyAction,
    /// The request's encryption context (for `kms:EncryptionContext:` conditions and grant
    /// constraints); `None` for operations without one.
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
    /// Further condition keys of the request, e.g. `("kms:SigningAlgorithm", "ECDSA_SHA_256")`.
    pub facts: Vec<(&'static str, String)>,
    /// Multivalued condition keys of the request, e.g. `kms:GrantOperations`.
    pub multi_facts: Vec<(&'static str, Vec<String>)>,
}

impl<'a> Access<'a> {
    /// `action`, with no request facts.
    pub fn new(action: KeyAction) -> Self {
        Self {
            action,
            encryption_context: None,
            facts: Vec::new(),
            multi_facts: Vec::new(),
        }
    }

    /// With the request's encryption context (an absent one counts as empty).
    pub fn with_context(mut self, context: Option<&'a BTreeMap<String, String>>) -> Self {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.encryption_context = Some(context.unwrap_or(&EMPTY));
        self
    }

    /// With one more condition key.
    pub fn with_fact(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.facts.push((key, value.into()));
        self
    }

    /// With one more multivalued condition key.
    pub fn with_multi_fact(mut self, key: &'static str, values: Vec<String>) -> Self {
        self.multi_facts.push((key, values));
        self
    }
}

/// Why a request was denied; decides the end of AWS's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DenyReason {
    /// No key policy statement (nor grant) allows the caller.
    NoResourcePolicy,
    /// The key policy delegates to IAM (or the call crosses accounts) and no identity policy
    /// allows it.
    NoIdentityPolicy,
    /// A key policy statement denies.
    ExplicitResourceDeny,
    /// An identity policy statement denies.
    ExplicitIdentityDeny,
}

/// AWS's `AccessDeniedException`: "User: <principal> is not authorized to perform: <action>
/// on resource: <arn> because ..." (the shapes AWS KMS returns).
pub(crate) fn access_denied(
    ctx: &RequestContext,
    action: &str,
    resource: &str,
    reason: DenyReason,
) -> KmsError {
    let tail = match reason {
        DenyReason::NoResourcePolicy => {
            format!("because no resource-based policy allows the {action} action")
        }
        DenyReason::NoIdentityPolicy => {
            format!("because no identity-based policy allows the {action} action")
        }
        DenyReason::ExplicitResourceDeny => {
            "with an explicit deny in a resource-based policy".to_string()
        }
        DenyReason::ExplicitIdentityDeny => {
            "with an explicit deny in an identity-based policy".to_string()
        }
    };
    KmsError::new(
        Exception::AccessDenied,
        format!(
            "User: {} is not authorized to perform: {action} on resource: {resource} {tail}",
            ctx.principal_arn
        ),
    )
}
