//! AWS managed keys: the keys behind the predefined aliases `alias/aws/<service>`.
//!
//! As in AWS, a predefined alias exists before its key: ListAliases shows it without a
//! `TargetKeyId`, and the key is created the first time the alias is used where AWS creates
//! it — DescribeKey (AWS documents this) and the operations that encrypt under a key. The new
//! key is symmetric, `KeyManager: AWS`, has AWS's service-scoped key policy, and rotates every
//! year. Two requests creating the same key at once agree through the alias's uniqueness:
//! the one whose alias insert loses deletes its key and uses the winner's.

use keyhold_kms_model::enums::{KeyManagerType, KeySpec, KeyState, KeyUsageType, OriginType};
use keyhold_kms_model::Exception;

use super::aliases::new_alias;
use super::resolve::KeyRef;
use super::rotation::{AutoRotation, DEFAULT_ROTATION_PERIOD_DAYS};
use super::{new_material_id, KeyDoc, Keys, LoadedKey};
use crate::authz::Access;
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::{StoreError, StoredKey, DOCUMENT_ID_SCOPE};

/// The services whose predefined aliases Keyhold offers (`alias/aws/<service>`), sorted.
pub const AWS_MANAGED_SERVICES: &[&str] = &[
    "acm",
    "backup",
    "codeartifact",
    "codecommit",
    "dynamodb",
    "ebs",
    "ecr",
    "elasticfilesystem",
    "es",
    "fsx",
    "glue",
    "kinesis",
    "kinesisvideo",
    "lambda",
    "lightsail",
    "rds",
    "redshift",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "xray",
];

/// The service of a predefined alias name (`alias/aws/s3` → `s3`), if it is one.
pub fn predefined_service(alias_name: &str) -> Option<&'static str> {
    let service = alias_name.strip_prefix("alias/aws/")?;
    AWS_MANAGED_SERVICES
        .iter()
        .find(|s| **s == service)
        .copied()
}

/// The key policy AWS gives an AWS managed key: the service may use it on behalf of any
/// principal of the account; the account may read its metadata.
fn aws_managed_policy(account: &str, region: &str, service: &str) -> String {
    let upper = service.to_ascii_uppercase();
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "auto-{service}-1",
  "Statement" : [ {{
    "Sid" : "Allow access through {upper} for all principals in the account that are authorized to use {upper}",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "*"
    }},
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {{
      "StringEquals" : {{
        "kms:ViaService" : "{service}.{region}.amazonaws.com",
        "kms:CallerAccount" : "{account}"
      }}
    }}
  }}, {{
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],
    "Resource" : "*"
  }} ]
}}"#
    )
}

impl Keys {
    /// Loads `key_ref` as [`Keys::load`] does, except that a predefined alias of the caller's
    /// account that has no key yet gets its AWS managed key, as AWS creates it on first use.
    pub(crate) async fn load_for_use(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        access: &Access<'_>,
    ) -> KmsResult<LoadedKey> {
        match self.load(ctx, key_ref, access).await {
            Err(e) if e.is(Exception::NotFound) => {
                let Ok(KeyRef::Alias {
                    account_id,
                    region,
                    name,
                }) = KeyRef::parse(ctx, key_ref)
                else {
                    return Err(e);
                };
                let Some(service) = predefined_service(&name) else {
                    return Err(e);
                };
                if account_id != ctx.account_id || region != ctx.region {
                    return Err(e);
                }
                self.create_aws_managed_key(ctx, service).await?;
                self.load(ctx, key_ref, access).await
            }
            other => other,
        }
    }

    /// Creates the AWS managed key of `service` and its alias; if another request created
    /// the alias first, removes this key again (the caller then loads the winner's).
    async fn create_aws_managed_key(&self, ctx: &RequestContext, service: &str) -> KmsResult<()> {
        let key_id = uuid::Uuid::new_v4().to_string();
        let material_id = new_material_id();
        let now = self.now_seconds();
        let now_ms = (now * 1000.0) as i64;
        let period = DEFAULT_ROTATION_PERIOD_DAYS;
        let doc = KeyDoc {
            description: format!(
                "Default key that protects my {} data when no other key is defined",
                service.to_ascii_uppercase()
            ),
            key_usage: KeyUsageType::EncryptDecrypt,
            key_spec: KeySpec::SymmetricDefault,
            origin: OriginType::AwsKms,
            key_manager: KeyManagerType::Aws,
            key_state: KeyState::Enabled,
            creation_date: now,
            deletion_date: None,
            pending_deletion_window_in_days: None,
            multi_region: false,
            current_material_id: material_id.clone(),
            policy: aws_managed_policy(&ctx.account_id, &ctx.region, service),
            tags: Vec::new(),
            xks_key_id: None,
            rotation: Some(AutoRotation {
                period_days: period,
                next_rotation_date: now + f64::from(period) * 86_400.0,
                enabled_date: now,
            }),
            rotations: Vec::new(),
            imported: Vec::new(),
            mrk: None,
        };
        let row = StoredKey {
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            key_id: key_id.clone(),
            custom_key_store_id: None,
            created_at_ms: now_ms,
            version: 1,
            doc: serde_json::to_string(&doc).map_err(KmsError::internal)?,
        };
        let material = self.new_material(&row, &material_id, now_ms)?;
        self.store
            .insert_key(&row, Some(&material), &[], &super::indexes_of(&doc))
            .await?;
        let alias_name = format!("alias/aws/{service}");
        let (alias_row, entry) = new_alias(ctx, &alias_name, &key_id, now)?;
        match self.store.insert_document(&alias_row, &[], &[entry]).await {
            Ok(()) => {
                tracing::info!(key_arn = %ctx.key_arn(&key_id), alias = %alias_row.id, "AWS managed key created on first use");
                Ok(())
            }
            Err(StoreError::Conflict { scope }) if scope == DOCUMENT_ID_SCOPE => {
                // Another request won; this key was never visible under the alias.
                match self
                    .store
                    .delete_key(&ctx.account_id, &ctx.region, &key_id)
                    .await
                {
                    Ok(()) | Err(StoreError::NotFound) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_aliases() {
        assert_eq!(predefined_service("alias/aws/s3"), Some("s3"));
        assert_eq!(predefined_service("alias/aws/nope"), None);
        assert_eq!(predefined_service("alias/s3"), None);
        let mut sorted = AWS_MANAGED_SERVICES.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, AWS_MANAGED_SERVICES);
    }

    #[test]
    fn the_managed_policy_is_json_that_names_the_service() {
        let p = aws_managed_policy("111122223333", "us-east-1", "s3");
        let v: serde_json::Value = serde_json::from_str(&p).expect("json");
        assert_eq!(
            v["Statement"][0]["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.us-east-1.amazonaws.com"
        );
    }
}
