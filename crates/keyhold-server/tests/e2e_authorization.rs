//! End-to-end, strict mode: key policies, identity policies and grants decide every request,
//! as AWS KMS does — principals allowed and denied by the key policy, IAM delegation through
//! the account root statement, explicit denies, encryption-context conditions, grants with
//! constraints (and their retirement and revocation), and cross-account use with and without
//! the caller's identity policy.

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantOperation};
use common::{failure, sdk_client, TestServer};

const A: &str = "111122223333";
const B: &str = "444455556666";

/// (access key id, account, principal ARN or "" for the root, identity policies).
const PRINCIPALS: &[(&str, &str, &str, &[&str])] = &[
    ("AKIAROOTA00000000001", A, "", &[]),
    (
        "AKIAALICE0000000001",
        A,
        "arn:aws:iam::111122223333:user/alice",
        &[],
    ),
    (
        "AKIABOB00000000001",
        A,
        "arn:aws:iam::111122223333:user/bob",
        &[],
    ),
    (
        "AKIACAROL000000001",
        A,
        "arn:aws:iam::111122223333:role/carol",
        &[
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}]}"#,
        ],
    ),
    (
        "AKIADAVE000000001",
        B,
        "arn:aws:iam::444455556666:user/dave",
        &[
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"arn:aws:kms:*:111122223333:key/*"}]}"#,
        ],
    ),
    (
        "AKIAERIN000000001",
        B,
        "arn:aws:iam::444455556666:user/erin",
        &[],
    ),
];

const SECRET: &str = "authorization-test-secret-0000000000000000";

fn strict_server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = String::from("auth = \"strict\"\n");
    for (akid, account, arn, policies) in PRINCIPALS {
        cfg.push_str(&format!(
            "[[access_keys]]\naccess_key_id = \"{akid}\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"{account}\"\n"
        ));
        if !arn.is_empty() {
            cfg.push_str(&format!("principal_arn = \"{arn}\"\n"));
        }
        if !policies.is_empty() {
            let list: Vec<String> = policies.iter().map(|p| format!("'''{p}'''")).collect();
            cfg.push_str(&format!("identity_policies = [{}]\n", list.join(", ")));
        }
    }
    let path = dir.path().join("keyhold.toml");
    std::fs::write(&path, cfg).unwrap();
    let rk = dir.path().join("root.key");
    std::fs::write(&rk, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    {
        // Keyhold refuses a root key file its group or others can read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rk, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let server = TestServer::start_with(&[
        "--config",
        path.to_str().unwrap(),
        "--root-key-file",
        rk.to_str().unwrap(),
    ]);
    (server, dir)
}

fn as_principal(server: &TestServer, akid: &str) -> aws_sdk_kms::Client {
    sdk_client(&server.endpoint, akid, SECRET)
}

struct Clients {
    root: aws_sdk_kms::Client,
    alice: aws_sdk_kms::Client,
    bob: aws_sdk_kms::Client,
    carol: aws_sdk_kms::Client,
    dave: aws_sdk_kms::Client,
    erin: aws_sdk_kms::Client,
}

fn clients(server: &TestServer) -> Clients {
    let c = |i: usize| as_principal(server, PRINCIPALS[i].0);
    Clients {
        root: c(0),
        alice: c(1),
        bob: c(2),
        carol: c(3),
        dave: c(4),
        erin: c(5),
    }
}

async fn encrypt(
    kms: &aws_sdk_kms::Client,
    key: &str,
    context: &[(&str, &str)],
) -> Result<Blob, (String, String)> {
    let mut req = kms
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"p".to_vec()));
    for (k, v) in context {
        req = req.encryption_context(*k, *v);
    }
    match req.send().await {
        Ok(out) => Ok(out.ciphertext_blob().cloned().expect("blob")),
        Err(e) => Err(failure::<(), _>(Err(e))),
    }
}

async fn decrypt(
    kms: &aws_sdk_kms::Client,
    blob: &Blob,
    context: &[(&str, &str)],
) -> Result<(), (String, String)> {
    let mut req = kms.decrypt().ciphertext_blob(blob.clone());
    for (k, v) in context {
        req = req.encryption_context(*k, *v);
    }
    req.send()
        .await
        .map(|_| ())
        .map_err(|e| failure::<(), _>(Err(e)))
}

