//! Key specs as data: for every `KeySpec` of the model, the key usages AWS allows and the
//! algorithms of each usage, as AWS's Developer Guide ("Key spec reference") lists them, and
//! whether Keyhold implements the spec (all of them; SM2 with the `sm2` feature). Operations and DescribeKey read this table instead
//! of branching on specs; a new spec is one entry here (and its cryptography in a key holder).

use keyhold_kms_model::enums::{
    EncryptionAlgorithmSpec as Enc, KeyAgreementAlgorithmSpec as Ka, KeySpec, KeyUsageType,
    MacAlgorithmSpec as Mac, SigningAlgorithmSpec as Sig,
};

/// What one key spec allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpecInfo {
    /// The spec.
    pub spec: KeySpec,
    /// Key usages a key of this spec may have (the first is CreateKey's default where AWS
    /// has one: `ENCRYPT_DECRYPT`).
    pub usages: &'static [KeyUsageType],
    /// Encryption algorithms (usage `ENCRYPT_DECRYPT`).
    pub encryption: &'static [Enc],
    /// Signing algorithms (usage `SIGN_VERIFY`).
    pub signing: &'static [Sig],
    /// MAC algorithms (usage `GENERATE_VERIFY_MAC`).
    pub mac: &'static [Mac],
    /// Key agreement algorithms (usage `KEY_AGREEMENT`).
    pub key_agreement: &'static [Ka],
    /// Whether Keyhold can create keys of this spec yet.
    pub implemented: bool,
}

impl KeySpecInfo {
    /// Whether a key of this spec may have `usage`.
    pub fn allows(&self, usage: KeyUsageType) -> bool {
        self.usages.contains(&usage)
    }

    /// The encryption algorithms of a key of this spec with `usage` (empty for other usages),
    /// as DescribeKey reports them.
    pub fn encryption_algorithms(&self, usage: KeyUsageType) -> &'static [Enc] {
        if usage == KeyUsageType::EncryptDecrypt {
            self.encryption
        } else {
            &[]
        }
    }

    /// The signing algorithms of a key of this spec with `usage` (empty for other usages).
    pub fn signing_algorithms(&self, usage: KeyUsageType) -> &'static [Sig] {
        if usage == KeyUsageType::SignVerify {
            self.signing
        } else {
            &[]
        }
    }

    /// The MAC algorithms of a key of this spec with `usage` (empty for other usages).
    pub fn mac_algorithms(&self, usage: KeyUsageType) -> &'static [Mac] {
        if usage == KeyUsageType::GenerateVerifyMac {
            self.mac
        } else {
            &[]
        }
    }

    /// The key agreement algorithms of a key of this spec with `usage` (empty for others).
    pub fn key_agreement_algorithms(&self, usage: KeyUsageType) -> &'static [Ka] {
        if usage == KeyUsageType::KeyAgreement {
            self.key_agreement
        } else {
            &[]
        }
    }
}

const RSA_USAGES: &[KeyUsageType] = &[KeyUsageType::EncryptDecrypt, KeyUsageType::SignVerify];
const RSA_ENC: &[Enc] = &[Enc::RsaesOaepSha1, Enc::RsaesOaepSha256];
const RSA_SIG: &[Sig] = &[
    Sig::RsassaPssSha256,
    Sig::RsassaPssSha384,
    Sig::RsassaPssSha512,
    Sig::RsassaPkcs1V15Sha256,
    Sig::RsassaPkcs1V15Sha384,
    Sig::RsassaPkcs1V15Sha512,
];
const NIST_USAGES: &[KeyUsageType] = &[KeyUsageType::SignVerify, KeyUsageType::KeyAgreement];
const SIGN_ONLY: &[KeyUsageType] = &[KeyUsageType::SignVerify];
const MAC_ONLY: &[KeyUsageType] = &[KeyUsageType::GenerateVerifyMac];

const fn entry(
    spec: KeySpec,
    usages: &'static [KeyUsageType],
    encryption: &'static [Enc],
    signing: &'static [Sig],
    mac: &'static [Mac],
    key_agreement: &'static [Ka],
) -> KeySpecInfo {
    KeySpecInfo {
        spec,
        usages,
        encryption,
        signing,
        mac,
        key_agreement,
        // SM2 needs the `sm2` feature (on by default); every other spec is implemented.
        implemented: cfg!(feature = "sm2") || !matches!(spec, KeySpec::Sm2),
    }
}

