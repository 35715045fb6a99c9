//! Re-initialisation after the module was finalized under the pool.
//!
//! Its own test binary (process): C_Finalize affects every token of the
//! module in the process.

use keyhold_pkcs11::softhsm::TestEnv;
use keyhold_pkcs11::Token;

#[test]
fn recovers_after_module_finalized() {
    let Some(env) = TestEnv::get() else { return };
    let cfg = env.token("t-reinit", "user-pin-1234").expect("init token");
    let t = Token::open(cfg.clone()).expect("open");
    t.generate_aes_key("k").expect("generate");
    let before = t.aes_gcm_encrypt("k", b"", b"before").expect("encrypt");
    // Finalize the library behind the Token's back: every call now answers
    // CKR_CRYPTOKI_NOT_INITIALIZED until someone calls C_Initialize again.
    let rv = unsafe {
        let lib = cryptoki_sys::Pkcs11::new(&cfg.module_path).expect("dlopen");
        lib.C_Finalize(std::ptr::null_mut())
    };
    assert_eq!(rv, cryptoki_sys::CKR_OK);
    let back = t
        .aes_gcm_decrypt("k", &before.iv, b"", &before.ciphertext, &before.tag)
        .expect("decrypt after re-initialisation");
    assert_eq!(back.as_slice(), b"before");
    assert!(t.recoveries() >= 1, "must have re-initialised");
    t.health_check().expect("health after re-initialisation");
}
