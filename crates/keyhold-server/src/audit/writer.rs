//! The audit log's writer: each request appends its own record with one `write(2)`, on its
//! own thread, and answers only once that call has returned.
//!
//! Why no queue or group commit (used before): on two cores, requests that found another
//! request writing waited for it and had to be woken afterwards, and those wake-ups and
//! context switches cost far more than the write they saved (an audited Encrypt used about
//! 15 µs more CPU than an unaudited one, of which the record itself is about 5 µs). A file
//! opened with `O_APPEND` needs no lock of ours: the kernel appends each `write(2)` whole and
//! never interleaves two of them, so concurrent requests write side by side. So every
//! response is sent only after its record has been handed to the kernel, and a crash of the
//! process (not of the machine: there is no `fsync`) loses only the records of requests not
//! yet answered.
//!
//! Rotation is by size: `PATH` becomes `PATH.1`, `PATH.1` becomes `PATH.2`, ..., and the
//! oldest beyond `max_files` is overwritten. It holds a lock that keeps writes out while the
//! file is swapped, so a record is never split across files; sizes are counted as records are
//! written, so under concurrent writes a file may pass the limit by the few records in flight.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// Default size at which the audit log file is rotated: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Default number of rotated files kept (`PATH.1` ... `PATH.5`).
pub const DEFAULT_MAX_FILES: u32 = 5;

