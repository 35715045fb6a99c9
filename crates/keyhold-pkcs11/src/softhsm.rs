//! SoftHSMv2 test environment: a private token directory and config, so
//! tests never touch the machine's real tokens.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, when the module is initialised, and
//! the module is initialised once per process; so the environment is made
//! once per process and every test creates its own token (with a distinct
//! label) in it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::admin::{init_token, SlotChoice};
use crate::config::{Pin, TokenConfig};
use crate::error::Pkcs11Error;

/// Where Debian's `softhsm2` package installs the module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The SO PIN of every test token.
pub const TEST_SO_PIN: &str = "so-pin-1234";

/// Serialises token creation within the process: tests run in parallel threads, and two
/// `C_InitToken` calls choosing the "first free slot" at once could pick the same slot, one
/// re-initialising the other's token under it (seen as CKR_GENERAL_ERROR from
/// `C_GetTokenInfo` in a loaded CI run).
fn init_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The per-process SoftHSM environment.
#[derive(Debug)]
pub struct TestEnv {
    module_path: PathBuf,
    dir: PathBuf,
}

static ENV: OnceLock<Result<TestEnv, String>> = OnceLock::new();

impl TestEnv {
    /// The environment, or `None` (after printing a SKIP line) when SoftHSM
    /// is not installed. Under `CI=true` a missing SoftHSM panics: CI must
    /// not pass by skipping.
    pub fn get() -> Option<&'static TestEnv> {
        let module = PathBuf::from(SOFTHSM_MODULE);
        if !module.exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("SoftHSMv2 not installed at {SOFTHSM_MODULE} but CI=true");
            }
            println!("SKIP: SoftHSMv2 not installed (apt-get install softhsm2)");
            return None;
        }
        match ENV.get_or_init(|| TestEnv::create(module)) {
            Ok(env) => Some(env),
            Err(e) => panic!("cannot prepare SoftHSM test environment: {e}"),
        }
    }

    fn create(module_path: PathBuf) -> Result<TestEnv, String> {
        // Kept for the whole process (a static never drops); the OS temp dir
        // is cleaned by the system.
        let dir = tempfile::Builder::new()
            .prefix("keyhold-softhsm-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).map_err(|e| e.to_string())?;
        let conf = dir.join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        // Set before anything in this process loads the module.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        Ok(TestEnv { module_path, dir })
    }

    /// The module path.
    pub fn module_path(&self) -> &Path {
        &self.module_path
    }

    /// The directory holding the config and the token store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a token labelled `label` whose user PIN is `user_pin`, and
    /// returns a configuration for it (pool of 2 sessions).
    pub fn token(&self, label: &str, user_pin: &str) -> Result<TokenConfig, Pkcs11Error> {
        let _one_at_a_time = init_lock();
        init_token(
            &self.module_path,
            SlotChoice::FirstFree,
            label,
            &Pin::new(TEST_SO_PIN),
            Some(&Pin::new(user_pin)),
        )?;
        let mut cfg = TokenConfig::new(&self.module_path, label, Pin::new(user_pin));
        cfg.pool_size = 2;
        Ok(cfg)
    }

    /// Creates a token without a user (C_InitPIN never ran).
    pub fn token_without_user(&self, label: &str) -> Result<(), Pkcs11Error> {
        let _one_at_a_time = init_lock();
        init_token(
            &self.module_path,
            SlotChoice::FirstFree,
            label,
            &Pin::new(TEST_SO_PIN),
            None,
        )
        .map(|_| ())
    }
}
