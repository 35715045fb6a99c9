//! The key-handle cache of `keyhold_pkcs11::Token`, counted through the shim
//! in front of the real SoftHSMv2 (skipped with a SKIP line when SoftHSM is
//! not installed): a key is looked up once, not per operation; a handle the
//! token refuses is evicted and the key looked up again; a key replaced by
//! another process is found again; a module reset forgets every handle.
//!
//! The shim's call counters and SoftHSM are per process, so the scenarios run
//! in sequence inside one test (the module reset last).

mod common;

use std::path::{Path, PathBuf};

use common::{
    ckr, open_shim_token, replace_key_if_child, round_trip, run_child_test, ShimToken, AAD,
};
use keyhold_pkcs11::{Ckr, Pkcs11Error, Token};
use keyhold_pkcs11_faults::{call_count, FaultFile};

const LABEL: &str = "handle cache token";
const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/cached";
const OTHER: &str = "arn:aws:kms:eu-west-1:111122223333:key/other";
/// Set (to the token label) in the child process that replaces the key.
const CHILD_ENV: &str = "KEYHOLD_HANDLE_CACHE_CHILD_TOKEN";

/// Counts of the shim's calls of one function.
struct Counter {
    shim: PathBuf,
    function: &'static str,
}

impl Counter {
    fn now(&self) -> u64 {
        call_count(&self.shim, self.function).expect("read the shim's counter")
    }
}

#[test]
fn key_handles_are_cached_and_renewed() {
    let Some(ShimToken {
        shim,
        faults,
        token: t,
        ..
    }) = open_shim_token(LABEL)
    else {
        return;
    };
    let finds = Counter {
        shim: shim.clone(),
        function: "C_FindObjectsInit",
    };
    let encrypt_inits = Counter {
        shim: shim.clone(),
        function: "C_EncryptInit",
    };

    one_look_up_per_key(&t, &finds);
    refused_handles_are_evicted(&t, &finds, &faults);
    replaced_by_another_process(&t, &finds, &encrypt_inits);
    destroyed_through_keyhold(&t, &finds);
    module_reset_forgets_handles(&t, &finds, &shim);
}

/// N operations on a key: at most one look-up (none for a key this `Token`
/// just created, whose handle `C_GenerateKey` returned).
fn one_look_up_per_key(t: &Token, finds: &Counter) {
    t.generate_aes_key(KEY).expect("generate");
    let start = finds.now();
    for i in 0..20 {
        round_trip(t, KEY, &format!("round trip {i}"));
    }
    let info = t.key_info(KEY).expect("key info");
    assert_eq!(info.value_len, 32);
    let (out, back) = t
        .aes_gcm_encrypt_and_decrypt(KEY, AAD, b"checked")
        .expect("encrypt and decrypt");
    assert_eq!(back.expect("test decryption").as_slice(), b"checked");
    assert_eq!(out.ciphertext.len(), 7);
    assert_eq!(finds.now(), start, "a created key is never looked up");

    // A key created elsewhere (a second Token, as after a restart): one look-up.
    t.generate_aes_key(OTHER).expect("generate other");
    t.forget_key(OTHER);
    let before = finds.now();
    for i in 0..10 {
        round_trip(t, OTHER, &format!("other {i}"));
    }
    assert_eq!(finds.now(), before + 1, "one look-up for ten round trips");
    assert_eq!(t.cached_key_handles(), 2);
}

/// A handle the token refuses is evicted and looked up again, once.
fn refused_handles_are_evicted(t: &Token, finds: &Counter, faults: &FaultFile) {
    let sealed = t.aes_gcm_encrypt(KEY, AAD, b"sealed").expect("encrypt");
    faults
        .set(&["fail C_EncryptInit CKR_OBJECT_HANDLE_INVALID"])
        .expect("set");
    let before = finds.now();
    let e = t
        .aes_gcm_encrypt(KEY, AAD, b"x")
        .expect_err("the token keeps refusing");
    println!("fail C_EncryptInit CKR_OBJECT_HANDLE_INVALID: {e}");
    assert_eq!(ckr(&e), Ckr::ObjectHandleInvalid);
    assert_eq!(
        finds.now(),
        before + 1,
        "looked up again once, not in a loop"
    );
    faults.clear().expect("clear");
    round_trip(t, KEY, "after CKR_OBJECT_HANDLE_INVALID");
    assert_eq!(finds.now(), before + 1, "the fresh handle is kept");

    faults
        .set(&["fail C_DecryptInit CKR_KEY_HANDLE_INVALID"])
        .expect("set");
    let e = t
        .aes_gcm_decrypt(KEY, &sealed.iv, AAD, &sealed.ciphertext, &sealed.tag)
        .expect_err("the token keeps refusing");
    assert_eq!(ckr(&e), Ckr::KeyHandleInvalid);
    assert_eq!(finds.now(), before + 2);
    faults.clear().expect("clear");
    let back = t
        .aes_gcm_decrypt(KEY, &sealed.iv, AAD, &sealed.ciphertext, &sealed.tag)
        .expect("decrypt after CKR_KEY_HANDLE_INVALID");
    assert_eq!(back.as_slice(), b"sealed");
    assert_eq!(finds.now(), before + 2);
}

