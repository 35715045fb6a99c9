//! Seeding (`keyhold serve --seed FILE`): keys with given ids (and, for development only,
//! given key material), their aliases and tags, and custom key stores, described in a TOML or
//! JSON file (by extension) and applied at every start, before the listener accepts requests.
//!
//! Application is idempotent, so a reproducible test environment survives restarts:
//! * a key whose id already exists in its account and Region is left exactly as it is (a
//!   changed description, tags, policy or material in the file is not applied to it);
//! * an alias that already exists is left pointing where it points;
//! * a custom key store is matched by name; one with the same name is left as it is;
//! * a seeded key deleted through the API is created again at the next start (with given
//!   material, the same material, so old ciphertexts decrypt again).
//!
//! The file may hold XKS proxy secrets and key material: they are read, never logged or
//! echoed in errors (parse errors name the line and column, not the text).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use keyhold_core::keys::{SeedKey, SeedOutcome};
use keyhold_core::{Kms, RequestContext};
use keyhold_crypto::SecretBytes;
use keyhold_kms_model::enums::{
    CustomKeyStoreType, KeySpec, KeyUsageType, XksProxyConnectivityType,
};
use keyhold_kms_model::shapes::{
    CreateAliasRequest, CreateCustomKeyStoreRequest, Tag, XksProxyAuthenticationCredentialType,
};
use keyhold_kms_model::{Exception, SensitiveString};
use serde::Deserialize;

/// The Region of seeded items that name none.
pub const DEFAULT_SEED_REGION: &str = crate::config::DEFAULT_REGION;

/// Why a seed file cannot be read or applied; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file cannot be read.
    #[error("seed file {path}: cannot read it: {source}")]
    Read {
        /// The seed file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML/JSON or does not have the seed file's shape.
    #[error("seed file {path}: {message}")]
    Parse {
        /// The seed file.
        path: PathBuf,
        /// What is wrong and where (line and column), without the offending text.
        message: String,
    },
    /// One item is not valid (checked before anything is applied).
    #[error("seed file {path}: {item}: {message}")]
    Invalid {
        /// The seed file.
        path: PathBuf,
        /// The item, e.g. `keys[0] (1234abcd-...)`.
        item: String,
        /// What is wrong.
        message: String,
    },
    /// The domain refused an item while applying the file.
    #[error("seed file {path}: {item}: {source}")]
    Apply {
        /// The seed file.
        path: PathBuf,
        /// The item.
        item: String,
        /// The domain's error.
        source: keyhold_core::KmsError,
    },
}

/// The seed file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    /// Allows `material` on keys without `--test-mode`. Development only.
    #[serde(default)]
    allow_seeded_key_material: bool,
    #[serde(default)]
    custom_key_stores: Vec<SeedStoreEntry>,
    #[serde(default)]
    keys: Vec<SeedKeyEntry>,
}

/// One `[[keys]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedKeyEntry {
    key_id: String,
    account_id: Option<String>,
    region: Option<String>,
    #[serde(default)]
    description: String,
    key_spec: Option<String>,
    key_usage: Option<String>,
    policy: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    aliases: Vec<String>,
    /// Base64 of the key material (development only).
    material: Option<SensitiveString>,
}

/// One `[[custom_key_stores]]` entry: the CreateCustomKeyStore parameters in snake case,
/// the XKS proxy credential flattened.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedStoreEntry {
    name: String,
    account_id: Option<String>,
    region: Option<String>,
    custom_key_store_type: String,
    xks_proxy_connectivity: Option<String>,
    xks_proxy_uri_endpoint: Option<String>,
    xks_proxy_uri_path: Option<String>,
    xks_proxy_vpc_endpoint_service_name: Option<String>,
    xks_proxy_vpc_endpoint_service_owner: Option<String>,
    xks_proxy_access_key_id: Option<SensitiveString>,
    xks_proxy_secret_access_key: Option<SensitiveString>,
    cloud_hsm_cluster_id: Option<String>,
    trust_anchor_certificate: Option<String>,
    key_store_password: Option<SensitiveString>,
}

/// Where an item lives.
struct Place {
    account_id: String,
    region: String,
}

/// A checked seed file, ready to apply.
pub struct SeedPlan {
    path: PathBuf,
    stores: Vec<(Place, CreateCustomKeyStoreRequest)>,
    keys: Vec<(Place, SeedKey, Vec<String>)>,
}

