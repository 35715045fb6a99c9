//! What one AES-256-GCM encryption of 1 KiB costs inside SoftHSMv2, the work the HSM does for
//! one CloudHSM-backed Encrypt, measured three ways on one thread:
//!
//! * `module`: the module alone, through cryptoki on a session of our own with the key's
//!   handle found once (`C_EncryptInit` and `C_Encrypt`, which cryptoki calls twice: for the
//!   size, then for the data). No layer of Keyhold's can make the HSM's part cheaper than this.
//! * `token_session_copy`: [`Token::aes_gcm_encrypt_with_iv`] as the CloudHSM key path runs it,
//!   with session copies of keys (checked every 500 ms).
//! * `token_session_copy_2_threads`: the same on two threads at once (wall time per
//!   operation): how far the module lets two workers run in parallel.
//! * `token_object`: the same without copies: SoftHSMv2 re-reads the token object's files
//!   on every use.
//!
//! Comparing `module` with the HTTP-level figures of `scripts/bench-cloudhsm` tells how much
//! of a CloudHSM Encrypt is the module's own work. Run with `cargo bench -p keyhold-pkcs11`
//! (needs `softhsm2`; prints a SKIP line without it).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::{AuthPin, Ulong};
use keyhold_pkcs11::softhsm::TestEnv;
use keyhold_pkcs11::{Token, GCM_IV_LEN};

const PIN: &str = "bench-user-pin";
const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/bench";
const PLAINTEXT: [u8; 1024] = [0x5a; 1024];
const AAD: &[u8] = b"keyhold bench aad";

fn token(env: &TestEnv, label: &str, copies: Option<Duration>) -> Token {
    let mut cfg = env.token(label, PIN).expect("token");
    cfg.session_key_copies = copies;
    let token = Token::open(cfg).expect("open");
    token.generate_aes_key(KEY).expect("key");
    token
}

fn aes_gcm(c: &mut Criterion) {
    let Some(env) = TestEnv::get() else { return };
    let mut group = c.benchmark_group("softhsm_aes_gcm_1k");
    group.throughput(Throughput::Bytes(PLAINTEXT.len() as u64));

    let copied = token(env, "bench-copies", Some(Duration::from_millis(500)));
    group.bench_function("token_session_copy", |b| {
        b.iter(|| {
            let iv: [u8; GCM_IV_LEN] = rand::random();
            black_box(copied.aes_gcm_encrypt_with_iv(KEY, iv, AAD, &PLAINTEXT))
        })
    });
    // Two threads at once, as the server's two workers run them: wall time per operation.
    // Half of `token_session_copy` if SoftHSMv2 ran them fully in parallel; its locks (the
    // session and object tables, the token's key unmasking) and glibc's allocator serialise
    // part of the work.
    group.bench_function("token_session_copy_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        for _ in 0..iters.div_ceil(2) {
                            let iv: [u8; GCM_IV_LEN] = rand::random();
                            let out = copied.aes_gcm_encrypt_with_iv(KEY, iv, AAD, &PLAINTEXT);
                            black_box(out.expect("encrypt"));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    let plain = token(env, "bench-objects", None);
    group.bench_function("token_object", |b| {
        b.iter(|| {
            let iv: [u8; GCM_IV_LEN] = rand::random();
            black_box(plain.aes_gcm_encrypt_with_iv(KEY, iv, AAD, &PLAINTEXT))
        })
    });

    // The module alone. The `Token`s above initialised it; this context must not finalise it
    // under them, so it is leaked.
    let ctx = Box::leak(Box::new(Pkcs11::new(env.module_path()).expect("module")));
    match ctx.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .is_ok_and(|i| i.label().trim_end() == "bench-copies")
        })
        .expect("slot");
    let session = ctx.open_rw_session(slot).expect("session");
    match session.login(UserType::User, Some(&AuthPin::new(PIN.into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    let key = session
        .find_objects(&[Attribute::Label(KEY.as_bytes().to_vec())])
        .expect("find")
        .into_iter()
        .next()
        .expect("the key");
    group.bench_function("module", |b| {
        b.iter(|| {
            let mut iv: [u8; GCM_IV_LEN] = rand::random();
            let params = GcmParams::new(&mut iv, AAD, Ulong::from(128u64)).expect("params");
            black_box(
                session
                    .encrypt(&Mechanism::AesGcm(params), key, &PLAINTEXT)
                    .expect("C_Encrypt"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, aes_gcm);
criterion_main!(benches);
