//! Everything that can happen in a run, as the timeline records it.

use super::load::{LoadRun, LoadSecond};
use crate::plan::{Disruption, Draw};
use serde::{Deserialize, Serialize};

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
    /// A soak's cycle began.
    CycleStarted {
        /// Its number, from 1.
        cycle: u32,
        /// What it drew, a line each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        draws: Vec<String>,
    },
    /// A soak's cycle was over.
    CycleEnded {
        /// Its number.
        cycle: u32,
    },
    /// A process's resident memory (the control plane's, tether's own).
    ProcessMemory {
        /// Which process: `control-plane` or `tether`.
        part: String,
        /// Resident set size, bytes.
        rss_bytes: u64,
    },
    /// A phase of the suite was over (its faults taken off).
    PhaseEnded {
        /// The phase name from the suite.
        phase: String,
    },
    /// Each sidecar's admin state was saved at the end of a phase: `config_dump.json`
    /// (with EDS), `clusters.txt` and `stats.txt` for every sidecar that answered.
    SidecarsDumped {
        /// The phase that ended.
        phase: String,
        /// The folder, relative to the run folder (`sidecars/<phase>`).
        dir: String,
        /// The sidecars saved (those that did not answer are left out).
        sidecars: Vec<String>,
    },
    /// A disruption was put on: a link fault, a container fault, the control plane
    /// killed. On the timeline as `link` (what it acts on: `xds`, `sidecar/<node>`,
    /// `control_plane`) and `fault` (as the suite writes it).
    FaultApplied {
        /// The disruption.
        #[serde(flatten)]
        disruption: Disruption,
        /// What was set to make it: each toxic with its attributes on each fault
        /// proxy, or the packet link's `tc netem` / partition settings.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        applied: Vec<String>,
        /// How a report draws its window.
        draw: Draw,
    },
    /// A disruption was taken off.
    FaultRemoved {
        /// The disruption.
        #[serde(flatten)]
        disruption: Disruption,
    },
    /// The interpreter started load (or a measurement) that runs on its own.
    LoadStarted {
        /// Which.
        load: LoadKind,
        /// For how long, in ms.
        duration_ms: u64,
    },
    /// The suite asked the control plane for a mesh change (recorded at the time it
    /// was asked, so everything it causes comes after it).
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
    /// The clock of a part on another machine against the harness's, estimated from the
    /// round trip of a clock request (the shortest of several): its events are placed on
    /// the timeline `offset_us` earlier than its clock says.
    ClockOffset {
        /// Which part: `control-plane`.
        part: String,
        /// Its clock minus the harness's, µs.
        offset_us: i64,
        /// Half the round trip of the best reading: the true offset is within this, µs.
        uncertainty_us: u64,
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
        /// `server.memory_allocated`: bytes its allocator has handed out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memory_allocated: Option<u64>,
        /// `server.memory_heap_size`: bytes its allocator holds from the system.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memory_heap: Option<u64>,
        /// Config updates it rejected (NACKed) so far, over its CDS, LDS and RDS.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        updates_rejected: Option<u64>,
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

/// The kinds of load the interpreter starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// tether's open-loop generator through the outpost.
    HotPath,
    /// goose user journeys.
    Journeys,
    /// A proxy-overhead measurement of a node's sidecar.
    Overhead {
        /// The virtual node.
        node: String,
    },
}
