//! Keyhold's own XKS proxy: the XKS Proxy API v1 edge over PKCS#11 HSMs or a built-in software key store.
//!
//! * [`server`]: HTTPS (rustls, TLS 1.2/1.3, HTTP/1.1 and HTTP/2), routing, SigV4 with several
//!   live credentials per store, rate limits, request logging, reload on SIGHUP or file change.
//! * [`ops`]: the four operations; [`envelope`]: the spec's AAD construction, metadata
//!   versioning and CDIV; [`error`]: the twelve error names.
//! * [`backend`]: the [`backend::KeyBackend`] trait and the software key store.
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
