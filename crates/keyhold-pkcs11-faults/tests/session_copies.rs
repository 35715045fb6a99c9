//! Session-object copies of keys (`TokenConfig::session_key_copies`), counted through the
//! shim in front of the real SoftHSMv2 (skipped with a SKIP line when SoftHSM is not
//! installed): a key is looked up and copied once for many operations; the original is read
//! again only once per interval, so a key another process replaced is seen at the next check
//! and not before; a refused copy is made again; destroying the key destroys its copy; a
//! module that will not copy gets the token object used as before.
//!
//! The shim's call counters and SoftHSM are per process, so the scenarios run in sequence
//! inside one test.

mod common;

use std::time::Duration;

use common::{
    ckr, open_shim_token, replace_key_if_child, round_trip, run_child_test, ShimToken, AAD,
};
use keyhold_pkcs11::{Ckr, Pkcs11Error, Token};
use keyhold_pkcs11_faults::call_count;

const LABEL: &str = "session copies token";
const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/copied";
const OTHER: &str = "arn:aws:kms:eu-west-1:111122223333:key/not-copied";
/// Set (to the token label) in the child process that replaces the key.
const CHILD_ENV: &str = "KEYHOLD_SESSION_COPIES_CHILD_TOKEN";

#[test]
fn keys_are_used_through_session_copies() {
    let Some(ShimToken {
        shim,
        faults,
        cfg,
        token: plain,
    }) = open_shim_token(LABEL)
    else {
        return;
    };
    let count = |function: &str| call_count(&shim, function).expect("read the shim's counter");
    let with_copies = |every: Duration| {
        let mut c = cfg.clone();
        c.session_key_copies = Some(every);
        Token::open(c).expect("open with session copies")
    };
    // One checks the original at most hourly, the other before every operation.
    let lazy = with_copies(Duration::from_secs(3600));
    let eager = with_copies(Duration::ZERO);
    lazy.generate_aes_key(KEY).expect("generate");

    // One look-up and one copy serve many operations, which never read the original.
    let (finds, copies) = (count("C_FindObjectsInit"), count("C_CopyObject"));
    round_trip(&lazy, KEY, "first use");
    let reads = count("C_GetAttributeValue");
    for i in 0..10 {
        round_trip(&lazy, KEY, &format!("round trip {i}"));
    }
    assert_eq!(count("C_FindObjectsInit"), finds + 1, "one look-up");
    assert_eq!(count("C_CopyObject"), copies + 1, "one copy");
    assert_eq!(
        count("C_GetAttributeValue"),
        reads,
        "the original is not read"
    );
    assert_eq!(lazy.cached_key_handles(), 1);

    // With a zero interval the original is checked before each operation.
    round_trip(&eager, KEY, "eager first use");
    let r0 = count("C_GetAttributeValue");
    let sealed = eager.aes_gcm_encrypt(KEY, AAD, b"eager").expect("encrypt");
    let r1 = count("C_GetAttributeValue");
    eager
        .aes_gcm_decrypt(KEY, &sealed.iv, AAD, &sealed.ciphertext, &sealed.tag)
        .expect("decrypt");
    let r2 = count("C_GetAttributeValue");
    assert!(r1 > r0, "the original is read before the operation");
    assert_eq!(r2 - r1, r1 - r0, "and before every operation");

    // Another application replaces the key under the same label.
    let old = lazy.aes_gcm_encrypt(KEY, AAD, b"old key").expect("encrypt");
    run_child_test("another_process_replaces_the_key", CHILD_ENV, LABEL);
    let (finds, copies) = (count("C_FindObjectsInit"), count("C_CopyObject"));
    let new = eager
        .aes_gcm_encrypt(KEY, AAD, b"new key")
        .expect("the eager token finds the new key");
    assert_eq!(count("C_FindObjectsInit"), finds + 1, "looked up again");
    assert_eq!(count("C_CopyObject"), copies + 1, "and copied again");
    let back = plain
        .aes_gcm_decrypt(KEY, &new.iv, AAD, &new.ciphertext, &new.tag)
        .expect("the token object is the new key");
    assert_eq!(back.as_slice(), b"new key");
    let e = plain
        .aes_gcm_decrypt(KEY, &old.iv, AAD, &old.ciphertext, &old.tag)
        .expect_err("the old key is gone from the token");
    assert!(e.is_authentication_failure(), "{e:?}");
    // Until its interval passes, the lazy token still holds its copy of the old key: the
    // staleness `session_key_copies` documents.
    let back = lazy
        .aes_gcm_decrypt(KEY, &old.iv, AAD, &old.ciphertext, &old.tag)
        .expect("the lazy copy is of the old key");
    assert_eq!(back.as_slice(), b"old key");

    // A copy the token refuses is dropped, and the key looked up and copied again, once.
    faults
        .set(&["fail C_EncryptInit CKR_OBJECT_HANDLE_INVALID"])
        .expect("set");
    let copies = count("C_CopyObject");
    let e = eager
        .aes_gcm_encrypt(KEY, AAD, b"x")
        .expect_err("the token keeps refusing");
    assert_eq!(ckr(&e), Ckr::ObjectHandleInvalid);
    assert_eq!(count("C_CopyObject"), copies + 1, "copied again once");
    faults.clear().expect("clear");
    round_trip(&eager, KEY, "after CKR_OBJECT_HANDLE_INVALID");
    assert_eq!(count("C_CopyObject"), copies + 1, "the new copy is kept");

    // Destroying the key through the Token destroys its copy too.
    let destroys = count("C_DestroyObject");
    eager.destroy_key(KEY).expect("destroy");
    assert_eq!(
        count("C_DestroyObject"),
        destroys + 2,
        "the copy and the key"
    );
    let e = eager
        .aes_gcm_encrypt(KEY, AAD, b"x")
        .expect_err("destroyed key");
    assert!(matches!(e, Pkcs11Error::KeyNotFound { .. }), "{e:?}");

    // A module that will not copy: the token object is used, and kept.
    plain.generate_aes_key(OTHER).expect("generate other");
    faults
        .set(&["fail C_CopyObject CKR_FUNCTION_NOT_SUPPORTED"])
        .expect("set");
    let finds = count("C_FindObjectsInit");
    for i in 0..3 {
        round_trip(&lazy, OTHER, &format!("no copy {i}"));
    }
    assert_eq!(count("C_FindObjectsInit"), finds + 1, "one look-up");
    faults.clear().expect("clear");
}

/// The child side of the key replacement: another application on the same token (SoftHSMv2
/// itself, not the shim).
#[test]
#[ignore = "a child process of keys_are_used_through_session_copies"]
fn another_process_replaces_the_key() {
    replace_key_if_child(CHILD_ENV, KEY);
}
