//! KMS ARNs: the one place that spells `arn:<partition>:kms:<region>:<account>:<resource>`.
//!
//! The partition follows the Region as AWS's partitions do: `aws-cn` for the China Regions
//! (`cn-north-1`, `cn-northwest-1`, any `cn-*`), `aws-us-gov` for the GovCloud Regions
//! (`us-gov-*`), `aws` otherwise. Parsing a `KeyId` parameter (which accepts any partition
//! and answers each malformed form with its own AWS message) stays in `keys::resolve`.

/// The AWS partition of `region`: `aws-cn`, `aws-us-gov` or `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Whether `region` is one of the China Regions (partition `aws-cn`), the only Regions where
/// AWS offers the SM2 key spec.
pub fn is_china_region(region: &str) -> bool {
    partition(region) == "aws-cn"
}

/// The ARN of a KMS key: `arn:<partition>:kms:<region>:<account>:key/<key_id>`.
pub fn key_arn(region: &str, account_id: &str, key_id: &str) -> String {
    let partition = partition(region);
    format!("arn:{partition}:kms:{region}:{account_id}:key/{key_id}")
}

/// The ARN of an alias; `name` includes its `alias/` prefix:
/// `arn:<partition>:kms:<region>:<account>:alias/<name>`.
pub fn alias_arn(region: &str, account_id: &str, name: &str) -> String {
    let partition = partition(region);
    format!("arn:{partition}:kms:{region}:{account_id}:{name}")
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

    #[test]
    fn china_regions_use_the_aws_cn_partition() {
        assert_eq!(
            key_arn("cn-north-1", "111122223333", "k-1"),
            "arn:aws-cn:kms:cn-north-1:111122223333:key/k-1"
        );
        assert_eq!(
            alias_arn("cn-northwest-1", "111122223333", "alias/x"),
            "arn:aws-cn:kms:cn-northwest-1:111122223333:alias/x"
        );
        assert!(is_china_region("cn-northwest-1") && !is_china_region("us-east-1"));
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }
}
