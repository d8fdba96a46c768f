//! The checks a suite asks for, their names, and the areas they are reported under.

use crate::source::{Bytes, Duration};
use marked_yaml::Spanned;
use serde::Deserialize;

/// A check and its bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Outpost traffic keeps flowing during a phase.
    OutpostTrafficFlows {
        /// The phase judged.
        phase: Spanned<String>,
        /// Smallest share of requests that must succeed (0-1).
        min_success_ratio: Spanned<f64>,
    },
    /// No outpost sidecar's served config changes during a phase.
    ConfigFrozen {
        /// The phase judged (usually the partition).
        phase: Spanned<String>,
    },
    /// A change made before a phase is applied, in config and in traffic, within a bound
    /// after the phase starts (and not before).
    ChangeAppliedAfterHeal {
        /// The heal phase.
        phase: Spanned<String>,
        /// Bound from the heal.
        within: Duration,
        /// Share of traffic the new target must serve once applied (default 0.95).
        #[serde(default)]
        min_share: Option<Spanned<f64>>,
    },
    /// Each listed outpost sidecar (all by default) notices a silent link within a bound
    /// of the phase start: a keepalive timeout on its xDS connection, or it reports
    /// itself disconnected.
    PartitionNoticed {
        /// The phase (with the partition) judged.
        phase: Spanned<String>,
        /// Bound from the phase start.
        within: Duration,
        /// The sidecars judged (default: every outpost sidecar).
        #[serde(default)]
        nodes: Vec<Spanned<String>>,
    },
    /// Each listed outpost sidecar never notices the partition during the phase: the
    /// hazard a TCP-terminating proxy creates for TCP keepalive.
    PartitionUnnoticed {
        /// The phase judged.
        phase: Spanned<String>,
        /// The sidecars judged (default: every outpost sidecar).
        #[serde(default)]
        nodes: Vec<Spanned<String>>,
    },
    /// The goose user journeys keep succeeding during a phase: at least
    /// `min_success_ratio` of their steps (front, and front calling back) get a 2xx.
    JourneysSucceed {
        /// The phase judged.
        phase: Spanned<String>,
        /// Smallest share of journey steps that must succeed (0-1).
        min_success_ratio: Spanned<f64>,
    },
    /// What a sidecar adds, measured by a phase's `measure_overhead`: through the
    /// sidecar, throughput stays within a ratio of the direct figure, p99 latency grows by
    /// at most a bound, and no request fails. Invalid when the generator was the limit.
    ProxyOverhead {
        /// The phase with the measurement.
        phase: Spanned<String>,
        /// Smallest throughput through the sidecar, as a share of the direct one (0-1).
        min_throughput_ratio: Spanned<f64>,
        /// Largest p99 latency the sidecar may add.
        max_added_p99: Duration,
    },
    /// No outpost sidecar loses its xDS connection during a phase (no keepalive timeout,
    /// never reported disconnected): a degraded link must stay usable.
    XdsStaysConnected {
        /// The phase judged.
        phase: Spanned<String>,
    },
    /// Every mesh change made during a phase reaches every sidecar it affects (an ACK of
    /// routes at least that new) within a bound; reports the delay distribution.
    Propagation {
        /// The phase whose changes are judged.
        phase: Spanned<String>,
        /// Bound from each change to each affected sidecar's ACK.
        within: Duration,
    },
    /// Every outpost sidecar reconnects and ACKs the latest config within a bound of the heal.
    Reconvergence {
        /// The heal phase.
        phase: Spanned<String>,
        /// Bound from the heal.
        within: Duration,
    },
    /// Each sidecar restarted during a phase (`restart: sidecar/<node>`, with the link
    /// cut) stays not ready from its restart to the end of the phase, as App Mesh's
    /// `initial_fetch_timeout` 0 makes it, and is ready within a bound after the phase.
    RestartWaitsForHeal {
        /// The phase with the cut link and the restart.
        phase: Spanned<String>,
        /// Bound from the end of the phase (the heal) to ready.
        within: Duration,
    },
    /// No part's memory grows faster than a bound: each Envoy's
    /// `server.memory_allocated`, the control plane's and tether's own resident memory,
    /// fitted with a straight line (least squares) after a warm-up. Judged over the
    /// phase, or over the whole run (a soak: every cycle together) without one.
    MemoryDrift {
        /// The phase judged (default: the whole run).
        #[serde(default)]
        phase: Option<Spanned<String>>,
        /// Largest growth per hour, e.g. `1MiB`.
        max_per_hour: Spanned<Bytes>,
        /// Samples before this time into the phase (or run) are left out (default: the
        /// soak's warm-up, else none).
        #[serde(default)]
        after: Option<Duration>,
        /// The parts judged (`envoy/<node>`, `control-plane`, `tether`; default all).
        #[serde(default)]
        parts: Vec<Spanned<String>>,
    },
}

