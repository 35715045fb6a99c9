//! Keyhold's client for the AWS KMS External Key Store (XKS) Proxy API v1.
//!
//! KMS talks to an external key store proxy over HTTPS with SigV4 (service `kms-xks-proxy`)
//! and must turn every way that can go wrong into the right `ConnectionErrorCode` or
//! exception. This crate does the talking ([`XksClient`], which implements the domain's
//! [`keyhold_core::ports::xks::XksConnector`]) and classifies every failure from its real
//! cause in one place ([`classify`]): an HTTP status with an `errorName`, a rustls error, a
//! refused connection, the 250 ms budget running out.
//!
//! * [`config`]: the `[xks]` table (trusted CAs, `connect_to` address overrides, declared VPC
//!   endpoint services, budget).
//! * [`wire`]: the JSON bodies of all four operations, parsed strictly.
//! * `testing` (feature `testing`): `FakeXksProxy`, a real loopback HTTPS proxy that can be
//!   told to misbehave, for this crate's tests and those of crates above it.
#![warn(missing_docs)]

pub mod classify;
mod client;
pub mod config;
#[cfg(feature = "testing")]
pub mod testing;

/// The XKS Proxy API v1 JSON bodies, which live in the leaf crate `keyhold-xks-wire` so that
/// Keyhold's XKS proxy can share them without depending on `keyhold-core`; re-exported here
/// so `keyhold_xks::wire::…` keeps working.
pub use keyhold_xks_wire as wire;

pub use client::{kms_operation, XksClient, XksClientError, AES_GCM, SHA_256, SIGV4_SERVICE};
pub use config::{VpcEndpointServiceConfig, XksClientConfig, DEFAULT_TIMEOUT_MS};
