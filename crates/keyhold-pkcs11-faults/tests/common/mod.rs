//! Shared set-up of the tests against the shim in front of the real SoftHSMv2:
//! the fault file, a token initialised and opened through the shim, and
//! checks on what comes back.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use keyhold_pkcs11::admin::{self, SlotChoice};
use keyhold_pkcs11::softhsm::{TestEnv, TEST_SO_PIN};
use keyhold_pkcs11::{Ckr, Pin, Pkcs11Error, Token, TokenConfig};
use keyhold_pkcs11_faults::{library_path, FaultFile, FILE_ENV, MODULE_ENV};

/// The user PIN of the tokens the tests initialise.
pub const PIN: &str = "user-pin-1234";
/// The additional authenticated data of the tests' AES-GCM calls.
pub const AAD: &[u8] = b"context";

/// A token initialised and opened through the shim.
pub struct ShimToken {
    /// The shim module (`libkeyhold_pkcs11_faults.so`).
    pub shim: PathBuf,
    /// The fault file the shim reads, set in the environment before the
    /// shim was loaded.
    pub faults: FaultFile,
    /// The configuration `token` was opened with (pool of 2, 2 s check-out
    /// timeout), for opening it again.
    pub cfg: TokenConfig,
    /// The token, opened through the shim.
    pub token: Token,
}

/// Points the shim at a fault file, initialises a token labelled `label`
/// through the shim and opens it; `None` (after a SKIP line) when SoftHSM is
/// not installed.
///
/// The shim reads the fault file's path once, when it is loaded: call this
/// before anything else in the process loads the shim.
pub fn open_shim_token(label: &str) -> Option<ShimToken> {
    let env = TestEnv::get()?;
    let shim = library_path().expect("libkeyhold_pkcs11_faults.so next to the test binary");
    assert!(
        std::env::var_os(MODULE_ENV).is_none(),
        "the shim must forward to SoftHSM"
    );
    let faults = FaultFile::new(env.dir().join("faults"));
    // Before anything loads the shim, which reads it once.
    std::env::set_var(FILE_ENV, faults.path());

    admin::init_token(
        &shim,
        SlotChoice::FirstFree,
        label,
        &Pin::new(TEST_SO_PIN),
        Some(&Pin::new(PIN)),
    )
    .expect("init token through the shim");
    let mut cfg = TokenConfig::new(&shim, label, Pin::new(PIN));
    cfg.pool_size = 2;
    cfg.checkout_timeout = Duration::from_secs(2);
    let token = Token::open(cfg.clone()).expect("open through the shim");
    Some(ShimToken {
        shim,
        faults,
        cfg,
        token,
    })
}

/// The CKR code of `e`; panics when `e` is not a CKR error.
pub fn ckr(e: &Pkcs11Error) -> Ckr {
    e.ckr()
        .unwrap_or_else(|| panic!("expected a CKR error, got {e:?}"))
}

/// Encrypts and decrypts back through the token under the key `key`.
pub fn round_trip(t: &Token, key: &str, what: &str) {
    let out = t
        .aes_gcm_encrypt(key, AAD, b"attack at dawn")
        .unwrap_or_else(|e| panic!("{what}: encrypt: {e}"));
    let back = t
        .aes_gcm_decrypt(key, &out.iv, AAD, &out.ciphertext, &out.tag)
        .unwrap_or_else(|e| panic!("{what}: decrypt: {e}"));
    assert_eq!(back.as_slice(), b"attack at dawn", "{what}");
}

/// Runs the ignored test `test` of this test binary as a child process with `env` set to
/// `value` and without the fault file: another application on the same token, talking to
/// SoftHSMv2 itself rather than the shim. Panics when the child fails.
pub fn run_child_test(test: &str, env: &str, value: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let status = std::process::Command::new(exe)
        .args(["--exact", test, "--ignored", "--nocapture"])
        .env(env, value)
        .env_remove(FILE_ENV)
        .status()
        .expect("run the child process");
    assert!(status.success(), "child process: {status}");
}

/// The child side of [`run_child_test`] for tests that need a key replaced behind their
/// back: opens the token labelled by the environment variable `env` (if set) directly on
/// SoftHSMv2, destroys the key labelled `key` and creates a new one under the same label.
pub fn replace_key_if_child(env: &str, key: &str) {
    let Ok(token_label) = std::env::var(env) else {
        return;
    };
    let cfg = TokenConfig::new(
        keyhold_pkcs11::softhsm::SOFTHSM_MODULE,
        token_label,
        Pin::new(PIN),
    );
    let t = Token::open(cfg).expect("open in the child");
    t.destroy_key(key).expect("destroy in the child");
    t.generate_aes_key(key).expect("re-create in the child");
}
