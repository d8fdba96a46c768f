//! The names of the figures checks measure: the checks write them, reports and
//! comparisons read them, all through these constants.

use std::fmt::Display;

/// A family of figures named `<prefix><key>`: one per sidecar, change, step or
/// percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyed(&'static str);

impl Keyed {
    /// The figure of `key`.
    pub fn of(self, key: impl Display) -> String {
        format!("{}{key}", self.0)
    }

    /// The key of a figure of this family, if `name` is one.
    pub fn key(self, name: &str) -> Option<&str> {
        name.strip_prefix(self.0)
    }
}

/// Share of requests that succeeded (`outpost_traffic_flows`).
pub const SUCCESS_RATIO: &str = "success_ratio";
/// Requests sent in the phase.
pub const REQUESTS: &str = "requests";
/// The phase's latency percentiles (`p50`, `p99`, `p99.9`).
pub const LATENCY_MS: Keyed = Keyed("latency_ms.");
/// When each outpost sidecar noticed the link went silent (`config_frozen`).
pub const DISCONNECT_NOTICED_MS: Keyed = Keyed("disconnect_noticed_ms.");
/// From the heal to the change in the load's sidecar's config.
pub const CONFIG_APPLIED_MS: &str = "config_applied_ms";
/// From the heal to the change's target serving the traffic.
pub const TRAFFIC_SWITCHED_MS: &str = "traffic_switched_ms";
/// From the heal to each outpost sidecar's ACK of its newest config.
pub const RECONVERGENCE_MS: Keyed = Keyed("reconvergence_ms.");
/// Reconvergence across sidecars (`min`, `p50`, `max`).
pub const RECONVERGENCE_SPREAD_MS: Keyed = Keyed("reconvergence_spread_ms.");
/// From the partition to each sidecar noticing it (`partition_noticed`).
pub const NOTICED_MS: Keyed = Keyed("noticed_ms.");
/// Propagation over every ACK (`p50`, `p99`, `max`).
pub const PROPAGATION_MS: Keyed = Keyed("propagation_ms.");
/// The slowest ACK of each change, by config version (`v2`, ...).
pub const PROPAGATION_MAX_MS: Keyed = Keyed("propagation_ms.max.");
/// The control plane's fan-out: from a change to its last push of the change's routes to
/// an affected sidecar, over the changes (`p50`, `max`).
pub const PROPAGATION_FAN_OUT_MS: Keyed = Keyed("propagation_fan_out_ms.");
/// How many ACKs propagation judged.
pub const PROPAGATION_ACKS: &str = "propagation.acks";
/// Closed-loop throughput (`direct`, `proxied`).
pub const THROUGHPUT: Keyed = Keyed("throughput.");
/// Throughput through the sidecar as a share of the direct one.
pub const THROUGHPUT_RATIO: &str = "throughput_ratio";
/// Latency the sidecar adds (`p50`, `p99`, `p99.9`).
pub const ADDED_LATENCY_MS: Keyed = Keyed("added_latency_ms.");
/// Share of goose journey steps that succeeded.
pub const JOURNEYS_SUCCESS_RATIO: &str = "journeys.success_ratio";
/// From the heal to each restarted sidecar being ready.
pub const READY_AFTER_HEAL_MS: Keyed = Keyed("ready_after_heal_ms.");
/// How long each restarted sidecar was seen not ready before the heal.
pub const NOT_READY_MS: Keyed = Keyed("not_ready_ms.");

/// Share of one journey step (`front`, `front-to-back`) that succeeded.
pub fn journey_step_success(step: &str) -> String {
    format!("journeys.{step}.success_ratio")
}

/// Each part's memory growth, bytes per hour, from a straight-line fit (`memory_drift`).
pub const MEMORY_DRIFT: Keyed = Keyed("memory_drift_bytes_per_hour.");
/// Each part's memory at its last sample, bytes.
pub const MEMORY_BYTES: Keyed = Keyed("memory_bytes.");
