//! The admin listener (`--admin-listen`) of a test server: a server started with one on a
//! free loopback port, and reading what it serves.

use super::TestServer;

/// A free loopback port: bound, then released for the server to take.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// An admin listener address on a free loopback port.
pub struct AdminListener {
    /// `127.0.0.1:<port>`, the value of `--admin-listen`.
    pub listen: String,
    /// `http://127.0.0.1:<port>`, the base URL of its endpoints.
    pub url: String,
}

impl AdminListener {
    /// An address on a port free now.
    pub fn free() -> Self {
        let port = free_port();
        Self {
            listen: format!("127.0.0.1:{port}"),
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// Starts a server with `args` followed by `--admin-listen` on a free port; returns it and
/// the admin listener's base URL (`http://127.0.0.1:<port>`).
pub fn start_with_admin(args: &[&str]) -> (TestServer, String) {
    let admin = AdminListener::free();
    let mut all = args.to_vec();
    all.extend(["--admin-listen", admin.listen.as_str()]);
    (TestServer::start_with(&all), admin.url)
}

/// `GET url`: the status and the body.
pub async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The value of the sample `series` (name and labels exactly) in an exposition `text`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
