//! Against a real SoftHSMv2 token store (skipped with a SKIP line when
//! SoftHSM is not installed, failing under CI=true).
//!
//! All tests in this binary share one SoftHSM instance (one per process);
//! each makes its own token, labelled after the test.

use std::collections::HashSet;

use keyhold_pkcs11::softhsm::TestEnv;
use keyhold_pkcs11::{admin, Ckr, Pin, Pkcs11Error, Token, TokenConfig};

const PIN: &str = "user-pin-1234";

fn token(label: &str) -> Option<(Token, TokenConfig)> {
    let env = TestEnv::get()?;
    let cfg = env.token(label, PIN).expect("init token");
    let token = Token::open(cfg.clone()).expect("open token");
    Some((token, cfg))
}

/// A decryption that must fail authentication: typed, and the CKR the
/// token used is recorded in the test output.
fn assert_auth_failure(e: &Pkcs11Error, what: &str) {
    println!("{what}: {e}");
    assert!(e.is_authentication_failure(), "{what}: {e:?}");
    assert!(
        matches!(ckr(e), Ckr::EncryptedDataInvalid | Ckr::GeneralError),
        "{what}: {e}"
    );
}

fn ckr(e: &Pkcs11Error) -> Ckr {
    e.ckr()
        .unwrap_or_else(|| panic!("expected a CKR error, got {e:?}"))
}

#[test]
fn generated_key_has_the_right_attributes() {
    let Some((t, _)) = token("t-keygen") else {
        return;
    };
    t.generate_aes_key("arn:aws:kms:eu-west-1:111122223333:key/k1")
        .expect("generate");
    let info = t
        .key_info("arn:aws:kms:eu-west-1:111122223333:key/k1")
        .expect("info");
    assert_eq!(info.label, "arn:aws:kms:eu-west-1:111122223333:key/k1");
    assert!(info.can_encrypt && info.can_decrypt);
    assert!(!info.extractable, "key must be non-extractable");
    assert!(info.sensitive);
    assert_eq!(info.value_len, 32);
    assert!(!info.value_readable, "CKA_VALUE must not be readable");
    assert!(t
        .has_key("arn:aws:kms:eu-west-1:111122223333:key/k1")
        .expect("has"));
    assert!(!t.has_key("other").expect("has other"));
    let e = t.key_info("other").expect_err("missing key");
    assert!(matches!(e, Pkcs11Error::KeyNotFound { .. }), "{e:?}");
}

#[test]
fn duplicate_label_is_refused() {
    let Some((t, _)) = token("t-dup") else { return };
    t.generate_aes_key("k").expect("first");
    let e = t.generate_aes_key("k").expect_err("second must fail");
    assert!(matches!(e, Pkcs11Error::DuplicateKey { .. }), "{e:?}");
}

#[test]
fn destroyed_key_is_gone() {
    let Some((t, _)) = token("t-destroy") else {
        return;
    };
    t.generate_aes_key("k").expect("generate");
    t.destroy_key("k").expect("destroy");
    assert!(!t.has_key("k").expect("has"));
    let e = t.aes_gcm_encrypt("k", b"", b"x").expect_err("no key");
    assert!(matches!(e, Pkcs11Error::KeyNotFound { .. }), "{e:?}");
    let e = t.destroy_key("k").expect_err("twice");
    assert!(matches!(e, Pkcs11Error::KeyNotFound { .. }), "{e:?}");
}