/// Another application destroys the key and creates a new one under the same
/// label: the cached handle is refused (SoftHSMv2 notices the object file is
/// gone), and the new key is found and used.
fn replaced_by_another_process(t: &Token, finds: &Counter, encrypt_inits: &Counter) {
    let old = t.aes_gcm_encrypt(KEY, AAD, b"old key").expect("encrypt");
    run_child_test("another_process_replaces_the_key", CHILD_ENV, LABEL);

    let (f, e) = (finds.now(), encrypt_inits.now());
    let new = t
        .aes_gcm_encrypt(KEY, AAD, b"new key")
        .expect("encrypt under the new key");
    assert_eq!(finds.now(), f + 1, "the replaced key is looked up again");
    assert_eq!(
        encrypt_inits.now(),
        e + 2,
        "one refused C_EncryptInit on the stale handle, one on the new"
    );
    let back = t
        .aes_gcm_decrypt(KEY, &new.iv, AAD, &new.ciphertext, &new.tag)
        .expect("decrypt under the new key");
    assert_eq!(back.as_slice(), b"new key");
    let e = t
        .aes_gcm_decrypt(KEY, &old.iv, AAD, &old.ciphertext, &old.tag)
        .expect_err("the old key is gone");
    assert!(e.is_authentication_failure(), "{e:?}");
}

/// The child side of [`replaced_by_another_process`]: another application on
/// the same token (SoftHSMv2 itself, not the shim), run as a child process.
#[test]
#[ignore = "a child process of key_handles_are_cached_and_renewed"]
fn another_process_replaces_the_key() {
    replace_key_if_child(CHILD_ENV, KEY);
}

/// A key destroyed through the `Token` is forgotten at once.
fn destroyed_through_keyhold(t: &Token, finds: &Counter) {
    round_trip(t, OTHER, "before destroy");
    t.destroy_key(OTHER).expect("destroy");
    let before = finds.now();
    let e = t
        .aes_gcm_encrypt(OTHER, AAD, b"x")
        .expect_err("destroyed key");
    assert!(matches!(e, Pkcs11Error::KeyNotFound { .. }), "{e:?}");
    assert!(finds.now() > before, "looked up, not served from the cache");
}

type GetFunctionList =
    unsafe extern "C" fn(cryptoki_sys::CK_FUNCTION_LIST_PTR_PTR) -> cryptoki_sys::CK_RV;

/// `C_Finalize` through the shim's function list (its only export).
fn finalize(shim: &Path) -> cryptoki_sys::CK_RV {
    // SAFETY: loading the shim again just takes another reference to the
    // module already loaded in this process.
    let lib = unsafe { libloading::Library::new(shim) }.expect("dlopen shim");
    // SAFETY: the symbol has this signature.
    let get = unsafe { lib.get::<GetFunctionList>(b"C_GetFunctionList\0") }.expect("symbol");
    let mut list: *mut cryptoki_sys::CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer.
    assert_eq!(unsafe { get(&mut list) }, cryptoki_sys::CKR_OK);
    assert!(!list.is_null());
    // SAFETY: the function list is a static of the loaded module; C_Finalize
    // with NULL is the call PKCS#11 defines, and nothing else in this process
    // is inside the module now.
    unsafe {
        let f = (*list).C_Finalize.expect("C_Finalize");
        f(std::ptr::null_mut())
    }
}

/// `C_Finalize` behind the `Token`'s back: it resets the module, whose handle
/// numbers restart, and looks its keys up again.
fn module_reset_forgets_handles(t: &Token, finds: &Counter, shim: &Path) {
    let before_reset = t.aes_gcm_encrypt(KEY, AAD, b"pre-reset").expect("encrypt");
    round_trip(t, KEY, "cached before the reset");
    let recoveries = t.recoveries();
    assert_eq!(finalize(shim), cryptoki_sys::CKR_OK);
    let before = finds.now();
    let back = t
        .aes_gcm_decrypt(
            KEY,
            &before_reset.iv,
            AAD,
            &before_reset.ciphertext,
            &before_reset.tag,
        )
        .expect("decrypt after the reset");
    assert_eq!(back.as_slice(), b"pre-reset");
    assert!(t.recoveries() > recoveries, "the module was reset");
    assert_eq!(finds.now(), before + 1, "the key was looked up again");
    round_trip(t, KEY, "cached again after the reset");
    assert_eq!(finds.now(), before + 1);
}
