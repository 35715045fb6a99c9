//! A token whose files vanish under a running module and come back: SoftHSMv2
//! answers `CKR_GENERAL_ERROR` to every `C_GetSlotList` from then on, until the
//! module is finalized and initialised again. Keyhold resets the module and
//! the same `Token` works again, without a restart; another token on the
//! module survives the reset.
//!
//! Its own test binary (process): a reset affects every token of the module.

use std::time::{Duration, Instant};

use keyhold_pkcs11::softhsm::TestEnv;
use keyhold_pkcs11::{Pkcs11Error, Token};

/// Retries `f` until it succeeds or 10 s pass (resets are rate-limited).
fn eventually<T>(what: &str, f: impl Fn() -> Result<T, Pkcs11Error>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{what}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

#[test]
fn vanished_token_files_recover_without_restart() {
    let Some(env) = TestEnv::get() else { return };
    let bystander_cfg = env.token("t-bystander", "user-pin-5678").expect("init");
    let bystander = Token::open(bystander_cfg).expect("open bystander");
    bystander.generate_aes_key("b").expect("generate b");
    let before_b = bystander
        .aes_gcm_encrypt("b", b"", b"bystander")
        .expect("b");

    let cfg = env.token("t-vanish", "user-pin-1234").expect("init token");
    let t = Token::open(cfg.clone()).expect("open");
    t.generate_aes_key("k").expect("generate");
    let before = t.aes_gcm_encrypt("k", b"aad", b"before").expect("encrypt");

    // Find t-vanish's directory: the newest token directory.
    let tokens = env.dir().join("tokens");
    let dir = std::fs::read_dir(&tokens)
        .expect("tokens")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .expect("a token directory");
    let aside = env.dir().join("aside-t-vanish");
    std::fs::rename(&dir, &aside).expect("move the token away");

    let gone = t.aes_gcm_encrypt("k", b"aad", b"x");
    assert!(
        matches!(
            gone,
            Err(Pkcs11Error::KeyNotFound { .. } | Pkcs11Error::TokenNotFound { .. })
        ),
        "{gone:?}"
    );
    let reopened = Token::open(cfg.clone());
    assert!(reopened.is_err(), "the token is gone");

    std::fs::rename(&aside, &dir).expect("put the token back");
    let back = eventually("decrypt after the token returned", || {
        t.aes_gcm_decrypt("k", &before.iv, b"aad", &before.ciphertext, &before.tag)
    });
    assert_eq!(back.as_slice(), b"before");
    assert!(t.recoveries() >= 1, "the token must have recovered");
    t.health_check().expect("health after the token returned");
    Token::open(cfg).expect("a fresh open works too");

    // The other token on the module lived through the reset.
    let b = bystander
        .aes_gcm_decrypt("b", &before_b.iv, b"", &before_b.ciphertext, &before_b.tag)
        .expect("bystander after the reset");
    assert_eq!(b.as_slice(), b"bystander");
}
