//! The audit log's writer: group commit without a thread hop.
//!
//! A request appends its serialised record (one JSON line) to a shared queue. If no request is
//! writing at that moment, it becomes the leader: it takes everything queued, writes it with
//! one `write(2)` call, and acknowledges every record of the batch. Requests arriving while a
//! write is under way wait; the leader then writes everything queued meanwhile in its next
//! single call (after a few rounds it hands leadership to one of the waiting requests, so no
//! request is kept long by others' records). So one write serves all
//! requests that arrived during the previous one, an idle server writes a record at once on the
//! request's own thread (no wake-up of another thread), and every response is sent only after
//! its record has been handed to the kernel: a crash of the process (not of the machine: there
//! is no `fsync`) loses only the records of requests not yet answered.
//!
//! Rotation is by size and happens between batches, so a record is never split across files:
//! `PATH` becomes `PATH.1`, `PATH.1` becomes `PATH.2`, ..., and the oldest beyond `max_files`
//! is overwritten.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

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

/// Writes a leader makes before handing leadership on.
const MAX_ROUNDS: u32 = 8;

/// What a waiting request is told once the write it waited for is over.
enum Ack {
    /// Its record has been written (or the write failed and was logged).
    Written,
    /// Its record is still queued: it leads the next write.
    Lead,
}

/// Records waiting for the next write.
#[derive(Default)]
struct Queue {
    /// Whole lines, in arrival order.
    batch: Vec<u8>,
    /// The requests whose lines are in `batch`, except the leader's own.
    waiters: Vec<tokio::sync::oneshot::Sender<Ack>>,
    /// A request is writing (or about to).
    leading: bool,
}

/// The handle requests use to write records; shared by all of them.
pub struct AuditWriter {
    queue: Mutex<Queue>,
    sink: Mutex<Sink>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

/// Locks `m`, whatever a panicking holder left behind (the data stays consistent: a batch is
/// either taken whole or not at all).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuditWriter {
    /// Opens `target`, so a path that cannot be written stops the server at start-up rather
    /// than losing records later.
    pub fn open(target: &AuditTarget) -> Result<Self, AuditOpenError> {
        Ok(Self {
            queue: Mutex::new(Queue::default()),
            sink: Mutex::new(Sink::open(target)?),
        })
    }

    /// Writes `line` (one JSON record, without its newline) and returns once it has been
    /// handed to the kernel (or the write failed, which is logged: the audit log never
    /// refuses a request, as CloudTrail does not).
    pub async fn write(&self, line: Vec<u8>) {
        let waiting = {
            let mut q = lock(&self.queue);
            q.batch.extend_from_slice(&line);
            q.batch.push(b'\n');
            if q.leading {
                let (tx, rx) = tokio::sync::oneshot::channel();
                q.waiters.push(tx);
                Some(rx)
            } else {
                q.leading = true;
                None
            }
        };
        if let Some(rx) = waiting {
            let mut waiting = Waiting {
                writer: self,
                rx,
                done: false,
            };
            let ack = (&mut waiting.rx).await;
            waiting.done = true;
            match ack {
                Ok(Ack::Lead) => {}
                // Written, or the leader vanished after writing (it always acks first).
                Ok(Ack::Written) | Err(_) => return,
            }
        }
        self.lead();
    }

    /// Writes what is queued, acknowledges it, and goes on while more arrives, up to
    /// [`MAX_ROUNDS`] writes; then hands leadership to a waiting request (or gives it up when
    /// nothing is left).
    fn lead(&self) {
        let mut batch = Vec::new();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let waiters = {
                let mut q = lock(&self.queue);
                if q.batch.is_empty() {
                    q.leading = false;
                    return;
                }
                std::mem::swap(&mut q.batch, &mut batch);
                std::mem::take(&mut q.waiters)
            };
            if let Err(e) = lock(&self.sink).write_batch(&batch) {
                tracing::error!(error = %e, records = waiters.len() + 1, "cannot write audit records");
            }
            batch.clear();
            for w in waiters {
                let _ = w.send(Ack::Written);
            }
            // Writing on costs no wake-up; after MAX_ROUNDS the next write is led by a request
            // waiting for it, so no request waits long for others' records. Only if none is
            // left (their clients went away) does this one write again.
            let mut q = lock(&self.queue);
            if q.batch.is_empty() {
                q.leading = false;
                return;
            }
            if rounds < MAX_ROUNDS {
                continue;
            }
            while !q.waiters.is_empty() {
                let next = q.waiters.remove(0);
                if next.send(Ack::Lead).is_ok() {
                    return;
                }
            }
        }
    }
}

/// A request waiting for a write. If the request is dropped while waiting (its client went
/// away), leadership handed to it is not lost: it writes the queue on the way out.
struct Waiting<'a> {
    writer: &'a AuditWriter,
    rx: tokio::sync::oneshot::Receiver<Ack>,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // No leadership can arrive after this; one that already did is taken up here.
        self.rx.close();
        if let Ok(Ack::Lead) = self.rx.try_recv() {
            self.writer.lead();
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

    /// Many requests at once, some of them dropped while waiting: every record that was
    /// awaited to the end is written whole, and the writer never stalls.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_and_cancelled_writers_never_stall() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = std::sync::Arc::new(
            AuditWriter::open(&AuditTarget::File {
                path: path.clone(),
                max_bytes: DEFAULT_MAX_BYTES,
                max_files: 1,
            })
            .expect("open"),
        );
        let mut tasks = Vec::new();
        for i in 0..400 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                w.write(format!("{{\"i\":{i}}}").into_bytes()).await;
            }));
        }
        // Cancel some of them wherever they are.
        for t in tasks.iter().skip(1).step_by(7) {
            t.abort();
        }
        let mut finished = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.is_ok() {
                finished.push(i);
            }
        }
        // The writer still works after all that.
        writer.write(b"{\"i\":-1}".to_vec()).await;
        let text = std::fs::read_to_string(&path).expect("read");
        let written: std::collections::HashSet<i64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("whole line")["i"]
                    .as_i64()
                    .expect("i")
            })
            .collect();
        for i in finished {
            assert!(written.contains(&(i as i64)), "record {i} missing");
        }
        assert!(written.contains(&-1));
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
