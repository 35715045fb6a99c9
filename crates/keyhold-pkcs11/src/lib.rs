//! PKCS#11 access via cryptoki: session pool, login, typed CKR errors,
//! AES-GCM inside the token.
//!
//! Keyhold talks to hardware (or SoftHSM) tokens for two features: its own
//! XKS proxy, and AWS_CLOUDHSM custom key stores (a cluster is a token; the
//! crypto user `kmsuser` is the PKCS#11 user). Both need the same few things,
//! and nothing else is exposed:
//!
//! * [`Token::open`] loads the vendor module once per process (PKCS#11 allows
//!   `C_Initialize` only once), finds the token by label, opens a pool of
//!   R/W sessions and logs in as the user.
//! * Keys are persistent, non-extractable AES-256 keys addressed by label:
//!   [`Token::generate_aes_key`], [`Token::has_key`], [`Token::key_info`],
//!   [`Token::destroy_key`]; [`Token::generate_aes_key_with_usage`] sets
//!   `CKA_ENCRYPT`/`CKA_DECRYPT` from an [`AesKeyUsage`].
//! * Key handles are cached by label (see the `handles` module): a key is
//!   looked up in the token once, not on every operation;
//!   [`Token::forget_key`] drops one handle.
//! * [`Token::aes_gcm_encrypt`] / [`Token::aes_gcm_decrypt`] run AES-256-GCM
//!   inside the token with a random 96-bit IV (from the token's RNG, or the
//!   OS CSPRNG if it has none; or the caller's, via
//!   [`Token::aes_gcm_encrypt_with_iv`]) and a 128-bit tag.
//! * [`Token::generate_random`], [`Token::set_user_pin`], [`Token::logout`],
//!   and [`Token::health_check`] (a real round trip on a key it creates).
//! * Read-only inspection: [`Token::probe`] (token present and healthy, user
//!   logged in, object search answers; changes nothing),
//!   [`Token::round_trip_check`] (GCM round trip on an existing key) and
//!   [`Token::list_objects`].
//! * [`admin`] initialises tokens and users; `softhsm::TestEnv` (feature
//!   `testing`) gives tests a private SoftHSMv2 token store.
//!
//! # Errors
//! Every token failure is [`Pkcs11Error::Ckr`] with the `C_*` function and
//! the [`Ckr`] value, so callers map `CKR_PIN_INCORRECT` to
//! `INVALID_CREDENTIALS`, `CKR_PIN_LOCKED` to `USER_LOCKED_OUT`, and
//! [`Ckr::is_device_failure`] values to network-style errors.
//!
//! # Recovery
//! When an operation fails with a device or session failure, or the login
//! was lost, the session is dropped, the module is re-initialised if it
//! reports `CKR_CRYPTOKI_NOT_INITIALIZED`, the slot is found again, dead idle
//! sessions are pruned, sessions log in again, and the operation is retried
//! once (except key generation and PIN changes, which are not idempotent).
//! A caller waits at most [`TokenConfig::checkout_timeout`] for a session.
//!
//! A missing key, a missing token or `CKR_GENERAL_ERROR` may also mean the
//! module lost its token (SoftHSMv2 whose token directory vanished keeps
//! failing until it is finalized): the token is looked up again, and when the
//! module cannot list it, the module is reset (`C_Finalize` + `C_Initialize`,
//! waiting for calls in flight, at most once per 250 ms) and the operation
//! retried — so an HSM that comes back is used again without a restart.
//! `CKR_SESSION_COUNT` (the HSM's session limit) and an exhausted pool are
//! [`Pkcs11Error::is_session_exhaustion`]: retryable overload.
//!
//! # Login state
//! PKCS#11 login is per application (process) and token, not per session:
//! one `C_Login` logs in every session, and `C_Logout` or closing the last
//! session logs all out. A second `C_Login` gets `CKR_USER_ALREADY_LOGGED_IN`,
//! which counts as success — note that the token does *not* check the PIN
//! in that case, so a second `Token` on an already logged-in token opens
//! whatever PIN it has.
//!
//! # Blocking
//! All calls block on the device; use `spawn_blocking` from async code.
#![warn(missing_docs)]

pub mod admin;
mod ckr_table;
mod config;
mod error;
mod handles;
mod inspect;
mod keys;
mod lookup;
mod module;
mod pool;
#[cfg(any(test, feature = "testing"))]
pub mod softhsm;
mod token;

pub use config::{Pin, TokenConfig};
pub use error::{Ckr, Pkcs11Error};
pub use inspect::ObjectSummary;
pub use keys::{AesKeyUsage, GcmOutput, KeyInfo, GCM_IV_LEN, GCM_TAG_LEN};
pub use token::{SessionCounts, Token};