/// Where audit records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// Standard output (`--audit-log -`), for a log collector reading the process's output;
    /// never rotated.
    Stdout,
    /// An append-only file, rotated by size.
    File {
        /// The file (created with mode 0600 when missing).
        path: PathBuf,
        /// Size in bytes beyond which the file is rotated before the next batch.
        max_bytes: u64,
        /// Rotated files kept: `PATH.1` (newest) to `PATH.<max_files>`.
        max_files: u32,
    },
}

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditOpenError {
    /// The file could not be created or opened for appending.
    #[error("cannot open the audit log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The handle requests use to write records; shared by all of them.
pub struct AuditWriter {
    sink: Sink,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

/// The open destination.
enum Sink {
    Stdout,
    File(FileSink),
}

/// An append-only file and what its rotation needs.
struct FileSink {
    /// Shared by writers (each `write(2)` is appended whole), exclusive while rotating.
    file: RwLock<File>,
    /// Bytes in the current file, as counted by the writes made to it.
    size: AtomicU64,
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
}

impl AuditWriter {
    /// Opens `target`, so a path that cannot be written stops the server at start-up rather
    /// than losing records later.
    pub fn open(target: &AuditTarget) -> Result<Self, AuditOpenError> {
        let sink = match target {
            AuditTarget::Stdout => Sink::Stdout,
            AuditTarget::File {
                path,
                max_bytes,
                max_files,
            } => {
                let file = open_append(path).map_err(|source| AuditOpenError::Open {
                    path: path.clone(),
                    source,
                })?;
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                Sink::File(FileSink {
                    file: RwLock::new(file),
                    size: AtomicU64::new(size),
                    path: path.clone(),
                    max_bytes: *max_bytes,
                    max_files: *max_files,
                })
            }
        };
        Ok(Self { sink })
    }

    /// Appends `line` (one JSON record, ending with its newline) and returns once it has been
    /// handed to the kernel, or the write failed, which is logged: the audit log never
    /// refuses a request, as CloudTrail does not.
    ///
    /// Blocks the calling thread for the one system call; the page cache takes the write, so
    /// that is microseconds unless the disk cannot keep up, when requests should slow down.
    pub fn write(&self, line: &[u8]) {
        let result = match &self.sink {
            Sink::Stdout => {
                // A pipe appends only up to PIPE_BUF bytes whole; the lock keeps longer
                // records of this process from interleaving.
                let mut out = std::io::stdout().lock();
                out.write_all(line).and_then(|()| out.flush())
            }
            Sink::File(f) => f.append(line),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot write an audit record");
        }
    }
}

impl FileSink {
    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let len = line.len() as u64;
        if self.passes_limit(len) {
            self.rotate(len)?;
        }
        let file = self.file.read().unwrap_or_else(|e| e.into_inner());
        (&*file).write_all(line)?;
        self.size.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// True when `len` more bytes would take a non-empty file past the limit.
    fn passes_limit(&self, len: u64) -> bool {
        let size = self.size.load(Ordering::Relaxed);
        size > 0 && size.saturating_add(len) > self.max_bytes
    }

    /// Renames the full file away and opens a new one, unless another request did so since.
    fn rotate(&self, len: u64) -> std::io::Result<()> {
        let mut file = self.file.write().unwrap_or_else(|e| e.into_inner());
        if !self.passes_limit(len) {
            return Ok(());
        }
        rotate(&self.path, self.max_files)?;
        *file = open_append(&self.path)?;
        self.size.store(0, Ordering::Relaxed);
        Ok(())
    }
}

/// Opens `path` for appending, creating it with mode 0600 (records name principals and keys).
fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// `PATH.<n>` for rotation.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Shifts `PATH.1`..`PATH.<max_files - 1>` up by one and renames `PATH` to `PATH.1` (with
/// `max_files` 0, the full file is simply removed).
fn rotate(path: &Path, max_files: u32) -> std::io::Result<()> {
    if max_files == 0 {
        return std::fs::remove_file(path);
    }
    for n in (1..max_files).rev() {
        match std::fs::rename(numbered(path, n), numbered(path, n + 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(path, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: String) -> Vec<u8> {
        let mut l = text.into_bytes();
        l.push(b'\n');
        l
    }

    #[test]
    fn records_rotate_by_size_and_files_are_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = AuditWriter::open(&AuditTarget::File {
            path: path.clone(),
            max_bytes: 100,
            max_files: 2,
        })
        .expect("open");
        for i in 0..10 {
            writer.write(&line(format!("{{\"n\":\"{i:038}\"}}")));
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let current = read(&path);
        let one = read(&numbered(&path, 1));
        let two = read(&numbered(&path, 2));
        assert!(
            !numbered(&path, 3).exists(),
            "only two rotated files are kept"
        );
        for text in [&current, &one, &two] {
            assert!(!text.is_empty());
            assert!(text.len() <= 100, "{text}");
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("whole lines");
                assert!(v["n"].is_string());
            }
        }
        // The newest record is in PATH, older ones in PATH.1 and PATH.2, in order.
        assert!(current.ends_with(&format!("{{\"n\":\"{:038}\"}}\n", 9)));
        assert!(one.ends_with(&format!("{{\"n\":\"{:038}\"}}\n", 7)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// Many threads writing records of up to 20 KB at once, across rotations: every record
    /// is in exactly one file, whole (never interleaved with another).
    #[test]
    fn concurrent_records_are_written_whole_once_each() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = std::sync::Arc::new(
            AuditWriter::open(&AuditTarget::File {
                path: path.clone(),
                max_bytes: 2 << 20,
                max_files: 50,
            })
            .expect("open"),
        );
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let pad = "p".repeat((t * 7919 + i * 104_729) % 20_000);
                        w.write(&line(format!("{{\"t\":{t},\"i\":{i},\"pad\":\"{pad}\"}}")));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let mut seen = std::collections::HashSet::new();
        let mut files = 0;
        for n in 0..=50 {
            let p = if n == 0 {
                path.clone()
            } else {
                numbered(&path, n)
            };
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            files += 1;
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).expect("a whole record");
                let id = (v["t"].as_u64().expect("t"), v["i"].as_u64().expect("i"));
                assert!(seen.insert(id), "{id:?} written twice");
            }
        }
        assert_eq!(seen.len(), 8 * 300);
        assert!(files > 2, "the test must cross rotations ({files} files)");
    }

    #[test]
    fn an_unwritable_path_fails_at_open() {
        let err = AuditWriter::open(&AuditTarget::File {
            path: PathBuf::from("/nonexistent-dir/audit.log"),
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: DEFAULT_MAX_FILES,
        })
        .expect_err("must fail");
        assert!(err.to_string().contains("/nonexistent-dir/audit.log"));
    }
}
