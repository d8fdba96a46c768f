//! The timeline: one clock, an append-only list of everything that happened in a run.
//!
//! Every part of a run writes here (faults, mesh changes, xDS pushes and ACKs, per-second
//! load results, Envoy samples) and checks read only from here. Entries are streamed to
//! `timeline.jsonl` as they are recorded, so a killed run still leaves what it saw.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the UNIX epoch: the one clock every process of a run shares.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One entry: when it happened (ms since the run started) and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the start of the run.
    pub t_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What an xDS message on the timeline was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XdsKind {
    /// Envoy subscribed to a type (first request on a stream, e.g. after a reconnect).
    Request,
    /// The control plane sent a response.
    Push,
    /// Envoy accepted a response.
    Ack,
    /// Envoy rejected a response.
    Nack,
}

/// Everything that can happen in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A phase of the suite began.
    PhaseStarted {
        /// The phase name from the suite.
        phase: String,
        /// How long the phase lasts, in ms.
        duration_ms: u64,
    },
    /// A fault was put on a link.
    FaultApplied {
        /// The link name from the suite (`xds`, `data`), or the part a container fault
        /// acts on (`fault-proxy`, `sidecar/<node>`, ...).
        link: String,
        /// The fault, as the suite named it (`blackhole`, `pause`, `restart`, ...).
        fault: String,
        /// What was set to make it: each toxic with its attributes on each fault
        /// proxy, or the packet link's `tc netem` / partition settings.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        applied: Vec<String>,
    },
    /// A fault was taken off a link.
    FaultRemoved {
        /// The link name.
        link: String,
        /// The fault, as the suite named it.
        fault: String,
    },
    /// The suite asked the control plane for a mesh change.
    MeshChange {
        /// What changed, in words.
        description: String,
        /// The config version the change produced.
        version: String,
        /// The virtual node the change sends most traffic to, if it routes traffic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The virtual nodes whose sidecars' config the change alters.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        affects: Vec<String>,
    },
    /// An xDS push, ACK or NACK, as the control plane recorded it.
    Xds {
        /// Envoy node id.
        node: String,
        /// Short resource type (`cds`, `eds`, `lds`, `rds`).
        type_name: String,
        /// Request, push, ACK or NACK.
        xds: XdsKind,
        /// The version pushed or acknowledged.
        version: String,
        /// Envoy's error text for a NACK.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// What an Envoy's admin endpoint reported at one moment.
    EnvoySample {
        /// The virtual node the Envoy serves.
        node: String,
        /// `control_plane.connected_state` (None when the admin endpoint did not answer).
        connected: Option<bool>,
        /// The version of the route configuration it serves.
        route_version: Option<String>,
        /// The version of the clusters it serves.
        cluster_version: Option<String>,
        /// The version of the listeners it serves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listener_version: Option<String>,
        /// HTTP/2 keepalive timeouts on its xDS connection so far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        xds_keepalive_timeouts: Option<u64>,
        /// `/ready` said LIVE: it has its initial config and serves (None when the
        /// admin endpoint did not answer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ready: Option<bool>,
    },
    /// One second of load results.
    LoadSecond(LoadSecond),
    /// The proxy overhead of a node's sidecar: the same closed-loop load straight at the
    /// node's app and through its sidecar.
    ProxyOverhead {
        /// The virtual node.
        node: String,
        /// Straight at the app.
        direct: Box<LoadRun>,
        /// Through the sidecar's ingress.
        proxied: Box<LoadRun>,
    },
    /// One step of a goose user journey finished.
    JourneyStep {
        /// `front` or `front-to-back`.
        step: String,
        /// goose's verdict: a 2xx answer.
        ok: bool,
        /// The HTTP status (0: no answer).
        status: u16,
        /// goose's response time, ms.
        latency_ms: u64,
        /// Who answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        served_by: Option<String>,
        /// Who served the front's call to the back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backend: Option<String>,
    },
    /// The run ended (normally or not); a timeline without it is incomplete.
    RunEnded {
        /// Why it ended.
        reason: String,
    },
}

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
    /// Latency (open loop: from each intended send time).
    pub latency: Percentiles,
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

/// The latencies of `seconds` merged without loss (those recorded with a histogram).
pub fn merge_latency<'a>(
    seconds: impl IntoIterator<Item = &'a LoadSecond>,
) -> hdrhistogram::Histogram<u64> {
    let mut all = hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .expect("valid histogram bounds");
    for h in seconds
        .into_iter()
        .filter_map(|s| s.latency_hdr.as_deref().and_then(decode_histogram))
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
    /// Latency percentiles in microseconds, measured from the intended send time.
    pub p50_us: u64,
    /// 99th percentile latency in microseconds.
    pub p99_us: u64,
    /// Largest latency in microseconds.
    pub max_us: u64,
    /// The second's latencies as an HDR histogram (V2 serialization, base64), so seconds
    /// merge without loss into phase and run figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_hdr: Option<String>,
}

