//! The condition keys Keyhold can supply.

/// Global `aws:` keys Keyhold supplies, lower-case.
const GLOBAL: &[&str] = &[
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principaltype",
    "aws:userid",
    "aws:username",
    "aws:sourceip",
    "aws:securetransport",
    "aws:currenttime",
    "aws:epochtime",
    "aws:requestedregion",
    "aws:viaawsservice",
    "aws:calledvia",
    "aws:principalisawsservice",
    "aws:tagkeys",
    "aws:multifactorauthpresent",
    "aws:principalorgid",
    "aws:sourcevpc",
    "aws:sourcevpce",
];

/// AWS KMS's condition keys (the "AWS KMS condition keys" page of the KMS Developer Guide),
/// lower-case.
const KMS: &[&str] = &[
    "kms:bypasspolicylockoutsafetycheck",
    "kms:calleraccount",
    "kms:customermasterkeyspec",
    "kms:customermasterkeyusage",
    "kms:datakeypairspec",
    "kms:encryptionalgorithm",
    "kms:encryptioncontextkeys",
    "kms:expirationmodel",
    "kms:grantconstrainttype",
    "kms:grantisforawsresource",
    "kms:grantoperations",
    "kms:granteeprincipal",
    "kms:keyagreementalgorithm",
    "kms:keyorigin",
    "kms:keyspec",
    "kms:keyusage",
    "kms:macalgorithm",
    "kms:messagetype",
    "kms:multiregion",
    "kms:multiregionkeytype",
    "kms:primaryregion",
    "kms:reencryptonsamekey",
    "kms:replicaregion",
    "kms:requestalias",
    "kms:resourcealiases",
    "kms:retiringprincipal",
    "kms:rotationperiodindays",
    "kms:schedulekeydeletionpendingwindowindays",
    "kms:signingalgorithm",
    "kms:validto",
    "kms:viaservice",
    "kms:wrappingalgorithm",
    "kms:wrappingkeyspec",
];

/// Key families whose last part is free (a tag key, an encryption context key), lower-case.
const FAMILIES: &[&str] = &[
    "aws:principaltag/",
    "aws:resourcetag/",
    "aws:requesttag/",
    "kms:encryptioncontext:",
];

/// Whether `key`, already lower-cased, is known.
pub(crate) fn is_known_lower(key: &str) -> bool {
    if GLOBAL.contains(&key) || KMS.contains(&key) {
        return true;
    }
    if FAMILIES
        .iter()
        .any(|f| key.strip_prefix(f).is_some_and(|rest| !rest.is_empty()))
    {
        return true;
    }
    // Attested requests from Nitro Enclaves and NitroTPM:
    // `kms:RecipientAttestation:ImageSha384`, `...:PCR<n>`, `...:NitroTPMPCR<n>`.
    match key.strip_prefix("kms:recipientattestation:") {
        Some("imagesha384") => true,
        Some(rest) => rest
            .strip_prefix("nitrotpmpcr")
            .or_else(|| rest.strip_prefix("pcr"))
            .is_some_and(|n| {
                !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())
            }),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_lower_case_and_unique() {
        let mut all: Vec<&str> = GLOBAL.iter().chain(KMS).chain(FAMILIES).copied().collect();
        for k in &all {
            assert_eq!(*k, k.to_lowercase());
        }
        all.sort_unstable();
        let n = all.len();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn families() {
        assert!(is_known_lower("kms:encryptioncontext:department"));
        assert!(!is_known_lower("kms:encryptioncontext:"));
        assert!(!is_known_lower("kms:encryptioncontext"));
        assert!(is_known_lower("aws:resourcetag/project"));
        assert!(!is_known_lower("aws:resourcetag/"));
        assert!(is_known_lower("kms:recipientattestation:imagesha384"));
        assert!(is_known_lower("kms:recipientattestation:pcr0"));
        assert!(is_known_lower("kms:recipientattestation:nitrotpmpcr12"));
        assert!(!is_known_lower("kms:recipientattestation:pcr"));
        assert!(!is_known_lower("kms:recipientattestation:other"));
        assert!(!is_known_lower("aws:sourcearn"));
        assert!(!is_known_lower("s3:prefix"));
    }
}
