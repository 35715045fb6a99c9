//! The admin listener (`--admin-listen HOST:PORT`, off by default): `/livez`, `/readyz` and
//! `/metrics` for orchestrators and Prometheus, and `/custom-key-stores/<id>/diagnostics`
//! for operators, on its own address so that it can stay on a
//! private interface while the KMS endpoint faces clients. Plain HTTP/1.1, no authentication:
//! it reveals counts and states, never key material, key ids or secrets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::Gauge;
use crate::router::AppState;

/// How long the admin listener waits for a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `/readyz` waits for the metadata store.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `listen` and serves the admin endpoints in the background; returns the bound address.
pub async fn start(listen: SocketAddr, state: Arc<AppState>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the admin listener {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(admin_listen = %local, "admin listener: /livez, /readyz, /metrics");
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "admin listener: accept failed; pausing");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(answer(&state, req.uri().path()).await)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(tcp), svc);
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "admin connection ended with an error");
                }
            });
        }
    });
    Ok(local)
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

async fn answer(state: &AppState, path: &str) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    match path {
        // The process answers: nothing else is checked (a restart would not help otherwise).
        "/livez" => text(StatusCode::OK, PLAIN, "ok\n".into()),
        // Ready: the root key is loaded (it is, or the server would not have started) and the
        // metadata store answers.
        "/readyz" => match tokio::time::timeout(READY_TIMEOUT, state.kms.ping()).await {
            Ok(Ok(())) => text(StatusCode::OK, PLAIN, "ok\n".into()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the metadata store does not answer");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    PLAIN,
                    "not ready: the metadata store does not answer\n".into(),
                )
            }
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                format!("not ready: the metadata store did not answer within {READY_TIMEOUT:?}\n"),
            ),
        },
        "/metrics" => match &state.metrics {
            Some(metrics) => {
                let gauges = gauges(state).await;
                text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics.render(&gauges),
                )
            }
            None => text(StatusCode::NOT_FOUND, PLAIN, "metrics are off\n".into()),
        },
        p if p.starts_with(crate::diagnostics::PATH_PREFIX) => diagnose(state, p).await,
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: the admin listener serves /livez, /readyz, /metrics and /custom-key-stores/<id>/diagnostics\n".into(),
        ),
    }
}

/// `GET /custom-key-stores/<id>/diagnostics`: the store's connection diagnostics as JSON
/// (looked up by id in every account and Region), or 404 with a JSON message.
async fn diagnose(state: &AppState, path: &str) -> Response<Full<Bytes>> {
    const JSON: &str = "application/json";
    let message = |status, m: String| {
        text(
            status,
            JSON,
            serde_json::json!({ "message": m }).to_string(),
        )
    };
    let Some(id) = crate::diagnostics::id_in_path(path) else {
        return message(
            StatusCode::NOT_FOUND,
            "not found: use /custom-key-stores/<custom key store id>/diagnostics".into(),
        );
    };
    match state.kms.custom_key_stores.diagnostics(id).await {
        Ok(Some(d)) => text(
            StatusCode::OK,
            JSON,
            crate::diagnostics::to_json(&d).to_string(),
        ),
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            format!("Custom key store {id} does not exist in any account or Region."),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "diagnostics: reading the custom key store failed");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "the metadata store does not answer".into(),
            )
        }
    }
}

/// The values read when `/metrics` is scraped.
async fn gauges(state: &AppState) -> Vec<Gauge> {
    let mut out = vec![Gauge {
        name: "keyhold_up",
        help: "1 while the server runs; 0 is never reported (an absent target is down).",
        samples: vec![(Vec::new(), 1.0)],
    }];
    match state.kms.custom_key_store_states().await {
        Ok(states) => out.push(Gauge {
            name: "keyhold_custom_key_stores",
            help:
                "Custom key stores across all accounts and Regions, by type and connection state.",
            samples: states
                .into_iter()
                .map(|(store_type, connection_state, n)| {
                    (
                        vec![
                            ("custom_key_store_type", store_type),
                            ("connection_state", connection_state),
                        ],
                        n as f64,
                    )
                })
                .collect(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: listing custom key stores failed");
        }
    }
    out.extend(per_store_gauges(state).await);
    out
}

/// Per custom key store: its keys, and the use of this node's kmsuser session pool of a
/// CloudHSM store's cluster.
async fn per_store_gauges(state: &AppState) -> Vec<Gauge> {
    let stores = match state.kms.custom_key_stores.inventory().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: counting the keys of custom key stores failed");
            return Vec::new();
        }
    };
    let keys = Gauge {
        name: "keyhold_custom_key_store_keys",
        help: "KMS keys in each custom key store (keys pending deletion included).",
        samples: stores
            .iter()
            .map(|s| {
                (
                    vec![
                        ("custom_key_store_id", s.custom_key_store_id.clone()),
                        ("custom_key_store_type", s.custom_key_store_type.clone()),
                    ],
                    s.keys as f64,
                )
            })
            .collect(),
    };
    let mut sessions = Gauge {
        name: "keyhold_hsm_sessions",
        help: "This node's kmsuser PKCS#11 sessions per CloudHSM key store, idle or in use.",
        samples: Vec::new(),
    };
    let mut capacity = Gauge {
        name: "keyhold_hsm_session_pool_capacity",
        help: "The most kmsuser PKCS#11 sessions this node's pool holds per CloudHSM key store.",
        samples: Vec::new(),
    };
    let pools = state
        .cloudhsm
        .as_ref()
        .map(|c| c.session_pools())
        .unwrap_or_default();
    for s in &stores {
        let Some(cluster) = &s.cloud_hsm_cluster_id else {
            continue;
        };
        let Some((_, counts)) = pools.iter().find(|(c, _)| c == cluster) else {
            continue;
        };
        let labels = |state: Option<&'static str>| {
            let mut l = vec![
                ("custom_key_store_id", s.custom_key_store_id.clone()),
                ("cloud_hsm_cluster_id", cluster.clone()),
            ];
            if let Some(st) = state {
                l.push(("state", st.to_string()));
            }
            l
        };
        sessions
            .samples
            .push((labels(Some("idle")), counts.idle as f64));
        sessions
            .samples
            .push((labels(Some("in_use")), counts.in_use as f64));
        capacity
            .samples
            .push((labels(None), counts.capacity as f64));
    }
    vec![keys, sessions, capacity]
}
