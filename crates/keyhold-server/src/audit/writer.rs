//! The audit log's writer: records are gathered in memory and written by one task, many per
//! `write(2)`, and each request is answered only once the write holding its record has
//! returned.
//!
//! Why gather: a `write(2)` of one record costs about as much CPU as building the record
//! (about 3 µs here, whether to ext4 or tmpfs: it is the system call and the page cache, not
//! the disk), and every audited request paid it when each wrote its own. Here a request
//! appends its record to a buffer, wakes the writer task if it is idle, and waits. The writer
//! task first yields once, so the requests its worker thread already has ready run on and add
//! their records, then writes all of them at once and wakes their requests one after another
//! (see [`Written`]). A quiet server
//! has nothing else ready, so its records are written at once; a busy one writes several per
//! call. Everything stays on the runtime's worker threads: no thread of its own to wake per
//! batch and no worker blocked waiting. (Two designs were measured before this one: requests
//! that found another one writing blocked on a lock until it was done, and a writer thread
//! that slept between batches; the wake-ups of both cost more than the writes they saved.)
//!
//! The crash guarantee: a response is sent only after its record has been handed to the
//! kernel, so a crash of the process (not of the machine: there is no `fsync`) loses only the
//! records of requests not yet answered.
//!
//! Rotation is by size, done by the writer between writes: `PATH` becomes `PATH.1`, `PATH.1`
//! becomes `PATH.2`, ..., and the oldest beyond `max_files` is overwritten. A record is never
//! split across files, and a batch is split between files at record boundaries.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

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

/// The handle requests use to write records; shared by all of them. Dropping it writes what
/// is still waiting and stops the writer task.
pub struct AuditWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

/// What requests and the writer task share.
struct Shared {
    state: Mutex<State>,
    /// Records written so far (a record's ticket is its number, counted from 1).
    written: AtomicU64,
    /// The destination; only the writer (or the final drop) writes to it.
    sink: Mutex<Sink>,
}

/// Records waiting to be written, and who waits for them.
struct State {
    /// Whole records, each ending with its newline.
    pending: Vec<u8>,
    /// Records appended so far.
    appended: u64,
    /// Requests waiting for their record, by ticket.
    waiters: Vec<(u64, Waker)>,
    /// What the writer task is doing.
    writer: Writer,
    /// The writer is being dropped: the writer task stops.
    closed: bool,
}

/// The writer task's state.
enum Writer {
    /// Not spawned yet: it is spawned on the runtime of the first request that waits.
    NotStarted,
    /// Waiting for a record; its waker.
    Idle(Waker),
    /// Gathering or writing.
    Busy,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `batch`, whose last record is number `upto`, and returns the waker of one
    /// request it answers: that request wakes the next one (see [`Written`]).
    fn write_batch(&self, batch: &[u8], upto: u64) -> Option<Waker> {
        if let Err(e) = self.sink().append(batch) {
            tracing::error!(error = %e, "cannot write audit records");
        }
        let mut state = self.lock();
        self.written.store(upto, Ordering::Release);
        take_written_waiter(&mut state, upto)
    }

    /// Wakes one more waiting request whose record has been written, if any.
    fn pass_on(&self) {
        let written = self.written.load(Ordering::Acquire);
        let next = take_written_waiter(&mut self.lock(), written);
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

/// Removes and returns the waker of a request whose ticket is at most `written`.
fn take_written_waiter(state: &mut State, written: u64) -> Option<Waker> {
    let i = state.waiters.iter().position(|(t, _)| *t <= written)?;
    Some(state.waiters.swap_remove(i).1)
}

/// The open destination.
enum Sink {
    Stdout,
    File(FileSink),
}

/// An append-only file and what its rotation needs.
struct FileSink {
    file: File,
    /// Bytes in the current file, as counted by the writes made to it.
    size: u64,
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
                    file,
                    size,
                    path: path.clone(),
                    max_bytes: *max_bytes,
                    max_files: *max_files,
                })
            }
        };
        Ok(Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    pending: Vec::new(),
                    appended: 0,
                    waiters: Vec::new(),
                    writer: Writer::NotStarted,
                    closed: false,
                }),
                written: AtomicU64::new(0),
                sink: Mutex::new(sink),
            }),
        })
    }

    /// Appends `line` (one JSON record, ending with its newline) and returns once it has been
    /// handed to the kernel, or the write failed, which is logged: the audit log never
    /// refuses a request, as CloudTrail does not.
    pub async fn write(&self, line: &[u8]) {
        let ticket = self.enqueue(line);
        self.written(ticket).await;
    }

    /// Queues `line` for the writer; the returned ticket is awaited with
    /// [`AuditWriter::written`]. Synchronous, so a caller can build the record in a buffer it
    /// does not keep across an `await`.
    pub fn enqueue(&self, line: &[u8]) -> u64 {
        let (ticket, idle) = {
            let mut state = self.shared.lock();
            state.pending.extend_from_slice(line);
            state.appended += 1;
            let idle = match std::mem::replace(&mut state.writer, Writer::Busy) {
                Writer::Idle(waker) => Some(waker),
                Writer::Busy => None,
                Writer::NotStarted => {
                    state.writer = Writer::NotStarted;
                    None
                }
            };
            (state.appended, idle)
        };
        if let Some(waker) = idle {
            waker.wake();
        }
        ticket
    }

    /// Waits until the record of `ticket` has been written.
    pub async fn written(&self, ticket: u64) {
        Written {
            shared: &self.shared,
            ticket,
            registered: false,
            done: false,
        }
        .await
    }
}

