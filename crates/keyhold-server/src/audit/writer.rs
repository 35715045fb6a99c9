//! The audit log's writer: records are gathered in memory and written many per `write(2)`,
//! by whichever waiting request gets there first, and each request is answered only once the
//! write holding its record has returned.
//!
//! Why gather: a `write(2)` of one record costs about as much CPU as building the record
//! (about 3 µs here, whether to ext4 or tmpfs: it is the system call and the page cache, not
//! the disk), and every audited request paid it when each wrote its own.
//!
//! How, with no thread or task of its own and no wake-ups between requests in the usual case
//! (see [`Written`]): a request appends its record to a shared buffer and steps aside once,
//! to the back of its worker's run queue, so the requests its worker already has ready run
//! on and append theirs. When it comes round again, its record has either been written by
//! one of them, or it writes everything gathered so far itself, in one call. Only a request
//! that finds another thread in the middle of a write waits to be woken. A quiet server has
//! nothing else ready, so a record is written at once; a busy one writes several per call.
//!
//! Three designs were measured before this one: requests that found another one writing
//! blocked on a lock until it was done; a writer thread that slept between batches; and a
//! writer task that woke the requests it had answered one after another. The wake-ups (futex
//! calls, context switches, extra polls of the I/O driver) of each cost more than the writes
//! they saved.
//!
//! The crash guarantee: a response is sent only after its record has been handed to the
//! kernel, so a crash of the process (not of the machine: there is no `fsync`) loses only the
//! records of requests not yet answered.
//!
//! Rotation is by size, done by the writing request between writes: `PATH` becomes `PATH.1`,
//! `PATH.1` becomes `PATH.2`, ..., and the oldest beyond `max_files` is overwritten. A record
//! is never split across files, and a batch is split between files at record boundaries.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
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
/// is still waiting.
pub struct AuditWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

/// What the requests share.
struct Shared {
    state: Mutex<State>,
    /// Records written so far (a record's ticket is its number, counted from 1).
    written: AtomicU64,
    /// The destination, held by the one request writing to it.
    sink: Mutex<Output>,
}

/// Records waiting to be written, and who waits for them.
struct State {
    /// Whole records, each ending with its newline.
    pending: Vec<u8>,
    /// Records appended so far.
    appended: u64,
    /// Requests that found another one writing, by ticket: woken when it is done.
    waiters: Vec<(u64, Waker)>,
}

/// The destination and the buffer a batch is written from (swapped with
/// [`State::pending`], so neither is reallocated once both have grown).
struct Output {
    sink: Sink,
    batch: Vec<u8>,
    /// `write`s made (batches), for tests to see that records are gathered.
    batches: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes everything appended so far unless another thread is writing; `false` if one
    /// is (its write may not hold every record appended so far).
    fn try_flush(&self) -> bool {
        let output = match self.sink.try_lock() {
            Ok(output) => output,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        self.flush_with(output);
        true
    }

    /// Writes everything appended so far, waiting for another thread's write to finish.
    fn flush(&self) {
        self.flush_with(self.sink.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn flush_with(&self, mut output: MutexGuard<'_, Output>) {
        let output = &mut *output;
        let upto = {
            let mut state = self.lock();
            std::mem::swap(&mut state.pending, &mut output.batch);
            state.appended
        };
        if !output.batch.is_empty() {
            if let Err(e) = output.sink.append(&output.batch) {
                tracing::error!(error = %e, "cannot write audit records");
            }
            output.batches += 1;
            output.batch.clear();
            // A rare burst does not pin its memory.
            if output.batch.capacity() > 4 << 20 {
                output.batch = Vec::new();
            }
        }
        self.written.fetch_max(upto, Ordering::AcqRel);
    }

    /// Wakes the requests that waited while a write was under way: theirs may have been in
    /// it, and if not, one of them writes next. Called once the sink is free again, so one
    /// that registers after this finds it free.
    fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut self.lock().waiters);
        for (_, waker) in waiters {
            waker.wake();
        }
    }
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
                }),
                written: AtomicU64::new(0),
                sink: Mutex::new(Output {
                    sink,
                    batch: Vec::new(),
                    batches: 0,
                }),
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

    /// Queues `line` to be written; the returned ticket is awaited with
    /// [`AuditWriter::written`]. Synchronous, so a caller can build the record in a buffer it
    /// does not keep across an `await`.
    pub fn enqueue(&self, line: &[u8]) -> u64 {
        let mut state = self.shared.lock();
        state.pending.extend_from_slice(line);
        state.appended += 1;
        state.appended
    }

    /// Waits until the record of `ticket` has been written (by this request or another).
    pub async fn written(&self, ticket: u64) {
        Written {
            shared: &self.shared,
            ticket,
            stepped_aside: false,
            registered: false,
        }
        .await
    }
}

