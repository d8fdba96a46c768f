//! The control plane's HTTP admin API, which the harness uses to change the mesh and, when
//! the control plane runs on another machine, to follow its xDS log and read its clock.
//!
//! - `GET /healthz`: 200 once the control plane serves.
//! - `GET /memory`: `{"rss_bytes": N}`, its resident memory (for soaks' `memory_drift`).
//! - `POST /changes` with a JSON [`Change`]: applies it, answers `{"version": N}`; 400 with
//!   `{"error": ...}` when the change does not fit the mesh.
//! - `GET /log`: a stream that never ends by itself: every push, ACK and NACK from now
//!   on, one JSON [`super::XdsLogLine`] per line (`{"missed": N}` when the follower fell
//!   so far behind that N lines were dropped for it).
//! - `GET /clock`: `{"unix_us": N}`, its clock, for the harness's offset estimate.

use super::{Change, ControlPlane};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;

/// A response body: a whole JSON document, or the log stream.
type Body = BoxBody<Bytes, Infallible>;

/// Serve the admin API on `listener` until `shutdown`.
pub async fn serve(cp: ControlPlane, listener: TcpListener, shutdown: CancellationToken) {
    crate::service::serve_http(listener, shutdown, move |req| handle(cp.clone(), req)).await
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response
}

async fn handle(
    cp: ControlPlane,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => {
            reply(StatusCode::OK, serde_json::json!({"version": cp.version()}))
        }
        (&Method::GET, "/memory") => reply(
            StatusCode::OK,
            serde_json::json!({"rss_bytes": crate::timeline::resident_bytes()}),
        ),
        (&Method::GET, "/clock") => reply(
            StatusCode::OK,
            serde_json::json!({"unix_us": crate::timeline::now_unix_us()}),
        ),
        (&Method::GET, "/log") => log_stream(&cp),
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

/// `GET /log`: the log from now on, a JSON line per entry.
fn log_stream(cp: &ControlPlane) -> Response<Body> {
    let lines = BroadcastStream::new(cp.follow_log()).map(|line| {
        let mut text = match line {
            Ok(line) => serde_json::to_string(&line).unwrap_or_default(),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                serde_json::json!({"missed": n}).to_string()
            }
        };
        text.push('\n');
        Ok::<_, Infallible>(Frame::data(Bytes::from(text)))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(lines)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// A client of the admin API: how the harness asks a running control plane for a change,
/// follows its log and reads its clock.
#[derive(Debug, Clone)]
pub struct ChangeClient {
    base: String,
    http: reqwest::Client,
}

impl ChangeClient {
    /// A client of the admin API at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> ChangeClient {
        ChangeClient {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    /// A client of the admin API at `base` (`http://host:port`, a password in it sent as
    /// basic auth), sending `headers` with every request.
    pub fn at(
        base: &reqwest::Url,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<ChangeClient> {
        use anyhow::Context;
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("bad header name `{name}`"))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .with_context(|| format!("bad value for header `{name}`"))?;
            map.insert(name, value);
        }
        Ok(ChangeClient {
            base: base.as_str().trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().default_headers(map).build()?,
        })
    }

    /// Ask for `change`; the config version it made.
    pub async fn change(&self, change: &Change) -> anyhow::Result<u64> {
        use anyhow::Context;
        let response = self
            .http
            .post(format!("{}/changes", self.base))
            .json(change)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            // Without the URL: a password in it must not reach the timeline.
            .map_err(reqwest::Error::without_url)
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

    /// `GET /healthz` answers 2xx within `timeout`.
    pub async fn healthy(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .timeout(timeout)
            .send()
            .await
            .map_err(reqwest::Error::without_url)?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET /healthz answered {}",
            response.status()
        );
        Ok(())
    }

    /// `GET /clock`: the control plane's clock in µs, read with the local clock before
    /// and after (`(before, theirs, after)`, all UNIX µs).
    pub async fn clock(&self) -> anyhow::Result<(u64, u64, u64)> {
        use anyhow::Context;
        let before = crate::timeline::now_unix_us();
        let body: serde_json::Value = self
            .http
            .get(format!("{}/clock", self.base))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .map_err(reqwest::Error::without_url)?
            .json()
            .await
            .map_err(reqwest::Error::without_url)?;
        let after = crate::timeline::now_unix_us();
        let theirs = body["unix_us"]
            .as_u64()
            .context("the control plane's /clock answer has no unix_us")?;
        Ok((before, theirs, after))
    }

    /// `GET /memory`: its resident memory in bytes (None when it does not answer: a
    /// control plane the suite killed has none).
    pub async fn memory(&self) -> Option<u64> {
        let answer = self
            .http
            .get(format!("{}/memory", self.base))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = answer.json().await.ok()?;
        body["rss_bytes"].as_u64()
    }

    /// `GET /log`: the open stream of its log lines.
    pub async fn log(&self) -> anyhow::Result<reqwest::Response> {
        let response = self.http.get(format!("{}/log", self.base)).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET /log answered {}",
            response.status()
        );
        Ok(response)
    }
}
