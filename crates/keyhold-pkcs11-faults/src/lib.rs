//! A fault-injecting PKCS#11 module, for end-to-end tests of Keyhold's
//! PKCS#11 key stores.
//!
//! Real HSMs fail: the device reports `CKR_DEVICE_ERROR`, a token is pulled
//! (`CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`), the HSM runs out of
//! sessions (`CKR_SESSION_COUNT`). Keyhold's PKCS#11 layer has to turn those
//! into the right KMS errors and recover once the device is back, without a
//! restart. SoftHSMv2, the module the tests run against, cannot fail on
//! demand. This crate builds a real PKCS#11 shared library
//! (`libkeyhold_pkcs11_faults.so`) that forwards every call to a real module
//! (SoftHSMv2 by default) and, while a fault file says so, answers chosen
//! calls the way a failing HSM would. Tests point a `TokenConfig`'s module
//! path at the shim, so the faults travel the normal PKCS#11 path (cryptoki,
//! the session pool, recovery) exactly as a hardware fault would; like a
//! loopback test server, it is a real module that misbehaves on purpose, and
//! is meant for fault injection in tests only.
//!
//! # Loading
//! The library exports only `C_GetFunctionList` (not the PKCS#11 3.0
//! `C_GetInterface`, so callers such as cryptoki fall back to the v2.40
//! function list). On its first call it loads the real module named by
//! [`MODULE_ENV`] (default [`DEFAULT_MODULE`]), copies the real function list
//! and puts its own wrappers in place of the functions it intercepts; all
//! others go straight to the real module. If the real module cannot be
//! loaded, `C_GetFunctionList` returns `CKR_GENERAL_ERROR`.
//!
//! # Fault file
//! [`FILE_ENV`] (read once, when the module is loaded) names a text file; if
//! it is unset or the file does not exist, the shim is a pure pass-through.
//! Each intercepted call checks the file's metadata and re-reads it when its
//! modification time, length or inode changed. Write it with
//! [`FaultFile::set`] (atomic replace). One directive per line; blank lines
//! and lines starting with `#` are ignored, and so are malformed lines
//! (reported once on stderr; [`FaultFile::set`] refuses them):
//!
//! * `fail <C_Function|*> <CKR_NAME|0xHEX>` — the function returns that code
//!   without calling the real module. `*` means every intercepted function
//!   except `C_Initialize`, `C_Finalize`, `C_CloseSession` and
//!   `C_CloseAllSessions` (which a line naming them explicitly can still
//!   fail). A function's own line wins over `*`; of several lines for the
//!   same function the first wins. `CKR_OK` is refused.
//! * `max_sessions <n>` — `C_OpenSession` returns `CKR_SESSION_COUNT` while
//!   `n` or more sessions opened through the shim (in this process) are
//!   still open: the HSM's session limit. With several lines the smallest
//!   wins.
//! * `remove_token <label>` — the token with that label (the rest of the
//!   line, compared with the blank-trimmed `CK_TOKEN_INFO` label) behaves as
//!   physically removed: `C_GetSlotList(tokenPresent = TRUE)` omits its slot,
//!   `C_GetSlotInfo` clears `CKF_TOKEN_PRESENT`, slot calls
//!   (`C_GetTokenInfo`, `C_OpenSession`, `C_InitToken`, mechanism queries)
//!   return `CKR_TOKEN_NOT_PRESENT`, and every call on a session opened on
//!   that slot returns `CKR_DEVICE_REMOVED` — except closing, which is
//!   always forwarded so sessions can be freed. When the line goes away the
//!   token is back, and sessions opened before work again (a real module
//!   would have invalidated them).
//!
//! `fail` and `max_sessions` lines may end with a `# comment`.
//!
//! With [`TRACE_ENV`] set, the shim logs every intercepted call and its
//! result to stderr. Every intercepted call is counted per function;
//! [`call_count`] reads the counters (say, to check that a caller looks a
//! key up once rather than on every operation).
//!
//! # Intercepted functions
//! `C_Initialize`, `C_Finalize`, `C_GetSlotList`, `C_GetSlotInfo`,
//! `C_GetTokenInfo`, `C_GetMechanismList`, `C_GetMechanismInfo`,
//! `C_InitToken`, `C_InitPIN`, `C_SetPIN`, `C_OpenSession`, `C_CloseSession`,
//! `C_CloseAllSessions`, `C_GetSessionInfo`, `C_Login`, `C_Logout`,
//! `C_CreateObject`, `C_CopyObject`, `C_DestroyObject`,
//! `C_GetAttributeValue`, `C_SetAttributeValue`, `C_FindObjectsInit`,
//! `C_FindObjects`, `C_FindObjectsFinal`, `C_EncryptInit`, `C_Encrypt`,
//! `C_EncryptUpdate`, `C_EncryptFinal`, `C_DecryptInit`, `C_Decrypt`,
//! `C_DecryptUpdate`, `C_DecryptFinal`, `C_SignInit`, `C_Sign`,
//! `C_VerifyInit`, `C_Verify`, `C_GenerateKey`, `C_GenerateKeyPair`,
//! `C_WrapKey`, `C_UnwrapKey`, `C_DeriveKey`, `C_SeedRandom`,
//! `C_GenerateRandom`.
//!
//! # Using it from another crate's tests
//! Dev-depend on this crate (cargo then builds the `.so` first), set
//! [`FILE_ENV`] before anything loads the module, and open tokens with
//! [`library_path`] as the module path:
//!
//! ```no_run
//! use keyhold_pkcs11_faults::{library_path, FaultFile, FILE_ENV};
//!
//! let dir = std::env::temp_dir().join("my-test-faults");
//! std::fs::create_dir_all(&dir).unwrap();
//! let faults = FaultFile::new(dir.join("faults"));
//! std::env::set_var(FILE_ENV, faults.path());
//! let module = library_path().expect("shim built");
//! // ... TokenConfig::new(&module, label, pin) ...
//! faults.set(&["fail C_Encrypt CKR_DEVICE_ERROR"]).unwrap();
//! // ... encryption now fails with CKR_DEVICE_ERROR ...
//! faults.clear().unwrap();
//! ```
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod ckr;
mod ffi;
mod rules;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Environment variable naming the real PKCS#11 module the shim forwards to.
pub const MODULE_ENV: &str = "KEYHOLD_PKCS11_FAULTS_MODULE";

