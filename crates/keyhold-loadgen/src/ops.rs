//! The operations the load generator can drive, and the one-off setup each needs (creating a
//! key, encrypting a blob to decrypt) before the measured loop starts.
//!
//! Every operation belongs to an [`Api`], which decides how requests are addressed and signed:
//! today only the KMS API (awsJson1.1 on `POST /`, service `kms`). XKS proxy operations
//! (REST+JSON on `/kms/xks/v1/...`, service `kms-xks-proxy`) slot in as a second `Api` with
//! their own variants of [`Operation`] and a setup function that returns a
//! [`RequestTemplate`].

use anyhow::{bail, Context as _};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::client::{Connection, RequestTemplate, Signer};

/// The protocol family an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The AWS KMS API: awsJson1.1, `X-Amz-Target: TrentService.<Op>`.
    Kms,
}

impl Api {
    /// The SigV4 service name.
    pub fn service(self) -> &'static str {
        match self {
            Api::Kms => "kms",
        }
    }
}

/// An operation to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Operation {
    /// KMS `ListKeys` (a baseline: HTTP, auth, routing and one database read).
    ListKeys,
    /// KMS `Encrypt` of `--plaintext-bytes` bytes.
    Encrypt,
    /// KMS `Decrypt` of one blob made by `Encrypt` during setup.
    Decrypt,
    /// KMS `Encrypt` under a key created with a realistic four-statement key policy (with
    /// conditions) and ten grants: the cost of authorization, against `encrypt` (default
    /// policy, no grants).
    EncryptPolicy,
    /// KMS `GenerateRandom` of `--plaintext-bytes` bytes: the protocol floor (HTTP, auth,
    /// routing, JSON both ways) with no key to read, to compare the key operations with.
    GenerateRandom,
}

impl Operation {
    /// The operation's name as printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListKeys => "list-keys",
            Operation::Encrypt => "encrypt",
            Operation::Decrypt => "decrypt",
            Operation::EncryptPolicy => "encrypt-policy",
            Operation::GenerateRandom => "generate-random",
        }
    }

    /// The protocol family.
    pub fn api(self) -> Api {
        match self {
            Operation::ListKeys
            | Operation::Encrypt
            | Operation::Decrypt
            | Operation::EncryptPolicy
            | Operation::GenerateRandom => Api::Kms,
        }
    }
}

/// Inputs of setup.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Use this key instead of creating one.
    pub key_id: Option<String>,
    /// Size of the plaintext for `Encrypt` (and the blob `Decrypt` opens).
    pub plaintext_bytes: usize,
}

/// What setup produced: the request each worker repeats.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The request template.
    pub template: RequestTemplate,
    /// The key used (created or given).
    pub key_id: String,
}

/// Runs the setup of `op` over `conn` and returns the request to repeat.
pub async fn prepare(
    op: Operation,
    conn: &mut Connection,
    signer: &Signer,
    opts: &SetupOptions,
) -> anyhow::Result<Prepared> {
    let key_id = match &opts.key_id {
        Some(id) => id.clone(),
        None if op == Operation::EncryptPolicy => {
            create_key_with_policy_and_grants(conn, signer).await?
        }
        // ListKeys does not need a key, but one makes the listing non-empty, as in real use.
        None => create_key(conn, signer).await?,
    };
    let plaintext = base64::engine::general_purpose::STANDARD.encode(pattern(opts.plaintext_bytes));
    let template = match op {
        Operation::ListKeys => kms_request("ListKeys", &json!({})),
        Operation::GenerateRandom => kms_request(
            "GenerateRandom",
            &json!({ "NumberOfBytes": opts.plaintext_bytes.clamp(1, 1024) }),
        ),
        Operation::Encrypt | Operation::EncryptPolicy => kms_request(
            "Encrypt",
            &json!({ "KeyId": key_id, "Plaintext": plaintext }),
        ),
        Operation::Decrypt => {
            let encrypted = kms_call(
                conn,
                signer,
                "Encrypt",
                &json!({ "KeyId": key_id, "Plaintext": plaintext }),
            )
            .await?;
            let blob = encrypted
                .get("CiphertextBlob")
                .and_then(Value::as_str)
                .context("Encrypt response has no CiphertextBlob")?;
            kms_request("Decrypt", &json!({ "CiphertextBlob": blob }))
        }
    };
    Ok(Prepared { template, key_id })
}

