//! Keyhold's own XKS proxy: the XKS Proxy API v1 edge over PKCS#11 HSMs or a built-in software key store.
//!
//! * [`server`]: HTTPS (rustls, TLS 1.2/1.3, HTTP/1.1 and HTTP/2), routing, SigV4 with several
//!   live credentials per store, rate limits, request logging, reload on SIGHUP or file change.
//!   Every request's body is read (bounded) before it is answered, refusals included; an
//!   unknown access key id is answered exactly like a wrong secret; a client certificate
//!   refused by mTLS gets a `handshake_failure` alert and a clean close ([`tls`]).
//! * [`ops`]: the four operations; [`envelope`]: the spec's AAD construction, metadata
//!   versioning and CDIV; [`error`]: the twelve error names.
//! * [`backend`]: the [`backend::KeyBackend`] trait, the PKCS#11 backend and the software key
//!   store. Keys carry a [`backend::KeyUsage`] (`keys create --usage encrypt,decrypt|encrypt|
//!   decrypt|none`), reported as GetKeyMetadata's `keyUsage` and enforced on Encrypt, Decrypt
//!   and the CDIV test decryption (`InvalidKeyUsageException`, 400). Health checks change
//!   nothing in the key manager (PKCS#11: a read-only probe, or a round trip on the key
//!   `health_check_key_label` names).
//! * [`config`], [`authz`], [`tls`], [`state`]: configuration, secondary authorization, TLS/mTLS
//!   and the live state swapped on reload.
//! * [`cli`]: `keyhold xks-proxy ...`; [`client`] and [`bench`]: a signed XKS client and the
//!   Encrypt benchmark.
#![warn(missing_docs)]

pub mod authz;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod envelope;
pub mod error;
pub mod ops;
pub mod server;
pub mod state;
pub mod tls;

pub use cli::{run, XksProxyCommand};
pub use config::Config;
pub use server::ProxyServer;
