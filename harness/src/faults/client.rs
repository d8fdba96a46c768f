//! tether's async client for the Toxiproxy HTTP API.
//!
//! Works against [`super::server`] and against a real Toxiproxy 2.x. Every
//! method returns a [`FaultApiError`] instead of panicking; an error answer of
//! the server keeps its HTTP status and its `error` message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tether::faults::client::FaultApiError> {
//! use tether::faults::client::{DOWNSTREAM, Toxic, ToxiproxyClient};
//!
//! let api = ToxiproxyClient::new("http://127.0.0.1:8474")?;
//! let proxy = api.create_proxy("xds", "127.0.0.1:0", "127.0.0.1:18000").await?;
//! // Envoy now dials `proxy.listen`; cut the link without closing it:
//! api.add_toxic("xds", &Toxic::blackhole("cut", DOWNSTREAM)).await?;
//! api.remove_toxic("xds", "cut").await?;
//! # Ok(()) }
//! ```

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The `stream` of a toxic that affects bytes flowing from the upstream to the client.
pub const DOWNSTREAM: &str = "downstream";
/// The `stream` of a toxic that affects bytes flowing from the client to the upstream.
pub const UPSTREAM: &str = "upstream";

/// How long one API call may take before it fails with [`FaultApiError::Transport`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A proxy as the API shows it: `{"name","listen","upstream","enabled","toxics"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proxy {
    /// The unique name of the proxy.
    pub name: String,
    /// The address the proxy listens on, like `127.0.0.1:21000`.
    pub listen: String,
    /// The address the proxy forwards to.
    pub upstream: String,
    /// False when the proxy is disabled: it then refuses connections.
    pub enabled: bool,
    /// The toxics installed on the proxy, in the order they were added.
    #[serde(default)]
    pub toxics: Vec<Toxic>,
}

/// A toxic as the API shows it: `{"name","type","stream","toxicity","attributes"}`.
///
/// `kind` is Toxiproxy's `type` (`latency`, `timeout`, `bandwidth`,
/// `slow_close`, `slicer`, `limit_data`, `reset_peer`, `noop`) and `attributes` its
/// type-specific settings, e.g. `{"latency": 300, "jitter": 0}` (milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    /// The name, unique within a proxy.
    pub name: String,
    /// The toxic type, serialized as `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// [`DOWNSTREAM`] or [`UPSTREAM`].
    #[serde(default = "default_stream")]
    pub stream: String,
    /// The probability (0.0 to 1.0) that the toxic applies to a connection.
    #[serde(default = "default_toxicity")]
    pub toxicity: f32,
    /// The type-specific settings, a JSON object.
    #[serde(default = "empty_object")]
    pub attributes: Value,
}

fn default_stream() -> String {
    DOWNSTREAM.to_owned()
}

fn default_toxicity() -> f32 {
    1.0
}

fn empty_object() -> Value {
    json!({})
}

impl Toxic {
    /// A toxic of any type; `attributes` should be a JSON object.
    pub fn new(name: &str, kind: &str, stream: &str, attributes: Value) -> Self {
        Toxic {
            name: name.to_owned(),
            kind: kind.to_owned(),
            stream: stream.to_owned(),
            toxicity: 1.0,
            attributes,
        }
    }

    /// A blackhole: a `timeout` toxic with timeout 0, which swallows every byte
    /// on `stream` and keeps the connection open until the toxic is removed.
    pub fn blackhole(name: &str, stream: &str) -> Self {
        Toxic::new(name, "timeout", stream, json!({ "timeout": 0 }))
    }

    /// A `latency` toxic: delays every chunk on `stream` by `latency_ms` ± `jitter_ms`.
    pub fn latency(name: &str, stream: &str, latency_ms: u64, jitter_ms: u64) -> Self {
        Toxic::new(
            name,
            "latency",
            stream,
            json!({ "latency": latency_ms, "jitter": jitter_ms }),
        )
    }
}

