//! `admin::init_user_pin` and `admin::verify_user_pin` against a real SoftHSMv2 token: the
//! typed causes CloudHSM key stores map to connection error codes.

use keyhold_pkcs11::softhsm::{TestEnv, TEST_SO_PIN};
use keyhold_pkcs11::{admin, Ckr, Pin};

#[test]
fn user_pin_lifecycle_with_typed_failures() {
    let Some(env) = TestEnv::get() else {
        return;
    };
    let m = env.module_path();
    let label = "t-user-pin";
    env.token_without_user(label).expect("token");
    let so = Pin::new(TEST_SO_PIN);

    // No user yet: the module says so.
    let e = admin::verify_user_pin(m, label, &Pin::new("whatever1")).expect_err("no user");
    assert_eq!(e.ckr(), Some(Ckr::UserPinNotInitialized), "{e}");

    admin::init_user_pin(m, label, &so, &Pin::new("first-pin-1")).expect("create user");
    admin::verify_user_pin(m, label, &Pin::new("first-pin-1")).expect("right PIN");
    let e = admin::verify_user_pin(m, label, &Pin::new("wrong-pin-1")).expect_err("wrong PIN");
    assert_eq!(e.ckr(), Some(Ckr::PinIncorrect), "{e}");

    // The SO resets it; the old PIN stops working.
    admin::init_user_pin(m, label, &so, &Pin::new("second-pin-2")).expect("reset");
    let e = admin::verify_user_pin(m, label, &Pin::new("first-pin-1")).expect_err("old PIN");
    assert_eq!(e.ckr(), Some(Ckr::PinIncorrect), "{e}");
    admin::verify_user_pin(m, label, &Pin::new("second-pin-2")).expect("new PIN");

    // A wrong SO PIN is refused.
    let e = admin::init_user_pin(m, label, &Pin::new("not-the-so"), &Pin::new("x-pin-123"))
        .expect_err("wrong SO PIN");
    assert_eq!(e.ckr(), Some(Ckr::PinIncorrect), "{e}");
}
