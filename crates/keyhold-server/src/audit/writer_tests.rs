//! Tests of the audit writer: batching, waking, rotation, the crash guarantee.

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

/// A rotation deletes the oldest file before it renames anything, and hands that file back
/// still open (to be closed on another thread), with the oldest records in it.
#[test]
fn rotation_hands_back_the_deleted_oldest_file() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("audit.log");
    std::fs::write(&path, "current\n").expect("write");
    std::fs::write(numbered(&path, 1), "older\n").expect("write");
    std::fs::write(numbered(&path, 2), "oldest\n").expect("write");

    let mut oldest = rotate(&path, 2).expect("rotate").expect("the oldest file");
    let mut text = String::new();
    oldest.read_to_string(&mut text).expect("read");
    assert_eq!(text, "oldest\n");
    let read = |p: &Path| std::fs::read_to_string(p).expect("file");
    assert!(!path.exists());
    assert_eq!(read(&numbered(&path, 1)), "current\n");
    assert_eq!(read(&numbered(&path, 2)), "older\n");
    assert!(!numbered(&path, 3).exists());

    // Nothing to delete yet: nothing handed back.
    std::fs::write(&path, "new\n").expect("write");
    assert!(rotate(&path, 3).expect("rotate").is_none());
    assert_eq!(read(&numbered(&path, 3)), "older\n");

    // With no rotated files kept, the full file itself is deleted.
    std::fs::write(&path, "only\n").expect("write");
    let mut only = rotate(&path, 0).expect("rotate").expect("the file");
    text.clear();
    only.read_to_string(&mut text).expect("read");
    assert_eq!(text, "only\n");
    assert!(!path.exists());
}
