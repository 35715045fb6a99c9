//! Optional secondary authorization: a rules file allowing or denying (principal ARN,
//! `kmsOperation`, key) combinations per store. First matching rule wins; no match denies.
//!
//! ```toml
//! [[rule]]
//! name = "app-role-crypto"
//! principals = ["arn:aws:iam::111122223333:role/app-*"]   # trailing * is a prefix match
//! operations = ["Encrypt", "Decrypt", "GenerateDataKey"]  # kmsOperation values, or "*"
//! keys = ["app-key-1"]                                    # or "*"
//! stores = ["/tenant-a"]                                  # optional; default every store
//!
//! [[rule]]
//! name = "block-everyone-else"
//! effect = "deny"
//! principals = ["*"]
//! operations = ["*"]
//! keys = ["*"]
//! ```
//!
//! GetHealthStatus is never subject to these rules (spec).

use std::path::Path;

use serde::Deserialize;

use crate::config::ConfigError;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Let the request through.
    #[default]
    Allow,
    /// Refuse with `AccessDeniedException`.
    Deny,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name, logged with every denial it causes.
    pub name: String,
    /// Allow (default) or deny.
    #[serde(default)]
    pub effect: Effect,
    /// Principal ARN patterns.
    pub principals: Vec<String>,
    /// `kmsOperation` patterns.
    pub operations: Vec<String>,
    /// External key id patterns.
    pub keys: Vec<String>,
    /// Store prefixes; empty means every store.
    #[serde(default)]
    pub stores: Vec<String>,
}

/// The rules file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// In order; first match wins.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

/// The outcome of [`Rules::decide`]: allowed or not, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The deciding rule, or `default-deny` when none matched.
    pub rule: String,
}

fn matches(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => p == value,
    })
}

impl Rules {
    /// Reads a rules file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Decides a request of `principal` doing `operation` on `key` in store `store`.
    pub fn decide(&self, store: &str, principal: &str, operation: &str, key: &str) -> Decision {
        for rule in &self.rules {
            let store_ok = rule.stores.is_empty() || rule.stores.iter().any(|s| s == store);
            if store_ok
                && matches(&rule.principals, principal)
                && matches(&rule.operations, operation)
                && matches(&rule.keys, key)
            {
                return Decision {
                    allowed: rule.effect == Effect::Allow,
                    rule: rule.name.clone(),
                };
            }
        }
        Decision {
            allowed: false,
            rule: "default-deny".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_and_default_denies() {
        let rules: Rules = toml::from_str(
            r#"
            [[rule]]
            name = "no-reencrypt"
            effect = "deny"
            principals = ["*"]
            operations = ["ReEncrypt"]
            keys = ["*"]
            [[rule]]
            name = "app"
            principals = ["arn:aws:iam::1:role/app-*"]
            operations = ["*"]
            keys = ["k1"]
            stores = ["/a"]
            "#,
        )
        .expect("valid");
        let d = rules.decide("/a", "arn:aws:iam::1:role/app-x", "Encrypt", "k1");
        assert_eq!((d.allowed, d.rule.as_str()), (true, "app"));
        let d = rules.decide("/a", "arn:aws:iam::1:role/app-x", "ReEncrypt", "k1");
        assert_eq!((d.allowed, d.rule.as_str()), (false, "no-reencrypt"));
        let d = rules.decide("/b", "arn:aws:iam::1:role/app-x", "Encrypt", "k1");
        assert_eq!((d.allowed, d.rule.as_str()), (false, "default-deny"));
        assert!(
            !rules
                .decide("/a", "arn:aws:iam::1:role/other", "Encrypt", "k1")
                .allowed
        );
        assert!(
            !rules
                .decide("/a", "arn:aws:iam::1:role/app-x", "Encrypt", "k2")
                .allowed
        );
        // Unknown future operations are decided by the rules like any other.
        assert!(
            rules
                .decide("/a", "arn:aws:iam::1:role/app-x", "BulkEncrypt", "k1")
                .allowed
        );
        assert!(toml::from_str::<Rules>("[[rule]]\nname = \"x\"\nbogus = 1").is_err());
    }
}
