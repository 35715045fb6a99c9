//! Module resets while other tokens of the module are busy: one token's files vanish and come
//! back again and again (each time Keyhold resets the module, finalizing it under everyone),
//! while threads keep encrypting and decrypting on another token of the same module. The call
//! gate must make every reset wait for the calls in flight, and the busy token must neither
//! fail nor hang: its stale sessions are replaced transparently.
//!
//! Its own test binary (process): resets affect every token of the module.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyhold_pkcs11::softhsm::TestEnv;
use keyhold_pkcs11::Token;

fn token_dirs(env: &TestEnv) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(env.dir().join("tokens"))
        .expect("tokens")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

#[test]
fn resets_wait_for_calls_in_flight_and_other_tokens_keep_working() {
    let Some(env) = TestEnv::get() else { return };
    let mut busy_cfg = env.token("t-busy", "user-pin-1111").expect("init busy");
    busy_cfg.pool_size = 4;
    let busy = Token::open(busy_cfg).expect("open busy");
    busy.generate_aes_key("k").expect("generate on busy");

    let before = token_dirs(env);
    let flaky = Token::open(env.token("t-flaky", "user-pin-2222").expect("init flaky"))
        .expect("open flaky");
    flaky.generate_aes_key("f").expect("generate on flaky");
    let flaky_dir = token_dirs(env)
        .into_iter()
        .find(|d| !before.contains(d))
        .expect("the flaky token's directory");
    let aside = env.dir().join("aside-t-flaky");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let (t, stop, done, failures) = (
                busy.clone(),
                Arc::clone(&stop),
                Arc::clone(&done),
                Arc::clone(&failures),
            );
            std::thread::spawn(move || {
                let plain = format!("worker {i}");
                while !stop.load(Ordering::Relaxed) {
                    let round = t
                        .aes_gcm_encrypt("k", b"aad", plain.as_bytes())
                        .and_then(|o| t.aes_gcm_decrypt("k", &o.iv, b"aad", &o.ciphertext, &o.tag));
                    match round {
                        Ok(back) if back.as_slice() == plain.as_bytes() => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => failures.lock().unwrap().push("round trip changed".into()),
                        Err(e) => failures.lock().unwrap().push(e.to_string()),
                    }
                }
            })
        })
        .collect();

    let recoveries_before = flaky.recoveries();
    for _ in 0..4 {
        std::fs::rename(&flaky_dir, &aside).expect("move the flaky token away");
        assert!(flaky.aes_gcm_encrypt("f", b"", b"x").is_err(), "token gone");
        std::fs::rename(&aside, &flaky_dir).expect("put it back");
        let deadline = Instant::now() + Duration::from_secs(10);
        while flaky.aes_gcm_encrypt("f", b"", b"x").is_err() {
            assert!(Instant::now() < deadline, "the flaky token never came back");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Past the reset rate limit, so the next vanish gets a reset of its own.
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    for w in workers {
        while !w.is_finished() {
            assert!(Instant::now() < deadline, "a worker hangs (deadlock?)");
            std::thread::sleep(Duration::from_millis(10));
        }
        w.join().expect("worker panicked");
    }
    assert!(flaky.recoveries() > recoveries_before, "resets happened");
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "the busy token failed during resets: {failures:?}"
    );
    assert!(done.load(Ordering::Relaxed) > 0, "the workers did work");
    busy.health_check().expect("busy token healthy at the end");
}
