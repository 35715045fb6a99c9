//! A real module that cannot be loaded: the shim reports
//! `CKR_GENERAL_ERROR` instead of crashing. (Its own process: the shim
//! loads the real module once per process.)

use std::path::PathBuf;

use cryptoki_sys::*;
use keyhold_pkcs11::{Pin, Pkcs11Error, Token, TokenConfig};
use keyhold_pkcs11_faults::{library_path, MODULE_ENV};

type GetFunctionList = unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV;

#[test]
fn missing_real_module_is_a_general_error() {
    let shim = library_path().expect("libkeyhold_pkcs11_faults.so next to the test binary");
    std::env::set_var(MODULE_ENV, "/nonexistent/libno-such-module.so");

    // SAFETY: loading the shim runs no code of the real module.
    let lib = unsafe { libloading::Library::new(&shim) }.expect("dlopen shim");
    // SAFETY: the symbol has this signature.
    let get = unsafe { lib.get::<GetFunctionList>(b"C_GetFunctionList\0") }.expect("symbol");
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer.
    assert_eq!(unsafe { get(&mut list) }, CKR_GENERAL_ERROR);
    assert!(list.is_null());
    // SAFETY: NULL is allowed and must be refused, not dereferenced.
    assert_eq!(unsafe { get(std::ptr::null_mut()) }, CKR_ARGUMENTS_BAD);

    // Through Keyhold: a module load failure, not a panic.
    let cfg = TokenConfig::new(PathBuf::from(&shim), "any", Pin::new("1234"));
    let e = Token::open(cfg).expect_err("cannot open");
    println!("{e}");
    assert!(matches!(e, Pkcs11Error::LibraryLoad { .. }), "{e:?}");
}
