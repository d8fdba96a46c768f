//! The plan: the words a suite is written in, and a suite made into what every later
//! stage reads.
//!
//! Standing only on the YAML reader ([`crate::source`]) and the mesh model
//! ([`crate::mesh`]), this is the vocabulary of a run: the sites ([`Site`]), link faults
//! ([`link`]), container faults ([`container`]), mesh changes ([`change`]), xDS settings
//! ([`xds`]), load ([`load`]), checks ([`check`]), what a run samples ([`observe`]), the [`Disruption`]s all of them make,
//! and the [`schedule`]: the plan and a seed as an ordered list of timed operations,
//! computed before anything starts. [`Plan`] is a validated suite with its mesh; the
//! `suite` module makes one from YAML.

pub mod change;
pub mod check;
pub mod container;
pub mod disruption;
pub mod link;
pub mod load;
pub mod observe;
pub mod schedule;
pub mod site;
pub mod soak;
pub mod xds;

pub use change::Change;
pub use check::{Area, Check, CheckName};
pub use container::{Action, ContainerFault, Part};
pub use disruption::{Disruption, Draw, DrawClass};
pub use link::{Direction, Fault, Link, LinkKind, Rate};
pub use load::{Generator, JourneysPlan, LoadPlan};
pub use observe::{Observe, Reads, Sidecars};
pub use schedule::{Operation, Schedule, Timed};
pub use site::Site;
pub use soak::{PhaseDraws, Rng, Soak, SoakLength, StopWhen, SuccessBelow};
pub use xds::{KeepaliveKind, NodeXds, XdsSettings, XdsVariant};

use crate::mesh::Mesh;
use marked_yaml::{Span, Spanned};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A validated suite with its mesh: everything a backend and a run need.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The suite file.
    pub suite_path: PathBuf,
    /// Its text, as run (for reports).
    pub suite_text: String,
    /// The suite's name (names the report folder).
    pub name: String,
    /// The mesh file.
    pub mesh_path: PathBuf,
    /// The mesh.
    pub mesh: Mesh,
    /// Site of each virtual node that runs.
    pub sites: BTreeMap<String, Site>,
    /// How the sites are joined, and where the suite says so (if it does).
    pub link: LinkKind,
    /// Where the suite writes `link:`, for errors about it.
    pub link_span: Option<Span>,
    /// The sidecars' xDS settings (see [`Plan::xds_for`] for one sidecar's).
    pub xds: XdsSettings,
    /// Sidecars whose xDS settings differ from `xds`.
    pub xds_per_node: BTreeMap<String, NodeXds>,
    /// Set when `tether run --xds` put every sidecar on one variant.
    pub xds_forced: bool,
    /// The load driven through the outpost for the whole run.
    pub load: LoadPlan,
    /// Phases with their start offsets, in order.
    pub phases: Vec<PlannedPhase>,
    /// The checks that judge the run, in suite order.
    pub checks: Vec<Check>,
    /// Which sidecars the run samples, and how often.
    pub observe: Observe,
    /// A negative control's checks that must fail (empty for any other suite).
    pub expect_failing: Vec<String>,
    /// A negative control of a soak's stop condition: `stop_when` must end it early.
    pub expect_stopped: bool,
    /// Official images the Docker backend runs instead of the ones tether builds.
    pub images: Images,
    /// Set for a soak: the phases repeat in cycles.
    pub soak: Option<Soak>,
}

/// Images a suite names for the Docker backend (found on the engine or pulled).
#[derive(Debug, Clone, Default)]
pub struct Images {
    /// An Envoy image, e.g. `envoyproxy/envoy:v1.40.0`.
    pub envoy: Option<Spanned<String>>,
    /// A Shopify Toxiproxy image, run as the fault proxy.
    pub fault_proxy: Option<Spanned<String>>,
}

/// A phase placed on the run's clock.
#[derive(Debug, Clone)]
pub struct PlannedPhase {
    /// Name.
    pub name: String,
    /// Start, from the beginning of the first phase.
    pub start: Duration,
    /// Length.
    pub duration: Duration,
    /// Faults held on links for the whole phase (flapping included).
    pub faults: Vec<(Link, Fault)>,
    /// Changes: (offset within the phase, change), in the order written (each applies
    /// on top of the ones before).
    pub changes: Vec<(Duration, Change)>,
    /// The control plane is down for the whole phase.
    pub control_plane_down: bool,
    /// Measure this node's proxy overhead.
    pub overhead: Option<Overhead>,
    /// Faults on the parts' containers: held ones first, then restarts in time order.
    pub containers: Vec<ContainerFault>,
    /// What it draws each time it runs (its values above are the shortest length, the
    /// first fault, the earliest times).
    pub draws: PhaseDraws,
}

/// A proxy-overhead measurement: closed-loop load straight at a node's app for the first
/// half of its phase, through its sidecar for the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overhead {
    /// The virtual node whose sidecar is measured.
    pub node: String,
    /// Connections of the closed loop.
    pub connections: usize,
}

impl Plan {
    /// The length of all phases together.
    pub fn total_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The xDS settings of the sidecar of virtual node `node`.
    pub fn xds_for(&self, node: &str) -> XdsSettings {
        self.xds.with(self.xds_per_node.get(node))
    }

    /// Run every sidecar on `variant`, whatever the suite says (`tether run --xds`).
    pub fn force_xds_variant(&mut self, variant: XdsVariant) {
        self.xds.variant = variant;
        self.xds_forced = true;
        for node in self.xds_per_node.values_mut() {
            if let NodeXds::Variant(v)
            | NodeXds::Settings {
                variant: Some(v), ..
            } = node
            {
                *v = variant;
            }
        }
    }

    /// The xDS variant the sidecars speak, as reports show it: `sotw`, `delta`, or the
    /// suite's variant with the sidecars that differ (`sotw (svc-v2: delta)`); with
    /// `(--xds)` when the command line chose it.
    pub fn xds_description(&self) -> String {
        let differ: Vec<String> = self
            .sites
            .keys()
            .map(|n| (n, self.xds_for(n).variant))
            .filter(|(_, v)| *v != self.xds.variant)
            .map(|(n, v)| format!("{n}: {}", v.as_str()))
            .collect();
        let mut text = self.xds.variant.as_str().to_string();
        if !differ.is_empty() {
            text.push_str(&format!(" ({})", differ.join(", ")));
        }
        if self.xds_forced {
            text.push_str(" (--xds)");
        }
        text
    }

    /// Make a soak run this long, whatever the suite says (`tether run --cycles` or
    /// `--for`); false when the plan is not a soak.
    pub fn set_soak_length(&mut self, length: SoakLength) -> bool {
        match &mut self.soak {
            Some(soak) => {
                soak.length = length;
                true
            }
            None => false,
        }
    }

    /// The phase called `name`.
    pub fn phase(&self, name: &str) -> Option<&PlannedPhase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// The suite's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The virtual nodes on the outpost (behind the xDS link), in name order.
    pub fn outpost_nodes(&self) -> Vec<String> {
        self.sites
            .iter()
            .filter(|(_, s)| **s == Site::Outpost)
            .map(|(n, _)| n.clone())
            .collect()
    }
}