/// A request waiting for its record.
///
/// The writer wakes only one of the requests a write answered, and each request, once it
/// sees its record written, wakes the next: a chain. Why: waking many tasks at once from one
/// worker thread makes tokio wake the other, idle worker for each one after the first (so it
/// can steal them), and those wake-ups, each a system call and a context switch, cost more
/// than the write saved. Woken one by one, each runs next on the same worker. A request that
/// is dropped while it holds its turn (its client went away) passes the turn on, so the chain
/// never stops short.
struct Written<'a> {
    shared: &'a Arc<Shared>,
    ticket: u64,
    /// Its waker is in `State::waiters`.
    registered: bool,
    /// It has returned `Ready` (and passed the turn on).
    done: bool,
}

impl std::future::Future for Written<'_> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let shared = this.shared;
        if shared.written.load(Ordering::Acquire) < this.ticket {
            let mut state = shared.lock();
            // Checked again under the lock, which the writer holds while it updates `written`.
            if shared.written.load(Ordering::Acquire) < this.ticket {
                if matches!(state.writer, Writer::NotStarted) {
                    state.writer = Writer::Busy;
                    tokio::spawn(write_task(shared.clone()));
                }
                let ticket = this.ticket;
                match state.waiters.iter_mut().find(|(t, _)| *t == ticket) {
                    // Polled again before its turn (by its connection, say): one entry only.
                    Some((_, waker)) if this.registered => waker.clone_from(cx.waker()),
                    _ => {
                        state.waiters.push((ticket, cx.waker().clone()));
                        this.registered = true;
                    }
                }
                return Poll::Pending;
            }
        }
        this.done = true;
        shared.pass_on();
        Poll::Ready(())
    }
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        if self.done || !self.registered {
            return;
        }
        let ticket = self.ticket;
        let mut state = self.shared.lock();
        match state.waiters.iter().position(|(t, _)| *t == ticket) {
            Some(i) => {
                state.waiters.swap_remove(i);
            }
            // Its entry was taken: it was woken for its turn, which goes to the next.
            None => {
                drop(state);
                self.shared.pass_on();
            }
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        let (batch, upto, idle) = {
            let mut state = self.shared.lock();
            state.closed = true;
            let idle = match std::mem::replace(&mut state.writer, Writer::Busy) {
                Writer::Idle(waker) => Some(waker),
                _ => None,
            };
            (std::mem::take(&mut state.pending), state.appended, idle)
        };
        if !batch.is_empty() {
            if let Some(waker) = self.shared.write_batch(&batch, upto) {
                waker.wake();
            }
        }
        if let Some(waker) = idle {
            waker.wake();
        }
    }
}

/// The writer task: waits for records, lets the ready requests of its worker add theirs,
/// writes them all, and wakes their requests.
async fn write_task(shared: Arc<Shared>) {
    let mut batch = Vec::new();
    loop {
        let closed = std::future::poll_fn(|cx| {
            let mut state = shared.lock();
            if state.closed {
                return Poll::Ready(true);
            }
            if state.pending.is_empty() {
                state.writer = Writer::Idle(cx.waker().clone());
                return Poll::Pending;
            }
            state.writer = Writer::Busy;
            Poll::Ready(false)
        })
        .await;
        if closed {
            return;
        }
        tokio::task::yield_now().await;
        let upto = {
            let mut state = shared.lock();
            std::mem::swap(&mut state.pending, &mut batch);
            state.appended
        };
        if let Some(waker) = shared.write_batch(&batch, upto) {
            waker.wake();
        }
        batch.clear();
        // A rare burst does not pin its memory.
        if batch.capacity() > 4 << 20 {
            batch = Vec::new();
        }
    }
}

impl Sink {
    /// Appends whole records.
    fn append(&mut self, records: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(records).and_then(|()| out.flush())
            }
            Sink::File(f) => f.append(records),
        }
    }
}

impl FileSink {
    /// Appends whole records, rotating first when the next record would take a non-empty
    /// file past the limit (a single record larger than the limit gets a file of its own).
    fn append(&mut self, mut records: &[u8]) -> std::io::Result<()> {
        while !records.is_empty() {
            let room =
                usize::try_from(self.max_bytes.saturating_sub(self.size)).unwrap_or(usize::MAX);
            let take = if records.len() <= room {
                records.len()
            } else {
                let fit = records[..room]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1);
                if fit == 0 && self.size == 0 {
                    records
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(records.len(), |i| i + 1)
                } else {
                    fit
                }
            };
            if take == 0 {
                rotate(&self.path, self.max_files)?;
                self.file = open_append(&self.path)?;
                self.size = 0;
                continue;
            }
            self.file.write_all(&records[..take])?;
            self.size += take as u64;
            records = &records[take..];
        }
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

