//! Runs a [`FakeXksProxy`] for tests written in other languages (the boto3 tests).
//!
//! `fake_xks_proxy <ready-file> [external-key-id ...]` starts the proxy with the default
//! options and the given external keys, then writes `{"addr": ..., "ca_pem": ...,
//! "hostname": ..., "access_key_id": ..., "secret": ...}` to `<ready-file>` and serves until
//! killed or until its standard input closes.

use keyhold_xks::testing::{FakeProxyOptions, FakeXksProxy};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let ready = args
        .next()
        .ok_or("usage: fake_xks_proxy <ready-file> [key-id ...]")?;
    let opts = FakeProxyOptions::default();
    let proxy = FakeXksProxy::start(opts.clone()).await;
    for id in args {
        proxy.add_key(&id);
    }
    let info = serde_json::json!({
        "addr": proxy.addr().to_string(),
        "ca_pem": proxy.ca_pem(),
        "hostname": opts.hostname,
        "access_key_id": opts.access_key_id,
        "secret": opts.secret,
    });
    let tmp = format!("{ready}.tmp");
    std::fs::write(&tmp, info.to_string())?;
    std::fs::rename(&tmp, &ready)?;
    // Serve until stdin closes (the parent died) or we are killed.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    drop(proxy);
    Ok(())
}
