//! Connection diagnostics of custom key stores, beyond AWS: the admin listener's
//! `GET /custom-key-stores/<id>/diagnostics` (JSON) and the `keyhold custom-key-stores
//! diagnose <id>` command that reads it and prints it for people.
//!
//! The admin listener has no authentication and custom key store ids are unique across
//! accounts and Regions, so the store is looked up by id alone; the answer names its account
//! and Region. It carries states, error codes, causes and AWS's documented fixes — never a
//! secret (proxy credentials and kmsuser passwords stay wrapped in the store's row).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use keyhold_core::custom_key_stores::diagnostics::{
    ConnectionAttempt, StoreDiagnostics, GENERAL_FIX,
};
use keyhold_kms_model::enums::CustomKeyStoreType;
use serde_json::{json, Value};

/// The admin path prefix of the diagnostics endpoint.
pub const PATH_PREFIX: &str = "/custom-key-stores/";
/// The admin path suffix of the diagnostics endpoint.
pub const PATH_SUFFIX: &str = "/diagnostics";

/// The store id in an admin path `/custom-key-stores/<id>/diagnostics`, if the path is one
/// and the id has the shape of an id (1–64 letters, digits and dashes).
pub fn id_in_path(path: &str) -> Option<&str> {
    let id = path.strip_prefix(PATH_PREFIX)?.strip_suffix(PATH_SUFFIX)?;
    let ok =
        (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then_some(id)
}

fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn attempt_json(a: &ConnectionAttempt, store_type: CustomKeyStoreType) -> Value {
    let mut v = json!({
        "Time": rfc3339(a.time_ms),
        "NodeId": a.node_id,
        "Kind": format!("{:?}", a.kind),
        "Outcome": a.outcome.as_str(),
    });
    if let Some(code) = a.connection_error_code {
        v["ConnectionErrorCode"] = json!(code.as_str());
    }
    if let Some(cause) = &a.cause {
        v["Cause"] = json!(cause);
    }
    if let Some(fix) = a.fix(store_type) {
        v["Fix"] = json!(fix);
    }
    v
}

/// The JSON answer of the diagnostics endpoint (AWS's PascalCase field names).
pub fn to_json(d: &StoreDiagnostics) -> Value {
    let t = d.custom_key_store_type;
    let mut v = json!({
        "CustomKeyStoreId": d.custom_key_store_id,
        "CustomKeyStoreName": d.custom_key_store_name,
        "CustomKeyStoreType": t.as_str(),
        "AccountId": d.account_id,
        "Region": d.region,
        "ConnectionState": d.connection_state.as_str(),
        "Attempts": d.attempts.iter().map(|a| attempt_json(a, t)).collect::<Vec<_>>(),
        "LastHealthCheck": d.last_health_check.as_ref().map(|a| attempt_json(a, t)),
    });
    if let Some(code) = d.connection_error_code {
        v["ConnectionErrorCode"] = json!(code.as_str());
    }
    if let Some(fix) = d.fix() {
        v["Fix"] = json!(fix);
        v["HowToFix"] = json!(GENERAL_FIX);
    }
    v
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or("")
}

/// One attempt for people; its fix is left out when it is the store's current one (`shown`).
fn attempt_text(out: &mut String, a: &Value, shown: Option<&str>) {
    let code = field(a, "ConnectionErrorCode");
    out.push_str(&format!(
        "  {}  {:<11} {}{}  (node {})\n",
        field(a, "Time"),
        field(a, "Kind"),
        field(a, "Outcome"),
        if code.is_empty() {
            String::new()
        } else {
            format!(" {code}")
        },
        field(a, "NodeId"),
    ));
    if let Some(cause) = a.get("Cause").and_then(Value::as_str) {
        out.push_str(&format!("      cause: {cause}\n"));
    }
    match a.get("Fix").and_then(Value::as_str) {
        Some(fix) if Some(fix) == shown => out.push_str("      fix:   as above\n"),
        Some(fix) => out.push_str(&format!("      fix:   {fix}\n")),
        None => {}
    }
}

/// The diagnostics for people: the store, its state, then each attempt with cause and fix.
pub fn to_text(v: &Value) -> String {
    let mut out = format!(
        "Custom key store {} ({}), {}, account {} in {}\n",
        field(v, "CustomKeyStoreId"),
        field(v, "CustomKeyStoreName"),
        field(v, "CustomKeyStoreType"),
        field(v, "AccountId"),
        field(v, "Region"),
    );
    let code = field(v, "ConnectionErrorCode");
    out.push_str(&format!(
        "Connection state: {}{}\n",
        field(v, "ConnectionState"),
        if code.is_empty() {
            String::new()
        } else {
            format!(" ({code})")
        }
    ));
    let shown = v.get("Fix").and_then(Value::as_str);
    if let Some(fix) = shown {
        out.push_str(&format!("Fix: {fix}\n     {}\n", field(v, "HowToFix")));
    }
    let attempts = v
        .get("Attempts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attempts.is_empty() {
        out.push_str("\nNo connection attempt recorded yet.\n");
    } else {
        out.push_str("\nConnection attempts (newest first):\n");
        for a in &attempts {
            attempt_text(&mut out, a, shown);
        }
    }
    match v.get("LastHealthCheck").filter(|h| !h.is_null()) {
        Some(h) => {
            out.push_str("\nLast periodic health check:\n");
            attempt_text(&mut out, h, shown);
        }
        None => out.push_str("\nNo periodic health check recorded.\n"),
    }
    out
}

/// `keyhold custom-key-stores ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CustomKeyStoresCommand {
    /// Show a custom key store's last connection attempts with the exact cause of each failure
    /// and the fix AWS documents for its ConnectionErrorCode (reads the admin listener).
    Diagnose(DiagnoseArgs),
}

