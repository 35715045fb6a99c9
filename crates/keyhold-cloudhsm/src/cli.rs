//! `keyhold cloudhsm ...`: the CloudHSM CLI equivalents (`cluster activate`, `user create`,
//! `user delete`, `user change-password`, `login`, `logout`) as calls to a running Keyhold's
//! `BaldrApiService.Keyhold*` operations over plain HTTP.
//!
//! Passwords are read from the environment, never from flags (which `ps` shows):
//! `KEYHOLD_CLOUDHSM_ADMIN_PASSWORD` (the admin password set at activation) and
//! `KEYHOLD_CLOUDHSM_PASSWORD` (the crypto user's). Requests are signed with SigV4 (service
//! `cloudhsm`) when `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set, and unsigned
//! otherwise (enough for a dev-mode Keyhold).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::admin::{ActivateRequest, UserRequest};

/// The admin password's environment variable.
pub const ADMIN_PASSWORD_ENV: &str = "KEYHOLD_CLOUDHSM_ADMIN_PASSWORD";
/// The crypto user password's environment variable.
pub const PASSWORD_ENV: &str = "KEYHOLD_CLOUDHSM_PASSWORD";

/// Where the Keyhold endpoint is.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Keyhold endpoint (http only).
    #[arg(
        long,
        env = "KEYHOLD_ENDPOINT",
        default_value = "http://127.0.0.1:4600"
    )]
    pub endpoint: String,
    /// Region of the cluster.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The cluster id.
    #[arg(long)]
    pub cluster_id: String,
}

/// `keyhold cloudhsm ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CloudHsmCommand {
    /// Activate an INITIALIZED cluster (sets the admin password from
    /// KEYHOLD_CLOUDHSM_ADMIN_PASSWORD; creates the cluster's token).
    ActivateCluster(Target),
    /// Manage the kmsuser crypto user.
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Log a crypto user in (password from KEYHOLD_CLOUDHSM_PASSWORD); it stays logged in
    /// until `logout`, which makes a key store's Connect fail with USER_LOGGED_IN.
    Login(UserArgs),
    /// Log a crypto user out.
    Logout(UserArgs),
}

/// A user command's arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct UserArgs {
    /// Cluster and endpoint.
    #[command(flatten)]
    pub target: Target,
    /// The crypto user (Keyhold manages `kmsuser`).
    #[arg(long, default_value = "kmsuser")]
    pub username: String,
}

/// `keyhold cloudhsm user ...` (as admin: KEYHOLD_CLOUDHSM_ADMIN_PASSWORD).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum UserCommand {
    /// Create the user with the password in KEYHOLD_CLOUDHSM_PASSWORD.
    Create(UserArgs),
    /// Delete the user.
    Delete(UserArgs),
    /// Set the user's password to KEYHOLD_CLOUDHSM_PASSWORD (also unlocks it).
    ChangePassword(UserArgs),
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).map_err(|_| anyhow::anyhow!("set {name}"))
}

/// Runs one command; prints the response.
pub fn run(command: CloudHsmCommand) -> anyhow::Result<()> {
    let (target, op, text) = match command {
        CloudHsmCommand::ActivateCluster(t) => {
            let body = ActivateRequest {
                cluster_id: t.cluster_id.clone(),
                admin_password: env(ADMIN_PASSWORD_ENV)?,
            };
            (t, "KeyholdActivateCluster", serde_json::to_string(&body)?)
        }
        CloudHsmCommand::User { command } => {
            let (a, op, with_password) = match command {
                UserCommand::Create(a) => (a, "KeyholdUserCreate", true),
                UserCommand::Delete(a) => (a, "KeyholdUserDelete", false),
                UserCommand::ChangePassword(a) => (a, "KeyholdUserChangePassword", true),
            };
            let body = UserRequest {
                cluster_id: a.target.cluster_id.clone(),
                username: a.username.clone(),
                admin_password: Some(env(ADMIN_PASSWORD_ENV)?),
                password: if with_password {
                    Some(env(PASSWORD_ENV)?)
                } else {
                    None
                },
            };
            (a.target, op, serde_json::to_string(&body)?)
        }
        CloudHsmCommand::Login(a) => {
            let body = UserRequest {
                cluster_id: a.target.cluster_id.clone(),
                username: a.username.clone(),
                admin_password: None,
                password: Some(env(PASSWORD_ENV)?),
            };
            (a.target, "KeyholdUserLogin", serde_json::to_string(&body)?)
        }
        CloudHsmCommand::Logout(a) => {
            let body = UserRequest {
                cluster_id: a.target.cluster_id.clone(),
                username: a.username.clone(),
                admin_password: None,
                password: None,
            };
            (a.target, "KeyholdUserLogout", serde_json::to_string(&body)?)
        }
    };
    let (status, reply) = post(&target, op, text.as_bytes())?;
    if (200..300).contains(&status) {
        println!("{op}: ok {reply}");
        Ok(())
    } else {
        anyhow::bail!("{op} failed (HTTP {status}): {reply}")
    }
}

/// POSTs one awsJson1.1 request; (status, body).
fn post(t: &Target, op: &str, body: &[u8]) -> anyhow::Result<(u16, String)> {
    let hostport = t
        .endpoint
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// endpoints are supported"))?
        .trim_end_matches('/');
    let target = format!("BaldrApiService.{op}");
    let content_type = "application/x-amz-json-1.1";
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), hostport.to_string()),
        ("content-type".into(), content_type.into()),
        ("x-amz-target".into(), target),
    ];
    if let (Ok(akid), Ok(secret)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        let hash = keyhold_sigv4::payload_hash(body);
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let parts = keyhold_sigv4::RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &pairs,
            payload_sha256_hex: &hash,
        };
        let signed = keyhold_sigv4::sign(
            &parts,
            &akid,
            &secret,
            &t.region,
            "cloudhsm",
            time::OffsetDateTime::now_utc(),
            &["host", "content-type", "x-amz-target"],
        )?;
        let extra: Vec<(String, String)> = signed
            .headers()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.extend(extra);
    }
    let mut stream = TcpStream::connect(hostport)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    read_response(&mut stream)
}

/// Reads an HTTP/1.1 response to the end (the request said `connection: close`): (status,
/// body). For the small command-line clients of Keyhold's own endpoints, which need no
/// HTTP library.
pub fn read_response(stream: &mut impl Read) -> anyhow::Result<(u16, String)> {
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP response"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
