//! Toxic types and attributes as the API takes and shows them, and the typed
//! toxics the relay runs.

use super::api::ApiError;
use crate::faults::client::Toxic;
use crate::faults::relay::{Effect, RelayToxic};
use hyper::StatusCode;
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// The toxic types tether runs, with Toxiproxy's names.
pub(super) const TOXIC_TYPES: [&str; 8] = [
    "latency",
    "timeout",
    "bandwidth",
    "slow_close",
    "slicer",
    "limit_data",
    "noop",
    "reset_peer",
];

/// Times are capped here (about 35 years) so no deadline can overflow.
const MAX_MILLIS: u64 = 1 << 40;

/// A toxic's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    /// Client to server.
    Upstream,
    /// Server to client.
    Downstream,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        })
    }
}

/// A toxic's type and attributes, as the API takes them (times in
/// milliseconds, `slicer`'s `delay` in microseconds, `rate` in KB/s).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub(super) enum Kind {
    /// Every chunk held `latency` ± `jitter` ms.
    Latency {
        latency: u64,
        #[serde(default)]
        jitter: u64,
    },
    /// Data dropped; the connection closed after `timeout` ms (0: never).
    Timeout { timeout: u64 },
    /// At most `rate` KB/s (0: unlimited).
    Bandwidth { rate: u64 },
    /// The close passed on `delay` ms late.
    SlowClose { delay: u64 },
    /// Slices of `average_size` ± `size_variation` bytes, `delay` µs apart.
    Slicer {
        average_size: u64,
        #[serde(default)]
        size_variation: u64,
        #[serde(default)]
        delay: u64,
    },
    /// The connection closed after `bytes` bytes on the stream.
    LimitData { bytes: u64 },
    /// Nothing.
    Noop,
    /// A reset `timeout` ms after the first data.
    ResetPeer {
        #[serde(default)]
        timeout: u64,
    },
}

/// Parses Toxiproxy's `stream` (any case).
pub(super) fn parse_stream(stream: &str) -> Result<Stream, ApiError> {
    match stream.to_ascii_lowercase().as_str() {
        "downstream" => Ok(Stream::Downstream),
        "upstream" => Ok(Stream::Upstream),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "stream was invalid, can be either upstream or downstream",
        )),
    }
}

/// A given toxicity, or `default`. It must be finite (JSON cannot show anything else).
pub(super) fn parse_toxicity(toxicity: Option<f32>, default: f32) -> Result<f32, ApiError> {
    match toxicity {
        None => Ok(default),
        Some(toxicity) if toxicity.is_finite() => Ok(toxicity),
        Some(_) => Err(ApiError::bad_body("toxicity out of range")),
    }
}

/// Parses a toxic `type` and its `attributes` (a JSON object or null);
/// missing optional attributes take their defaults.
pub(super) fn parse_kind(kind: &str, attributes: &Value) -> Result<Kind, ApiError> {
    if !TOXIC_TYPES.contains(&kind) {
        return Err(ApiError::invalid_toxic_type());
    }
    if kind == "noop" {
        return Ok(Kind::Noop);
    }
    let attributes = match attributes {
        Value::Null => json!({}),
        Value::Object(_) => attributes.clone(),
        _ => return Err(ApiError::bad_body("attributes must be an object")),
    };
    serde_json::from_value(json!({ "type": kind, "attributes": attributes }))
        .map_err(ApiError::bad_body)
}

/// The attributes of `kind` as the API shows them: every field, defaults filled in.
pub(super) fn canonical_attributes(kind: &Kind) -> Value {
    match serde_json::to_value(kind) {
        Ok(Value::Object(mut tagged)) => tagged.remove("attributes").unwrap_or_else(|| json!({})),
        _ => json!({}),
    }
}

/// What the relay does for `kind`; `None` when it does nothing (`noop`, and
/// `bandwidth` with rate 0, which Toxiproxy treats as unlimited).
///
/// A `slicer` gets an `average_size` of at least 1 and a `size_variation`
/// below it, so it can neither spin on empty slices nor underflow.
pub(super) fn effect(kind: Kind) -> Option<Effect> {
    let millis = |ms: u64| Duration::from_millis(ms.min(MAX_MILLIS));
    Some(match kind {
        Kind::Noop | Kind::Bandwidth { rate: 0 } => return None,
        Kind::Latency { latency, jitter } => Effect::Latency {
            latency: millis(latency),
            jitter: millis(jitter),
        },
        // `rate` KB/s is `rate` bytes per millisecond.
        Kind::Bandwidth { rate } => Effect::Bandwidth { bytes_per_ms: rate },
        Kind::SlowClose { delay } => Effect::SlowClose {
            delay: millis(delay),
        },
        Kind::Timeout { timeout } => Effect::Timeout {
            close_after: (timeout > 0).then(|| millis(timeout)),
        },
        Kind::ResetPeer { timeout } => Effect::ResetPeer {
            timeout: millis(timeout),
        },
        Kind::Slicer {
            average_size,
            size_variation,
            delay,
        } => {
            let average_size = average_size.max(1);
            Effect::Slicer {
                average_size,
                size_variation: size_variation.min(average_size - 1),
                delay: Duration::from_micros(delay.min(MAX_MILLIS.saturating_mul(1000))),
            }
        }
        Kind::LimitData { bytes } => Effect::LimitData { bytes },
    })
}

/// `toxic` as the relay runs it, with its `revision`; `None` if it does nothing.
pub(super) fn relay_toxic(toxic: &Toxic, revision: u64) -> Option<RelayToxic> {
    let kind = parse_kind(&toxic.kind, &toxic.attributes).ok()?;
    Some(RelayToxic {
        name: toxic.name.clone(),
        upstream: toxic.stream == Stream::Upstream.to_string(),
        effect: effect(kind)?,
        toxicity: toxic.toxicity,
        revision,
    })
}
