//! Load results on the timeline: a second of open-loop load ([`LoadSecond`], with its
//! latency as an HDR histogram), a whole run of the generator ([`LoadRun`]), and
//! histograms as text.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The figures of one run of the load generator (`tether load --json` prints them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadRun {
    /// `closed` or `open`.
    pub mode: String,
    /// `http1`, `h2c` or `grpc`.
    pub protocol: String,
    /// Connections.
    pub connections: usize,
    /// Streams per connection.
    pub streams: usize,
    /// The open-loop rate asked for.
    pub rate: Option<f64>,
    /// Requests that finished.
    pub requests: u64,
    /// Successful ones.
    pub ok: u64,
    /// Failed ones by kind.
    pub errors: BTreeMap<String, u64>,
    /// Requests the schedule asked for that were never sent.
    pub unsent: u64,
    /// Seconds from the first send to the last answer.
    pub elapsed_s: f64,
    /// Finished requests per second.
    pub requests_per_second: f64,
    /// Response time: from each request's intended send time (open loop; closed loop,
    /// its send) to its answer.
    #[serde(alias = "latency")]
    pub response: Percentiles,
    /// Service time: from each request's actual send to its answer.
    #[serde(default)]
    pub service: Percentiles,
    /// The generator's own scheduling delay per request (open loop).
    pub lag: Percentiles,
    /// How late the last requests went out after their intended time (open loop), ms.
    pub behind_ms: u64,
    /// CPU seconds the generator used.
    pub cpu_s: f64,
    /// CPU milliseconds per 1,000 requests.
    pub cpu_ms_per_1000: f64,
    /// Share of its threads' time the generator was on CPU (0-1).
    pub cpu_share: f64,
    /// Are the throughput figures the target's (not the generator's) limit?
    pub valid: bool,
    /// Why not, when not.
    pub invalid_because: Vec<String>,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

impl Percentiles {
    /// The percentiles of `h`.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
        Percentiles {
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// `h` as text: its V2 serialization in base64.
pub fn encode_histogram(h: &hdrhistogram::Histogram<u64>) -> Option<String> {
    use base64::Engine;
    use hdrhistogram::serialization::Serializer;
    let mut bytes = Vec::new();
    hdrhistogram::serialization::V2Serializer::new()
        .serialize(h, &mut bytes)
        .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram [`encode_histogram`] wrote, if `text` is one.
pub fn decode_histogram(text: &str) -> Option<hdrhistogram::Histogram<u64>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()
}

/// Which of a second's histograms: the response time (from the intended send time), the
/// service time (from the actual send) or the generator's own lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// From each request's intended send time: what a user waits.
    Response,
    /// From when each request was actually sent: what the target took.
    Service,
    /// How late the generator sent each request (open loop).
    Lag,
}

impl Latency {
    /// That histogram of `second`, as recorded (older timelines have no service or lag).
    pub fn of(self, second: &LoadSecond) -> Option<&str> {
        match self {
            Latency::Response => second.latency_hdr.as_deref(),
            Latency::Service => second.service_hdr.as_deref(),
            Latency::Lag => second.lag_hdr.as_deref(),
        }
    }
}

/// The response times of `seconds` merged without loss (those recorded with a histogram).
pub fn merge_latency<'a>(
    seconds: impl IntoIterator<Item = &'a LoadSecond>,
) -> hdrhistogram::Histogram<u64> {
    merge_histograms(seconds, Latency::Response)
}

/// A latency histogram in microseconds, 3 significant digits. It starts small and grows
/// to the largest value recorded (a second of millisecond answers needs a few tens of
/// KB, not the 190 KB an hour's range would take up front).
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    let mut h = hdrhistogram::Histogram::new_with_bounds(1, 2, 3).expect("valid histogram bounds");
    h.auto(true);
    h
}

/// One of the histograms of `seconds` merged without loss.
pub fn merge_histograms<'a>(
    seconds: impl IntoIterator<Item = &'a LoadSecond>,
    which: Latency,
) -> hdrhistogram::Histogram<u64> {
    let mut all = histogram();
    for h in seconds
        .into_iter()
        .filter_map(|s| which.of(s).and_then(decode_histogram))
    {
        let _ = all.add(&h);
    }
    all
}

/// Results of the requests whose intended send time fell in one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadSecond {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// Failed requests by kind (`timeout`, `connect`, `reset`, `status_5xx`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Successful answers by the service version that served them.
    pub served_by: BTreeMap<String, u64>,
    /// Response time percentiles in microseconds, measured from the intended send time.
    pub p50_us: u64,
    /// 99th percentile response time in microseconds.
    pub p99_us: u64,
    /// Largest response time in microseconds.
    pub max_us: u64,
    /// The second's response times as an HDR histogram (V2 serialization, base64), so
    /// seconds merge without loss into phase and run figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_hdr: Option<String>,
    /// Service time (from each request's actual send) median, in microseconds.
    #[serde(default)]
    pub service_p50_us: u64,
    /// Service time 99th percentile, in microseconds.
    #[serde(default)]
    pub service_p99_us: u64,
    /// The second's service times as an HDR histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_hdr: Option<String>,
    /// The generator's lag per request as an HDR histogram (open loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_hdr: Option<String>,
}