/// The real module used when [`MODULE_ENV`] is unset: Debian's SoftHSMv2.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Environment variable naming the fault file (see the crate docs). Unset
/// means no faults. Read once, when the shim module is first loaded.
pub const FILE_ENV: &str = "KEYHOLD_PKCS11_FAULTS_FILE";

/// Environment variable that, set to anything but empty or `0` when the shim
/// is loaded, makes it log every intercepted call and its `CK_RV` to stderr
/// (to see what a caller's recovery logic does under a fault).
pub const TRACE_ENV: &str = "KEYHOLD_PKCS11_FAULTS_TRACE";

/// Environment variable overriding where [`library_path`] finds the built
/// shim library.
pub const LIBRARY_ENV: &str = "KEYHOLD_PKCS11_FAULTS_LIBRARY";

/// The file name of the shim library on this platform
/// (`libkeyhold_pkcs11_faults.so` on Linux).
pub fn library_file_name() -> String {
    format!(
        "{}keyhold_pkcs11_faults{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The built shim library, to use as a PKCS#11 module path.
///
/// [`LIBRARY_ENV`], if set (and not empty), is returned as is. Otherwise the
/// library is looked for next to the running executable: in its directory
/// (`target/<profile>/deps` for a test), that directory's parent
/// (`target/<profile>`), and `deps/` under the executable's directory (for a
/// binary in `target/<profile>`). If several exist, the most recently
/// modified wins (the first of them on a tie): `cargo test` rebuilds only
/// the copy in `deps/`, so the one in `target/<profile>` may be stale.
/// `None` if it is in none of them.
pub fn library_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(LIBRARY_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let name = library_file_name();
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let mut candidates = vec![dir.join(&name)];
    if let Some(parent) = dir.parent() {
        candidates.push(parent.join(&name));
    }
    candidates.push(dir.join("deps").join(&name));
    // `cargo test` rebuilds the copy in `deps/` but only `cargo build`
    // refreshes the one in `target/<profile>`, so prefer the newest.
    let mut best: Option<(PathBuf, SystemTime)> = None;
    for c in candidates {
        let Ok(meta) = std::fs::metadata(&c) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(_, t)| mtime > *t) {
            best = Some((c, mtime));
        }
    }
    best.map(|(p, _)| p)
}

/// How many times `function` (e.g. `"C_FindObjectsInit"`) was called through
/// the shim library at `library` in this process so far, failed and faulted
/// calls included: for tests that check how many PKCS#11 calls a caller makes
/// (one key look-up, not one per operation). Every intercepted function (see
/// the crate docs) is counted. The library must be the one the caller loaded
/// (the same path), so that this reads its counters.
pub fn call_count(library: &Path, function: &str) -> std::io::Result<u64> {
    let name = std::ffi::CString::new(function)
        .map_err(|_| invalid(format!("function name {function:?} contains NUL")))?;
    // SAFETY: loading the shim again only bumps the loader's reference count
    // when it is already loaded (its initialisers ran then); otherwise it
    // loads a library whose initialisers do nothing but set up statics.
    let lib = unsafe { libloading::Library::new(library) }.map_err(std::io::Error::other)?;
    // SAFETY: the shim exports `keyhold_pkcs11_faults_calls` with this
    // signature (see `ffi.rs`).
    let calls: libloading::Symbol<unsafe extern "C" fn(*const std::ffi::c_char) -> u64> =
        unsafe { lib.get(b"keyhold_pkcs11_faults_calls\0") }.map_err(std::io::Error::other)?;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    Ok(unsafe { calls(name.as_ptr()) })
}

/// The fault file the shim watches: tests write directives to it, and the
/// shim applies them from its next intercepted call on.
///
/// Writes are atomic (a temporary file in the same directory, renamed over
/// the old one), so the shim never sees a half-written file. Each write
/// also gets a later modification time than the version it replaces — if
/// the clock has not ticked since, the time is moved forward explicitly —
/// so the shim, which re-reads the file when its modification time, length
/// or inode changes, never misses a rewrite, even one of the same length in
/// the same tick.
#[derive(Debug, Clone)]
pub struct FaultFile {
    path: PathBuf,
}

impl FaultFile {
    /// A fault file at `path` (not created until [`FaultFile::set`] or
    /// [`FaultFile::clear`]; a missing file means no faults).
    pub fn new(path: impl Into<PathBuf>) -> FaultFile {
        FaultFile { path: path.into() }
    }

    /// Its path: the value to give [`FILE_ENV`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the directives in force with `directives`, one per element
    /// (see the crate docs for the format). Fails with
    /// [`std::io::ErrorKind::InvalidInput`] if a directive is malformed,
    /// without changing the file.
    pub fn set(&self, directives: &[&str]) -> std::io::Result<()> {
        let mut text = String::from("# keyhold-pkcs11-faults directives\n");
        for d in directives {
            if d.contains('\n') {
                return Err(invalid(format!("directive {d:?} spans lines")));
            }
            text.push_str(d);
            text.push('\n');
        }
        let (_, bad) = rules::Rules::parse(&text);
        if !bad.is_empty() {
            let list: Vec<String> = bad
                .iter()
                .map(|b| format!("{:?}: {}", b.text, b.reason))
                .collect();
            return Err(invalid(format!(
                "malformed fault directives: {}",
                list.join("; ")
            )));
        }
        self.write_atomically(text.as_bytes())
    }

    /// Removes every fault: the shim is a pure pass-through again.
    pub fn clear(&self) -> std::io::Result<()> {
        self.set(&[])
    }

    fn write_atomically(&self, bytes: &[u8]) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .ok_or_else(|| invalid("fault file path has no file name".into()))?;
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.flush()?;
            let previous = std::fs::metadata(&self.path)
                .ok()
                .and_then(|m| m.modified().ok());
            if let Some(previous) = previous {
                make_later(&f, previous)?;
            }
            drop(f);
            std::fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Moves `f`'s modification time past `previous` if it is not already
/// later (writes within one clock tick, or a filesystem with coarse times).
fn make_later(f: &File, previous: SystemTime) -> std::io::Result<()> {
    for step in [
        Duration::from_micros(1),
        Duration::from_millis(1),
        Duration::from_secs(1),
        Duration::from_secs(2),
    ] {
        if f.metadata()?.modified()? > previous {
            return Ok(());
        }
        f.set_modified(previous + step)?;
    }
    if f.metadata()?.modified()? > previous {
        Ok(())
    } else {
        Err(std::io::Error::other(
            "cannot give the fault file a later modification time",
        ))
    }
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_refuses_malformed_directives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = FaultFile::new(dir.path().join("faults"));
        f.set(&["fail C_Encrypt CKR_DEVICE_ERROR", "max_sessions 2"])
            .expect("valid");
        let before = std::fs::read_to_string(f.path()).expect("read");
        assert!(before.contains("max_sessions 2\n"), "{before}");
        let e = f.set(&["fail C_Encrypt CKR_NOPE"]).expect_err("bad code");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("CKR_NOPE"), "{e}");
        let e = f.set(&["max_sessions 1\nfail"]).expect_err("two lines");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(std::fs::read_to_string(f.path()).expect("read"), before);
        f.clear().expect("clear");
        let after = std::fs::read_to_string(f.path()).expect("read");
        assert_eq!(rules::Rules::parse(&after).0, rules::Rules::default());
        let leftovers = std::fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }

    #[test]
    fn library_path_honours_the_override() {
        // Only this test touches LIBRARY_ENV in this process.
        std::env::set_var(LIBRARY_ENV, "/some/where/libshim.so");
        assert_eq!(
            library_path(),
            Some(PathBuf::from("/some/where/libshim.so"))
        );
        std::env::remove_var(LIBRARY_ENV);
        assert_eq!(library_file_name(), "libkeyhold_pkcs11_faults.so");
    }
}
