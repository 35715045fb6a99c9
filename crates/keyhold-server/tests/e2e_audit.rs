//! End-to-end: the audit trail (`--audit-log`). The real server writes one CloudTrail-shaped
//! record per KMS and CloudHSM call made with aws-sdk-kms (and raw CloudHSM requests); the
//! record of a call is in the file before its response arrives; no plaintext, ciphertext, key
//! material, password or XKS secret ever appears; the file rotates by size; `-` writes to
//! standard output.

mod common;
mod custom_key_stores_common;
#[allow(unused_imports)] // Its re-export of `msg` is for other tests.
mod e2e_xks_keys_common;
mod import_common;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use aws_sdk_kms::operation::RequestId as _;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    AlgorithmSpec, DataKeySpec, KeySpec, KeyUsageType, MacAlgorithmSpec, SigningAlgorithmSpec,
    WrappingKeySpec,
};
use base64::Engine as _;
use serde_json::Value;

use common::{client, TestServer};

/// Every record of the audit log at `path` (each line must be one JSON object).
fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The newest record, which must be the call with `request_id`: the record is written before
/// the response is sent.
fn last(path: &Path, request_id: Option<&str>) -> Value {
    let r = records(path).pop().expect("a record");
    assert_eq!(r["requestID"].as_str(), request_id, "{r}");
    r
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Checks the members every KMS record has, with their values.
fn check_common(r: &Value, event: &str, read_only: bool) {
    assert_eq!(r["eventVersion"], "1.11");
    assert_eq!(r["eventSource"], "kms.amazonaws.com");
    assert_eq!(r["eventName"], event);
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(r["sourceIPAddress"], "127.0.0.1");
    assert!(
        r["userAgent"]
            .as_str()
            .unwrap_or("")
            .contains("aws-sdk-rust"),
        "{r}"
    );
    let id = &r["userIdentity"];
    assert_eq!(id["type"], "Root");
    assert_eq!(id["accountId"], "123456789012");
    assert_eq!(id["principalId"], "123456789012");
    assert_eq!(id["arn"], "arn:aws:iam::123456789012:root");
    assert_eq!(id["accessKeyId"], "AKIDEXAMPLEKEYHOLD");
    let time = r["eventTime"].as_str().expect("eventTime");
    assert!(
        time::PrimitiveDateTime::parse(
            time,
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")
        )
        .is_ok(),
        "{time}"
    );
    assert!(uuid::Uuid::parse_str(r["eventID"].as_str().unwrap_or("")).is_ok());
    assert_eq!(r["readOnly"], read_only, "{event}");
    assert_eq!(r["eventType"], "AwsApiCall");
    assert_eq!(r["managementEvent"], true);
    assert_eq!(r["recipientAccountId"], "123456789012");
    assert_eq!(r["eventCategory"], "Management");
}

fn resource_arns(r: &Value) -> Vec<String> {
    r["resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .inspect(|x| {
                    assert_eq!(x["type"], "AWS::KMS::Key");
                    assert_eq!(x["accountId"], "123456789012");
                })
                .filter_map(|x| x["ARN"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn records_carry_cloudtrail_fields_and_precede_the_response() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("audit.log");
    let server = TestServer::start_with(&["--test-mode", "--audit-log", log.to_str().unwrap()]);
    let kms = client(&server);

    let made = kms
        .create_key()
        .description("payroll")
        .send()
        .await
        .expect("create");
    let md = made.key_metadata().expect("metadata");
    let (key_id, arn) = (md.key_id().to_string(), md.arn().unwrap().to_string());
    let r = last(&log, made.request_id());
    check_common(&r, "CreateKey", false);
    assert_eq!(r["requestParameters"]["description"], "payroll");
    let meta = &r["responseElements"]["keyMetadata"];
    assert_eq!(meta["keyId"], key_id.as_str());
    assert_eq!(meta["arn"], arn.as_str());
    assert_eq!(meta["AWSAccountId"], "123456789012");
    assert_eq!(meta["keyState"], "Enabled");
    assert!(meta["creationDate"].as_str().unwrap_or("").contains(", 20"));
    assert_eq!(resource_arns(&r), vec![arn.clone()]);

    let alias = kms
        .create_alias()
        .alias_name("alias/payroll")
        .target_key_id(&key_id)
        .send()
        .await
        .expect("alias");
    let r = last(&log, alias.request_id());
    check_common(&r, "CreateAlias", false);
    assert_eq!(r["requestParameters"]["aliasName"], "alias/payroll");
    assert_eq!(r["requestParameters"]["targetKeyId"], key_id.as_str());
    assert_eq!(r["responseElements"]["keyId"], arn.as_str());

    let enc = kms
        .encrypt()
        .key_id("alias/payroll")
        .plaintext(Blob::new(b"salary 100".to_vec()))
        .encryption_context("Department", "Engineering")
        .send()
        .await
        .expect("encrypt");
    let r = last(&log, enc.request_id());
    check_common(&r, "Encrypt", true);
    assert_eq!(
        r["requestParameters"],
        serde_json::json!({"keyId": "alias/payroll",
            "encryptionContext": {"Department": "Engineering"},
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT"})
    );
    assert!(r["responseElements"].is_null(), "{r}");
    assert_eq!(resource_arns(&r), vec![arn.clone()]);
    assert!(r.get("errorCode").is_none());

    let dec = kms
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .encryption_context("Department", "Engineering")
        .send()
        .await
        .expect("decrypt");
    let r = last(&log, dec.request_id());
    check_common(&r, "Decrypt", true);
    assert_eq!(
        r["requestParameters"]["encryptionAlgorithm"],
        "SYMMETRIC_DEFAULT"
    );
    assert_eq!(
        r["requestParameters"]["encryptionContext"]["Department"],
        "Engineering"
    );
    assert!(r["requestParameters"].get("ciphertextBlob").is_none());
    assert!(r["responseElements"].is_null());
    assert_eq!(resource_arns(&r), vec![arn.clone()]);

    let failed = kms
        .describe_key()
        .key_id("alias/none")
        .send()
        .await
        .expect_err("no such alias");
    let (code, message) = (
        aws_sdk_kms::error::ProvideErrorMetadata::code(&failed).unwrap_or_default(),
        aws_sdk_kms::error::ProvideErrorMetadata::message(&failed).unwrap_or_default(),
    );
    let r = last(&log, failed.request_id());
    check_common(&r, "DescribeKey", true);
    assert_eq!(r["errorCode"], "NotFoundException");
    assert_eq!(r["errorCode"], code);
    assert_eq!(r["errorMessage"], message);
    assert!(!message.is_empty());
    assert_eq!(r["requestParameters"]["keyId"], "alias/none");
    assert!(r["responseElements"].is_null());

    // One record per call, nothing else.
    let names: Vec<String> = records(&log)
        .iter()
        .map(|r| r["eventName"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "CreateKey",
            "CreateAlias",
            "Encrypt",
            "Decrypt",
            "DescribeKey"
        ]
    );
}

/// Secrets a test hands the server, in every form they could be written in.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, bytes: &[u8]) {
        assert!(bytes.len() >= 8, "{what} is too short to search for");
        self.0.push((format!("{what} (base64)"), b64(bytes)));
        self.0.push((format!("{what} (hex)"), hex::encode(bytes)));
        if let Ok(s) = std::str::from_utf8(bytes) {
            self.0.push((format!("{what} (raw)"), s.to_owned()));
        }
    }

    fn assert_absent(&self, text: &str) {
        for (what, form) in &self.0 {
            assert!(
                !text.contains(form.as_str()),
                "{what} found in the audit log"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_audit_log() {
    use custom_key_stores_common::{bound_clusters, create_hsm};
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("audit.log");
    let top = format!(
        "audit_log = {:?}\n{}",
        log.display().to_string(),
        bound_clusters(tmp.path(), &["cluster-aaaaaaaaaaa"])
    );
    // A connected external key store (its proxy credential was sent in CreateCustomKeyStore).
    let f = e2e_xks_keys_common::Fixture::start(&top).await;
    let kms = &f.kms;
    let mut secrets = Secrets::default();
    secrets.add("XKS secret", f.opts.secret.as_bytes());
    secrets.add("XKS access key id", f.opts.access_key_id.as_bytes());

    let plaintext = b"PLAINTEXT-MARK-3c0ffee";
    secrets.add("plaintext", plaintext);
    let (xks_key, _) = f.xks_key(e2e_xks_keys_common::XKS_KEY).await;
    let created = records(&log).pop().expect("CreateKey record");
    assert_eq!(created["eventName"], "CreateKey");
    assert_eq!(
        created["additionalEventData"]["customKeyStoreId"],
        f.store_id.as_str()
    );
    let (key, _) = f.default_key().await;
    for k in [&xks_key, &key] {
        let blob = common::encrypt_blob(kms, k, plaintext).await;
        secrets.add("ciphertext", blob.as_ref());
        common::assert_decrypts_to(kms, blob, plaintext).await;
    }
    let dk = kms
        .generate_data_key()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("data key");
    secrets.add("data key", dk.plaintext().unwrap().as_ref());
    secrets.add("data key blob", dk.ciphertext_blob().unwrap().as_ref());
    let re = kms
        .re_encrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .destination_key_id(&xks_key)
        .send()
        .await
        .expect("re-encrypt");
    secrets.add("re-encrypted blob", re.ciphertext_blob().unwrap().as_ref());
    let random = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .expect("random");
    secrets.add("random", random.plaintext().unwrap().as_ref());
    let pair = kms
        .generate_data_key_pair()
        .key_id(&key)
        .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .expect("data key pair");
    secrets.add(
        "private key",
        pair.private_key_plaintext().unwrap().as_ref(),
    );
    secrets.add("public key", pair.public_key().unwrap().as_ref());

    // Signatures, public keys, MACs.
    let signer = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("signing key");
    let signer = signer.key_metadata().unwrap().key_id().to_string();
    let message = b"MESSAGE-MARK-to-sign";
    secrets.add("message", message);
    let sig = kms
        .sign()
        .key_id(&signer)
        .message(Blob::new(message.to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .expect("sign");
    secrets.add("signature", sig.signature().unwrap().as_ref());
    let public = kms
        .get_public_key()
        .key_id(&signer)
        .send()
        .await
        .expect("public");
    secrets.add("signing public key", public.public_key().unwrap().as_ref());
    let hmac = kms
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .key_usage(KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .expect("hmac key");
    let hmac = hmac.key_metadata().unwrap().key_id().to_string();
    let mac = kms
        .generate_mac()
        .key_id(&hmac)
        .message(Blob::new(message.to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .expect("mac");
    secrets.add("mac", mac.mac().unwrap().as_ref());
    kms.verify_mac()
        .key_id(&hmac)
        .message(Blob::new(message.to_vec()))
        .mac(mac.mac().unwrap().clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .expect("verify mac");

    // Imported key material, its wrapping and the import token.
    let ext = import_common::create_external(
        kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let p = import_common::params(
        kms,
        &ext,
        AlgorithmSpec::RsaesOaepSha256,
        WrappingKeySpec::Rsa2048,
    )
    .await;
    let material = *b"KEY-MATERIAL-MARK-0123456789abcd";
    secrets.add("key material", &material);
    secrets.add("import token", p.token.as_ref());
    secrets.add("wrapping public key", &p.public_key);
    let wrapped = import_common::wrap(&p, &AlgorithmSpec::RsaesOaepSha256, &material);
    secrets.add("wrapped key material", wrapped.as_ref());
    import_common::import(kms, &ext, &material, AlgorithmSpec::RsaesOaepSha256).await;

    // CloudHSM: a key store password, and the CloudHSM API with passwords in Keyhold's
    // user extension (the call fails: the cluster has no token; its record is still written).
    create_hsm(kms, "audited-hsm", "cluster-aaaaaaaaaaa").await;
    secrets.add("key store password", b"kmsPswd1");
    for (target, body) in [
        ("BaldrApiService.DescribeClusters", "{}".to_string()),
        (
            "BaldrApiService.KeyholdUserCreate",
            r#"{"ClusterId":"cluster-aaaaaaaaaaa","Username":"kmsuser","Password":"HSM-PASSWORD-MARK","AdminPassword":"ADMIN-PASSWORD-MARK"}"#.to_string(),
        ),
    ] {
        common::raw(&f.server.endpoint, Some(target), Some("application/x-amz-json-1.1"), body).await;
    }
    secrets.add("HSM password", b"HSM-PASSWORD-MARK");
    secrets.add("HSM admin password", b"ADMIN-PASSWORD-MARK");

    let text = std::fs::read_to_string(&log).expect("audit log");
    secrets.assert_absent(&text);
    let all = records(&log);
    let hsm: Vec<&Value> = all
        .iter()
        .filter(|r| r["eventSource"] == "cloudhsm.amazonaws.com")
        .collect();
    assert_eq!(hsm.len(), 2, "{hsm:?}");
    assert_eq!(hsm[0]["eventName"], "DescribeClusters");
    assert_eq!(hsm[1]["eventName"], "KeyholdUserCreate");
    assert_eq!(
        hsm[1]["requestParameters"],
        serde_json::json!({"clusterId": "cluster-aaaaaaaaaaa", "username": "kmsuser"})
    );
    assert!(hsm[1]["errorCode"].is_string(), "{}", hsm[1]);
    for name in [
        "GenerateDataKey",
        "ReEncrypt",
        "Sign",
        "GenerateMac",
        "ImportKeyMaterial",
        "CreateCustomKeyStore",
    ] {
        assert!(
            all.iter().any(|r| r["eventName"] == name),
            "{name} recorded"
        );
    }
    let import = all
        .iter()
        .rev()
        .find(|r| r["eventName"] == "ImportKeyMaterial")
        .unwrap();
    assert_eq!(
        import["requestParameters"]["keyId"],
        ext.as_str(),
        "{import}"
    );
    let reencrypt = all.iter().find(|r| r["eventName"] == "ReEncrypt").unwrap();
    assert_eq!(
        resource_arns(reencrypt).len(),
        2,
        "source and destination keys"
    );
}

#[tokio::test]
async fn the_log_rotates_by_size_keeping_whole_records() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("audit.log");
    let server = TestServer::start_with(&[
        "--test-mode",
        "--audit-log",
        log.to_str().unwrap(),
        "--audit-log-max-bytes",
        "2000",
        "--audit-log-max-files",
        "2",
    ]);
    let kms = client(&server);
    let mut last_id = None;
    for _ in 0..20 {
        let out = kms.list_keys().send().await.expect("list");
        last_id = out.request_id().map(str::to_owned);
    }
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    assert!(numbered(1).exists() && numbered(2).exists());
    assert!(!numbered(3).exists(), "only two rotated files are kept");
    for path in [log.clone(), numbered(1), numbered(2)] {
        let size = std::fs::metadata(&path).expect("meta").len();
        assert!(size <= 2000, "{} has {size} bytes", path.display());
        let rs = records(&path);
        assert!(!rs.is_empty());
        assert!(rs.iter().all(|r| r["eventName"] == "ListKeys"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
    }
    last(&log, last_id.as_deref());
}

#[tokio::test]
async fn a_dash_writes_records_to_standard_output() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ready = tmp.path().join("ready");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyhold"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--audit-log",
            "-",
            "--ready-file",
        ])
        .arg(&ready)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .env_remove("KEYHOLD_ROOT_KEY")
        .env_remove("KEYHOLD_DATABASE_URL")
        .env("KEYHOLD_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            if !text.trim().is_empty() {
                break text.trim().to_string();
            }
        }
        assert!(child.try_wait().expect("wait").is_none(), "keyhold exited");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let kms = common::sdk_client(&format!("http://{addr}"), "AKIDEXAMPLEKEYHOLD", "secret");
    let out = kms.list_keys().send().await.expect("list");
    // The first line on standard output is the record (the banner goes to standard error).
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("a line on stdout");
    let _ = child.kill();
    let _ = child.wait();
    let r: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    check_common(&r, "ListKeys", true);
    assert_eq!(r["requestID"].as_str(), out.request_id());
}
