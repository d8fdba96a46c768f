//! The HTTP side of the API: request bodies, answers, errors and path decoding.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt::Display;

/// The largest request body we read.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// An API answer.
pub(super) type Answer = Response<Full<Bytes>>;

/// An error answer: `{"error": message, "status": status}`.
#[derive(Debug)]
pub(super) struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Toxiproxy's message, like `proxy not found`.
    pub message: String,
}

/// The JSON body of `POST /proxies`.
#[derive(serde::Deserialize)]
pub(super) struct CreateProxy {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub listen: String,
    #[serde(default)]
    pub upstream: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

/// Proxies are created enabled unless told otherwise.
fn enabled_by_default() -> bool {
    true
}

/// The JSON body of `POST /proxies/{proxy}`: absent fields stay as they are.
#[derive(serde::Deserialize)]
pub(super) struct UpdateProxy {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
}

/// The JSON body of `POST /proxies/{proxy}/toxics`.
#[derive(serde::Deserialize)]
pub(super) struct CreateToxic {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    pub stream: Option<String>,
    pub toxicity: Option<f32>,
    #[serde(default)]
    pub attributes: Value,
}

/// The JSON body of `POST /proxies/{proxy}/toxics/{toxic}`: given attributes
/// are merged over the current ones.
#[derive(serde::Deserialize)]
pub(super) struct UpdateToxic {
    pub toxicity: Option<f32>,
    pub attributes: Option<Value>,
}

/// Splits a request path into percent-decoded segments.
pub(super) fn path_segments(path: &str) -> Result<Vec<String>, ApiError> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_decode(segment)
                .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid path encoding"))
        })
        .collect()
}

/// Decodes `%XX` escapes; `None` for a broken escape or non-UTF-8 result.
pub(super) fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail.get(..2)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            decoded.push(first);
            rest = tail;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Reads a request body of at most [`MAX_BODY_BYTES`].
pub(super) async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => Err(ApiError::bad_body(err)),
    }
}

/// Decodes a JSON request body.
pub(super) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

/// `GET /version`.
pub(super) fn version() -> Answer {
    json_response(StatusCode::OK, &json!({ "version": super::VERSION }))
}

/// A JSON answer.
pub(super) fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Answer {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":"cannot encode the answer","status":500}"#.to_vec(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An empty 204 answer.
pub(super) fn no_content() -> Answer {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 `bad request body: ...`.
    pub fn bad_body(err: impl Display) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, format!("bad request body: {err}"))
    }

    /// 400 `missing required field: ...`.
    pub fn missing_field(field: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {field}"),
        )
    }

    /// 404 `proxy not found`.
    pub fn proxy_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "proxy not found")
    }

    /// 404 `toxic not found`.
    pub fn toxic_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "toxic not found")
    }

    /// 400 `invalid toxic type`.
    pub fn invalid_toxic_type() -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid toxic type")
    }

    /// 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The error as Toxiproxy answers it.
    pub fn into_response(self) -> Answer {
        let body = json!({ "error": self.message, "status": self.status.as_u16() });
        json_response(self.status, &body)
    }
}