/// Why a call to the fault API failed.
#[derive(Debug, thiserror::Error)]
pub enum FaultApiError {
    /// The server answered with an error status; `message` is its `error` field
    /// (or the raw body when the answer was not Toxiproxy's error JSON).
    #[error("fault API answered {status}: {message}")]
    Status {
        /// The HTTP status code, like 404.
        status: u16,
        /// The server's error message, like `proxy not found`.
        message: String,
    },
    /// No answer: connection refused, timeout, broken connection.
    #[error("fault API request failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered with a success status but a body we could not read.
    #[error("fault API answered an unexpected body: {0}")]
    Decode(String),
    /// The base URL given to [`ToxiproxyClient::new`] is unusable.
    #[error("invalid fault API base URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl FaultApiError {
    /// The HTTP status of an error answer; `None` when there was no answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            FaultApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The error JSON of Toxiproxy: `{"error": "proxy not found", "status": 404}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// The version JSON of newer Toxiproxy (and of tether's server).
#[derive(Deserialize)]
struct VersionBody {
    version: String,
}

/// An async client for one Toxiproxy API endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ToxiproxyClient {
    http: reqwest::Client,
    base: Url,
}

impl ToxiproxyClient {
    /// A client for the API at `base_url`, like `http://127.0.0.1:8474`.
    ///
    /// Requests go straight to that address (no HTTP proxy from the environment)
    /// and time out after 30 seconds.
    pub fn new(base_url: &str) -> Result<Self, FaultApiError> {
        let invalid = |reason: String| FaultApiError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let base = Url::parse(base_url).map_err(|err| invalid(err.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http:// URL".to_owned()));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(FaultApiError::Transport)?;
        Ok(ToxiproxyClient { http, base })
    }

    /// The server's version, like `2.9.0` or `0.1.0-tether`.
    ///
    /// Accepts both the JSON answer of newer servers and the plain text of older ones.
    pub async fn version(&self) -> Result<String, FaultApiError> {
        let body = self.call(Method::GET, &["version"], None).await?;
        Ok(parse_version(&body))
    }

    /// All proxies, by name.
    pub async fn proxies(&self) -> Result<BTreeMap<String, Proxy>, FaultApiError> {
        let body = self.call(Method::GET, &["proxies"], None).await?;
        decode(&body)
    }

    /// Creates an enabled proxy from `listen` to `upstream`.
    ///
    /// A `listen` port of 0 picks a free port; the returned proxy shows the real one.
    pub async fn create_proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<Proxy, FaultApiError> {
        let request = json!({
            "name": name,
            "listen": listen,
            "upstream": upstream,
            "enabled": true,
        });
        let body = self
            .call(Method::POST, &["proxies"], Some(&request))
            .await?;
        decode(&body)
    }

    /// One proxy by name.
    pub async fn proxy(&self, name: &str) -> Result<Proxy, FaultApiError> {
        let body = self.call(Method::GET, &["proxies", name], None).await?;
        decode(&body)
    }

    /// Enables or disables a proxy. Disabling closes its open connections.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<Proxy, FaultApiError> {
        let request = json!({ "enabled": enabled });
        let body = self
            .call(Method::POST, &["proxies", name], Some(&request))
            .await?;
        decode(&body)
    }

    /// Deletes a proxy, closing its connections.
    pub async fn delete_proxy(&self, name: &str) -> Result<(), FaultApiError> {
        self.call(Method::DELETE, &["proxies", name], None).await?;
        Ok(())
    }

    /// Adds a toxic to a proxy; returns it as the server stored it (defaults filled in).
    pub async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, FaultApiError> {
        let request = serde_json::to_value(toxic)
            .map_err(|err| FaultApiError::Decode(format!("cannot encode toxic: {err}")))?;
        let body = self
            .call(Method::POST, &["proxies", proxy, "toxics"], Some(&request))
            .await?;
        decode(&body)
    }

    /// Changes the `attributes` and `toxicity` of the toxic named `toxic.name`.
    pub async fn update_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, FaultApiError> {
        let request = json!({
            "toxicity": toxic.toxicity,
            "attributes": toxic.attributes,
        });
        let path = ["proxies", proxy, "toxics", toxic.name.as_str()];
        let body = self.call(Method::POST, &path, Some(&request)).await?;
        decode(&body)
    }

    /// Removes a toxic from a proxy.
    pub async fn remove_toxic(&self, proxy: &str, toxic_name: &str) -> Result<(), FaultApiError> {
        let path = ["proxies", proxy, "toxics", toxic_name];
        self.call(Method::DELETE, &path, None).await?;
        Ok(())
    }

    /// The toxics of a proxy.
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, FaultApiError> {
        let body = self
            .call(Method::GET, &["proxies", proxy, "toxics"], None)
            .await?;
        decode(&body)
    }

    /// Enables every proxy and removes every toxic.
    pub async fn reset(&self) -> Result<(), FaultApiError> {
        self.call(Method::POST, &["reset"], None).await?;
        Ok(())
    }

    /// Sends one request and returns the body of a successful answer.
    ///
    /// `segments` are path segments below the base URL; each is percent-encoded,
    /// so names may hold any character.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        json_body: Option<&Value>,
    ) -> Result<Vec<u8>, FaultApiError> {
        let url = self.url(segments)?;
        let mut request = self.http.request(method, url);
        if let Some(json_body) = json_body {
            request = request.json(json_body);
        }
        let response = request.send().await.map_err(FaultApiError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(FaultApiError::Transport)?;
        if status.is_success() {
            Ok(body.to_vec())
        } else {
            Err(status_error(status, &body))
        }
    }

    /// The base URL with `segments` appended to its path.
    fn url(&self, segments: &[&str]) -> Result<Url, FaultApiError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| FaultApiError::InvalidUrl {
                url: self.base.to_string(),
                reason: "cannot append a path".to_owned(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }
}

/// Turns an error answer into [`FaultApiError::Status`], keeping the server's message.
fn status_error(status: StatusCode, body: &[u8]) -> FaultApiError {
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.error,
        Err(_) => {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no message").to_owned()
            } else {
                text
            }
        }
    };
    FaultApiError::Status {
        status: status.as_u16(),
        message,
    }
}

