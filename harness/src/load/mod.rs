//! The load generator: tether's own, on tokio and hyper.
//!
//! [`engine`] is the loop (closed or open, stopping after a duration or a count, with
//! latency measured from each intended send time in the open loop); [`connection`]
//! speaks HTTP/1.1, h2c and gRPC; [`record`] keeps per-second HDR histograms and errors
//! by kind; [`standalone`] is `tether load URL`, with its saturation guard. [`run`] here
//! is the load a suite drives through a sidecar for its whole run, one timeline entry
//! ([`LoadSecond`](crate::timeline::LoadSecond)) per second of intended send time.

pub mod connection;
pub mod engine;
pub mod http1;
pub mod pacer;
pub mod record;
pub mod standalone;

use crate::timeline::{Event, Timeline};
use connection::{Protocol, Target};
use engine::{Config, Pace, Stop};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The share of a core a suite's load may spin to keep its schedule: a suite shares the
/// machine with its Envoys, so a little (at 400 requests/s, 125 µs early per request).
pub const SPIN: f64 = 0.05;

/// A suite's load.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where requests go (a sidecar's egress listener).
    pub target: SocketAddr,
    /// The `Host` header (the virtual service).
    pub host: String,
    /// Requests per second.
    pub rate: u32,
    /// How long to send for.
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Drive `spec` (open loop, HTTP/1.1) until its duration is over or `stop` is cancelled;
/// record every second on `timeline`. Returns when all requests have finished (each
/// within its timeout).
pub async fn run(spec: LoadSpec, timeline: Timeline, stop: CancellationToken) {
    // Enough connections that a request waiting out its timeout never delays the next
    // one due: each request fails or succeeds at its own time, as on a real client.
    let connections =
        ((f64::from(spec.rate) * spec.timeout.as_secs_f64()).ceil() as usize + 1).clamp(1, 1000);
    let config = Config {
        target: Target::new(spec.target, spec.host, "/"),
        protocol: Protocol::Http1,
        connections,
        streams: 1,
        pace: Pace::Open {
            rate: f64::from(spec.rate.max(1)),
        },
        stop: Stop::Duration(spec.duration),
        timeout: spec.timeout,
        spin: SPIN,
        blocking: false,
    };
    let origin = Instant::now() - Duration::from_millis(timeline.elapsed_ms());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, record::Second)>();
    let recorder = tokio::spawn(async move {
        while let Some((second, s)) = rx.recv().await {
            timeline.record_at(second * 1000, Event::LoadSecond(s.to_timeline()));
        }
    });
    engine::run(config, origin, Some(tx), stop).await;
    let _ = recorder.await;
}
