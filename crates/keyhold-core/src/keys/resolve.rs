//! Resolving the `KeyId` parameter: a key id, a key ARN, an alias name or an alias ARN.

use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use keyhold_kms_model::Exception;

/// What a `KeyId` parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A key by id, in an account and Region.
    Key {
        /// Account.
        account_id: String,
        /// Region.
        region: String,
        /// Key id.
        key_id: String,
    },
    /// An alias (`alias/...`), in an account and Region.
    Alias {
        /// Account.
        account_id: String,
        /// Region.
        region: String,
        /// The alias name including the `alias/` prefix.
        name: String,
    },
}

impl KeyRef {
    /// Parses `value` relative to the caller's account and Region.
    pub fn parse(ctx: &RequestContext, value: &str) -> KmsResult<Self> {
        if let Some(rest) = value.strip_prefix("arn:") {
            // arn:<partition>:kms:<region>:<account>:<resource>
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let invalid = || KmsError::new(Exception::NotFound, format!("Invalid arn {value}"));
            if parts.len() != 5 || parts[1] != "kms" || parts[2].is_empty() || parts[3].is_empty() {
                return Err(invalid());
            }
            let (region, account_id, resource) = (parts[2], parts[3], parts[4]);
            if region != ctx.region {
                // AWS's answer for an ARN of another Region (recorded against real AWS).
                return Err(KmsError::new(
                    Exception::NotFound,
                    format!("Invalid arn {region}"),
                ));
            }
            if let Some(key_id) = resource.strip_prefix("key/") {
                if key_id.is_empty() {
                    return Err(invalid());
                }
                return Ok(KeyRef::Key {
                    account_id: account_id.into(),
                    region: region.into(),
                    key_id: key_id.into(),
                });
            }
            if resource.starts_with("alias/") && resource.len() > "alias/".len() {
                return Ok(KeyRef::Alias {
                    account_id: account_id.into(),
                    region: region.into(),
                    name: resource.into(),
                });
            }
            return Err(invalid());
        }
        if value.starts_with("alias/") {
            return Ok(KeyRef::Alias {
                account_id: ctx.account_id.clone(),
                region: ctx.region.clone(),
                name: value.into(),
            });
        }
        if !is_key_id(value) {
            return Err(KmsError::new(
                Exception::NotFound,
                format!("Invalid keyId '{value}'"),
            ));
        }
        Ok(KeyRef::Key {
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            key_id: value.into(),
        })
    }

    /// AWS's message when the named key or alias does not exist.
    pub fn not_found_message(&self) -> String {
        match self {
            KeyRef::Key {
                account_id,
                region,
                key_id,
            } => {
                format!(
                    "Key '{}' does not exist",
                    crate::arn::key_arn(region, account_id, key_id)
                )
            }
            KeyRef::Alias {
                account_id,
                region,
                name,
            } => {
                format!(
                    "Alias {} is not found.",
                    crate::arn::alias_arn(region, account_id, name)
                )
            }
        }
    }
}

/// A key id is a UUID, or `mrk-` followed by 32 hex digits for multi-Region keys.
fn is_key_id(value: &str) -> bool {
    if let Some(hex) = value.strip_prefix("mrk-") {
        return hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    uuid::Uuid::parse_str(value).is_ok() && value.len() == 36
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext::new("111122223333", "eu-west-1", "r")
    }

    #[test]
    fn forms() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            KeyRef::parse(&ctx(), id).unwrap(),
            KeyRef::Key {
                account_id: "111122223333".into(),
                region: "eu-west-1".into(),
                key_id: id.into()
            }
        );
        let arn = format!("arn:aws:kms:eu-west-1:444455556666:key/{id}");
        assert_eq!(
            KeyRef::parse(&ctx(), &arn).unwrap(),
            KeyRef::Key {
                account_id: "444455556666".into(),
                region: "eu-west-1".into(),
                key_id: id.into()
            }
        );
        let other_region = format!("arn:aws:kms:us-west-2:444455556666:key/{id}");
        assert_eq!(
            KeyRef::parse(&ctx(), &other_region)
                .unwrap_err()
                .to_string(),
            "Invalid arn us-west-2"
        );
        assert!(matches!(
            KeyRef::parse(&ctx(), "alias/x").unwrap(),
            KeyRef::Alias { .. }
        ));
        assert!(matches!(
            KeyRef::parse(&ctx(), "arn:aws:kms:eu-west-1:444455556666:alias/x").unwrap(),
            KeyRef::Alias { .. }
        ));
        let e = KeyRef::parse(&ctx(), "nope").unwrap_err();
        assert_eq!(e.to_string(), "Invalid keyId 'nope'");
        assert!(KeyRef::parse(&ctx(), "arn:aws:kms:x").is_err());
        assert!(KeyRef::parse(&ctx(), "mrk-1234abcd12ab34cd56ef1234567890ab").is_ok());
    }
}