#[test]
fn gcm_round_trip_and_tampering() {
    let Some((t, _)) = token("t-gcm") else { return };
    t.generate_aes_key("k").expect("generate");
    let aad = b"encryption context";
    let pt = b"attack at dawn, 0123456789abcdef";
    let out = t.aes_gcm_encrypt("k", aad, pt).expect("encrypt");
    assert_eq!(out.ciphertext.len(), pt.len());
    assert_ne!(out.ciphertext.as_slice(), pt.as_slice());
    let back = t
        .aes_gcm_decrypt("k", &out.iv, aad, &out.ciphertext, &out.tag)
        .expect("decrypt");
    assert_eq!(back.as_slice(), pt.as_slice());

    let e = t
        .aes_gcm_decrypt("k", &out.iv, b"other context", &out.ciphertext, &out.tag)
        .expect_err("wrong AAD");
    assert_auth_failure(&e, "wrong AAD");
    assert!(e.to_string().contains("C_Decrypt failed: CKR_"), "{e}");

    let mut tag = out.tag;
    tag[0] ^= 1;
    let e = t
        .aes_gcm_decrypt("k", &out.iv, aad, &out.ciphertext, &tag)
        .expect_err("tampered tag");
    assert_auth_failure(&e, "tampered tag");

    let mut ct = out.ciphertext.clone();
    ct[3] ^= 0x80;
    let e = t
        .aes_gcm_decrypt("k", &out.iv, aad, &ct, &out.tag)
        .expect_err("tampered ciphertext");
    assert_auth_failure(&e, "tampered ciphertext");

    let mut iv = out.iv;
    iv[11] ^= 1;
    let e = t
        .aes_gcm_decrypt("k", &iv, aad, &out.ciphertext, &out.tag)
        .expect_err("wrong IV");
    assert_auth_failure(&e, "wrong IV");

    // A second key cannot decrypt the first one's ciphertext.
    t.generate_aes_key("k2").expect("generate k2");
    let e = t
        .aes_gcm_decrypt("k2", &out.iv, aad, &out.ciphertext, &out.tag)
        .expect_err("wrong key");
    assert_auth_failure(&e, "wrong key");

    // Empty AAD and caller-supplied IV.
    let out2 = t
        .aes_gcm_encrypt_with_iv("k", [7u8; 12], b"", b"hello")
        .expect("encrypt with iv");
    assert_eq!(out2.iv, [7u8; 12]);
    let back = t
        .aes_gcm_decrypt("k", &out2.iv, b"", &out2.ciphertext, &out2.tag)
        .expect("decrypt");
    assert_eq!(back.as_slice(), b"hello");
}

#[test]
fn ivs_differ_between_calls() {
    let Some((t, _)) = token("t-iv") else { return };
    t.generate_aes_key("k").expect("generate");
    let mut ivs = HashSet::new();
    for _ in 0..64 {
        let out = t
            .aes_gcm_encrypt("k", b"", b"same plaintext")
            .expect("encrypt");
        assert!(ivs.insert(out.iv), "IV repeated");
        assert_ne!(out.iv, [0u8; 12]);
    }
}

#[test]
fn wrong_pin_is_pin_incorrect() {
    let Some(env) = TestEnv::get() else { return };
    let mut cfg = env.token("t-wrongpin", PIN).expect("init");
    cfg.user_pin = Pin::new("not-the-pin");
    let e = Token::open(cfg.clone()).expect_err("wrong PIN must fail");
    assert_eq!(ckr(&e), Ckr::PinIncorrect, "{e}");
    assert!(
        matches!(
            e,
            Pkcs11Error::Ckr {
                function: "C_Login",
                ..
            }
        ),
        "{e:?}"
    );
    cfg.user_pin = Pin::new(PIN);
    Token::open(cfg).expect("right PIN");
}

#[test]
fn token_without_user_is_user_pin_not_initialized() {
    let Some(env) = TestEnv::get() else { return };
    env.token_without_user("t-nouser").expect("init");
    let cfg = TokenConfig::new(env.module_path(), "t-nouser", Pin::new(PIN));
    let e = Token::open(cfg).expect_err("no user");
    assert_eq!(ckr(&e), Ckr::UserPinNotInitialized, "{e}");
}

#[test]
fn unknown_token_is_token_not_found() {
    let Some(env) = TestEnv::get() else { return };
    let cfg = TokenConfig::new(env.module_path(), "t-does-not-exist", Pin::new(PIN));
    let e = Token::open(cfg).expect_err("no such token");
    assert!(matches!(e, Pkcs11Error::TokenNotFound { .. }), "{e:?}");
}