/// The cryptography crate's name for an asymmetric key spec (`None` for symmetric and HMAC
/// keys, and for SM2 keys without the `sm2` feature).
pub fn asymmetric(spec: KeySpec) -> Option<keyhold_crypto::asym::AsymmetricSpec> {
    if spec == KeySpec::Sm2 && !cfg!(feature = "sm2") {
        return None;
    }
    keyhold_crypto::asym::AsymmetricSpec::from_aws_name(spec.as_str())
}

/// The HMAC algorithm of an `HMAC_<n>` key spec (its only MAC algorithm).
pub fn hmac(spec: KeySpec) -> Option<keyhold_crypto::asym::MacAlgorithm> {
    let mac = key_spec_info(spec).mac.first()?;
    keyhold_crypto::asym::MacAlgorithm::from_aws_name(mac.as_str())
}

/// What `spec` allows. An exhaustive match: a spec added to the model does not compile
/// until it has an entry.
pub const fn key_spec_info(spec: KeySpec) -> KeySpecInfo {
    use KeySpec as S;
    match spec {
        S::Rsa2048 | S::Rsa3072 | S::Rsa4096 => entry(spec, RSA_USAGES, RSA_ENC, RSA_SIG, &[], &[]),
        S::EccNistP256 => entry(
            spec,
            NIST_USAGES,
            &[],
            &[Sig::EcdsaSha256],
            &[],
            &[Ka::Ecdh],
        ),
        S::EccNistP384 => entry(
            spec,
            NIST_USAGES,
            &[],
            &[Sig::EcdsaSha384],
            &[],
            &[Ka::Ecdh],
        ),
        S::EccNistP521 => entry(
            spec,
            NIST_USAGES,
            &[],
            &[Sig::EcdsaSha512],
            &[],
            &[Ka::Ecdh],
        ),
        S::EccSecgP256k1 => entry(spec, SIGN_ONLY, &[], &[Sig::EcdsaSha256], &[], &[]),
        S::SymmetricDefault => KeySpecInfo {
            ..entry(
                spec,
                &[KeyUsageType::EncryptDecrypt],
                &[Enc::SymmetricDefault],
                &[],
                &[],
                &[],
            )
        },
        S::Hmac224 => entry(spec, MAC_ONLY, &[], &[], &[Mac::HmacSha224], &[]),
        S::Hmac256 => entry(spec, MAC_ONLY, &[], &[], &[Mac::HmacSha256], &[]),
        S::Hmac384 => entry(spec, MAC_ONLY, &[], &[], &[Mac::HmacSha384], &[]),
        S::Hmac512 => entry(spec, MAC_ONLY, &[], &[], &[Mac::HmacSha512], &[]),
        S::Sm2 => entry(
            spec,
            &[
                KeyUsageType::EncryptDecrypt,
                KeyUsageType::SignVerify,
                KeyUsageType::KeyAgreement,
            ],
            &[Enc::Sm2pke],
            &[Sig::Sm2dsa],
            &[],
            &[Ka::Ecdh],
        ),
        S::MlDsa44 | S::MlDsa65 | S::MlDsa87 => {
            entry(spec, SIGN_ONLY, &[], &[Sig::MlDsaShake256], &[], &[])
        }
        S::EccNistEdwards25519 => entry(
            spec,
            SIGN_ONLY,
            &[],
            &[Sig::Ed25519Sha512, Sig::Ed25519PhSha512],
            &[],
            &[],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_names_its_spec() {
        for spec in KeySpec::ALL {
            assert_eq!(key_spec_info(*spec).spec, *spec);
        }
    }

    /// Each usage a spec allows has algorithms, and algorithms exist only for allowed usages.
    #[test]
    fn usages_and_algorithms_agree() {
        for i in KeySpec::ALL.iter().map(|s| key_spec_info(*s)) {
            let has = |u| i.allows(u);
            assert_eq!(
                has(KeyUsageType::EncryptDecrypt),
                !i.encryption.is_empty(),
                "{}",
                i.spec
            );
            assert_eq!(
                has(KeyUsageType::SignVerify),
                !i.signing.is_empty(),
                "{}",
                i.spec
            );
            assert_eq!(
                has(KeyUsageType::GenerateVerifyMac),
                !i.mac.is_empty(),
                "{}",
                i.spec
            );
            assert_eq!(
                has(KeyUsageType::KeyAgreement),
                !i.key_agreement.is_empty(),
                "{}",
                i.spec
            );
        }
        let rsa = key_spec_info(KeySpec::Rsa2048);
        assert!(rsa
            .encryption_algorithms(KeyUsageType::SignVerify)
            .is_empty());
        assert_eq!(
            rsa.encryption_algorithms(KeyUsageType::EncryptDecrypt)
                .len(),
            2
        );
        assert!(key_spec_info(KeySpec::SymmetricDefault).implemented);
    }
}