/// A request waiting for its record to be written.
///
/// First poll: it steps aside (wakes itself and returns `Pending`), which puts it at the
/// back of its worker's run queue, behind the requests that are ready there; they append
/// their records meanwhile. (Not `tokio::task::yield_now`: that waits for the next poll of
/// the I/O driver, one more `epoll_wait` per batch.) Next poll: if a write has taken its
/// record, it is done; if not, it writes everything gathered ([`Shared::try_flush`]), unless
/// another thread is writing, in which case it registers to be woken when that write is done
/// and then looks again.
struct Written<'a> {
    shared: &'a Arc<Shared>,
    ticket: u64,
    /// It has stepped aside once.
    stepped_aside: bool,
    /// Its waker is in `State::waiters`.
    registered: bool,
}

impl Written<'_> {
    fn is_written(&self) -> bool {
        self.shared.written.load(Ordering::Acquire) >= self.ticket
    }
}

impl std::future::Future for Written<'_> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.is_written() {
            return Poll::Ready(());
        }
        if !this.stepped_aside {
            this.stepped_aside = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let shared = this.shared;
        if shared.try_flush() {
            shared.wake_waiters();
            return Poll::Ready(());
        }
        // Another thread is writing. Register, then try once more: if that write finished in
        // between, its waiters were woken before this registered and would not be again.
        {
            let mut state = shared.lock();
            let ticket = this.ticket;
            match state.waiters.iter_mut().find(|(t, _)| *t == ticket) {
                Some((_, waker)) => waker.clone_from(cx.waker()),
                None => state.waiters.push((ticket, cx.waker().clone())),
            }
            this.registered = true;
        }
        if this.is_written() || shared.try_flush() {
            shared.wake_waiters();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Written<'_> {
    /// A request dropped before its record was written (its client went away) still gets its
    /// record written, now rather than with the next request's.
    fn drop(&mut self) {
        if self.registered {
            let ticket = self.ticket;
            self.shared.lock().waiters.retain(|(t, _)| *t != ticket);
        }
        if !self.is_written() {
            self.shared.flush();
            self.shared.wake_waiters();
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.shared.flush();
        self.shared.wake_waiters();
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

    /// A flag a test's waker raises when woken.
    struct Flag(std::sync::atomic::AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn flag() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        (flag.clone(), Waker::from(flag))
    }

    /// Requests ready at the same time on one worker share one `write(2)`: each steps aside
    /// once, and the first to come round writes the records of all of them.
    #[test]
    fn ready_requests_share_one_write() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = Arc::new(unrotated(&path));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let writer = writer.clone();
                    tokio::spawn(async move { writer.write(&line(format!("{{\"i\":{i}}}"))).await })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
        let text = std::fs::read_to_string(&path).expect("file");
        assert_eq!(text.lines().count(), 8);
        let batches = writer.shared.sink.lock().expect("sink").batches;
        assert_eq!(batches, 1, "eight ready requests, one write");
    }

    /// A request that finds another thread writing waits to be woken, and is woken when that
    /// write is done; its record is then written by it or was in that write.
    #[test]
    fn a_request_that_finds_the_sink_busy_is_woken_when_it_is_free() {
        use std::future::Future as _;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = unrotated(&path);
        let ticket = writer.enqueue(b"{\"n\":1}\n");
        let mut waiting = Box::pin(writer.written(ticket));
        let (woken, waker) = flag();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(waiting.as_mut().poll(&mut cx).is_pending(), "steps aside");
        assert!(woken.0.swap(false, Ordering::SeqCst), "and wakes itself");
        // Another thread is writing.
        let busy = writer.shared.sink.lock().expect("sink");
        assert!(waiting.as_mut().poll(&mut cx).is_pending(), "waits");
        assert_eq!(writer.shared.lock().waiters.len(), 1);
        assert!(!woken.0.load(Ordering::SeqCst));
        drop(busy);
        // That write is done (it did not hold this record) and its writer wakes the waiters.
        writer.shared.wake_waiters();
        assert!(woken.0.load(Ordering::SeqCst), "woken");
        assert!(waiting.as_mut().poll(&mut cx).is_ready(), "writes its own");
        assert_eq!(std::fs::read_to_string(&path).expect("file"), "{\"n\":1}\n");
        drop(waiting);
        assert!(writer.shared.lock().waiters.is_empty());
    }

    /// A request dropped before its record was written (its client went away) has its record
    /// written as it is dropped.
    #[test]
    fn a_request_dropped_while_waiting_has_its_record_written() {
        use std::future::Future as _;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let writer = unrotated(&path);
        let ticket = writer.enqueue(b"{\"n\":1}\n");
        let mut waiting = Box::pin(writer.written(ticket));
        let (_, waker) = flag();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert_eq!(std::fs::read_to_string(&path).expect("file"), "");
        drop(waiting);
        assert_eq!(std::fs::read_to_string(&path).expect("file"), "{\"n\":1}\n");
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
