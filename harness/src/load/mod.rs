//! The load generator: requests at a constant rate through a sidecar (open loop).
//!
//! Each request has an intended send time on a fixed schedule, and its latency is measured
//! from that time, not from when it was actually sent, so a stall shows up as latency
//! (no coordinated omission). Results are grouped by the second of their intended send time
//! and recorded on the timeline as [`LoadSecond`] entries.

use crate::service::SERVED_BY;
use crate::timeline::{Event, LoadSecond, Timeline};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What load to drive.
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

/// How one request ended.
#[derive(Debug, Clone)]
struct Outcome {
    /// Intended send time, ms since the timeline's start.
    intended_ms: u64,
    latency_us: u64,
    result: Result<Option<String>, &'static str>,
}

/// Drive `spec` until its duration is over or `stop` is cancelled; record every second
/// on `timeline`. Returns when all requests have finished (each within its timeout).
pub async fn run(spec: LoadSpec, timeline: Timeline, stop: CancellationToken) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(spec.timeout));
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let (tx, rx) = mpsc::unbounded_channel();
    let aggregator = tokio::spawn(aggregate(rx, timeline.clone()));

    let interval = Duration::from_secs_f64(1.0 / spec.rate.max(1) as f64);
    let total = (spec.duration.as_secs_f64() * spec.rate as f64).ceil() as u64;
    let start = Instant::now();
    let start_ms = timeline.elapsed_ms();
    let uri = format!("http://{}/", spec.target);
    for i in 0..total {
        let intended = start + interval.mul_f64(i as f64);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(intended) => {}
        }
        let intended_ms = start_ms + (intended - start).as_millis() as u64;
        let _ = tx.send(Msg::Dispatched(intended_ms / 1000));
        let request = hyper::Request::get(uri.as_str())
            .header(hyper::header::HOST, spec.host.as_str())
            .body(Empty::new());
        let (client, tx, timeout) = (client.clone(), tx.clone(), spec.timeout);
        tokio::spawn(async move {
            let result = match request {
                Err(_) => Err("request"),
                Ok(request) => send(&client, request, timeout).await,
            };
            let latency_us = intended.elapsed().as_micros() as u64;
            let _ = tx.send(Msg::Done(Outcome {
                intended_ms,
                latency_us,
                result,
            }));
        });
    }
    drop(tx);
    let _ = aggregator.await;
}

async fn send(
    client: &Client<HttpConnector, Empty<Bytes>>,
    request: hyper::Request<Empty<Bytes>>,
    timeout: Duration,
) -> Result<Option<String>, &'static str> {
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| if e.is_connect() { "connect" } else { "reset" })?;
        let status = response.status();
        let served_by = response
            .headers()
            .get(SERVED_BY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Read the whole body so the connection can be reused.
        response.into_body().collect().await.map_err(|_| "reset")?;
        match status.as_u16() {
            200..=299 => Ok(served_by),
            500..=599 => Err("status_5xx"),
            400..=499 => Err("status_4xx"),
            _ => Err("status_other"),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err("timeout"))
}

/// What the sender tells the aggregator.
enum Msg {
    /// A request intended in this second (ms since the timeline start / 1000) was sent.
    Dispatched(u64),
    /// A request finished.
    Done(Outcome),
}

/// Results of one second so far, and how many of its requests were sent.
struct Pending {
    second: LoadSecond,
    latency: Histogram<u64>,
    dispatched: u64,
}

/// Group outcomes by the second of their intended send time; record each second as soon
/// as every request sent in it has finished and the sender has moved past it.
async fn aggregate(mut rx: mpsc::UnboundedReceiver<Msg>, timeline: Timeline) {
    let mut seconds: BTreeMap<u64, Pending> = BTreeMap::new();
    let mut sending = 0;
    let pending = || Pending {
        second: LoadSecond::default(),
        latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
        dispatched: 0,
    };
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Dispatched(sec) => {
                sending = sending.max(sec);
                seconds.entry(sec).or_insert_with(pending).dispatched += 1;
            }
            Msg::Done(o) => {
                let p = seconds.entry(o.intended_ms / 1000).or_insert_with(pending);
                p.second.sent += 1;
                let _ = p.latency.record(o.latency_us.max(1));
                match o.result {
                    Ok(served_by) => {
                        p.second.ok += 1;
                        let by = served_by.unwrap_or_else(|| "unknown".into());
                        *p.second.served_by.entry(by).or_default() += 1;
                    }
                    Err(kind) => *p.second.errors.entry(kind.to_string()).or_default() += 1,
                }
            }
        }
        while let Some(entry) = seconds.first_entry() {
            let done = *entry.key() < sending && entry.get().dispatched == entry.get().second.sent;
            if !done {
                break;
            }
            let (sec, p) = entry.remove_entry();
            flush(&timeline, sec, p);
        }
    }
    // The sender and every request are done: what is left is complete.
    for (sec, p) in seconds {
        flush(&timeline, sec, p);
    }
}

fn flush(timeline: &Timeline, sec: u64, p: Pending) {
    let mut s = p.second;
    s.p50_us = p.latency.value_at_quantile(0.5);
    s.p99_us = p.latency.value_at_quantile(0.99);
    s.max_us = p.latency.max();
    timeline.record_at(sec * 1000, Event::LoadSecond(s));
}