/// `keyhold custom-key-stores diagnose` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DiagnoseArgs {
    /// The custom key store id (`cks-...`), in any account and Region.
    pub custom_key_store_id: String,
    /// Keyhold's admin listener (the `--admin-listen` address), http only.
    #[arg(long, env = "KEYHOLD_ENDPOINT")]
    pub endpoint: String,
    /// Print the endpoint's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs one command; fails (non-zero exit) for an unknown store.
pub fn run(command: CustomKeyStoresCommand) -> anyhow::Result<()> {
    let CustomKeyStoresCommand::Diagnose(args) = command;
    let path = format!("{PATH_PREFIX}{}{PATH_SUFFIX}", args.custom_key_store_id);
    let (status, body) = get(&args.endpoint, &path)?;
    match status {
        200 => {
            let v: Value = serde_json::from_str(&body)
                .map_err(|e| anyhow::anyhow!("the admin listener answered invalid JSON: {e}"))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", to_text(&v));
            }
            Ok(())
        }
        404 => anyhow::bail!(
            "custom key store {} not found (no such id in any account or Region)",
            args.custom_key_store_id
        ),
        _ => anyhow::bail!("the admin listener answered HTTP {status}: {}", body.trim()),
    }
}

/// GETs `path` from `endpoint` (`http://host:port`); (status, body).
fn get(endpoint: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let hostport = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| {
            anyhow::anyhow!(
                "only http:// endpoints are supported (the admin listener is plain HTTP)"
            )
        })?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(hostport)
        .map_err(|e| anyhow::anyhow!("cannot reach the admin listener at {hostport}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: {hostport}\r\nconnection: close\r\n\r\n").as_bytes(),
    )?;
    keyhold_cloudhsm::cli::read_response(&mut stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_diagnostics_paths_with_an_id_shape_match() {
        assert_eq!(
            id_in_path("/custom-key-stores/cks-1234567890abcdef0/diagnostics"),
            Some("cks-1234567890abcdef0")
        );
        assert_eq!(id_in_path("/custom-key-stores//diagnostics"), None);
        assert_eq!(id_in_path("/custom-key-stores/a/b/diagnostics"), None);
        assert_eq!(id_in_path("/custom-key-stores/cks-1"), None);
    }
}