/// Creates a symmetric KMS key and returns its id.
async fn create_key(conn: &mut Connection, signer: &Signer) -> anyhow::Result<String> {
    let created = kms_call(
        conn,
        signer,
        "CreateKey",
        &json!({ "Description": "keyhold-loadgen" }),
    )
    .await?;
    created
        .pointer("/KeyMetadata/KeyId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("CreateKey response has no KeyMetadata.KeyId")
}

/// A key policy as the console writes one: the account (IAM delegation), key administrators,
/// key users and grant management for AWS resources — plus a deny with a condition, so every
/// statement is evaluated on each request.
fn realistic_policy(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Id": "key-consolepolicy-3",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:role/KeyAdmin")},
             "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                        "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                        "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                        "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"],
             "Resource": "*"},
            {"Sid": "Allow use of the key", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:role/KeyUser")},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                        "kms:DescribeKey"],
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:EncryptionContext:app": "bench"}}},
            {"Sid": "Only this account", "Effect": "Deny", "Principal": "*",
             "Action": "kms:*", "Resource": "*",
             "Condition": {"StringNotEquals": {"kms:CallerAccount": account}}}
        ]
    })
}

/// Creates a key with [`realistic_policy`] for the caller's account and ten grants on it.
async fn create_key_with_policy_and_grants(
    conn: &mut Connection,
    signer: &Signer,
) -> anyhow::Result<String> {
    let created = kms_call(
        conn,
        signer,
        "CreateKey",
        &json!({ "Description": "keyhold-loadgen (policy and grants)" }),
    )
    .await?;
    let key_id = created
        .pointer("/KeyMetadata/KeyId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("CreateKey response has no KeyMetadata.KeyId")?;
    let account = created
        .pointer("/KeyMetadata/AWSAccountId")
        .and_then(Value::as_str)
        .context("CreateKey response has no KeyMetadata.AWSAccountId")?
        .to_string();
    kms_call(
        conn,
        signer,
        "PutKeyPolicy",
        &json!({ "KeyId": key_id, "PolicyName": "default",
                 "Policy": realistic_policy(&account).to_string() }),
    )
    .await?;
    for i in 0..10 {
        kms_call(
            conn,
            signer,
            "CreateGrant",
            &json!({
                "KeyId": key_id,
                "GranteePrincipal": format!("arn:aws:iam::{account}:role/Service{i}"),
                "Operations": ["Encrypt", "Decrypt", "GenerateDataKey"],
                "Constraints": {"EncryptionContextSubset": {"tenant": format!("t{i}")}}
            }),
        )
        .await?;
    }
    Ok(key_id)
}

/// A KMS request template for `TrentService.<operation>` with `body`.
pub fn kms_request(operation: &str, body: &Value) -> RequestTemplate {
    RequestTemplate {
        path: "/".to_string(),
        headers: vec![
            ("content-type", "application/x-amz-json-1.1".to_string()),
            ("x-amz-target", format!("TrentService.{operation}")),
        ],
        body: Bytes::from(body.to_string()),
    }
}

/// Sends one KMS request and returns its JSON response; non-200 is an error.
async fn kms_call(
    conn: &mut Connection,
    signer: &Signer,
    operation: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let response = conn
        .send(signer, &kms_request(operation, body))
        .await
        .with_context(|| format!("setup {operation}"))?;
    if response.status != 200 {
        bail!(
            "setup {operation} failed: HTTP {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    serde_json::from_slice(&response.body)
        .with_context(|| format!("setup {operation}: response is not JSON"))
}

/// `n` bytes of a fixed, non-constant pattern (the content does not matter to the server).
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(31) + 7) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_requests_carry_target_and_json() {
        let t = kms_request("Encrypt", &json!({ "KeyId": "k" }));
        assert_eq!(t.path, "/");
        assert!(t
            .headers
            .iter()
            .any(|(n, v)| *n == "x-amz-target" && v == "TrentService.Encrypt"));
        let body: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(body["KeyId"], "k");
    }

    #[test]
    fn names_and_services() {
        assert_eq!(Operation::ListKeys.name(), "list-keys");
        assert_eq!(Operation::Decrypt.api().service(), "kms");
        assert_eq!(pattern(3).len(), 3);
    }
}