impl Check {
    /// The check's name in reports.
    pub fn name(&self) -> CheckName {
        match self {
            Check::OutpostTrafficFlows { .. } => CheckName::OutpostTrafficFlows,
            Check::ConfigFrozen { .. } => CheckName::ConfigFrozen,
            Check::ChangeAppliedAfterHeal { .. } => CheckName::ChangeAppliedAfterHeal,
            Check::Reconvergence { .. } => CheckName::Reconvergence,
            Check::Propagation { .. } => CheckName::Propagation,
            Check::XdsStaysConnected { .. } => CheckName::XdsStaysConnected,
            Check::PartitionNoticed { .. } => CheckName::PartitionNoticed,
            Check::PartitionUnnoticed { .. } => CheckName::PartitionUnnoticed,
            Check::ProxyOverhead { .. } => CheckName::ProxyOverhead,
            Check::JourneysSucceed { .. } => CheckName::JourneysSucceed,
            Check::RestartWaitsForHeal { .. } => CheckName::RestartWaitsForHeal,
            Check::MemoryDrift { .. } => CheckName::MemoryDrift,
        }
    }

    /// The phase the check judges (none: the whole run).
    pub fn phase(&self) -> Option<&Spanned<String>> {
        let phase = match self {
            Check::OutpostTrafficFlows { phase, .. }
            | Check::ConfigFrozen { phase }
            | Check::ChangeAppliedAfterHeal { phase, .. }
            | Check::Reconvergence { phase, .. }
            | Check::Propagation { phase, .. }
            | Check::XdsStaysConnected { phase }
            | Check::PartitionNoticed { phase, .. }
            | Check::PartitionUnnoticed { phase, .. }
            | Check::ProxyOverhead { phase, .. }
            | Check::JourneysSucceed { phase, .. }
            | Check::RestartWaitsForHeal { phase, .. } => phase,
            Check::MemoryDrift { phase, .. } => return phase.as_ref(),
        };
        Some(phase)
    }
}

/// Every check's name, as reports, `summary.yaml` and comparisons show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckName {
    /// `outpost_traffic_flows`
    OutpostTrafficFlows,
    /// `config_frozen`
    ConfigFrozen,
    /// `change_applied_after_heal`
    ChangeAppliedAfterHeal,
    /// `reconvergence`
    Reconvergence,
    /// `propagation`
    Propagation,
    /// `xds_stays_connected`
    XdsStaysConnected,
    /// `partition_noticed`
    PartitionNoticed,
    /// `partition_unnoticed`
    PartitionUnnoticed,
    /// `proxy_overhead`
    ProxyOverhead,
    /// `memory_drift`
    MemoryDrift,
    /// `journeys_succeed`
    JourneysSucceed,
    /// `restart_waits_for_heal`
    RestartWaitsForHeal,
}

impl CheckName {
    /// Every check, in the order reports list them within an area.
    pub const EVERY: [CheckName; 12] = [
        CheckName::OutpostTrafficFlows,
        CheckName::ConfigFrozen,
        CheckName::JourneysSucceed,
        CheckName::Reconvergence,
        CheckName::ChangeAppliedAfterHeal,
        CheckName::RestartWaitsForHeal,
        CheckName::Propagation,
        CheckName::XdsStaysConnected,
        CheckName::PartitionNoticed,
        CheckName::PartitionUnnoticed,
        CheckName::ProxyOverhead,
        CheckName::MemoryDrift,
    ];