/// What [`SeedPlan::apply`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    /// Items (stores, keys, aliases) created by this start.
    pub created: usize,
    /// Items that existed already and were left as they are.
    pub existing: usize,
}

impl SeedPlan {
    /// Reads and checks the seed file at `path` (TOML for `.toml`, JSON for `.json`). Given key
    /// material is refused unless `test_mode` or the file's `allow_seeded_key_material`.
    /// Items without `account_id` go to `default_account`, without `region` to us-east-1.
    pub fn load(path: &Path, test_mode: bool, default_account: &str) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_error = |message: String| SeedError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let file: SeedFile =
            match path.extension().and_then(|e| e.to_str()) {
                Some("toml") => toml::from_str(&text).map_err(|e| {
                    let at = e
                        .span()
                        .map(|s| line_col(&text, s.start))
                        .unwrap_or_default();
                    parse_error(format!("not a valid seed file (TOML){at}: {}", e.message()))
                })?,
                Some("json") => serde_json::from_str(&text).map_err(|e| {
                    parse_error(format!(
                        "not a valid seed file (JSON) at line {} column {}: {}",
                        e.line(),
                        e.column(),
                        json_reason(&e)
                    ))
                })?,
                _ => return Err(parse_error(
                    "the file name must end in .toml or .json (the format is chosen by extension)"
                        .into(),
                )),
            };
        let allow_material = test_mode || file.allow_seeded_key_material;
        let invalid = |item: String, message: String| SeedError::Invalid {
            path: path.to_path_buf(),
            item,
            message,
        };
        let mut stores = Vec::new();
        for (i, s) in file.custom_key_stores.into_iter().enumerate() {
            let item = format!("custom_key_stores[{i}] ({})", s.name);
            let place = place(
                s.account_id.as_deref(),
                s.region.as_deref(),
                default_account,
            )
            .map_err(|m| invalid(item.clone(), m))?;
            let req = store_request(s).map_err(|m| invalid(item.clone(), m))?;
            stores.push((place, req));
        }
        let mut keys = Vec::new();
        for (i, k) in file.keys.into_iter().enumerate() {
            let item = format!("keys[{i}] ({})", k.key_id);
            let place = place(
                k.account_id.as_deref(),
                k.region.as_deref(),
                default_account,
            )
            .map_err(|m| invalid(item.clone(), m))?;
            if k.material.is_some() && !allow_material {
                return Err(invalid(
                    item,
                    "gives key material, which is for development only: start the server with \
                     --test-mode or set allow_seeded_key_material = true at the top of the seed \
                     file"
                        .into(),
                ));
            }
            let (seed, aliases) = key_seed(k).map_err(|m| invalid(item.clone(), m))?;
            keys.push((place, seed, aliases));
        }
        Ok(SeedPlan {
            path: path.to_path_buf(),
            stores,
            keys,
        })
    }

    /// Creates what does not exist yet: custom key stores, then keys, then their aliases.
    /// Stops at the first item the domain refuses.
    pub async fn apply(&self, kms: &Kms) -> Result<SeedReport, SeedError> {
        let mut report = SeedReport::default();
        let failed = |item: String, source| SeedError::Apply {
            path: self.path.clone(),
            item,
            source,
        };
        for (place, req) in &self.stores {
            let item = format!("custom key store {}", req.custom_key_store_name);
            match kms
                .custom_key_stores
                .create_custom_key_store(&context(place), req.clone())
                .await
            {
                Ok(r) => {
                    report.created += 1;
                    tracing::info!(custom_key_store_id = r.custom_key_store_id.as_deref().unwrap_or_default(), name = %req.custom_key_store_name, "seeded custom key store");
                }
                Err(e) if e.is(Exception::CustomKeyStoreNameInUse) => {
                    report.existing += 1;
                    tracing::info!(name = %req.custom_key_store_name, "seeded custom key store exists; left as it is");
                }
                Err(e) => return Err(failed(item, e)),
            }
        }
        for (place, seed, aliases) in &self.keys {
            let ctx = context(place);
            let item = format!("key {}", seed.key_id);
            let outcome = match kms.keys.create_seeded_key(&ctx, seed.clone()).await {
                Ok(SeedOutcome::Created) => {
                    report.created += 1;
                    tracing::info!(key_arn = %ctx.key_arn(&seed.key_id), "seeded key");
                    SeedOutcome::Created
                }
                Ok(SeedOutcome::AlreadyExists) => {
                    report.existing += 1;
                    tracing::info!(key_arn = %ctx.key_arn(&seed.key_id), "seeded key exists; left as it is");
                    SeedOutcome::AlreadyExists
                }
                Err(e) => return Err(failed(item, e)),
            };
            for alias in aliases {
                let req = CreateAliasRequest {
                    alias_name: alias.clone(),
                    target_key_id: seed.key_id.clone(),
                };
                match kms.keys.create_alias(&ctx, req).await {
                    Ok(()) => report.created += 1,
                    Err(e) if e.is(Exception::AlreadyExists) => {
                        report.existing += 1;
                        tracing::info!(alias = %alias, "seeded alias exists; left pointing where it points");
                    }
                    // A key left as it is may have been disabled or scheduled for deletion
                    // since; its new alias waits rather than stopping the start.
                    Err(e)
                        if outcome == SeedOutcome::AlreadyExists
                            && matches!(e, keyhold_core::KmsError::Exception { .. }) =>
                    {
                        report.existing += 1;
                        tracing::warn!(alias = %alias, key_arn = %ctx.key_arn(&seed.key_id), error = %e, "seeded alias not created; the existing key does not accept it now");
                    }
                    Err(e) => return Err(failed(format!("alias {alias}"), e)),
                }
            }
        }
        Ok(report)
    }
}