/// Decodes a successful answer's JSON body.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FaultApiError> {
    serde_json::from_slice(body).map_err(|err| {
        let text = String::from_utf8_lossy(body);
        FaultApiError::Decode(format!("{err} in {text:?}"))
    })
}

/// Reads `{"version": "..."}` or, from older Toxiproxy, the plain-text version.
fn parse_version(body: &[u8]) -> String {
    match serde_json::from_slice::<VersionBody>(body) {
        Ok(parsed) => parsed.version,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::testutil::{
        round_trip, start_echo, start_server, unused_addr, with_deadline,
    };
    use tokio::net::TcpStream;

    #[test]
    fn toxic_constructors_have_toxiproxy_shape() {
        let blackhole = serde_json::to_value(Toxic::blackhole("cut", DOWNSTREAM)).unwrap();
        assert_eq!(
            blackhole,
            json!({
                "name": "cut",
                "type": "timeout",
                "stream": "downstream",
                "toxicity": 1.0,
                "attributes": {"timeout": 0},
            })
        );
        let latency = serde_json::to_value(Toxic::latency("slow", UPSTREAM, 300, 20)).unwrap();
        assert_eq!(
            latency,
            json!({
                "name": "slow",
                "type": "latency",
                "stream": "upstream",
                "toxicity": 1.0,
                "attributes": {"latency": 300, "jitter": 20},
            })
        );
    }

    #[test]
    fn toxic_defaults_when_decoding() {
        let toxic: Toxic = serde_json::from_str(r#"{"name":"n","type":"noop"}"#).unwrap();
        assert_eq!(toxic.stream, "downstream");
        assert_eq!(toxic.toxicity, 1.0);
        assert_eq!(toxic.attributes, json!({}));
    }

    #[test]
    fn version_accepts_json_and_plain_text() {
        assert_eq!(parse_version(br#"{"version":"2.9.0"}"#), "2.9.0");
        assert_eq!(parse_version(b"2.1.4\n"), "2.1.4");
    }

    #[test]
    fn error_answers_keep_status_and_message() {
        let err = status_error(
            StatusCode::NOT_FOUND,
            br#"{"error":"proxy not found","status":404}"#,
        );
        assert_eq!(err.status(), Some(404));
        assert!(
            matches!(&err, FaultApiError::Status { message, .. } if message == "proxy not found"),
            "{err:?}"
        );
        // A non-JSON error body (e.g. from a router) is kept as text.
        let err = status_error(StatusCode::METHOD_NOT_ALLOWED, b"405 method not allowed\n");
        assert!(
            matches!(&err, FaultApiError::Status { status: 405, message } if message == "405 method not allowed"),
            "{err:?}"
        );
        // An empty body falls back to the reason phrase.
        let err = status_error(StatusCode::BAD_GATEWAY, b"");
        assert!(
            matches!(&err, FaultApiError::Status { message, .. } if message == "Bad Gateway"),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_unusable_base_urls() {
        for bad in ["not a url", "mailto:ops@example.com", "ftp://127.0.0.1:21"] {
            let err = ToxiproxyClient::new(bad).unwrap_err();
            assert!(
                matches!(err, FaultApiError::InvalidUrl { .. }),
                "{bad}: {err:?}"
            );
        }
        // A base with a path keeps it: calls go below it.
        let client = ToxiproxyClient::new("http://127.0.0.1:8474/api/").unwrap();
        let url = client.url(&["proxies", "a b/c"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8474/api/proxies/a%20b%2Fc");
    }

    #[tokio::test]
    async fn server_errors_come_back_typed() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let echo = start_echo().await;

            let err = api.proxy("missing").await.unwrap_err();
            assert_eq!(err.status(), Some(404));
            assert!(err.to_string().contains("proxy not found"), "{err}");

            api.create_proxy("p", "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap();
            let err = api
                .create_proxy("p", "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, FaultApiError::Status { status: 409, message } if message == "proxy already exists"),
                "{err:?}"
            );

            let bogus = Toxic::new("x", "gremlins", DOWNSTREAM, json!({}));
            let err = api.add_toxic("p", &bogus).await.unwrap_err();
            assert!(
                matches!(&err, FaultApiError::Status { status: 400, message } if message == "invalid toxic type"),
                "{err:?}"
            );

            let err = api.remove_toxic("p", "nope").await.unwrap_err();
            assert!(
                matches!(&err, FaultApiError::Status { status: 404, message } if message == "toxic not found"),
                "{err:?}"
            );
            let err = api.toxics("missing").await.unwrap_err();
            assert_eq!(err.status(), Some(404));
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn no_server_is_a_transport_error() {
        with_deadline(async {
            let addr = unused_addr();
            let api = ToxiproxyClient::new(&format!("http://{addr}")).unwrap();
            let err = api.version().await.unwrap_err();
            assert!(matches!(err, FaultApiError::Transport(_)), "{err:?}");
            assert_eq!(err.status(), None);
        })
        .await;
    }

    #[tokio::test]
    async fn every_call_round_trips_through_the_server() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let echo = start_echo().await;

            assert_eq!(
                api.version().await.unwrap(),
                format!("{}-tether", env!("CARGO_PKG_VERSION"))
            );
            assert!(api.proxies().await.unwrap().is_empty());

            // Names with spaces and slashes survive the trip (percent-encoding).
            let name = "edge rack/xds";
            let created = api
                .create_proxy(name, "127.0.0.1:0", &echo.to_string())
                .await
                .unwrap();
            assert_eq!(created.name, name);
            assert!(created.enabled);
            assert!(!created.listen.ends_with(":0"), "{}", created.listen);
            assert_eq!(api.proxy(name).await.unwrap(), created);
            let all = api.proxies().await.unwrap();
            assert_eq!(all.keys().collect::<Vec<_>>(), vec![name]);

            let mut conn = TcpStream::connect(&created.listen).await.unwrap();
            round_trip(&mut conn, b"hello").await.unwrap();

            let added = api
                .add_toxic(name, &Toxic::latency("slow", DOWNSTREAM, 50, 0))
                .await
                .unwrap();
            assert_eq!(added, Toxic::latency("slow", DOWNSTREAM, 50, 0));
            let mut changed = added.clone();
            changed.attributes = json!({"latency": 60, "jitter": 0});
            changed.toxicity = 0.5;
            assert_eq!(api.update_toxic(name, &changed).await.unwrap(), changed);
            assert_eq!(api.toxics(name).await.unwrap(), vec![changed.clone()]);
            assert_eq!(api.proxy(name).await.unwrap().toxics, vec![changed]);

            api.remove_toxic(name, "slow").await.unwrap();
            assert!(api.toxics(name).await.unwrap().is_empty());

            let disabled = api.set_enabled(name, false).await.unwrap();
            assert!(!disabled.enabled);
            api.reset().await.unwrap();
            assert!(api.proxy(name).await.unwrap().enabled);

            api.delete_proxy(name).await.unwrap();
            assert_eq!(api.proxy(name).await.unwrap_err().status(), Some(404));
            server.stop().await;
        })
        .await;
    }
}
