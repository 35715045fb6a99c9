//! The shim against a real SoftHSMv2, seen through `keyhold_pkcs11::Token`
//! (skipped with a SKIP line when SoftHSM is not installed).
//!
//! SoftHSM can be initialised once per process and the shim loads it once,
//! so every scenario runs in sequence inside the one test below, on one
//! token opened through the shim.

mod common;

use std::path::Path;

use common::{ckr, open_shim_token, round_trip, ShimToken, AAD};
use cryptoki_sys::*;
use keyhold_pkcs11::{Ckr, Pkcs11Error, Token, TokenConfig};
use keyhold_pkcs11_faults::FaultFile;

const LABEL: &str = "faults main token";
const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/faults";

fn function(e: &Pkcs11Error) -> &'static str {
    match e {
        Pkcs11Error::Ckr { function, .. } => function,
        other => panic!("expected a CKR error, got {other:?}"),
    }
}

#[test]
fn faults_through_the_shim() {
    let Some(ShimToken {
        shim,
        faults,
        cfg,
        token: t,
    }) = open_shim_token(LABEL)
    else {
        return;
    };

    pass_through(&t);
    fail_one_function(&t, &cfg, &faults);
    fail_everything(&t, &cfg, &faults);
    session_limit(&t, &cfg, &faults);
    slot_list_protocol(&shim, &t, &faults);
    removed_token(&t, &cfg, &faults);
    t.health_check().expect("healthy at the end");
}

fn pass_through(t: &Token) {
    t.generate_aes_key(KEY).expect("generate");
    let info = t.key_info(KEY).expect("key info");
    assert_eq!(info.value_len, 32);
    assert!(!info.value_readable);
    round_trip(t, KEY, "pass-through");
    let r = t.generate_random(32).expect("random");
    assert_eq!(r.len(), 32);
    t.health_check().expect("health check");
}

fn fail_one_function(t: &Token, cfg: &TokenConfig, faults: &FaultFile) {
    let sealed = t.aes_gcm_encrypt(KEY, AAD, b"sealed").expect("encrypt");

    faults
        .set(&["fail C_Encrypt CKR_DEVICE_ERROR"])
        .expect("set");
    let before = t.recoveries();
    let e = t
        .aes_gcm_encrypt(KEY, AAD, b"x")
        .expect_err("encrypt must fail");
    println!("fail C_Encrypt: {e}");
    assert_eq!(ckr(&e), Ckr::DeviceError);
    assert_eq!(function(&e), "C_Encrypt");
    assert!(e.is_device_failure());
    assert!(t.recoveries() > before, "Token ran its recovery");
    // Only C_Encrypt fails.
    let back = t
        .aes_gcm_decrypt(KEY, &sealed.iv, AAD, &sealed.ciphertext, &sealed.tag)
        .expect("decrypt unaffected");
    assert_eq!(back.as_slice(), b"sealed");

    faults.clear().expect("clear");
    round_trip(t, KEY, "after clearing fail C_Encrypt (same Token)");

    // Hex codes, and the code arrives as given.
    faults
        .set(&["fail C_GenerateRandom 0x30 # CKR_DEVICE_ERROR"])
        .expect("set");
    let e = t.generate_random(8).expect_err("random must fail");
    assert_eq!(
        (ckr(&e), function(&e)),
        (Ckr::DeviceError, "C_GenerateRandom")
    );

    // A PIN failure at login: what a locked-out crypto user looks like.
    faults.set(&["fail C_Login CKR_PIN_LOCKED"]).expect("set");
    let e = Token::open(cfg.clone()).expect_err("login must fail");
    println!("fail C_Login: {e}");
    assert_eq!((ckr(&e), function(&e)), (Ckr::PinLocked, "C_Login"));
    assert!(!e.is_device_failure());

    faults.clear().expect("clear");
    assert_eq!(t.generate_random(8).expect("random again").len(), 8);
}

