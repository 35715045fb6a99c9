//! The log lines' writer: lines are gathered in memory and written by one thread, many per
//! `write(2)`.
//!
//! Why not a channel and a thread woken per line (`tracing-appender`'s non-blocking writer,
//! used before): with the default filter every request logs a line, and under load waking the
//! writer thread for each line, and its one system call per line, cost about a sixth of the
//! server's CPU time per request. Here the writer thread, once it has written what it found,
//! sleeps for [`GATHER`] and so lets lines gather; a logging thread wakes it only when it is
//! idle (nothing to write), so an idle server's lines still appear at once and a busy one's
//! within about ten milliseconds, in batches.
//!
//! Lines are never dropped: past [`MAX_PENDING`] bytes waiting, a logging thread waits for
//! the writer. Lines still waiting when the process is killed are lost (the audit trail has
//! its own writer with its own guarantee); dropping the [`GatherGuard`] writes them out.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long the writer thread lets lines gather after each write. 10 ms rather than 1: on a
/// busy 2-core server each wake-up of this thread preempts a worker, and with 1 ms Encrypt
/// ran about 5% slower (`scripts/bench`, two alternated pairs, keyhold-loadgen and oha).
pub const GATHER: Duration = Duration::from_millis(10);

/// Bytes waiting beyond which logging threads wait for the writer (a stuck standard error
/// must not grow memory without bound).
pub const MAX_PENDING: usize = 4 << 20;

/// What logging threads and the writer thread share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when lines arrive for an idle writer, and on close.
    wake: Condvar,
    /// Signalled when the writer took the waiting lines.
    drained: Condvar,
}

#[derive(Default)]
struct State {
    /// Whole lines waiting to be written.
    pending: Vec<u8>,
    /// The writer thread waits for lines (and must be woken).
    idle: bool,
    /// The guard was dropped: write what is left and stop.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The [`tracing_subscriber::fmt::MakeWriter`] handed to the subscriber: each formatted event
/// is one `write_all` of a whole line, appended to the waiting lines.
#[derive(Clone)]
pub struct GatherWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it has written every waiting line.
#[must_use = "dropping the guard stops the log writer"]
pub struct GatherGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the writer thread (named `thread_name`) writing to `out`.
pub fn gathering<W: Write + Send + 'static>(
    out: W,
    thread_name: &str,
) -> std::io::Result<(GatherWriter, GatherGuard)> {
    let shared = Arc::new(Shared::default());
    let for_thread = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || write_loop(&for_thread, out))?;
    Ok((
        GatherWriter {
            shared: Arc::clone(&shared),
        },
        GatherGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writer thread: takes everything waiting, writes it in one call, lets more gather.
fn write_loop<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut state = shared.lock();
            while state.pending.is_empty() && !state.closed {
                state.idle = true;
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.idle = false;
            std::mem::swap(&mut state.pending, &mut batch);
            state.closed && batch.is_empty()
        };
        if closed {
            let _ = out.flush();
            return;
        }
        shared.drained.notify_all();
        // Nowhere to report a failure to write the log itself; the next batch tries again.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if !shared.lock().closed {
            std::thread::sleep(GATHER);
        }
    }
}

impl Write for GatherWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        while state.pending.len() >= MAX_PENDING && !state.closed {
            state = self
                .shared
                .drained
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.pending.extend_from_slice(line);
        if state.idle {
            state.idle = false;
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for GatherWriter {
    type Writer = GatherWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for GatherGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        self.shared.drained.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_of_every_thread_is_written_whole_and_in_order() {
        let sink = Sink::default();
        let (writer, guard) = gathering(sink.clone(), "test-log").expect("start");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        w.write_all(format!("t{t} line {i}\n").as_bytes())
                            .expect("write");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        let mut next = [0usize; 4];
        for line in text.lines() {
            let (t, i) = line
                .strip_prefix('t')
                .and_then(|r| r.split_once(" line "))
                .expect("whole line");
            let t: usize = t.parse().expect("thread");
            assert_eq!(i.parse::<usize>().expect("index"), next[t], "{line}");
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
    }

    #[test]
    fn a_line_on_an_idle_writer_is_written_without_waiting_for_more() {
        let sink = Sink::default();
        let (mut writer, _guard) = gathering(sink.clone(), "test-log").expect("start");
        // Let the writer go idle, then log one line: it must appear while the guard lives.
        std::thread::sleep(GATHER * 5);
        writer.write_all(b"alone\n").expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().expect("sink").as_slice() != b"alone\n" {
            assert!(std::time::Instant::now() < deadline, "line never written");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
