//! The fault directives: parsing, and watching the fault file for changes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use cryptoki_sys::CK_RV;

use crate::ckr::parse_code;

/// Every function the shim intercepts; `fail` accepts these names.
pub(crate) const INTERCEPTED: &[&str] = &[
    "C_Initialize",
    "C_Finalize",
    "C_GetSlotList",
    "C_GetSlotInfo",
    "C_GetTokenInfo",
    "C_GetMechanismList",
    "C_GetMechanismInfo",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_OpenSession",
    "C_CloseSession",
    "C_CloseAllSessions",
    "C_GetSessionInfo",
    "C_Login",
    "C_Logout",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_GetAttributeValue",
    "C_SetAttributeValue",
    "C_FindObjectsInit",
    "C_FindObjects",
    "C_FindObjectsFinal",
    "C_EncryptInit",
    "C_Encrypt",
    "C_EncryptUpdate",
    "C_EncryptFinal",
    "C_DecryptInit",
    "C_Decrypt",
    "C_DecryptUpdate",
    "C_DecryptFinal",
    "C_SignInit",
    "C_Sign",
    "C_VerifyInit",
    "C_Verify",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_SeedRandom",
    "C_GenerateRandom",
];

/// Functions `fail *` leaves alone: the module must stay loadable and
/// sessions must stay closable, so a test can always clean up. (`C_GetInfo`
/// and `C_GetFunctionList` are not intercepted at all.) A `fail` line naming
/// one of them explicitly still applies.
const NOT_WILDCARD: &[&str] = &[
    "C_Initialize",
    "C_Finalize",
    "C_GetFunctionList",
    "C_GetInfo",
    "C_CloseSession",
    "C_CloseAllSessions",
];

/// The parsed directives of one version of the fault file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Rules {
    /// `fail * CODE` (the first such line wins).
    fail_all: Option<CK_RV>,
    /// `fail C_Name CODE` (the first line for a name wins).
    fail: Vec<(&'static str, CK_RV)>,
    /// The smallest `max_sessions` given.
    max_sessions: Option<u64>,
    /// Labels of `remove_token` lines.
    removed: Vec<String>,
}

/// A line [`Rules::parse`] ignored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadLine {
    /// 1-based line number.
    pub(crate) line: usize,
    /// The line as written.
    pub(crate) text: String,
    /// What is wrong with it.
    pub(crate) reason: &'static str,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} {:?}: {}", self.line, self.text, self.reason)
    }
}

impl Rules {
    /// Parses a fault file. Malformed lines are skipped and returned.
    pub(crate) fn parse(text: &str) -> (Rules, Vec<BadLine>) {
        let mut rules = Rules::default();
        let mut bad = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if let Err(reason) = rules.add_line(raw) {
                bad.push(BadLine {
                    line: i + 1,
                    text: raw.to_string(),
                    reason,
                });
            }
        }
        (rules, bad)
    }

    fn add_line(&mut self, raw: &str) -> Result<(), &'static str> {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let (keyword, rest) = match line.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (line, ""),
        };
        if keyword == "remove_token" {
            // The label is the rest of the line: labels may contain blanks
            // (and `#`), so no trailing comment here.
            if rest.is_empty() || rest.len() > 32 {
                return Err("remove_token needs a label of 1-32 bytes");
            }
            self.removed.push(rest.to_string());
            return Ok(());
        }
        // Other directives allow a trailing `# comment`.
        let words: Vec<&str> = rest
            .split_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .collect();
        match (keyword, words.as_slice()) {
            ("fail", [function, code]) => {
                let code =
                    parse_code(code).ok_or("unknown CKR code (CKR_NAME or 0xHEX, not CKR_OK)")?;
                if *function == "*" {
                    self.fail_all.get_or_insert(code);
                } else {
                    let name = INTERCEPTED
                        .iter()
                        .copied()
                        .find(|n| n == function)
                        .ok_or("function is not one the shim intercepts")?;
                    if !self.fail.iter().any(|(n, _)| *n == name) {
                        self.fail.push((name, code));
                    }
                }
                Ok(())
            }
            ("fail", _) => Err("expected: fail <C_Function|*> <CKR_NAME|0xHEX>"),
            ("max_sessions", [n]) => {
                let n: u64 = n.parse().map_err(|_| "max_sessions needs a number")?;
                self.max_sessions = Some(self.max_sessions.map_or(n, |m| m.min(n)));
                Ok(())
            }
            ("max_sessions", _) => Err("expected: max_sessions <n>"),
            _ => Err("unknown directive (fail, max_sessions, remove_token)"),
        }
    }

    /// The code `function` must fail with, if any: its own `fail` line, else
    /// `fail *` unless the function is exempt from the wildcard.
    pub(crate) fn fail_code(&self, function: &str) -> Option<CK_RV> {
        if let Some((_, code)) = self.fail.iter().find(|(n, _)| *n == function) {
            return Some(*code);
        }
        if NOT_WILDCARD.contains(&function) {
            return None;
        }
        self.fail_all
    }

    /// The session limit, if one is set.
    pub(crate) fn max_sessions(&self) -> Option<u64> {
        self.max_sessions
    }

    /// Whether any token is "removed" (so slot labels must be looked up).
    pub(crate) fn has_removals(&self) -> bool {
        !self.removed.is_empty()
    }

    /// Whether the token labelled `label` (already trimmed) is "removed".
    pub(crate) fn is_removed(&self, label: &str) -> bool {
        self.removed.iter().any(|r| r == label)
    }
}