#[test]
fn set_pin_then_old_fails_and_new_works() {
    let Some((t, mut cfg)) = token("t-setpin") else {
        return;
    };
    let new = Pin::new("new-pin-5678");
    let e = t
        .set_user_pin(&Pin::new("wrong-old"), &new)
        .expect_err("wrong old PIN");
    assert_eq!(ckr(&e), Ckr::PinIncorrect, "{e}");
    t.set_user_pin(&Pin::new(PIN), &new).expect("set pin");
    t.generate_aes_key("k").expect("still usable");
    // Login is per application: close every session (drop the token) so the
    // next open really runs C_Login with the PIN it is given.
    drop(t);
    let e = Token::open(cfg.clone()).expect_err("old PIN");
    assert_eq!(ckr(&e), Ckr::PinIncorrect, "{e}");
    cfg.user_pin = new.clone();
    let t = Token::open(cfg.clone()).expect("new PIN");
    assert!(t.has_key("k").expect("key survives"));
    drop(t);
    // The admin path (no login) changes it back.
    admin::change_user_pin(&cfg.module_path, &cfg.token_label, &new, &Pin::new(PIN))
        .expect("admin change");
    cfg.user_pin = Pin::new(PIN);
    Token::open(cfg).expect("PIN changed back");
}

#[test]
fn generate_random_lengths() {
    let Some((t, _)) = token("t-random") else {
        return;
    };
    for n in [0usize, 1, 16, 32, 1024] {
        assert_eq!(t.generate_random(n).expect("random").len(), n);
    }
    assert_ne!(
        t.generate_random(32).expect("a"),
        t.generate_random(32).expect("b")
    );
}