fn fail_everything(t: &Token, cfg: &TokenConfig, faults: &FaultFile) {
    faults.set(&["fail * CKR_DEVICE_ERROR"]).expect("set");
    let e = t.generate_random(8).expect_err("random must fail");
    println!("fail * (random): {e}");
    assert_eq!(ckr(&e), Ckr::DeviceError);
    let e = t
        .aes_gcm_encrypt(KEY, AAD, b"x")
        .expect_err("encrypt must fail");
    println!("fail * (encrypt): {e}");
    assert_eq!(ckr(&e), Ckr::DeviceError);
    let e = Token::open(cfg.clone()).expect_err("open must fail");
    println!("fail * (open): {e}");
    assert_eq!((ckr(&e), function(&e)), (Ckr::DeviceError, "C_GetSlotList"));

    faults.clear().expect("clear");
    round_trip(t, KEY, "after clearing fail * (same Token)");
    t.health_check().expect("health check after fail *");
}

fn session_limit(t: &Token, cfg: &TokenConfig, faults: &FaultFile) {
    // `t` holds at least one open session, so a limit of 1 is exhausted.
    faults.set(&["max_sessions 1"]).expect("set");
    let e = Token::open(cfg.clone()).expect_err("no session left");
    println!("max_sessions 1 (open): {e}");
    assert_eq!(
        (ckr(&e), function(&e)),
        (Ckr::SessionCount, "C_OpenSession")
    );
    // The existing token keeps working on the sessions it has.
    round_trip(t, KEY, "existing token under max_sessions");

    faults.set(&["max_sessions 1000"]).expect("set");
    let t2 = Token::open(cfg.clone()).expect("a high limit lets it open");
    round_trip(&t2, KEY, "second token");
    drop(t2);

    faults.clear().expect("clear");
    let t3 = Token::open(cfg.clone()).expect("open after clearing");
    round_trip(&t3, KEY, "third token");
}

type GetFunctionList = unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV;

/// The raw PKCS#11 view of `remove_token`: the two-call slot-list protocol
/// and slot calls, through the same (already initialised) module.
fn slot_list_protocol(shim: &Path, t: &Token, faults: &FaultFile) {
    // SAFETY: loading the shim again just takes another reference to the
    // module already loaded in this process.
    let lib = unsafe { libloading::Library::new(shim) }.expect("dlopen shim");
    // SAFETY: the symbol has this signature.
    let interface = unsafe { lib.get::<GetFunctionList>(b"C_GetInterface\0") };
    assert!(
        interface.is_err(),
        "the shim must not export C_GetInterface"
    );
    // SAFETY: the symbol has this signature.
    let get = unsafe { lib.get::<GetFunctionList>(b"C_GetFunctionList\0") }.expect("symbol");
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer.
    assert_eq!(unsafe { get(&mut list) }, CKR_OK);
    assert!(!list.is_null());
    // SAFETY: the shim's function list is a static that lives as long as
    // the module, which `lib` keeps loaded.
    let f = unsafe { *list };
    assert_eq!((f.version.major, f.version.minor), (2, 40));
    let get_slots = f.C_GetSlotList.expect("C_GetSlotList");
    let token_info = f.C_GetTokenInfo.expect("C_GetTokenInfo");
    let slots = |present: CK_BBOOL| -> Vec<CK_SLOT_ID> {
        let mut n: CK_ULONG = 0;
        // SAFETY: NULL list, writable count.
        assert_eq!(
            unsafe { get_slots(present, std::ptr::null_mut(), &mut n) },
            CKR_OK
        );
        let mut v = vec![0; n as usize];
        // SAFETY: `v` has room for `n` ids.
        assert_eq!(
            unsafe { get_slots(present, v.as_mut_ptr(), &mut n) },
            CKR_OK
        );
        v.truncate(n as usize);
        v
    };
    let ours = t.slot_id() as CK_SLOT_ID;
    let all_present = slots(CK_TRUE);
    assert!(all_present.contains(&ours), "{all_present:?} has {ours}");

    faults
        .set(&[&format!("remove_token {LABEL}")])
        .expect("set");
    let present = slots(CK_TRUE);
    assert_eq!(present.len(), all_present.len() - 1, "{present:?}");
    assert!(!present.contains(&ours));
    assert!(slots(CK_FALSE).contains(&ours), "the slot itself stays");
    // A short buffer: CKR_BUFFER_TOO_SMALL and the needed count.
    let mut n: CK_ULONG = present.len() as CK_ULONG - 1;
    let mut short = vec![0; present.len()];
    // SAFETY: `short` has room for more than `n` ids.
    let rv = unsafe { get_slots(CK_TRUE, short.as_mut_ptr(), &mut n) };
    assert_eq!((rv, n as usize), (CKR_BUFFER_TOO_SMALL, present.len()));
    let mut info = CK_TOKEN_INFO::default();
    // SAFETY: `info` is writable.
    assert_eq!(
        unsafe { token_info(ours, &mut info) },
        CKR_TOKEN_NOT_PRESENT
    );
    let mut slot_info = CK_SLOT_INFO::default();
    let get_slot_info = f.C_GetSlotInfo.expect("C_GetSlotInfo");
    // SAFETY: `slot_info` is writable.
    assert_eq!(unsafe { get_slot_info(ours, &mut slot_info) }, CKR_OK);
    assert_eq!(slot_info.flags & CKF_TOKEN_PRESENT, 0);

    faults.clear().expect("clear");
    assert_eq!(slots(CK_TRUE), all_present);
    // SAFETY: `info` is writable.
    assert_eq!(unsafe { token_info(ours, &mut info) }, CKR_OK);
    // `lib` is dropped here: dlclose only drops our reference.
}

