//! The key-state table as data: which key states let which operations through, and with which
//! exception the others are refused — AWS's "Key states of KMS keys" table, one row per family
//! of operations that share a row. Operations look their family up here instead of matching
//! states themselves; the messages stay with the operations (AWS words them per operation).

use keyhold_kms_model::enums::KeyState;
use keyhold_kms_model::Exception;

/// Operations that share a row of AWS's key-state table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOperationFamily {
    /// Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateDataKeyPair*,
    /// Sign, Verify, GenerateMac, VerifyMac, DeriveSharedSecret, GetPublicKey.
    Cryptographic,
    /// DescribeKey (and the other read-only metadata operations).
    Describe,
    /// ScheduleKeyDeletion.
    ScheduleDeletion,
    /// CancelKeyDeletion.
    CancelDeletion,
    /// EnableKey, DisableKey.
    EnableDisable,
    /// UpdateKeyDescription, TagResource, UntagResource.
    ManageMetadata,
    /// PutKeyPolicy: a key's policy can be replaced in every settled state, so a key pending
    /// deletion or in a disconnected custom key store can still be given access back.
    ManagePolicy,
    /// EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand: a disabled key is refused
    /// with `DisabledException` (the model lists it for these operations).
    ManageRotation,
    /// GetParametersForImport, ImportKeyMaterial (keys with imported material only; other
    /// origins are refused before the state is looked at): a key pending deletion is
    /// `KMSInvalidStateException`.
    ImportMaterial,
    /// DeleteImportedKeyMaterial: every settled state, pending deletion included (the state
    /// then stays); on a key pending import it has no effect.
    DeleteImportedMaterial,
}

/// What a key state means for an operation family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateCheck {
    /// The operation proceeds.
    Allowed,
    /// Refused with this exception.
    Refused(Exception),
}

/// The table. Exhaustive in both families and states: a state or family added later does not
/// compile until its row is written.
pub const fn state_check(family: KeyOperationFamily, state: KeyState) -> StateCheck {
    use KeyOperationFamily as F;
    use KeyState as S;
    use StateCheck::{Allowed, Refused};
    const INVALID: StateCheck = Refused(Exception::KMSInvalidState);
    match (family, state) {
        (F::Describe, _) => Allowed,
        (F::Cryptographic, S::Enabled) => Allowed,
        (F::Cryptographic, S::Disabled) => Refused(Exception::Disabled),
        (
            F::Cryptographic,
            S::PendingDeletion
            | S::PendingImport
            | S::Unavailable
            | S::Creating
            | S::Updating
            | S::PendingReplicaDeletion,
        ) => INVALID,
        (F::ScheduleDeletion, S::Enabled | S::Disabled | S::PendingImport | S::Unavailable) => {
            Allowed
        }
        (
            F::ScheduleDeletion,
            S::PendingDeletion | S::Creating | S::Updating | S::PendingReplicaDeletion,
        ) => INVALID,
        (F::EnableDisable, S::Enabled | S::Disabled) => Allowed,
        (
            F::EnableDisable,
            S::PendingDeletion
            | S::PendingImport
            | S::Unavailable
            | S::Creating
            | S::Updating
            | S::PendingReplicaDeletion,
        ) => INVALID,
        (F::ManageMetadata, S::Enabled | S::Disabled | S::PendingImport | S::Unavailable) => {
            Allowed
        }
        (
            F::ManageMetadata,
            S::PendingDeletion | S::Creating | S::Updating | S::PendingReplicaDeletion,
        ) => INVALID,
        (
            F::ManagePolicy,
            S::Enabled | S::Disabled | S::PendingDeletion | S::PendingImport | S::Unavailable,
        ) => Allowed,
        (F::ManagePolicy, S::Creating | S::Updating | S::PendingReplicaDeletion) => INVALID,
        (F::ManageRotation, S::Enabled) => Allowed,
        (F::ManageRotation, S::Disabled) => Refused(Exception::Disabled),
        (
            F::ManageRotation,
            S::PendingDeletion
            | S::PendingImport
            | S::Unavailable
            | S::Creating
            | S::Updating
            | S::PendingReplicaDeletion,
        ) => INVALID,
        (F::ImportMaterial, S::Enabled | S::Disabled | S::PendingImport) => Allowed,
        (
            F::ImportMaterial,
            S::PendingDeletion
            | S::Unavailable
            | S::Creating
            | S::Updating
            | S::PendingReplicaDeletion,
        ) => INVALID,
        (
            F::DeleteImportedMaterial,
            S::Enabled | S::Disabled | S::PendingDeletion | S::PendingImport,
        ) => Allowed,
        (
            F::DeleteImportedMaterial,
            S::Unavailable | S::Creating | S::Updating | S::PendingReplicaDeletion,
        ) => INVALID,
        (F::CancelDeletion, S::PendingDeletion | S::PendingReplicaDeletion) => Allowed,
        (
            F::CancelDeletion,
            S::Enabled
            | S::Disabled
            | S::PendingImport
            | S::Unavailable
            | S::Creating
            | S::Updating,
        ) => INVALID,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyOperationFamily as F;

    #[test]
    fn rows_as_aws_documents_them() {
        assert_eq!(
            state_check(F::Cryptographic, KeyState::Enabled),
            StateCheck::Allowed
        );
        assert_eq!(
            state_check(F::Cryptographic, KeyState::Disabled),
            StateCheck::Refused(Exception::Disabled)
        );
        for s in KeyState::ALL {
            assert_eq!(state_check(F::Describe, *s), StateCheck::Allowed);
            let cancel = state_check(F::CancelDeletion, *s) == StateCheck::Allowed;
            let pending = matches!(
                s,
                KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
            );
            assert_eq!(cancel, pending, "{s}");
        }
        assert_eq!(
            state_check(F::ScheduleDeletion, KeyState::PendingDeletion),
            StateCheck::Refused(Exception::KMSInvalidState)
        );
        assert_eq!(
            state_check(F::ScheduleDeletion, KeyState::Unavailable),
            StateCheck::Allowed
        );
        assert_eq!(
            state_check(F::ManagePolicy, KeyState::PendingDeletion),
            StateCheck::Allowed
        );
        assert_eq!(
            state_check(F::ManageRotation, KeyState::Disabled),
            StateCheck::Refused(Exception::Disabled)
        );
        assert_eq!(
            state_check(F::ManageRotation, KeyState::PendingDeletion),
            StateCheck::Refused(Exception::KMSInvalidState)
        );
        // Imported key material: a key pending import is used with nothing but import and
        // management operations.
        for f in [F::Cryptographic, F::EnableDisable, F::ManageRotation] {
            assert_eq!(
                state_check(f, KeyState::PendingImport),
                StateCheck::Refused(Exception::KMSInvalidState),
                "{f:?}"
            );
        }
        for f in [
            F::ImportMaterial,
            F::DeleteImportedMaterial,
            F::ScheduleDeletion,
            F::ManageMetadata,
            F::ManagePolicy,
        ] {
            assert_eq!(
                state_check(f, KeyState::PendingImport),
                StateCheck::Allowed,
                "{f:?}"
            );
        }
        assert_eq!(
            state_check(F::ImportMaterial, KeyState::PendingDeletion),
            StateCheck::Refused(Exception::KMSInvalidState)
        );
        assert_eq!(
            state_check(F::DeleteImportedMaterial, KeyState::PendingDeletion),
            StateCheck::Allowed
        );
    }
}