#[test]
fn concurrent_encrypts_through_a_small_pool() {
    let Some((t, cfg)) = token("t-concurrency") else {
        return;
    };
    assert_eq!(cfg.pool_size, 2);
    t.generate_aes_key("k").expect("generate");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                for j in 0..50 {
                    let pt = format!("task {i} message {j}");
                    let aad = [i as u8, j as u8];
                    let out = t
                        .aes_gcm_encrypt("k", &aad, pt.as_bytes())
                        .expect("encrypt");
                    let back = t
                        .aes_gcm_decrypt("k", &out.iv, &aad, &out.ciphertext, &out.tag)
                        .expect("decrypt");
                    assert_eq!(back.as_slice(), pt.as_bytes());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert!(t.idle_sessions() <= 2, "pool grew: {}", t.idle_sessions());
}

#[test]
fn health_check_round_trips() {
    let Some((t, _)) = token("t-health") else {
        return;
    };
    assert!(!t.has_key("keyhold-health-check").expect("has"));
    t.health_check().expect("first health check");
    assert!(t.has_key("keyhold-health-check").expect("created"));
    t.health_check().expect("second health check");
    let info = t.key_info("keyhold-health-check").expect("info");
    assert!(!info.extractable);
}

#[test]
fn logout_then_operations_log_in_again() {
    let Some((t, _)) = token("t-logout") else {
        return;
    };
    t.generate_aes_key("k").expect("generate");
    t.logout().expect("logout");
    // Private keys are invisible when logged out; seeing it proves re-login.
    assert!(t.has_key("k").expect("has"));
    t.aes_gcm_encrypt("k", b"", b"x")
        .expect("encrypt after logout");
}

#[test]
fn recovers_after_sessions_closed_behind_its_back() {
    let Some((t, cfg)) = token("t-recover") else {
        return;
    };
    t.generate_aes_key("k").expect("generate");
    let before = t.aes_gcm_encrypt("k", b"a", b"before").expect("encrypt");
    assert_eq!(t.recoveries(), 0);
    // C_CloseAllSessions on the token's slot: every pooled session dies and
    // the application is logged out, as after an HSM failover.
    let rv = unsafe {
        let lib = cryptoki_sys::Pkcs11::new(&cfg.module_path).expect("dlopen");
        lib.C_CloseAllSessions(t.slot_id() as cryptoki_sys::CK_SLOT_ID)
    };
    assert_eq!(rv, cryptoki_sys::CKR_OK);
    let back = t
        .aes_gcm_decrypt("k", &before.iv, b"a", &before.ciphertext, &before.tag)
        .expect("decrypt after recovery");
    assert_eq!(back.as_slice(), b"before");
    assert_eq!(
        t.recoveries(),
        1,
        "the failure must have gone through recovery"
    );
    t.aes_gcm_encrypt("k", b"", b"after")
        .expect("encrypt after recovery");
    t.health_check().expect("health after recovery");
}

#[test]
fn softhsm_never_locks_the_pin() {
    let Some(env) = TestEnv::get() else { return };
    let mut cfg = env.token("t-lockout", PIN).expect("init");
    let good = cfg.clone();
    cfg.user_pin = Pin::new("bad");
    let mut seen = Vec::new();
    for _ in 0..30 {
        let e = Token::open(cfg.clone()).expect_err("wrong PIN");
        seen.push(ckr(&e));
    }
    println!(
        "SoftHSM answers to 30 wrong PINs: {:?}",
        seen.iter().collect::<HashSet<_>>()
    );
    // Observed: SoftHSM keeps answering CKR_PIN_INCORRECT and never locks;
    // Keyhold has to count failures itself for USER_LOCKED_OUT.
    assert!(seen.iter().all(|c| *c == Ckr::PinIncorrect), "{seen:?}");
    Token::open(good).expect("right PIN still works after 30 failures");
}

#[test]
fn second_token_in_process_shares_the_login() {
    let Some((t, mut cfg)) = token("t-shared-login") else {
        return;
    };
    t.generate_aes_key("k").expect("generate");
    // While `t` is logged in, C_Login from this process answers
    // CKR_USER_ALREADY_LOGGED_IN without checking the PIN.
    cfg.user_pin = Pin::new("wrong");
    let t2 = Token::open(cfg).expect("opens on the shared login");
    assert!(t2.has_key("k").expect("sees private key"));
}

/// Runs only as the child of `login_is_per_process` (skips otherwise).
#[test]
fn child_process_login_probe() {
    let (Ok(label), Ok(pin)) = (
        std::env::var("KEYHOLD_CHILD_TOKEN"),
        std::env::var("KEYHOLD_CHILD_PIN"),
    ) else {
        return;
    };
    let module = keyhold_pkcs11::softhsm::SOFTHSM_MODULE;
    match Token::open(TokenConfig::new(module, label, Pin::new(pin))) {
        Ok(t) => println!(
            "CHILD: login ok, sees key: {:?}",
            t.has_key("k").map_err(|e| e.to_string())
        ),
        Err(e) => println!("CHILD: login failed: {:?}", e.ckr()),
    }
}

#[test]
fn login_is_per_process() {
    let Some((t, cfg)) = token("t-per-process") else {
        return;
    };
    t.generate_aes_key("k").expect("generate");
    let run_child = |pin: &str| {
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "child_process_login_probe",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KEYHOLD_CHILD_TOKEN", &cfg.token_label)
            .env("KEYHOLD_CHILD_PIN", pin)
            .output()
            .expect("spawn child");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .find_map(|l| l.find("CHILD:").map(|i| l[i..].to_string()))
            .unwrap_or_else(|| panic!("child printed no result: {stdout}"))
    };
    // This process is logged in; another process is not, so its wrong PIN
    // is checked and refused, and its right PIN works alongside ours.
    let wrong = run_child("wrong");
    println!("{wrong}");
    assert_eq!(wrong, "CHILD: login failed: Some(PinIncorrect)");
    let right = run_child(PIN);
    println!("{right}");
    assert!(right.starts_with("CHILD: login ok"), "{right}");
    // Our login survives the child's login and logout (its sessions closing).
    assert!(t.has_key("k").expect("still logged in"));
    t.aes_gcm_encrypt("k", b"", b"x").expect("encrypt");
}