/// What a `Token` user may see while its token is "removed": the device's
/// own answer on a pooled session (`CKR_DEVICE_REMOVED`) or on opening one
/// (`CKR_TOKEN_NOT_PRESENT`), or — when `Token`'s recovery looked the token
/// up again and did not find it — `TokenNotFound`.
fn assert_removed(e: &Pkcs11Error) {
    match e {
        Pkcs11Error::TokenNotFound { label } => assert_eq!(label, LABEL),
        _ => {
            assert!(
                matches!(ckr(e), Ckr::DeviceRemoved | Ckr::TokenNotPresent),
                "{e}"
            );
            assert!(e.is_device_failure(), "{e}");
        }
    }
}

fn removed_token(t: &Token, cfg: &TokenConfig, faults: &FaultFile) {
    let sealed = t
        .aes_gcm_encrypt(KEY, AAD, b"before removal")
        .expect("encrypt");
    faults
        .set(&[&format!("remove_token {LABEL}")])
        .expect("set");

    let e = t
        .aes_gcm_encrypt(KEY, AAD, b"x")
        .expect_err("encrypt on a removed token");
    println!("remove_token (encrypt): {e}");
    assert_removed(&e);
    // Every further call fails too, whichever pooled session it gets.
    for i in 0..4 {
        let e = t.generate_random(8).expect_err("random on a removed token");
        println!("remove_token (random #{i}): {e}");
        assert_removed(&e);
    }
    let e = Token::open(cfg.clone()).expect_err("open a removed token");
    println!("remove_token (open): {e}");
    assert!(matches!(e, Pkcs11Error::TokenNotFound { .. }), "{e:?}");

    faults.clear().expect("clear");
    let back = t
        .aes_gcm_decrypt(KEY, &sealed.iv, AAD, &sealed.ciphertext, &sealed.tag)
        .expect("token back: decrypt with the same Token");
    assert_eq!(back.as_slice(), b"before removal");
    round_trip(t, KEY, "token back (same Token)");
    let t2 = Token::open(cfg.clone()).expect("open after the token is back");
    round_trip(&t2, KEY, "token back (new Token)");
}