/// What identifies one version of the fault file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    /// The inode: writers replace the file by rename, so a new version is
    /// normally a new inode too (an extra signal, not relied upon alone).
    ino: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let ino = 0;
        Stamp {
            mtime: meta.modified().ok(),
            len: meta.len(),
            ino,
        }
    }
}

/// Watches the fault file: one `metadata()` per check, and a re-read and
/// re-parse only when its modification time, length or inode changed.
///
/// [`crate::FaultFile::set`] guarantees that every new version has a later
/// modification time than the one it replaces (it moves the time forward
/// itself when the clock tick has not advanced), so comparing the stamp is
/// enough even for two writes in one tick with the same length.
pub(crate) struct Watcher {
    path: Option<PathBuf>,
    state: Mutex<WatchState>,
}

struct WatchState {
    stamp: Option<Stamp>,
    rules: Arc<Rules>,
    /// Bad lines already reported on stderr (each is reported once).
    reported: HashSet<String>,
}

fn no_rules() -> Arc<Rules> {
    static EMPTY: OnceLock<Arc<Rules>> = OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| Arc::new(Rules::default())))
}

impl Watcher {
    /// Watches `path`; `None` means no faults, ever.
    pub(crate) fn new(path: Option<PathBuf>) -> Watcher {
        Watcher {
            path,
            state: Mutex::new(WatchState {
                stamp: None,
                rules: no_rules(),
                reported: HashSet::new(),
            }),
        }
    }

    /// The rules in force now (empty when there is no file).
    pub(crate) fn rules(&self) -> Arc<Rules> {
        let Some(path) = &self.path else {
            return no_rules();
        };
        let stamp = std::fs::metadata(path).ok().map(|m| Stamp::of(&m));
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if stamp == st.stamp {
            return Arc::clone(&st.rules);
        }
        match stamp.and_then(|_| read(path)) {
            Some((text, stamp)) => {
                let (rules, bad) = Rules::parse(&text);
                for b in bad {
                    let key = b.to_string();
                    if st.reported.insert(key.clone()) {
                        eprintln!(
                            "keyhold-pkcs11-faults: ignoring {key} of {}",
                            path.display()
                        );
                    }
                }
                st.stamp = Some(stamp);
                st.rules = Arc::new(rules);
            }
            // Missing (or vanished while being read): no faults; the stamp
            // stays unknown so the next call looks again.
            None => {
                st.stamp = None;
                st.rules = no_rules();
            }
        }
        Arc::clone(&st.rules)
    }
}