/// The context seeded items are created in: the account root, as the account's own setup.
fn context(place: &Place) -> RequestContext {
    RequestContext::new(
        &place.account_id,
        &place.region,
        &format!("seed-{}", uuid::Uuid::new_v4()),
    )
}

fn place(
    account: Option<&str>,
    region: Option<&str>,
    default_account: &str,
) -> Result<Place, String> {
    let account_id = account.unwrap_or(default_account);
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account_id must be 12 digits, got {account_id:?}"));
    }
    let region = region.unwrap_or(DEFAULT_SEED_REGION);
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(format!(
            "region {region:?} is not a Region name like us-east-1"
        ));
    }
    Ok(Place {
        account_id: account_id.to_string(),
        region: region.to_string(),
    })
}

fn key_seed(k: SeedKeyEntry) -> Result<(SeedKey, Vec<String>), String> {
    if !keyhold_core::keys::is_valid_key_id(&k.key_id) {
        return Err(
            "key_id must be a lowercase UUID or mrk- and 32 lowercase hex digits".to_string(),
        );
    }
    let key_spec = match k.key_spec.as_deref() {
        Some(s) => KeySpec::try_from(s).map_err(|_| format!("unknown key_spec {s:?}"))?,
        None => KeySpec::SymmetricDefault,
    };
    let key_usage = match k.key_usage.as_deref() {
        Some(s) => KeyUsageType::try_from(s).map_err(|_| format!("unknown key_usage {s:?}"))?,
        None => KeyUsageType::EncryptDecrypt,
    };
    let material = match &k.material {
        Some(b64) => Some(SecretBytes::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64.expose().trim())
                .map_err(|_| "material is not valid base64".to_string())?,
        )),
        None => None,
    };
    for alias in &k.aliases {
        if !alias.starts_with("alias/") || alias.starts_with("alias/aws/") {
            return Err(format!(
                "alias {alias:?} must start with alias/ (and not alias/aws/)"
            ));
        }
    }
    let tags = k
        .tags
        .into_iter()
        .map(|(tag_key, tag_value)| Tag { tag_key, tag_value })
        .collect();
    Ok((
        SeedKey {
            key_id: k.key_id,
            description: k.description,
            key_spec,
            key_usage,
            policy: k.policy,
            tags,
            material,
        },
        k.aliases,
    ))
}

