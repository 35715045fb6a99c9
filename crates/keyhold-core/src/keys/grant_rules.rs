//! The rules a new grant must follow: its principals' form, the operations its key type
//! supports, where encryption context constraints may be used, and how a grant that gives
//! `CreateGrant` limits the grants created with it.

use std::collections::{BTreeMap, BTreeSet};

use keyhold_kms_model::enums::{GrantOperation, KeySpec, KeyUsageType};
use keyhold_kms_model::Exception;

use super::grants::GrantDoc;
use crate::error::{KmsError, KmsResult};

fn validation(message: String) -> KmsError {
    KmsError::new(Exception::Validation, message)
}

/// A grantee or retiring principal: an IAM ARN (account root, user, role, assumed-role
/// session) or an AWS service principal (`service.amazonaws.com`).
pub(super) fn check_principal(field: &str, value: &str) -> KmsResult<()> {
    let iam = |rest: &str| {
        rest.split_once(':').is_some_and(|(account, res)| {
            account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && (res == "root"
                    || res.strip_prefix("user/").is_some_and(|n| !n.is_empty())
                    || res.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
        })
    };
    let sts = |rest: &str| {
        rest.split_once(':').is_some_and(|(account, res)| {
            account.len() == 12
                && res
                    .strip_prefix("assumed-role/")
                    .is_some_and(|n| n.contains('/'))
        })
    };
    let ok = value.strip_prefix("arn:aws:iam::").is_some_and(iam)
        || value.strip_prefix("arn:aws:sts::").is_some_and(sts)
        || (value.ends_with(".amazonaws.com") && !value.contains(':'));
    if ok {
        Ok(())
    } else {
        Err(validation(format!("Invalid {field}: {value}")))
    }
}

/// The grant operations a key of `spec` and `usage` supports, as AWS lists them.
pub(super) fn supported_operations(
    spec: KeySpec,
    usage: KeyUsageType,
) -> &'static [GrantOperation] {
    use GrantOperation as G;
    const COMMON: [G; 3] = [G::CreateGrant, G::RetireGrant, G::DescribeKey];
    const SYMMETRIC: &[G] = &[
        G::Decrypt,
        G::Encrypt,
        G::GenerateDataKey,
        G::GenerateDataKeyWithoutPlaintext,
        G::ReEncryptFrom,
        G::ReEncryptTo,
        G::GenerateDataKeyPair,
        G::GenerateDataKeyPairWithoutPlaintext,
        COMMON[0],
        COMMON[1],
        COMMON[2],
    ];
    const ASYM_ENCRYPT: &[G] = &[
        G::Decrypt,
        G::Encrypt,
        G::ReEncryptFrom,
        G::ReEncryptTo,
        G::GetPublicKey,
        COMMON[0],
        COMMON[1],
        COMMON[2],
    ];
    const SIGN: &[G] = &[
        G::Sign,
        G::Verify,
        G::GetPublicKey,
        COMMON[0],
        COMMON[1],
        COMMON[2],
    ];
    const MAC: &[G] = &[
        G::GenerateMac,
        G::VerifyMac,
        COMMON[0],
        COMMON[1],
        COMMON[2],
    ];
    const AGREE: &[G] = &[
        G::DeriveSharedSecret,
        G::GetPublicKey,
        COMMON[0],
        COMMON[1],
        COMMON[2],
    ];
    match usage {
        KeyUsageType::EncryptDecrypt if spec == KeySpec::SymmetricDefault => SYMMETRIC,
        KeyUsageType::EncryptDecrypt => ASYM_ENCRYPT,
        KeyUsageType::SignVerify => SIGN,
        KeyUsageType::GenerateVerifyMac => MAC,
        KeyUsageType::KeyAgreement => AGREE,
    }
}

/// Checks the operations and constraints of a new grant against its key.
pub(super) fn check_grant_for_key(
    key_arn: &str,
    spec: KeySpec,
    usage: KeyUsageType,
    operations: &[GrantOperation],
    has_constraints: bool,
) -> KmsResult<()> {
    if operations.is_empty() {
        return Err(validation(
            "1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ));
    }
    let supported = supported_operations(spec, usage);
    let bad: Vec<&str> = operations
        .iter()
        .filter(|o| !supported.contains(o))
        .map(|o| o.as_str())
        .collect();
    if !bad.is_empty() {
        return Err(validation(format!(
            "Grant operations [{}] are not supported by KMS key {key_arn} (KeySpec {}, KeyUsage {}).",
            bad.join(", "),
            spec.as_str(),
            usage.as_str()
        )));
    }
    if has_constraints && spec != KeySpec::SymmetricDefault {
        return Err(validation(format!(
            "Encryption context grant constraints are not supported for KMS key {key_arn}: operations with {} keys do not take an encryption context.",
            spec.as_str()
        )));
    }
    Ok(())
}

/// Whether a grant with `operations` and constraints (`subset`, `equals`) may be created by a
/// principal whose CreateGrant permission comes from `parent`: only the parent's operations,
/// and an encryption context constraint at least as strict as the parent's.
pub(super) fn within_parent(
    parent: &GrantDoc,
    operations: &[GrantOperation],
    subset: Option<&BTreeMap<String, String>>,
    equals: Option<&BTreeMap<String, String>>,
) -> bool {
    let parent_ops: BTreeSet<&str> = parent.operations.iter().map(|o| o.as_str()).collect();
    if !operations.iter().all(|o| parent_ops.contains(o.as_str())) {
        return false;
    }
    let lower = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    };
    let contains = |outer: &BTreeMap<String, String>, inner: &BTreeMap<String, String>| {
        let outer = lower(outer);
        lower(inner).iter().all(|(k, v)| outer.get(k) == Some(v))
    };
    if let Some(pe) = &parent.context_equals {
        if equals.map(lower) != Some(lower(pe)) {
            return false;
        }
    }
    if let Some(ps) = &parent.context_subset {
        let ok = match (equals, subset) {
            (Some(e), _) => contains(e, ps),
            (None, Some(s)) => contains(s, ps),
            (None, None) => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals() {
        for ok in [
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:role/path/app",
            "arn:aws:sts::111122223333:assumed-role/app/s1",
            "logs.amazonaws.com",
        ] {
            assert!(check_principal("GranteePrincipal", ok).is_ok(), "{ok}");
        }
        for bad in [
            "alice",
            "arn:aws:iam::1:user/x",
            "arn:aws:iam::111122223333:group/g",
            "",
        ] {
            assert!(check_principal("GranteePrincipal", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operations_by_key_type() {
        use GrantOperation as G;
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k";
        let sym = (KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt);
        assert!(
            check_grant_for_key(arn, sym.0, sym.1, &[G::Encrypt, G::DescribeKey], true).is_ok()
        );
        let e = check_grant_for_key(arn, sym.0, sym.1, &[G::Sign], false).unwrap_err();
        assert!(e.to_string().contains("[Sign]"), "{e}");
        let rsa = (KeySpec::Rsa2048, KeyUsageType::SignVerify);
        assert!(check_grant_for_key(arn, rsa.0, rsa.1, &[G::Sign, G::GetPublicKey], false).is_ok());
        assert!(check_grant_for_key(arn, rsa.0, rsa.1, &[G::Sign], true).is_err());
        assert!(check_grant_for_key(arn, rsa.0, rsa.1, &[], false).is_err());
    }
}