/// Reads the file and the stamp of exactly the version read.
fn read(path: &Path) -> Option<(String, Stamp)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let stamp = Stamp::of(&file.metadata().ok()?);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some((String::from_utf8_lossy(&bytes).into_owned(), stamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki_sys::*;

    #[test]
    fn parses_every_directive() {
        let text = "\
# a comment

fail C_Encrypt CKR_DEVICE_ERROR
fail C_Encrypt CKR_GENERAL_ERROR
  fail   C_Login   0xA4   # trailing comment
fail * CKR_DEVICE_REMOVED
max_sessions 5
max_sessions 3
remove_token my token #1
";
        let (rules, bad) = Rules::parse(text);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rules.fail_code("C_Encrypt"), Some(CKR_DEVICE_ERROR));
        assert_eq!(rules.fail_code("C_Login"), Some(CKR_PIN_LOCKED));
        assert_eq!(rules.fail_code("C_Decrypt"), Some(CKR_DEVICE_REMOVED));
        assert_eq!(rules.max_sessions(), Some(3));
        assert!(rules.has_removals());
        assert!(rules.is_removed("my token #1"));
        assert!(!rules.is_removed("my token"));
    }

    #[test]
    fn wildcard_spares_setup_and_closing() {
        let (rules, _) = Rules::parse("fail * CKR_DEVICE_ERROR\n");
        for f in NOT_WILDCARD {
            assert_eq!(rules.fail_code(f), None, "{f}");
        }
        assert_eq!(rules.fail_code("C_OpenSession"), Some(CKR_DEVICE_ERROR));
        assert_eq!(rules.fail_code("C_GetSlotList"), Some(CKR_DEVICE_ERROR));
        // An explicit line still applies to an exempt function.
        let (rules, _) = Rules::parse("fail C_CloseSession CKR_SESSION_CLOSED\n");
        assert_eq!(rules.fail_code("C_CloseSession"), Some(CKR_SESSION_CLOSED));
        assert_eq!(rules.fail_code("C_Finalize"), None);
    }

    #[test]
    fn malformed_lines_are_ignored_and_reported() {
        let text = "\
fail C_Encrypt
fail C_Encrypt CKR_NO_SUCH_THING
fail C_Encrypt CKR_OK
fail C_Bogus CKR_DEVICE_ERROR
fail C_Encrypt CKR_DEVICE_ERROR extra
max_sessions -1
max_sessions
remove_token
remove_token 0123456789012345678901234567890123
explode now
fail C_Decrypt CKR_DEVICE_MEMORY
";
        let (rules, bad) = Rules::parse(text);
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, (1..=10).collect::<Vec<_>>(), "{bad:#?}");
        assert_eq!(rules.fail_code("C_Encrypt"), None);
        assert_eq!(rules.fail_code("C_Decrypt"), Some(CKR_DEVICE_MEMORY));
        assert_eq!(rules.max_sessions(), None);
        assert!(!rules.has_removals());
    }

    #[test]
    fn empty_file_means_no_faults() {
        let (rules, bad) = Rules::parse("");
        assert!(bad.is_empty());
        assert_eq!(rules, Rules::default());
        assert_eq!(rules.fail_code("C_Encrypt"), None);
    }

    #[test]
    fn watcher_follows_rewrites_in_the_same_tick() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = crate::FaultFile::new(dir.path().join("faults"));
        let w = Watcher::new(Some(file.path().to_path_buf()));
        assert_eq!(*w.rules(), Rules::default(), "missing file");
        // Same length, written back to back: only the mtime tells them apart.
        let codes = [
            ("fail C_Encrypt CKR_DEVICE_ERROR", "C_Encrypt"),
            ("fail C_Decrypt CKR_DEVICE_ERROR", "C_Decrypt"),
            ("fail C_Encrypt CKR_DEVICE_ERROR", "C_Encrypt"),
        ];
        for (line, function) in codes {
            file.set(&[line]).expect("set");
            let rules = w.rules();
            assert_eq!(rules.fail_code(function), Some(CKR_DEVICE_ERROR), "{line}");
            assert_eq!(rules.fail.len(), 1);
        }
        file.clear().expect("clear");
        assert_eq!(*w.rules(), Rules::default());
        std::fs::remove_file(file.path()).expect("remove");
        assert_eq!(*w.rules(), Rules::default());
        assert!(Watcher::new(None).rules().fail_code("C_Encrypt").is_none());
    }
}
