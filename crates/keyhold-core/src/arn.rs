//! KMS ARNs: the one place that spells `arn:aws:kms:<region>:<account>:<resource>`.
//!
//! Keyhold only serves the `aws` partition, so the partition is fixed here; parsing a `KeyId`
//! parameter (which accepts any partition and answers each malformed form with its own AWS
//! message) stays in `keys::resolve`.

/// The ARN of a KMS key: `arn:aws:kms:<region>:<account>:key/<key_id>`.
pub fn key_arn(region: &str, account_id: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account_id}:key/{key_id}")
}

/// The ARN of an alias; `name` includes its `alias/` prefix:
/// `arn:aws:kms:<region>:<account>:alias/<name>`.
pub fn alias_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:kms:{region}:{account_id}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_aws_arns() {
        assert_eq!(
            key_arn("eu-west-1", "111122223333", "k-1"),
            "arn:aws:kms:eu-west-1:111122223333:key/k-1"
        );
        assert_eq!(
            alias_arn("eu-west-1", "111122223333", "alias/x"),
            "arn:aws:kms:eu-west-1:111122223333:alias/x"
        );
    }
}
