//! What a run observes of its sidecars: whose admin endpoints it samples, and how often.
//!
//! Each check says whose samples it reads ([`Check::reads`]). By default a run samples
//! exactly those sidecars, so a suite whose checks read only the control plane's xDS log
//! and the load (propagation at scale) makes no admin request at all. A suite may ask
//! for every sidecar (to see them all on the report's lanes) or for none, and for a
//! period: `observe: { sidecars: all, every: 1s }`.

use super::{Action, Check, Part, Plan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// Which sidecars a run samples (`observe.sidecars`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sidecars {
    /// The ones the suite's checks read (the default).
    #[default]
    Checked,
    /// Every sidecar.
    All,
    /// None (a check that reads samples then cannot judge: the suite is refused).
    None,
}

/// A suite's `observe:`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observe {
    /// Which sidecars are sampled.
    pub sidecars: Sidecars,
    /// Each is sampled this often (default: adapted to how many, see
    /// `observe::period_for`).
    pub every: Option<Duration>,
}

/// Whose samples (admin state: connected, versions, readiness, memory) a check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// No sidecar's: it judges from the load or the control plane's xDS log.
    Nothing,
    /// Every outpost sidecar's (the load's sidecar among them: a suite's load enters
    /// through an outpost node).
    Outpost,
    /// These sidecars'.
    Nodes(Vec<String>),
    /// The sidecars the suite restarts.
    Restarted,
    /// Every sidecar's.
    Every,
}

/// The nodes [`Reads`] stands for in one plan.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Outpost nodes.
    pub outpost: &'a [String],
    /// Nodes whose sidecar the suite restarts.
    pub restarted: &'a [String],
    /// Every node with a sidecar.
    pub every: &'a [String],
}

impl Reads {
    /// Does it read any sidecar's samples?
    pub fn any(&self) -> bool {
        match self {
            Reads::Nothing => false,
            Reads::Nodes(nodes) => !nodes.is_empty(),
            _ => true,
        }
    }

    /// The nodes this stands for in `scope`.
    pub fn nodes(&self, scope: Scope) -> BTreeSet<String> {
        let all = |nodes: &[String]| nodes.iter().cloned().collect();
        match self {
            Reads::Nothing => BTreeSet::new(),
            Reads::Outpost => all(scope.outpost),
            Reads::Nodes(nodes) => all(nodes),
            Reads::Restarted => all(scope.restarted),
            Reads::Every => all(scope.every),
        }
    }
}

impl Check {
    /// Whose samples the check reads: with the control plane's xDS log on the timeline
    /// (`xds_log`), propagation reads the log alone; without it (a target's foreign
    /// control plane) it reads what every sidecar reports.
    pub fn reads(&self, xds_log: bool) -> Reads {
        let listed = |nodes: &[marked_yaml::Spanned<String>]| match nodes {
            [] => Reads::Outpost,
            _ => Reads::Nodes(nodes.iter().map(|n| n.to_string()).collect()),
        };
        match self {
            Check::OutpostTrafficFlows { .. }
            | Check::JourneysSucceed { .. }
            | Check::ProxyOverhead { .. } => Reads::Nothing,
            Check::Propagation { .. } if xds_log => Reads::Nothing,
            Check::Propagation { .. } => Reads::Every,
            Check::ConfigFrozen { .. }
            | Check::XdsStaysConnected { .. }
            | Check::Reconvergence { .. }
            | Check::ChangeAppliedAfterHeal { .. } => Reads::Outpost,
            Check::PartitionNoticed { nodes, .. } | Check::PartitionUnnoticed { nodes, .. } => {
                listed(nodes)
            }
            Check::RestartWaitsForHeal { .. } => Reads::Restarted,
            Check::MemoryDrift { parts, .. } if parts.is_empty() => Reads::Every,
            Check::MemoryDrift { parts, .. } => Reads::Nodes(
                parts
                    .iter()
                    .filter_map(|p| p.strip_prefix("envoy/").map(str::to_string))
                    .collect(),
            ),
        }
    }
}

impl Plan {
    /// The nodes whose sidecars a run samples: what `observe.sidecars` asks for, by
    /// default the ones the checks read (see [`Check::reads`]).
    pub fn sampled_sidecars(&self, xds_log: bool) -> BTreeSet<String> {
        let every: Vec<String> = self.sites.keys().cloned().collect();
        match self.observe.sidecars {
            Sidecars::None => BTreeSet::new(),
            Sidecars::All => every.into_iter().collect(),
            Sidecars::Checked => {
                let (outpost, restarted) = (self.outpost_nodes(), self.restarted_sidecars());
                let scope = Scope {
                    outpost: &outpost,
                    restarted: &restarted,
                    every: &every,
                };
                self.checks
                    .iter()
                    .flat_map(|c| c.reads(xds_log).nodes(scope))
                    .collect()
            }
        }
    }

    /// The nodes whose sidecar some phase restarts.
    pub fn restarted_sidecars(&self) -> Vec<String> {
        let nodes: BTreeSet<&String> = self
            .phases
            .iter()
            .flat_map(|p| &p.containers)
            .filter(|c| c.action == Action::Restart)
            .filter_map(|c| match &c.part {
                Part::Sidecar(node) => Some(node),
                _ => None,
            })
            .collect();
        nodes.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope<'a>(outpost: &'a [String], every: &'a [String]) -> Scope<'a> {
        Scope {
            outpost,
            restarted: &every[2..],
            every,
        }
    }

    #[test]
    fn each_kind_of_reading_stands_for_its_nodes() {
        let every: Vec<String> = ["client", "region-svc", "svc-v1"].map(String::from).into();
        let outpost = vec!["svc-v1".to_string()];
        let nodes = |r: Reads| {
            r.nodes(scope(&outpost, &every))
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert!(nodes(Reads::Nothing).is_empty());
        assert_eq!(nodes(Reads::Outpost), ["svc-v1"]);
        assert_eq!(nodes(Reads::Nodes(vec!["x".into()])), ["x"]);
        assert_eq!(nodes(Reads::Restarted), ["svc-v1"]);
        assert_eq!(nodes(Reads::Every), every);
    }
}