fn denied(r: Result<impl std::fmt::Debug, (String, String)>, needle: &str) -> String {
    let (code, message) = r.expect_err("must be denied");
    assert_eq!(code, "AccessDeniedException", "{message}");
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    message
}

const KEY_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Key user alice", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
    {"Sid": "Account B", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
     "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"},
    {"Sid": "alice decrypts web data only", "Effect": "Deny",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:Decrypt",
     "Resource": "*",
     "Condition": {"StringNotEquals": {"kms:EncryptionContext:app": "web"}}}
  ]
}"#;

#[tokio::test]
async fn key_policies_and_identity_policies_decide_each_request() {
    let (server, _dir) = strict_server();
    let c = clients(&server);
    let key = c
        .root
        .create_key()
        .policy(KEY_POLICY)
        .send()
        .await
        .expect("root creates a key with a policy");
    let arn = key.key_metadata().unwrap().arn().unwrap().to_string();

    // alice: named by the key policy, no IAM policy needed in the key's account.
    let web = encrypt(&c.alice, &arn, &[("app", "web")])
        .await
        .expect("alice encrypts");
    decrypt(&c.alice, &web, &[("app", "web")])
        .await
        .expect("alice decrypts web data");
    let other = encrypt(&c.alice, &arn, &[("app", "batch")])
        .await
        .expect("alice encrypts");
    let m = denied(
        decrypt(&c.alice, &other, &[("app", "batch")]).await,
        "with an explicit deny in a resource-based policy",
    );
    assert_eq!(
        m,
        format!("User: arn:aws:iam::{A}:user/alice is not authorized to perform: kms:Decrypt on resource: {arn} with an explicit deny in a resource-based policy")
    );
    // alice may not manage the key.
    denied(
        c.alice
            .disable_key()
            .key_id(&arn)
            .send()
            .await
            .map_err(|e| failure::<(), _>(Err(e))),
        "kms:DisableKey",
    );

    // bob: the root statement delegates to IAM, and bob has no IAM policy.
    let m = denied(
        encrypt(&c.bob, &arn, &[]).await,
        "because no identity-based policy allows the kms:Encrypt action",
    );
    assert!(
        m.starts_with(&format!(
            "User: arn:aws:iam::{A}:user/bob is not authorized"
        )),
        "{m}"
    );
    // carol: delegated, and her identity policy allows it.
    let blob = encrypt(&c.carol, &arn, &[]).await.expect("carol encrypts");
    decrypt(&c.carol, &blob, &[]).await.expect("carol decrypts");
    // ... but only what it allows.
    denied(
        c.carol
            .schedule_key_deletion()
            .key_id(&arn)
            .send()
            .await
            .map_err(|e| failure::<(), _>(Err(e))),
        "because no identity-based policy allows the kms:ScheduleKeyDeletion action",
    );
    // Without a key resource, IAM alone decides: carol may not CreateKey, the root may.
    denied(
        c.carol
            .create_key()
            .send()
            .await
            .map_err(|e| failure::<(), _>(Err(e))),
        "kms:CreateKey on resource: *",
    );

    // Cross-account: the key policy names account B, so B's principals need IAM too.
    let blob = encrypt(&c.dave, &arn, &[])
        .await
        .expect("dave (account B) encrypts");
    decrypt(&c.dave, &blob, &[]).await.expect("dave decrypts");
    denied(
        encrypt(&c.erin, &arn, &[]).await,
        "because no identity-based policy allows the kms:Encrypt action",
    );
    // A key whose policy does not name account B: dave's IAM policy is not enough.
    let own = c
        .root
        .create_key()
        .send()
        .await
        .expect("default-policy key");
    let own_arn = own.key_metadata().unwrap().arn().unwrap().to_string();
    denied(
        encrypt(&c.dave, &own_arn, &[]).await,
        "because no resource-based policy allows the kms:Encrypt action",
    );
    // The account root of A is allowed by the default policy.
    encrypt(&c.root, &own_arn, &[])
        .await
        .expect("root encrypts");
}