/// An append-only timeline shared by every part of a run, streamed to disk as it grows.
#[derive(Clone)]
pub struct Timeline {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    start_unix_ms: u64,
    entries: Vec<Entry>,
    sink: Option<BufWriter<File>>,
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline").finish_non_exhaustive()
    }
}

impl Timeline {
    /// A timeline whose clock starts now, kept in memory only.
    pub fn new() -> Self {
        Self::starting_at(now_unix_ms())
    }

    /// A timeline whose clock started at `start_unix_ms`.
    pub fn starting_at(start_unix_ms: u64) -> Self {
        Timeline {
            inner: Arc::new(Mutex::new(Inner {
                start_unix_ms,
                entries: Vec::new(),
                sink: None,
            })),
        }
    }

    /// Also write every entry, as it is recorded, to a JSONL file at `path`.
    pub fn stream_to(&self, path: &Path) -> std::io::Result<()> {
        let file = BufWriter::new(File::create(path)?);
        self.lock().sink = Some(file);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave an entry half-written, so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The UNIX time (ms) the clock started at.
    pub fn start_unix_ms(&self) -> u64 {
        self.lock().start_unix_ms
    }

    /// Milliseconds since the start of the run.
    pub fn elapsed_ms(&self) -> u64 {
        now_unix_ms().saturating_sub(self.start_unix_ms())
    }

    /// Record an event that happens now.
    pub fn record(&self, event: Event) {
        let t_ms = self.elapsed_ms();
        self.record_at(t_ms, event);
    }

    /// Record an event that happened at a UNIX time (ms), as other processes report it.
    pub fn record_at_unix(&self, unix_ms: u64, event: Event) {
        let t_ms = unix_ms.saturating_sub(self.start_unix_ms());
        self.record_at(t_ms, event);
    }

    /// Record an event at `t_ms` since the start.
    pub fn record_at(&self, t_ms: u64, event: Event) {
        let entry = Entry { t_ms, event };
        let mut inner = self.lock();
        if let Some(sink) = inner.sink.as_mut() {
            // Losing the disk copy must not stop the run; the in-memory copy still holds it.
            let _ = serde_json::to_writer(&mut *sink, &entry);
            let _ = sink.write_all(b"\n");
            let _ = sink.flush();
        }
        inner.entries.push(entry);
    }

    /// A copy of every entry so far, in time order.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = self.lock().entries.clone();
        entries.sort_by_key(|e| e.t_ms);
        entries
    }

    /// Read a timeline back from a JSONL file written by [`Timeline::stream_to`]. A last
    /// line cut short (no newline after it: the writer was killed mid-line) is left out;
    /// any other bad line is an error naming `file:line:column`.
    pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Entry>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the timeline: {e}", path.display()))?;
        let mut entries = Vec::new();
        let lines: Vec<&str> = text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Entry>(line) {
                Ok(entry) => entries.push(entry),
                // Only the last line can lack its newline (split leaves it last).
                Err(_) if i + 1 == lines.len() => {}
                Err(e) => {
                    let message = e.to_string();
                    let suffix = format!(" at line {} column {}", e.line(), e.column());
                    anyhow::bail!(
                        "{}:{}:{}: {}",
                        path.display(),
                        i + 1,
                        e.column().max(1),
                        message.strip_suffix(&suffix).unwrap_or(&message)
                    );
                }
            }
        }
        entries.sort_by_key(|e| e.t_ms);
        Ok(entries)
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_entries_to_jsonl_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.jsonl");
        let timeline = Timeline::starting_at(1_000);
        timeline.stream_to(&path).unwrap();
        timeline.record_at_unix(
            3_500,
            Event::FaultApplied {
                link: "xds".into(),
                fault: "blackhole".into(),
                applied: vec!["xds: timeout downstream {\"timeout\":0}".into()],
            },
        );
        timeline.record_at(
            1_000,
            Event::PhaseStarted {
                phase: "baseline".into(),
                duration_ms: 5_000,
            },
        );
        let back = Timeline::read_jsonl(&path).unwrap();
        assert_eq!(back, timeline.entries());
        assert_eq!(back[0].t_ms, 1_000);
        assert_eq!(back[1].t_ms, 2_500);
    }

    #[test]
    fn a_line_cut_by_a_kill_is_left_out_and_a_bad_line_is_named_by_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.jsonl");
        let good = r#"{"t_ms":5,"kind":"run_ended","reason":"completed"}"#;
        std::fs::write(&path, format!("{good}\n{{\"t_ms\":7,\"kind\":\"pha")).unwrap();
        assert_eq!(Timeline::read_jsonl(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("{good}\n{{\"t_ms\": true}}\n{good}\n")).unwrap();
        let err = Timeline::read_jsonl(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:2:", path.display())), "{err}");
        assert!(!err.contains(" at line "), "{err}");
    }
}
