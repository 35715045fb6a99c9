//! The audit log's writer: one thread that owns the file (or standard output) and writes
//! records by group commit.
//!
//! A request hands its serialised record (one JSON line) to the thread and waits for the
//! acknowledgement before its response is sent. The thread takes everything queued at that
//! moment, writes it with one `write(2)` call, then acknowledges every record of the batch. So
//! the cost of a write is shared by all requests that arrived while the previous one ran, and a
//! crash (of the process, not of the machine: there is no `fsync`) loses only the records of
//! requests that have not been answered yet.
//!
//! Rotation is by size and happens between batches, so a record is never split across files:
//! `PATH` becomes `PATH.1`, `PATH.1` becomes `PATH.2`, ..., and the oldest beyond `max_files`
//! is overwritten.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Default size at which the audit log file is rotated: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Default number of rotated files kept (`PATH.1` ... `PATH.5`).
pub const DEFAULT_MAX_FILES: u32 = 5;

/// Largest batch written at once; the rest of the queue goes into the next write.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

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
    /// The writer thread could not be started.
    #[error("cannot start the audit log writer thread: {0}")]
    Thread(std::io::Error),
}

/// One record waiting to be written, with the request's acknowledgement.
struct Pending {
    line: Vec<u8>,
    written: tokio::sync::oneshot::Sender<()>,
}

/// The handle requests use to write records; cheap to share.
#[derive(Debug)]
pub struct AuditWriter {
    queue: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Opens `target` (so a path that cannot be written stops the server at start-up rather
    /// than losing records later) and starts the writer thread.
    pub fn open(target: &AuditTarget) -> Result<Self, AuditOpenError> {
        let mut sink = Sink::open(target)?;
        let (queue, rx) = mpsc::channel::<Pending>();
        std::thread::Builder::new()
            .name("keyhold-audit".into())
            .spawn(move || run(&mut sink, &rx))
            .map_err(AuditOpenError::Thread)?;
        Ok(Self { queue })
    }

    /// Hands `line` (one JSON record, without its newline) to the writer and returns once it
    /// has been written to the kernel (or the write failed, which is logged: the audit log
    /// never refuses a request, as CloudTrail does not).
    pub async fn write(&self, mut line: Vec<u8>) {
        line.push(b'\n');
        let (written, done) = tokio::sync::oneshot::channel();
        if self.queue.send(Pending { line, written }).is_err() {
            tracing::error!("the audit log writer has stopped; a record was not written");
            return;
        }
        let _ = done.await;
    }
}

/// The writer thread: drains the queue in batches until every handle is gone.
fn run(sink: &mut Sink, rx: &mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.extend_from_slice(&first.line);
        acks.push(first.written);
        while batch.len() < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    batch.extend_from_slice(&p.line);
                    acks.push(p.written);
                }
                Err(_) => break,
            }
        }
        if let Err(e) = sink.write_batch(&batch) {
            tracing::error!(error = %e, records = acks.len(), "cannot write audit records");
        }
        batch.clear();
        if batch.capacity() > MAX_BATCH_BYTES {
            batch.shrink_to(64 * 1024);
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// The open destination.
enum Sink {
    Stdout,
    File {
        file: File,
        path: PathBuf,
        size: u64,
        max_bytes: u64,
        max_files: u32,
    },
}

impl Sink {
    fn open(target: &AuditTarget) -> Result<Self, AuditOpenError> {
        match target {
            AuditTarget::Stdout => Ok(Sink::Stdout),
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
                Ok(Sink::File {
                    file,
                    path: path.clone(),
                    size,
                    max_bytes: *max_bytes,
                    max_files: *max_files,
                })
            }
        }
    }

    /// Writes one batch of whole lines, rotating first when it would pass the size limit.
    fn write_batch(&mut self, batch: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(batch)?;
                out.flush()
            }
            Sink::File {
                file,
                path,
                size,
                max_bytes,
                max_files,
            } => {
                if *size > 0 && size.saturating_add(batch.len() as u64) > *max_bytes {
                    rotate(path, *max_files)?;
                    *file = open_append(path)?;
                    *size = 0;
                }
                file.write_all(batch)?;
                *size += batch.len() as u64;
                Ok(())
            }
        }
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

    #[tokio::test]
    async fn batches_rotate_by_size_and_files_are_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = AuditWriter::open(&AuditTarget::File {
            path: path.clone(),
            max_bytes: 100,
            max_files: 2,
        })
        .expect("open");
        for i in 0..10 {
            writer
                .write(format!("{{\"n\":\"{i:038}\"}}").into_bytes())
                .await;
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
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
