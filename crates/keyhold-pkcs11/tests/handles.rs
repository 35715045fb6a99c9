//! What the key-handle cache relies on, checked against the real SoftHSMv2
//! (skipped with a SKIP line when SoftHSM is not installed).
//!
//! PKCS#11 v2.40 §6.7.5 gives object handles the same visibility in every
//! thread of an application, and its session example uses a handle found in
//! one session from another; a session that can use a handle may keep using
//! it while the object exists and stays accessible. These tests open sessions
//! of their own beside a `Token` (one application, one module) and check what
//! SoftHSMv2 actually does: one handle per token object for the whole
//! application, usable from any session, surviving the session it was found
//! in, forgotten at logout and never reused — and that a `Token` whose cached
//! handle was forgotten behind its back looks the key up again.

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use keyhold_pkcs11::softhsm::TestEnv;
use keyhold_pkcs11::Token;

const PIN: &str = "user-pin-1234";
const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/handles";

/// The module's context, for sessions of our own. The `Token` initialised the
/// module already; the context must never be dropped (cryptoki would call
/// `C_Finalize` under the `Token`), so it is leaked.
fn context(env: &TestEnv) -> &'static Pkcs11 {
    let ctx = Pkcs11::new(env.module_path()).expect("load module");
    match ctx.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    Box::leak(Box::new(ctx))
}

fn slot_of(ctx: &Pkcs11, label: &str) -> Slot {
    ctx.get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .is_ok_and(|i| i.label().trim_end() == label)
        })
        .expect("token slot")
}

fn login(s: &Session) {
    match s.login(UserType::User, Some(&AuthPin::new(PIN.into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
}

fn find(s: &Session) -> Vec<ObjectHandle> {
    s.find_objects(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Token(true),
        Attribute::Label(KEY.as_bytes().to_vec()),
    ])
    .expect("C_FindObjects")
}

fn encrypt(s: &Session, key: ObjectHandle, iv: &mut [u8; 12]) -> Result<Vec<u8>, CkError> {
    let params = GcmParams::new(iv, b"aad", Ulong::from(128)).expect("params");
    s.encrypt(&Mechanism::AesGcm(params), key, b"attack at dawn")
}

fn decrypt(s: &Session, key: ObjectHandle, iv: &mut [u8; 12], sealed: &[u8]) -> Vec<u8> {
    let params = GcmParams::new(iv, b"aad", Ulong::from(128)).expect("params");
    s.decrypt(&Mechanism::AesGcm(params), key, sealed)
        .expect("C_Decrypt")
}

#[test]
fn token_object_handles_belong_to_the_application_not_the_session() {
    let Some(env) = TestEnv::get() else { return };
    let cfg = env.token("t-handles", PIN).expect("init token");
    let token = Token::open(cfg).expect("open");
    token.generate_aes_key(KEY).expect("generate");
    let before = token
        .aes_gcm_encrypt(KEY, b"ctx", b"kept")
        .expect("encrypt");
    assert_eq!(
        token.cached_key_handles(),
        1,
        "the new key's handle is kept"
    );

    let ctx = context(env);
    let slot = slot_of(ctx, "t-handles");
    let a = ctx.open_rw_session(slot).expect("session a");
    let b = ctx.open_rw_session(slot).expect("session b");
    login(&a);

    // One handle per token object for the whole application.
    let found_a = find(&a);
    let found_b = find(&b);
    assert_eq!(found_a.len(), 1);
    assert_eq!(found_a, found_b, "both sessions see the same handle");
    let h = found_a[0];

    // Found in one session, used in another; and after the first one closed.
    let mut iv = [7u8; 12];
    let sealed = encrypt(&b, h, &mut iv).expect("encrypt in session b");
    assert_eq!(decrypt(&a, h, &mut iv, &sealed), b"attack at dawn");
    drop(a);
    let mut iv2 = [8u8; 12];
    encrypt(&b, h, &mut iv2).expect("the handle outlives the session that found it");

    // A logout (anywhere in the application) forgets private objects' handles.
    b.logout().expect("C_Logout");
    login(&b);
    let e = encrypt(&b, h, &mut iv2).expect_err("handle forgotten at logout");
    println!("SoftHSMv2 answers a forgotten key handle with: {e}");
    assert!(
        matches!(
            e,
            CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)
        ),
        "{e}"
    );
    let again = find(&b);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0], h, "a handle number is never reused");

    // The Token's cached handle went stale behind its back: it is refused,
    // evicted, and the key looked up again.
    let back = token
        .aes_gcm_decrypt(KEY, &before.iv, b"ctx", &before.ciphertext, &before.tag)
        .expect("decrypt after the handle was forgotten");
    assert_eq!(back.as_slice(), b"kept");
    assert_eq!(token.cached_key_handles(), 1);
    drop(b);
}
