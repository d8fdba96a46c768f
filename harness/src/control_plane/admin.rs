//! The control plane's HTTP admin API, which the harness uses to change the mesh.
//!
//! - `GET /healthz`: 200 once the control plane serves.
//! - `GET /memory`: `{"rss_bytes": N}`, its resident memory (for soaks' `memory_drift`).
//! - `POST /changes` with a JSON [`Change`]: applies it, answers `{"version": N}`; 400 with
//!   `{"error": ...}` when the change does not fit the mesh.

use super::{Change, ControlPlane};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serve the admin API on `listener` until `shutdown`.
pub async fn serve(cp: ControlPlane, listener: TcpListener, shutdown: CancellationToken) {
    crate::service::serve_http(listener, shutdown, move |req| handle(cp.clone(), req)).await
}

async fn handle(
    cp: ControlPlane,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let reply = |status: StatusCode, body: serde_json::Value| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        response
    };
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => {
            reply(StatusCode::OK, serde_json::json!({"version": cp.version()}))
        }
        (&Method::GET, "/memory") => reply(
            StatusCode::OK,
            serde_json::json!({"rss_bytes": crate::timeline::resident_bytes()}),
        ),
        (&Method::POST, "/changes") => {
            let body = req.into_body().collect().await?.to_bytes();
            match serde_json::from_slice::<Change>(&body) {
                Err(e) => reply(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": e.to_string()}),
                ),
                Ok(change) => match cp.apply(&change) {
                    Ok(version) => reply(StatusCode::OK, serde_json::json!({"version": version})),
                    Err(e) => reply(StatusCode::BAD_REQUEST, serde_json::json!({"error": e})),
                },
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found"}),
        ),
    })
}

/// A client of the admin API: how the harness asks a running control plane for a change.
#[derive(Debug, Clone)]
pub struct ChangeClient {
    url: String,
    http: reqwest::Client,
}

impl ChangeClient {
    /// A client of the admin API at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> ChangeClient {
        ChangeClient {
            url: format!("http://{addr}/changes"),
            http: reqwest::Client::new(),
        }
    }

    /// Ask for `change`; the config version it made.
    pub async fn change(&self, change: &Change) -> anyhow::Result<u64> {
        use anyhow::Context;
        let response = self
            .http
            .post(&self.url)
            .json(change)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .context("cannot reach the control plane's admin API")?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .context("bad answer from the control plane")?;
        if !status.is_success() {
            anyhow::bail!("the control plane refused the change: {}", body["error"]);
        }
        body["version"]
            .as_u64()
            .context("the control plane's answer has no version")
    }
}