fn store_request(s: SeedStoreEntry) -> Result<CreateCustomKeyStoreRequest, String> {
    let ty = CustomKeyStoreType::try_from(s.custom_key_store_type.as_str()).map_err(|_| {
        format!(
            "custom_key_store_type must be EXTERNAL_KEY_STORE or AWS_CLOUDHSM, got {:?}",
            s.custom_key_store_type
        )
    })?;
    let connectivity = match s.xks_proxy_connectivity.as_deref() {
        Some(c) => Some(
            XksProxyConnectivityType::try_from(c)
                .map_err(|_| format!("unknown xks_proxy_connectivity {c:?}"))?,
        ),
        None => None,
    };
    let credential = match (s.xks_proxy_access_key_id, s.xks_proxy_secret_access_key) {
        (Some(access_key_id), Some(raw_secret_access_key)) => {
            Some(XksProxyAuthenticationCredentialType {
                access_key_id,
                raw_secret_access_key,
            })
        }
        (None, None) => None,
        _ => {
            return Err(
                "xks_proxy_access_key_id and xks_proxy_secret_access_key go together".into(),
            )
        }
    };
    Ok(CreateCustomKeyStoreRequest {
        custom_key_store_name: s.name,
        cloud_hsm_cluster_id: s.cloud_hsm_cluster_id,
        trust_anchor_certificate: s.trust_anchor_certificate,
        key_store_password: s.key_store_password,
        custom_key_store_type: Some(ty),
        xks_proxy_uri_endpoint: s.xks_proxy_uri_endpoint,
        xks_proxy_uri_path: s.xks_proxy_uri_path,
        xks_proxy_vpc_endpoint_service_name: s.xks_proxy_vpc_endpoint_service_name,
        xks_proxy_vpc_endpoint_service_owner: s.xks_proxy_vpc_endpoint_service_owner,
        xks_proxy_authentication_credential: credential,
        xks_proxy_connectivity: connectivity,
    })
}

/// ` at line L column C` of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(" at line {line} column {column}")
}

/// The kind of a JSON error, without the value that caused it (which may be a secret).
fn json_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => "syntax error".to_string(),
        // Field names, missing fields and expected types; serde names the value only for
        // invalid types and values, so drop everything from `: ` of such messages.
        Category::Data => {
            let text = e.to_string();
            let text = text.split(" at line ").next().unwrap_or_default();
            if text.starts_with("invalid type") || text.starts_with("invalid value") {
                text.split(", expected")
                    .nth(1)
                    .map(|x| format!("a value of the wrong type (expected{x})"))
                    .unwrap_or_else(|| "a value of the wrong type".to_string())
            } else {
                text.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn material_needs_test_mode_or_the_header() {
        let body = "[[keys]]\nkey_id = \"1234abcd-12ab-34cd-56ef-1234567890ab\"\nmaterial = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n";
        let (_d, path) = write("s.toml", body);
        let e = SeedPlan::load(&path, false, "111122223333")
            .err()
            .expect("refused");
        assert!(e.to_string().contains("--test-mode"), "{e}");
        assert!(SeedPlan::load(&path, true, "111122223333").is_ok());
        let (_d, path) = write(
            "s.toml",
            &format!("allow_seeded_key_material = true\n{body}"),
        );
        assert!(SeedPlan::load(&path, false, "111122223333").is_ok());
    }

    #[test]
    fn errors_never_echo_secrets() {
        let (_d, path) = write(
            "s.toml",
            "[[custom_key_stores]]\nname = \"x\"\ncustom_key_store_type = \"EXTERNAL_KEY_STORE\"\nxks_proxy_secret_access_key = 42 # SECRETVALUE\n",
        );
        let e = SeedPlan::load(&path, true, "111122223333")
            .err()
            .expect("refused");
        assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
        assert!(e.to_string().contains("line 4"), "{e}");
        let (_d, path) = write(
            "s.json",
            r#"{"keys":[{"key_id":"k","material":7}], "x": "SECRETVALUE"}"#,
        );
        let e = SeedPlan::load(&path, true, "111122223333")
            .err()
            .expect("refused");
        assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
    }

    #[test]
    fn bad_items_are_named() {
        let (_d, path) = write("s.toml", "[[keys]]\nkey_id = \"not-a-uuid\"\n");
        let e = SeedPlan::load(&path, true, "111122223333")
            .err()
            .expect("refused");
        assert!(e.to_string().contains("keys[0] (not-a-uuid)"), "{e}");
        let (_d, path) = write("s.yaml", "");
        assert!(SeedPlan::load(&path, true, "111122223333").is_err());
    }
}