    /// The name as a suite writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::OutpostTrafficFlows => "outpost_traffic_flows",
            CheckName::ConfigFrozen => "config_frozen",
            CheckName::ChangeAppliedAfterHeal => "change_applied_after_heal",
            CheckName::Reconvergence => "reconvergence",
            CheckName::Propagation => "propagation",
            CheckName::XdsStaysConnected => "xds_stays_connected",
            CheckName::PartitionNoticed => "partition_noticed",
            CheckName::PartitionUnnoticed => "partition_unnoticed",
            CheckName::ProxyOverhead => "proxy_overhead",
            CheckName::JourneysSucceed => "journeys_succeed",
            CheckName::RestartWaitsForHeal => "restart_waits_for_heal",
            CheckName::MemoryDrift => "memory_drift",
        }
    }

    /// The check a verdict is of: verdict names are a check's name, or
    /// `<check>@<phase>` when a suite uses the check more than once.
    pub fn of_verdict(verdict: &str) -> Option<CheckName> {
        let base = CheckName::base_of(verdict);
        CheckName::EVERY.into_iter().find(|c| c.as_str() == base)
    }

    /// The check's name in a verdict's name: `<check>` of `<check>` or `<check>@<phase>`
    /// (a suite that uses a check more than once names its verdicts by phase).
    pub fn base_of(verdict: &str) -> &str {
        verdict.split('@').next().unwrap_or(verdict)
    }

    /// The area (report section, `summary.yaml` profile) the check belongs to.
    pub fn area(self) -> Area {
        match self {
            CheckName::OutpostTrafficFlows
            | CheckName::ConfigFrozen
            | CheckName::JourneysSucceed => Area::StaticStability,
            CheckName::Reconvergence
            | CheckName::ChangeAppliedAfterHeal
            | CheckName::RestartWaitsForHeal => Area::Reconvergence,
            CheckName::Propagation => Area::Propagation,
            CheckName::XdsStaysConnected
            | CheckName::PartitionNoticed
            | CheckName::PartitionUnnoticed => Area::LinkFaults,
            CheckName::ProxyOverhead => Area::Throughput,
            CheckName::MemoryDrift => Area::Soak,
        }
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The areas checks fall into: the sections of the report's verdict table and the
/// profiles of `summary.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// Outpost traffic keeps flowing on the last config while the link is down.
    StaticStability,
    /// After the heal every proxy catches up.
    Reconvergence,
    /// Mesh changes reach the proxies.
    Propagation,
    /// How the proxies notice and ride out faults on the link.
    LinkFaults,
    /// What a sidecar costs.
    Throughput,
    /// What a long run does to the parts: memory that grows.
    Soak,
    /// A verdict no known check gave (a hand-made or future result).
    Other,
}

impl Area {
    /// Every area, in report order.
    pub const EVERY: [Area; 7] = [
        Area::StaticStability,
        Area::Reconvergence,
        Area::Propagation,
        Area::LinkFaults,
        Area::Throughput,
        Area::Soak,
        Area::Other,
    ];

    /// The area a verdict (named `<check>` or `<check>@<phase>`) is listed under.
    pub fn of_verdict(verdict: &str) -> Area {
        CheckName::of_verdict(verdict).map_or(Area::Other, CheckName::area)
    }

    /// The area's title.
    pub fn title(self) -> &'static str {
        match self {
            Area::StaticStability => "Static stability",
            Area::Reconvergence => "Reconvergence",
            Area::Propagation => "Propagation",
            Area::LinkFaults => "Link faults",
            Area::Throughput => "Throughput",
            Area::Soak => "Soak",
            Area::Other => "Other",
        }
    }

    /// The area's profile name in `summary.yaml` (a ConformanceReport's profile, named
    /// as the Gateway API names its own: upper case with dashes).
    pub fn profile(self) -> &'static str {
        match self {
            Area::StaticStability => "STATIC-STABILITY",
            Area::Reconvergence => "RECONVERGENCE",
            Area::Propagation => "PROPAGATION",
            Area::LinkFaults => "LINK-FAULTS",
            Area::Throughput => "THROUGHPUT",
            Area::Soak => "SOAK",
            Area::Other => "OTHER",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_an_area_and_reads_back_from_its_verdict_name() {
        for check in CheckName::EVERY {
            assert_ne!(check.area(), Area::Other, "{check}");
            assert_eq!(CheckName::of_verdict(check.as_str()), Some(check));
            let repeated = format!("{check}@heal");
            assert_eq!(Area::of_verdict(&repeated), check.area());
        }
        assert_eq!(Area::of_verdict("no_such_check"), Area::Other);
        assert_eq!(
            Area::of_verdict("restart_waits_for_heal"),
            Area::Reconvergence
        );
        assert_eq!(CheckName::base_of("propagation@changes"), "propagation");
        assert_ne!(CheckName::base_of("propagation_x"), "propagation");
    }
}