#[tokio::test]
async fn grants_allow_within_their_constraints_until_retired_or_revoked() {
    let (server, _dir) = strict_server();
    let c = clients(&server);
    let key = c.root.create_key().send().await.expect("key");
    let arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    denied(
        encrypt(&c.bob, &arn, &[("dept", "it")]).await,
        "kms:Encrypt",
    );

    let grant = c
        .root
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(format!("arn:aws:iam::{A}:user/bob"))
        .retiring_principal(format!("arn:aws:iam::{A}:user/alice"))
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("dept", "it")
                .build(),
        )
        .name("bob-it")
        .send()
        .await
        .expect("create grant");
    let grant_id = grant.grant_id().unwrap().to_string();
    let token = grant.grant_token().unwrap().to_string();
    assert_eq!(grant_id.len(), 64);

    // Inside the constraint (keys compare without case), bob may; outside, not.
    let blob = encrypt(&c.bob, &arn, &[("DEPT", "it"), ("x", "y")])
        .await
        .expect("bob encrypts under the grant");
    decrypt(&c.bob, &blob, &[("DEPT", "it"), ("x", "y")])
        .await
        .expect("bob decrypts under the grant");
    denied(
        encrypt(&c.bob, &arn, &[("dept", "hr")]).await,
        "kms:Encrypt",
    );
    denied(encrypt(&c.bob, &arn, &[]).await, "kms:Encrypt");
    // The grant does not give DescribeKey.
    denied(
        c.bob
            .describe_key()
            .key_id(&arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failure::<(), _>(Err(e))),
        "kms:DescribeKey",
    );
    // Grant tokens are accepted; made-up ones are not.
    c.bob
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"p".to_vec()))
        .encryption_context("dept", "it")
        .grant_tokens(&token)
        .send()
        .await
        .expect("encrypt with the grant token");
    let (code, _) = failure(
        c.bob
            .encrypt()
            .key_id(&arn)
            .plaintext(Blob::new(b"p".to_vec()))
            .grant_tokens("not-a-grant-token")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidGrantTokenException");

    // Name idempotency: the same name and parameters answer the same grant.
    let again = c
        .root
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(format!("arn:aws:iam::{A}:user/bob"))
        .retiring_principal(format!("arn:aws:iam::{A}:user/alice"))
        .operations(GrantOperation::Decrypt)
        .operations(GrantOperation::Encrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("dept", "it")
                .build(),
        )
        .name("bob-it")
        .send()
        .await
        .expect("create grant again");
    assert_eq!(again.grant_id(), Some(grant_id.as_str()));

    // ListGrants and ListRetirableGrants show it.
    let listed = c
        .root
        .list_grants()
        .key_id(&key_id)
        .send()
        .await
        .expect("list grants");
    let g = &listed.grants()[0];
    assert_eq!(listed.grants().len(), 1);
    assert_eq!(g.grant_id(), Some(grant_id.as_str()));
    assert_eq!(g.key_id(), Some(arn.as_str()));
    assert_eq!(
        g.issuing_account(),
        Some(format!("arn:aws:iam::{A}:root").as_str())
    );
    assert_eq!(g.name(), Some("bob-it"));
    assert_eq!(
        g.constraints()
            .unwrap()
            .encryption_context_subset()
            .unwrap()
            .get("dept")
            .map(String::as_str),
        Some("it")
    );
    let retirable = c
        .root
        .list_retirable_grants()
        .retiring_principal(format!("arn:aws:iam::{A}:user/alice"))
        .send()
        .await
        .expect("list retirable grants");
    assert_eq!(retirable.grants().len(), 1);

    // Operations a symmetric key does not support are refused.
    let (code, message) = failure(
        c.root
            .create_grant()
            .key_id(&key_id)
            .grantee_principal(format!("arn:aws:iam::{A}:user/bob"))
            .operations(GrantOperation::Sign)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException", "{message}");

    // bob (not the retiring principal; the grant lacks RetireGrant) cannot retire it.
    let (code, _) = failure(c.bob.retire_grant().grant_token(&token).send().await);
    assert_eq!(code, "AccessDeniedException");
    // alice, the retiring principal, can — with the token alone.
    c.alice
        .retire_grant()
        .grant_token(&token)
        .send()
        .await
        .expect("alice retires the grant");
    denied(
        encrypt(&c.bob, &arn, &[("dept", "it")]).await,
        "kms:Encrypt",
    );
    let (code, _) = failure(
        c.root
            .revoke_grant()
            .key_id(&key_id)
            .grant_id(&grant_id)
            .send()
            .await,
    );
    assert_eq!(code, "NotFoundException");
    assert!(c
        .root
        .list_grants()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .grants()
        .is_empty());

    // RevokeGrant by the key's administrator ends a grant too.
    let g2 = c
        .root
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(format!("arn:aws:iam::{A}:user/bob"))
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .expect("second grant");
    encrypt(&c.bob, &arn, &[])
        .await
        .expect("bob encrypts under the second grant");
    c.root
        .revoke_grant()
        .key_id(&key_id)
        .grant_id(g2.grant_id().unwrap())
        .send()
        .await
        .expect("revoke");
    denied(encrypt(&c.bob, &arn, &[]).await, "kms:Encrypt");

    // A grant to a principal of another account works across accounts by itself.
    c.root
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(format!("arn:aws:iam::{B}:user/erin"))
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .expect("cross-account grant");
    encrypt(&c.erin, &arn, &[])
        .await
        .expect("erin encrypts under the grant");
    denied(encrypt(&c.dave, &arn, &[]).await, "kms:Encrypt");

    // Grants go with their key.
    c.root
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule deletion");
}

/// CreateGrant of `ops` on `key_id` to `grantee` of account A, optionally constrained to
/// the encryption context `team=a` exactly; (code, message) on failure.
async fn grant_team_a(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    grantee: &str,
    ops: &[GrantOperation],
    constrained: bool,
) -> Result<(), (String, String)> {
    let mut req = kms
        .create_grant()
        .key_id(key_id)
        .grantee_principal(format!("arn:aws:iam::{A}:user/{grantee}"));
    for op in ops {
        req = req.operations(op.clone());
    }
    if constrained {
        req = req.constraints(
            GrantConstraints::builder()
                .encryption_context_equals("team", "a")
                .build(),
        );
    }
    req.send()
        .await
        .map(|_| ())
        .map_err(|e| failure::<(), _>(Err(e)))
}

#[tokio::test]
async fn a_grant_given_create_grant_only_passes_on_what_it_has() {
    let (server, _dir) = strict_server();
    let c = clients(&server);
    let key = c.root.create_key().send().await.expect("key");
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    use GrantOperation::{CreateGrant, Decrypt, Encrypt};
    grant_team_a(&c.root, &key_id, "alice", &[CreateGrant, Encrypt], true)
        .await
        .expect("grant with CreateGrant");
    // alice may pass on Encrypt with the same constraint ...
    grant_team_a(&c.alice, &key_id, "bob", &[Encrypt], true)
        .await
        .expect("alice passes on Encrypt");
    // ... but not Decrypt, which she does not have, nor Encrypt without the constraint.
    let (code, _) = grant_team_a(&c.alice, &key_id, "bob", &[Decrypt], true)
        .await
        .expect_err("Decrypt is not alice's to give");
    assert_eq!(code, "AccessDeniedException");
    let (code, _) = grant_team_a(&c.alice, &key_id, "bob", &[Encrypt], false)
        .await
        .expect_err("the constraint must be kept");
    assert_eq!(code, "AccessDeniedException");
    encrypt(&c.bob, &key_id, &[("team", "a")])
        .await
        .expect("bob encrypts");
    denied(
        encrypt(&c.bob, &key_id, &[("team", "b")]).await,
        "kms:Encrypt",
    );
}

#[tokio::test]
async fn resource_aliases_and_request_alias_conditions() {
    let (server, _dir) = strict_server();
    let c = clients(&server);
    let policy = r#"{"Version":"2012-10-17","Statement":[
      {"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
      {"Sid":"finance keys","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},
       "Action":"kms:Encrypt","Resource":"*",
       "Condition":{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/finance-*"}}},
      {"Sid":"through the alias","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},
       "Action":"kms:Encrypt","Resource":"*",
       "Condition":{"StringEquals":{"kms:RequestAlias":"alias/app"}}}]}"#;
    let key = c
        .root
        .create_key()
        .policy(policy)
        .send()
        .await
        .expect("key");
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    denied(encrypt(&c.bob, &key_id, &[]).await, "kms:Encrypt");
    c.root
        .create_alias()
        .alias_name("alias/finance-2026")
        .target_key_id(&key_id)
        .send()
        .await
        .expect("alias");
    encrypt(&c.bob, &key_id, &[])
        .await
        .expect("bob encrypts once the key has a finance alias");
    c.root
        .create_alias()
        .alias_name("alias/app")
        .target_key_id(&key_id)
        .send()
        .await
        .expect("alias");
    denied(encrypt(&c.alice, &key_id, &[]).await, "kms:Encrypt");
    encrypt(&c.alice, "alias/app", &[])
        .await
        .expect("alice encrypts through alias/app");
}