    /// A writer to `path` that never rotates.
    fn unrotated(path: impl AsRef<Path>) -> AuditWriter {
        AuditWriter::open(&AuditTarget::File {
            path: path.as_ref().to_path_buf(),
            max_bytes: u64::MAX,
            max_files: 1,
        })
        .expect("open")
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
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
        let rt = runtime();
        for i in 0..10 {
            rt.block_on(writer.write(&line(format!("{{\"n\":\"{i:038}\"}}"))));
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

    /// A batch of many records that passes the limit is split between files at record
    /// boundaries, and a record larger than the limit gets a file of its own.
    #[test]
    fn a_batch_is_rotated_between_records() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let mut sink = FileSink {
            file: open_append(&path).expect("open"),
            size: 0,
            path: path.clone(),
            max_bytes: 25,
            max_files: 10,
        };
        let batch = b"aaaaaaaaa\nbbbbbbbbb\ncccccccccccccccccccccccccccccc\nddd\n";
        sink.append(batch).expect("append");
        let read = |p: &Path| std::fs::read_to_string(p).expect("file");
        assert_eq!(read(&path), "ddd\n");
        assert_eq!(
            read(&numbered(&path, 1)),
            "cccccccccccccccccccccccccccccc\n"
        );
        assert_eq!(read(&numbered(&path, 2)), "aaaaaaaaa\nbbbbbbbbb\n");
    }

    /// Once `write` has returned, the record is in the file (a crash of the process can no
    /// longer lose it), for a quiet writer and for a busy one alike.
    #[test]
    fn a_record_is_in_the_file_when_write_returns() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = Arc::new(unrotated(&path));
        let rt = runtime();
        rt.block_on(async {
            let tasks: Vec<_> = (0..4)
                .map(|t| {
                    let (writer, path) = (writer.clone(), path.clone());
                    tokio::spawn(async move {
                        for i in 0..50 {
                            let record = line(format!("{{\"t\":{t},\"i\":{i}}}"));
                            writer.write(&record).await;
                            let text = std::fs::read(&path).expect("file");
                            assert!(
                                text.windows(record.len()).any(|w| w == record.as_slice()),
                                "record {t}/{i} missing after write returned"
                            );
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
    }

    /// The writer wakes one of the requests a write answered, and that one wakes the next;
    /// a request dropped on its turn (its client went away) passes the turn on.
    #[test]
    fn a_request_dropped_on_its_turn_passes_it_on() {
        use std::future::Future as _;
        let dir = tempfile::tempdir().expect("tmp");
        let writer = unrotated(dir.path().join("audit.log"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let t1 = writer.enqueue(b"{\"n\":1}\n");
            let t2 = writer.enqueue(b"{\"n\":2}\n");
            let mut f1 = Box::pin(writer.written(t1));
            let mut f2 = Box::pin(writer.written(t2));
            std::future::poll_fn(|cx| {
                assert!(f1.as_mut().poll(cx).is_pending());
                assert!(f2.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            while writer.shared.written.load(Ordering::Acquire) < t2 {
                tokio::task::yield_now().await;
            }
            let waiting: Vec<u64> = writer.shared.lock().waiters.iter().map(|w| w.0).collect();
            assert_eq!(
                waiting.len(),
                1,
                "one woken, the other waits for it: {waiting:?}"
            );
            if waiting == [t1] {
                drop(f2);
            } else {
                drop(f1);
            }
            assert!(
                writer.shared.lock().waiters.is_empty(),
                "the turn was passed on"
            );
        });
    }

    /// Records queued but not yet awaited are written when the writer is dropped.
    #[test]
    fn dropping_the_writer_writes_what_is_pending() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = unrotated(&path);
        for i in 0..100 {
            writer.enqueue(&line(format!("{{\"i\":{i}}}")));
        }
        drop(writer);
        let text = std::fs::read_to_string(&path).expect("file");
        assert_eq!(text.lines().count(), 100);
        assert!(text.ends_with("{\"i\":99}\n"));
    }

    /// Many tasks writing records of up to 20 KB at once, across rotations: every record is
    /// in exactly one file, whole (never interleaved with another).
    #[test]
    fn concurrent_records_are_written_whole_once_each() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = Arc::new(
            AuditWriter::open(&AuditTarget::File {
                path: path.clone(),
                max_bytes: 2 << 20,
                max_files: 50,
            })
            .expect("open"),
        );
        runtime().block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let w = writer.clone();
                    tokio::spawn(async move {
                        for i in 0..300 {
                            let pad = "p".repeat((t * 7919 + i * 104_729) % 20_000);
                            w.write(&line(format!("{{\"t\":{t},\"i\":{i},\"pad\":\"{pad}\"}}")))
                                .await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
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
            assert!(
                text.len() <= 2 << 20 || text.lines().count() == 1,
                "{p:?} too large"
            );
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
