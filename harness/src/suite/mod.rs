//! The suite language: what to bring up, what load to drive, which faults and mesh
//! changes to make in which phase, and which checks judge the run.
//!
//! [`load`] parses and validates a suite file (and the mesh it names) into a [`Plan`];
//! every error names file, line and column.

pub mod source;

use crate::control_plane::Change;
use crate::envoy::{KeepaliveKind, XdsSettings, XdsVariant};
use crate::mesh::Mesh;
use crate::mesh::model::join;
use crate::topology::Site;
use marked_yaml::Spanned;
use serde::Deserialize;
use source::{Duration, InputError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A suite file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Short name, used for the report folder.
    pub name: Spanned<String>,
    /// What the suite shows, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// The mesh fixture, relative to the suite file.
    pub mesh: Spanned<String>,
    /// Which virtual nodes run on which site.
    pub topology: Topology,
    /// How the sites are joined: `proxy` (the default) or `packet`.
    #[serde(default)]
    pub link: Option<Spanned<LinkKind>>,
    /// The sidecars' xDS connection settings (App Mesh's by default).
    #[serde(default)]
    pub xds: XdsConfig,
    /// The load driven through the outpost during the whole run.
    pub load: Load,
    /// The phases, run in order.
    pub phases: Vec<Phase>,
    /// The checks that judge the run.
    pub checks: Vec<Check>,
    /// Docker backend: official images to run instead of the ones tether builds.
    #[serde(default)]
    pub images: Option<Images>,
}

/// Images named by a suite for the Docker backend (pulled where a registry is
/// reachable, or found on the engine).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    /// An Envoy image, e.g. `envoyproxy/envoy:v1.40.0` (its entrypoint takes Envoy's
    /// arguments).
    #[serde(default)]
    pub envoy: Option<Spanned<String>>,
    /// A Shopify Toxiproxy image, e.g. `ghcr.io/shopify/toxiproxy:2.12.0` (it runs as
    /// the fault proxy, started with `-host` and `-port`).
    #[serde(default)]
    pub fault_proxy: Option<Spanned<String>>,
}

/// Virtual nodes per site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Nodes on the edge rack.
    #[serde(default)]
    pub outpost: Vec<Spanned<String>>,
    /// Nodes in the region.
    #[serde(default)]
    pub region: Vec<Spanned<String>>,
}

/// xDS connection settings, each defaulting to App Mesh's value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdsConfig {
    /// `sotw` (state of the world, the default) or `delta`.
    #[serde(default)]
    pub variant: XdsVariant,
    /// Particular sidecars' settings where they differ: a variant (`delta`), or
    /// `{ variant: delta, keepalive: tcp }`.
    #[serde(default)]
    pub per_node: std::collections::HashMap<Spanned<String>, NodeXds>,
    /// HTTP/2 keepalive on the xDS connection.
    pub keepalive: Option<Keepalive>,
    /// Reconnect backoff.
    pub backoff: Option<Backoff>,
    /// How long a starting sidecar waits for its first config before serving without it
    /// (App Mesh: `0s`, for ever).
    #[serde(default)]
    pub initial_fetch_timeout: Option<Duration>,
}

/// One sidecar's xDS settings where they differ from the suite's.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum NodeXds {
    /// Just another variant: `svc-v2: delta`.
    Variant(XdsVariant),
    /// Variant and keepalive kind: `svc-v2: { variant: delta, keepalive: tcp }`.
    Settings {
        /// ADS variant.
        #[serde(default)]
        variant: Option<XdsVariant>,
        /// Keepalive kind.
        #[serde(default)]
        keepalive: Option<KeepaliveKind>,
    },
}

/// HTTP/2 keepalive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    /// `http2` (PINGs, the default) or `tcp` (kernel keepalive probes only).
    #[serde(default)]
    pub kind: KeepaliveKind,
    /// PING (or probe) interval.
    pub interval: Duration,
    /// How long an unanswered PING (or the probes) may take before the connection closes.
    pub timeout: Duration,
}

/// Reconnect backoff.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// First wait.
    pub base: Duration,
    /// Largest wait.
    pub max: Duration,
}

/// Constant-rate load into one sidecar, addressed to one virtual service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// The virtual node whose sidecar the load enters (its egress listener).
    pub through: Spanned<String>,
    /// The virtual service the requests are for (their Host).
    pub service: Spanned<String>,
    /// Requests per second.
    pub rate: Spanned<u32>,
    /// Per-request timeout (default 1s).
    pub timeout: Option<Duration>,
    /// Which generator drives the load: `hot_path` (tether's own, the default), `goose`
    /// (user journeys) or `both`.
    #[serde(default)]
    pub generator: Option<Spanned<Generator>>,
    /// The goose user journeys (with `generator: goose` or `both`).
    #[serde(default)]
    pub journeys: Option<Journeys>,
}

/// Which load generator a suite runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// tether's own generator: open loop at `rate` through the sidecar.
    #[default]
    HotPath,
    /// goose user journeys.
    Goose,
    /// Both at once.
    Both,
}

/// goose user journeys: each user visits `service` (the front), then asks it for
/// something it calls `calls` (the back) for, through both sidecars.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journeys {
    /// The back virtual service the front calls.
    pub calls: Spanned<String>,
    /// Concurrent users (default 4).
    #[serde(default)]
    pub users: Option<Spanned<usize>>,
}

/// One phase of a run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Name, unique in the suite.
    pub name: Spanned<String>,
    /// How long it lasts.
    pub duration: Duration,
    /// Faults held on links for the whole phase.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Mesh changes made during the phase.
    #[serde(default)]
    pub changes: Vec<ChangeSpec>,
    /// `down`: the control plane is killed (SIGKILL) as the phase starts, and restarted
    /// as the next phase without it starts.
    #[serde(default)]
    pub control_plane: Option<ControlPlaneState>,
    /// Measure what a node's sidecar adds: closed-loop load straight at the node's app for
    /// the first half of the phase, through its sidecar for the second.
    #[serde(default)]
    pub measure_overhead: Option<MeasureOverhead>,
    /// Faults on the parts' containers (Docker backend only): `disconnect` or `pause` a
    /// part for the phase, `restart` one at a time in it.
    #[serde(default)]
    pub containers: Vec<ContainerFaultSpec>,
}

/// A proxy-overhead measurement.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureOverhead {
    /// The virtual node (with a listener) whose sidecar is measured.
    pub node: Spanned<String>,
    /// Connections of the closed loop (default 8).
    #[serde(default)]
    pub connections: Option<Spanned<usize>>,
}

/// What happens to the control plane during a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlPlaneState {
    /// Killed, as a crash in the region; restarted from its persisted state afterwards.
    Down,
}

/// A fault on a link for a phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// `xds` (outpost sidecars to the control plane) or `data` (outpost to region services).
    pub link: Spanned<String>,
    /// What happens to the link.
    pub fault: Fault,
}

pub use crate::faults::container::{ContainerFault, ContainerFaultSpec, Part};
pub use crate::faults::link::{Fault, LinkKind};

/// A mesh change at a time within its phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSpec {
    /// When, from the start of the phase.
    pub at: Spanned<String>,
    /// Set the weights of a route.
    #[serde(default)]
    pub set_route_weights: Option<RouteWeights>,
    /// Add a route to a virtual router.
    #[serde(default)]
    pub add_route: Option<AddRoute>,
    /// Remove a route from a virtual router.
    #[serde(default)]
    pub remove_route: Option<RouteRef>,
    /// Deregister a virtual node's endpoints (callers get none for it).
    #[serde(default)]
    pub remove_endpoints: Option<NodeRef>,
    /// Register a virtual node's endpoints again.
    #[serde(default)]
    pub add_endpoints: Option<NodeRef>,
}

/// A virtual node, named in a change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRef {
    /// The virtual node.
    pub virtual_node: Spanned<String>,
}

/// A route to add, and the router it goes into.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRoute {
    /// The virtual router.
    pub router: Spanned<String>,
    /// The new route: `name`, `prefix`, `targets` (weights), optional `priority`,
    /// `headers`, `per_request_ms`, `retry`.
    pub route: crate::control_plane::change::NewRoute,
}

/// A route of a virtual router.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRef {
    /// The virtual router.
    pub router: Spanned<String>,
    /// The route.
    pub route: Spanned<String>,
}

impl ChangeSpec {
    /// The change this entry asks for, and the router or node it names; `None` unless
    /// exactly one kind of change is given.
    pub fn change(&self) -> Option<(Change, &Spanned<String>)> {
        let mut given = Vec::new();
        if let Some(w) = &self.set_route_weights {
            given.push((
                Change::SetRouteWeights {
                    router: w.router.to_string(),
                    route: w.route.to_string(),
                    weights: w.weights.clone(),
                },
                &w.router,
            ));
        }
        if let Some(a) = &self.add_route {
            given.push((
                Change::AddRoute {
                    router: a.router.to_string(),
                    route: a.route.clone(),
                },
                &a.router,
            ));
        }
        if let Some(r) = &self.remove_route {
            given.push((
                Change::RemoveRoute {
                    router: r.router.to_string(),
                    route: r.route.to_string(),
                },
                &r.router,
            ));
        }
        if let Some(n) = &self.remove_endpoints {
            given.push((
                Change::RemoveEndpoints {
                    virtual_node: n.virtual_node.to_string(),
                },
                &n.virtual_node,
            ));
        }
        if let Some(n) = &self.add_endpoints {
            given.push((
                Change::AddEndpoints {
                    virtual_node: n.virtual_node.to_string(),
                },
                &n.virtual_node,
            ));
        }
        if given.len() == 1 { given.pop() } else { None }
    }
}

/// New weights for a route's targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteWeights {
    /// The virtual router.
    pub router: Spanned<String>,
    /// The route.
    pub route: Spanned<String>,
    /// Weight per virtual node.
    pub weights: BTreeMap<String, u32>,
}

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
}

impl Check {
    /// The name a check has in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Check::OutpostTrafficFlows { .. } => "outpost_traffic_flows",
            Check::ConfigFrozen { .. } => "config_frozen",
            Check::ChangeAppliedAfterHeal { .. } => "change_applied_after_heal",
            Check::Reconvergence { .. } => "reconvergence",
            Check::Propagation { .. } => "propagation",
            Check::XdsStaysConnected { .. } => "xds_stays_connected",
            Check::PartitionNoticed { .. } => "partition_noticed",
            Check::PartitionUnnoticed { .. } => "partition_unnoticed",
            Check::ProxyOverhead { .. } => "proxy_overhead",
            Check::JourneysSucceed { .. } => "journeys_succeed",
            Check::RestartWaitsForHeal { .. } => "restart_waits_for_heal",
        }
    }

    /// The phase the check judges.
    pub fn phase(&self) -> &Spanned<String> {
        match self {
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
        }
    }
}

/// The links a suite names: the outpost sidecars' xDS connection, the outpost-to-region
/// service connections, or the whole wire between the sites (the only one a packet link
/// has).
pub const LINKS: [&str; 3] = ["xds", "data", "all"];

/// A validated suite with its mesh: everything a backend and a run need.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The suite file.
    pub suite_path: PathBuf,
    /// Its text, as run (for reports).
    pub suite_text: String,
    /// The suite.
    pub suite: Suite,
    /// The mesh file.
    pub mesh_path: PathBuf,
    /// The mesh.
    pub mesh: Mesh,
    /// Site of each virtual node that runs.
    pub sites: BTreeMap<String, Site>,
    /// How the sites are joined.
    pub link: LinkKind,
    /// The sidecars' xDS settings (see [`Plan::xds_for`] for one sidecar's).
    pub xds: XdsSettings,
    /// Sidecars whose xDS settings differ from `xds`.
    pub xds_per_node: BTreeMap<String, NodeXds>,
    /// Phases with their start offsets, in order.
    pub phases: Vec<PlannedPhase>,
}

/// A phase placed on the run's clock.
#[derive(Debug, Clone)]
pub struct PlannedPhase {
    /// Name.
    pub name: String,
    /// Start, from the beginning of the first phase.
    pub start: std::time::Duration,
    /// Length.
    pub duration: std::time::Duration,
    /// Faults held for the whole phase: (link, fault).
    pub faults: Vec<(String, Fault)>,
    /// Changes: (offset within the phase, change).
    pub changes: Vec<(std::time::Duration, Change)>,
    /// The control plane is down for the whole phase.
    pub control_plane_down: bool,
    /// Measure this node's proxy overhead with this many connections.
    pub overhead: Option<(String, usize)>,
    /// Faults on the parts' containers, in the order written.
    pub containers: Vec<ContainerFault>,
}

impl Plan {
    /// The length of all phases together.
    pub fn total_duration(&self) -> std::time::Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The xDS settings of the sidecar of virtual node `node`.
    pub fn xds_for(&self, node: &str) -> XdsSettings {
        match self.xds_per_node.get(node) {
            None => self.xds,
            Some(NodeXds::Variant(variant)) => XdsSettings {
                variant: *variant,
                ..self.xds
            },
            Some(NodeXds::Settings { variant, keepalive }) => XdsSettings {
                variant: variant.unwrap_or(self.xds.variant),
                keepalive: keepalive.unwrap_or(self.xds.keepalive),
                ..self.xds
            },
        }
    }

    /// Run every sidecar on `variant`, whatever the suite says (`tether run --xds`).
    pub fn force_xds_variant(&mut self, variant: XdsVariant) {
        self.xds.variant = variant;
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

    /// Whether `backend` can run this plan: a packet link needs processes in network
    /// namespaces, container faults need containers. The error names the line.
    pub fn check_backend(&self, backend: crate::backend::Backend) -> Result<(), InputError> {
        use crate::backend::Backend;
        let path = &self.suite_path;
        match backend {
            Backend::Docker => match &self.suite.link {
                Some(link) if **link == LinkKind::Packet => Err(InputError::spanned(
                    path,
                    link,
                    "`link: packet` runs on the process backend only; the Docker backend joins its sites through the fault proxy",
                )),
                _ => Ok(()),
            },
            Backend::Process => {
                let first = self
                    .suite
                    .phases
                    .iter()
                    .flat_map(|p| &p.containers)
                    .find_map(|c| c.action());
                match first {
                    Some((action, part)) => Err(InputError::spanned(
                        path,
                        part,
                        format!(
                            "`{}: {}` is a container fault: run this suite with `--backend docker`",
                            action.as_str(),
                            **part
                        ),
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    /// The phase called `name`.
    pub fn phase(&self, name: &str) -> Option<&PlannedPhase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// The suite's name.
    pub fn name(&self) -> &str {
        &self.suite.name
    }
}

/// Parse and validate the suite at `path` and the mesh it names.
pub fn load(path: &Path) -> Result<Plan, InputError> {
    load_with_mesh(path, None)
}

/// Parse and validate the suite at `path` with the mesh at `mesh` instead of the one its
/// `mesh:` names (when `Some`): a run folder keeps both files side by side.
pub fn load_with_mesh(path: &Path, mesh: Option<&Path>) -> Result<Plan, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::file(path, format!("cannot read suite: {e}")))?;
    let suite: Suite = source::parse(path, &text)?;
    let link = suite.link.as_ref().map(|l| **l).unwrap_or_default();
    let mesh_path = match mesh {
        Some(mesh) => mesh.to_path_buf(),
        None => path
            .parent()
            .unwrap_or(Path::new("."))
            .join(suite.mesh.as_str()),
    };
    if !mesh_path.is_file() {
        return Err(InputError::spanned(
            path,
            &suite.mesh,
            format!("mesh file `{}` not found", mesh_path.display()),
        ));
    }
    let mesh = Mesh::load(&mesh_path)?;
    validate(path, &suite, &mesh)?;

    let mut sites = BTreeMap::new();
    for n in &suite.topology.outpost {
        sites.insert(n.to_string(), Site::Outpost);
    }
    for n in &suite.topology.region {
        sites.insert(n.to_string(), Site::Region);
    }
    let defaults = XdsSettings::default();
    let xds = XdsSettings {
        variant: suite.xds.variant,
        keepalive: suite
            .xds
            .keepalive
            .as_ref()
            .map(|k| k.kind)
            .unwrap_or_default(),
        keepalive_interval: suite
            .xds
            .keepalive
            .as_ref()
            .map(|k| k.interval.0)
            .unwrap_or(defaults.keepalive_interval),
        keepalive_timeout: suite
            .xds
            .keepalive
            .as_ref()
            .map(|k| k.timeout.0)
            .unwrap_or(defaults.keepalive_timeout),
        backoff_base: suite
            .xds
            .backoff
            .as_ref()
            .map(|b| b.base.0)
            .unwrap_or(defaults.backoff_base),
        backoff_max: suite
            .xds
            .backoff
            .as_ref()
            .map(|b| b.max.0)
            .unwrap_or(defaults.backoff_max),
        initial_fetch_timeout: suite
            .xds
            .initial_fetch_timeout
            .map(|t| t.0)
            .unwrap_or(defaults.initial_fetch_timeout),
    };
    let mut start = std::time::Duration::ZERO;
    let mut phases = Vec::new();
    for p in &suite.phases {
        let changes = p
            .changes
            .iter()
            .map(|c| {
                let at = parse_at(path, &c.at)?;
                let (change, _) = c
                    .change()
                    .ok_or_else(|| InputError::spanned(path, &c.at, "expected one change"))?;
                Ok((at, change))
            })
            .collect::<Result<Vec<_>, InputError>>()?;
        phases.push(PlannedPhase {
            name: p.name.to_string(),
            start,
            duration: p.duration.0,
            faults: p
                .faults
                .iter()
                .map(|f| (f.link.to_string(), f.fault.clone()))
                .collect(),
            changes,
            control_plane_down: p.control_plane == Some(ControlPlaneState::Down),
            containers: p
                .containers
                .iter()
                .map(|c| container_fault(path, c, &p.name))
                .collect::<Result<Vec<_>, _>>()
                .map(|mut faults| {
                    // Restarts happen in time order, whatever order they are written in.
                    faults.sort_by_key(|f| (!f.action.held(), f.at));
                    faults
                })?,
            overhead: p.measure_overhead.as_ref().map(|m| {
                (
                    m.node.to_string(),
                    m.connections.as_ref().map(|c| **c).unwrap_or(8),
                )
            }),
        });
        start += p.duration.0;
    }
    let xds_per_node = suite
        .xds
        .per_node
        .iter()
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
    Ok(Plan {
        xds_per_node,
        suite_path: path.to_path_buf(),
        suite_text: text,
        suite,
        mesh_path,
        mesh,
        sites,
        link,
        xds,
        phases,
    })
}

/// The planned fault of a `containers:` entry (already validated).
/// An entry with no action at all is reported at its phase's name.
fn container_fault(
    path: &Path,
    spec: &ContainerFaultSpec,
    phase: &Spanned<String>,
) -> Result<ContainerFault, InputError> {
    let (action, part) = spec.action().ok_or_else(|| {
        let at = [&spec.disconnect, &spec.pause, &spec.restart, &spec.at]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(phase);
        InputError::spanned(
            path,
            at,
            format!(
                "phase `{}`: expected each `containers` entry to have exactly one of disconnect, pause, restart",
                **phase
            ),
        )
    })?;
    Ok(ContainerFault {
        action,
        part: Part::parse(part).map_err(|e| InputError::spanned(path, part, e))?,
        at: match &spec.at {
            Some(at) => parse_at(path, at)?,
            None => std::time::Duration::ZERO,
        },
    })
}

/// Checks one phase's `containers:` list against the topology and the phase.
fn validate_containers(
    path: &Path,
    phase: &Phase,
    mesh: &Mesh,
    placed: &BTreeSet<&str>,
) -> Result<(), InputError> {
    let mut named = BTreeSet::new();
    for spec in &phase.containers {
        let fault = container_fault(path, spec, &phase.name)?;
        let (_, written) = spec.action().expect("container_fault checked it");
        let err = |msg: String| Err(InputError::spanned(path, written, msg));
        if let Some(node) = fault.part.node() {
            if !placed.contains(node) {
                return err(format!("`{node}` is not in the topology"));
            }
            if matches!(fault.part, Part::Service(_)) && mesh.node(node).is_none() {
                return err(format!(
                    "`{node}` is a virtual gateway: it has no sample service"
                ));
            }
        }
        match (&spec.at, fault.action.held()) {
            (Some(at), true) => {
                return Err(InputError::spanned(
                    path,
                    at,
                    format!(
                        "`{}` lasts the whole phase; `at` goes with `restart` only",
                        fault.action.as_str()
                    ),
                ));
            }
            (Some(at), false) if fault.at >= phase.duration.0 => {
                return Err(InputError::spanned(
                    path,
                    at,
                    format!(
                        "restart at {} is not within phase `{}` ({}s)",
                        **at,
                        *phase.name,
                        phase.duration.0.as_secs_f64()
                    ),
                ));
            }
            _ => {}
        }
        if fault.part == Part::ControlPlane
            && (!phase.changes.is_empty() || phase.control_plane.is_some())
        {
            return err(format!(
                "phase `{}` makes mesh changes or kills the control plane; it cannot also {} the control plane",
                *phase.name,
                fault.action.as_str()
            ));
        }
        if fault.part == Part::FaultProxy
            && fault.action == crate::faults::container::Action::Restart
        {
            return err(
                "the fault proxy's proxies live in its memory: a restart would lose the link; disconnect or pause it instead".into(),
            );
        }
        if fault.part == Part::FaultProxy
            && fault.action != crate::faults::container::Action::Disconnect
            && !phase.faults.is_empty()
        {
            return err(format!(
                "phase `{}` puts faults on links through the fault proxy; it cannot also {} it",
                *phase.name,
                fault.action.as_str()
            ));
        }
        if !named.insert(fault.part.clone()) {
            return err(format!(
                "phase `{}` already has a fault on {}: one per part and phase",
                *phase.name, fault.part
            ));
        }
    }
    Ok(())
}

fn parse_at(path: &Path, at: &Spanned<String>) -> Result<std::time::Duration, InputError> {
    humantime::parse_duration(at.trim()).map_err(|e| {
        InputError::spanned(
            path,
            at,
            format!("expected a duration such as `5s`, found `{}` ({e})", **at),
        )
    })
}

fn validate(path: &Path, suite: &Suite, mesh: &Mesh) -> Result<(), InputError> {
    let err = |at: &Spanned<String>, msg: String| Err(InputError::spanned(path, at, msg));
    let members: BTreeSet<&str> = mesh
        .virtual_nodes
        .iter()
        .map(|n| n.name.as_str())
        .chain(mesh.virtual_gateways.iter().map(|g| g.name.as_str()))
        .collect();
    let mut placed = BTreeSet::new();
    for n in suite.topology.outpost.iter().chain(&suite.topology.region) {
        if !members.contains(n.as_str()) {
            return err(
                n,
                format!(
                    "unknown virtual node or gateway `{}`; expected one of: {}",
                    **n,
                    join(&members)
                ),
            );
        }
        if !placed.insert(n.as_str()) {
            return err(n, format!("virtual node `{}` is placed twice", **n));
        }
    }
    if let Some(n) = suite
        .xds
        .per_node
        .keys()
        .find(|n| !placed.contains(n.as_str()))
    {
        return err(
            n,
            format!("xds.per_node names `{}`, which is not in the topology", **n),
        );
    }
    if !suite.topology.outpost.contains(&suite.load.through) {
        return err(
            &suite.load.through,
            format!(
                "load must enter through an outpost node; `{}` is not in topology.outpost",
                *suite.load.through
            ),
        );
    }
    let through = suite.load.through.as_str();
    let reachable = match mesh.node(through) {
        Some(n) => n.backends.iter().any(|s| **s == *suite.load.service),
        // Through a gateway: a service one of its gateway routes leads to.
        None => mesh.routes_of_gateway(through).any(|r| {
            r.kind().is_some_and(|(_, _, a)| {
                *a.target.virtual_service.virtual_service_name == *suite.load.service
            })
        }),
    };
    if !reachable {
        return err(
            &suite.load.service,
            format!(
                "`{}` is not a backend of `{through}` (nor a gateway route target)",
                *suite.load.service
            ),
        );
    }
    let generator = suite
        .load
        .generator
        .as_ref()
        .map(|g| **g)
        .unwrap_or_default();
    match (&suite.load.journeys, generator) {
        (None, Generator::Goose | Generator::Both) => {
            return err(
                &suite.load.service,
                "`generator: goose` or `both` needs `journeys: { calls: <back virtual service> }`"
                    .into(),
            );
        }
        (Some(j), _) => {
            if mesh.service(&j.calls).is_none() {
                let services: BTreeSet<&str> = mesh
                    .virtual_services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                return err(
                    &j.calls,
                    format!(
                        "unknown virtual service `{}`; expected one of: {}",
                        *j.calls,
                        join(&services)
                    ),
                );
            }
            if let Some(u) = j.users.as_ref().filter(|u| ***u == 0 || ***u > 1000) {
                return Err(InputError::spanned(
                    path,
                    u,
                    format!("expected 1 to 1000 users, found {}", **u),
                ));
            }
        }
        (None, Generator::HotPath) => {}
    }
    if *suite.load.rate == 0 || *suite.load.rate > 10_000 {
        return Err(InputError::spanned(
            path,
            &suite.load.rate,
            "expected a rate from 1 to 10000 requests per second",
        ));
    }
    if let Some(timeout) = &suite.load.timeout
        && (timeout.0.is_zero() || timeout.0 > std::time::Duration::from_secs(60))
    {
        return Err(InputError::spanned(
            path,
            &suite.load.rate,
            "expected a load timeout from 1ms to 60s",
        ));
    }
    if let Some(k) = &suite.xds.keepalive
        && (k.interval.0.is_zero() || k.timeout.0.is_zero())
    {
        return Err(InputError::spanned(
            path,
            &suite.name,
            "expected xds.keepalive interval and timeout above zero",
        ));
    }
    if let Some(b) = &suite.xds.backoff
        && (b.base.0.is_zero() || b.max.0 < b.base.0)
    {
        return Err(InputError::spanned(
            path,
            &suite.name,
            "expected xds.backoff with base above zero and max at least base",
        ));
    }
    if suite.phases.is_empty() {
        return Err(InputError::spanned(
            path,
            &suite.name,
            "expected at least one phase",
        ));
    }
    let mut phase_names = BTreeSet::new();
    let mut trial = mesh.clone();
    for p in &suite.phases {
        if !phase_names.insert(p.name.as_str()) {
            return err(&p.name, format!("duplicate phase `{}`", *p.name));
        }
        if p.duration.0.is_zero() {
            return err(&p.name, format!("phase `{}` has no duration", *p.name));
        }
        if let Some(m) = &p.measure_overhead {
            if !placed.contains(m.node.as_str())
                || mesh.node(&m.node).is_none_or(|n| n.listeners.is_empty())
            {
                return err(
                    &m.node,
                    format!(
                        "`{}` is not a placed virtual node with a listener: its sidecar cannot be measured",
                        *m.node
                    ),
                );
            }
            if let Some(c) = m.connections.as_ref().filter(|c| ***c == 0 || ***c > 1000) {
                return Err(InputError::spanned(
                    path,
                    c,
                    format!("expected 1 to 1000 connections, found {}", **c),
                ));
            }
            if p.duration.0 < std::time::Duration::from_secs(2) {
                return err(
                    &m.node,
                    "a phase that measures overhead needs at least 2s (half direct, half through the sidecar)".into(),
                );
            }
        }
        validate_containers(path, p, mesh, &placed)?;
        for f in &p.faults {
            if let Fault::Flapping {
                every, down_for, ..
            } = &f.fault
                && (every.0.is_zero() || down_for.0.is_zero() || down_for.0 > every.0)
            {
                return err(&f.link, "expected flapping with `every` and `down_for` above zero and `down_for` at most `every`".into());
            }
            if !LINKS.contains(&f.link.as_str()) {
                return err(
                    &f.link,
                    format!(
                        "unknown link `{}`; expected one of: xds, data, all",
                        *f.link
                    ),
                );
            }
            let kind = suite.link.as_ref().map(|l| **l).unwrap_or_default();
            if kind == LinkKind::Packet && f.link.as_str() != "all" {
                return err(
                    &f.link,
                    format!(
                        "a packet link is one wire between the sites; expected link `all`, found `{}`",
                        *f.link
                    ),
                );
            }
            if let Some(why) = kind.cannot(&f.fault) {
                return err(&f.link, why.to_string());
            }
            if let Fault::Loss { percent } = f.fault
                && !(0.0..=100.0).contains(&percent)
            {
                return err(
                    &f.link,
                    format!("expected a loss from 0 to 100 percent, found {percent}"),
                );
            }
        }
        for c in &p.changes {
            if p.control_plane == Some(ControlPlaneState::Down) {
                return err(
                    &c.at,
                    format!(
                        "phase `{}` has the control plane down: it cannot take mesh changes",
                        *p.name
                    ),
                );
            }
            let at = parse_at(path, &c.at)?;
            if at >= p.duration.0 {
                return err(
                    &c.at,
                    format!(
                        "change at {} is not within phase `{}` ({}s)",
                        *c.at,
                        *p.name,
                        p.duration.0.as_secs_f64()
                    ),
                );
            }
            let Some((change, subject)) = c.change() else {
                return err(
                    &c.at,
                    "expected exactly one of set_route_weights, add_route, remove_route, remove_endpoints, add_endpoints".into(),
                );
            };
            if let Some(router) = change.router()
                && mesh.router(router).is_none()
            {
                let routers: BTreeSet<&str> = mesh
                    .virtual_routers
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect();
                return err(
                    subject,
                    format!(
                        "unknown virtual router `{router}`; expected one of: {}",
                        join(&routers)
                    ),
                );
            }
            // Changes apply in order, each on top of the ones before.
            if let Err(e) = change.apply(&mut trial) {
                return err(subject, e);
            }
        }
    }
    if suite.checks.is_empty() {
        return Err(InputError::spanned(
            path,
            &suite.name,
            "expected at least one check",
        ));
    }
    for c in &suite.checks {
        let share = match c {
            Check::OutpostTrafficFlows {
                min_success_ratio, ..
            } => Some(min_success_ratio),
            Check::ChangeAppliedAfterHeal { min_share, .. } => min_share.as_ref(),
            Check::ProxyOverhead {
                min_throughput_ratio,
                ..
            } => Some(min_throughput_ratio),
            Check::JourneysSucceed {
                min_success_ratio, ..
            } => Some(min_success_ratio),
            _ => None,
        };
        if let Some(share) = share.filter(|s| !(0.0..=1.0).contains(&***s)) {
            return Err(InputError::spanned(
                path,
                share,
                format!("expected a share from 0 to 1, found {}", **share),
            ));
        }
        if let Check::PartitionNoticed { nodes, .. } | Check::PartitionUnnoticed { nodes, .. } = c
            && let Some(n) = nodes.iter().find(|n| !suite.topology.outpost.contains(n))
        {
            return err(n, format!("`{}` is not an outpost node", **n));
        }
        let phase = c.phase();
        if !phase_names.contains(phase.as_str()) {
            return err(
                phase,
                format!(
                    "unknown phase `{}`; expected one of: {}",
                    **phase,
                    join(&phase_names)
                ),
            );
        }
        // An outpost sidecar: a region one reaches the control plane without the link.
        let outpost = |n: &str| suite.topology.outpost.iter().any(|o| o.as_str() == n);
        let restarts_sidecar = |p: &Phase| {
            p.containers.iter().any(|c| {
                container_fault(path, c, &p.name).is_ok_and(|f| {
                    f.action == crate::faults::container::Action::Restart
                        && matches!(&f.part, Part::Sidecar(n) if outpost(n))
                })
            })
        };
        if let Check::RestartWaitsForHeal { .. } = c
            && !suite
                .phases
                .iter()
                .any(|p| *p.name == **phase && restarts_sidecar(p))
        {
            return err(
                phase,
                format!(
                    "phase `{}` restarts no outpost sidecar (`containers: [{{ restart: sidecar/<node> }}]`): nothing to judge",
                    **phase
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }

    #[test]
    fn bundled_suites_are_valid() {
        for suite in [
            "suites/outpost-partition.yaml",
            "suites/outpost-partition-delta.yaml",
            "suites/negative/data-path-partition.yaml",
            "suites/control-plane-restart.yaml",
            "suites/negative/control-plane-stays-down.yaml",
            "suites/propagation.yaml",
            "suites/negative/propagation-partitioned.yaml",
            "suites/link-latency.yaml",
            "suites/negative/link-latency-past-keepalive.yaml",
            "suites/link-flapping.yaml",
            "suites/negative/link-flapping-never-up.yaml",
            "suites/keepalive-detection.yaml",
            "suites/negative/keepalive-detection-tcp-expected.yaml",
            "suites/container-faults.yaml",
            "suites/negative/restart-gives-up-waiting.yaml",
        ] {
            let plan = load(&repo(suite)).unwrap_or_else(|e| panic!("{e}"));
            assert!(!plan.phases.is_empty());
        }
        let plan = load(&repo("suites/outpost-partition.yaml")).unwrap();
        assert_eq!(plan.sites.len(), 3);
        assert_eq!(
            plan.phase("heal").unwrap().start,
            std::time::Duration::from_secs(17)
        );
        assert_eq!(
            plan.xds.keepalive_interval,
            std::time::Duration::from_secs(1)
        );
    }

    /// The bundled suite with `from` replaced by `to`, written next to it so the mesh
    /// path still resolves; returns the error text.
    fn broken(from: &str, to: &str) -> String {
        let text = std::fs::read_to_string(repo("suites/outpost-partition.yaml")).unwrap();
        assert!(text.contains(from), "the suite no longer contains {from:?}");
        let dir = tempfile::tempdir_in(repo("suites")).unwrap();
        let path = dir.path().join("broken.yaml");
        let text = text
            .replacen(from, to, 1)
            .replace("mesh: ../fixtures", "mesh: ../../fixtures");
        std::fs::write(&path, text).unwrap();
        let err = load(&path).unwrap_err();
        err.to_string()
            .replace(&format!("{}/", dir.path().display()), "")
    }

    #[test]
    fn bad_suites_name_file_line_column_and_what_was_expected() {
        let cases = [
            (
                "phase: partition, min",
                "phase: partiton, min",
                "broken.yaml:40:37: unknown phase `partiton`; expected one of: baseline, heal, partition",
            ),
            (
                "- link: xds",
                "- link: xdz",
                "broken.yaml:29:15: unknown link `xdz`; expected one of: xds, data, all",
            ),
            (
                "topology:\n  outpost",
                "link: packet\ntopology:\n  outpost",
                "broken.yaml:30:15: a packet link is one wire between the sites; expected link `all`, found `xds`",
            ),
            (
                "fault: blackhole",
                "fault: { loss: { percent: 5 } }",
                "broken.yaml:29:15: loss, duplicate and reorder are packet-level faults; the fault proxy carries TCP streams (set `link: packet`)",
            ),
            (
                "outpost: [client, svc-v1, svc-v2]",
                "outpost: [client, svc-v9, svc-v2]",
                "broken.yaml:11:21: unknown virtual node or gateway `svc-v9`; expected one of: client, svc-v1, svc-v2",
            ),
            (
                "duration: 5s",
                "duration: 5 parsecs",
                "broken.yaml:25:15: phases[0].duration: expected a duration such as `5s` or `500ms`, found `5 parsecs`",
            ),
            (
                "rate: 50",
                "rat: 50",
                "broken.yaml:21:3: load.rat: Unknown field `rat`, expected one of `through`, `service`, `rate`, `timeout`, `generator`, or `journeys`",
            ),
            (
                "      - at: 5s",
                "      - at: 50s",
                "broken.yaml:32:13: change at 50s is not within phase `partition` (12s)",
            ),
            (
                "svc-v1: 0, svc-v2: 100",
                "svc-v1: 10, svc-v2: 100",
                "broken.yaml:34:19: weights add up to 110; expected 100",
            ),
            (
                "name: heal",
                "name: [heal",
                "broken.yaml:39:7: invalid YAML",
            ),
        ];
        let mut wrong = Vec::new();
        for (from, to, expected) in cases {
            let err = broken(from, to);
            if !err.starts_with(expected) {
                wrong.push(format!(
                    "{from:?} -> {to:?}\n  got: {err}\n want: {expected}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn suites_add_and_remove_routes_in_order() {
        let add = "      - at: 5s\n        add_route:\n          router: svc-router\n          route: { name: beta, prefix: /beta, targets: { svc-v2: 100 } }\n      - at: 6s\n        remove_route: { router: svc-router, route: beta }\n";
        let text = std::fs::read_to_string(repo("suites/outpost-partition.yaml")).unwrap();
        let at = text.find("      - at: 5s").unwrap();
        let dir = tempfile::tempdir_in(repo("suites")).unwrap();
        let path = dir.path().join("routes.yaml");
        let write = |extra: &str| {
            let mut t = text.clone();
            t.insert_str(at, extra);
            std::fs::write(
                &path,
                t.replace("mesh: ../fixtures", "mesh: ../../fixtures"),
            )
            .unwrap();
        };
        write(add);
        let plan = load(&path).unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<String> = plan
            .phase("partition")
            .unwrap()
            .changes
            .iter()
            .map(|(_, c)| c.describe())
            .collect();
        assert_eq!(
            kinds,
            [
                "add route svc-router/beta (prefix /beta)",
                "remove route svc-router/beta",
                "route svc-router/split weights svc-v1=0 svc-v2=100"
            ]
        );
        // Removing a route that was never added is caught before anything runs.
        write("      - at: 5s\n        remove_route: { router: svc-router, route: beta }\n");
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("routes.yaml:33:33: unknown route `beta`"),
            "{err}"
        );
        // Two kinds of change in one entry.
        write(
            "      - at: 5s\n        remove_route: { router: svc-router, route: split }\n        set_route_weights: { router: svc-router, route: split, weights: { svc-v1: 100 } }\n",
        );
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("expected exactly one of set_route_weights, add_route, remove_route"),
            "{err}"
        );
    }

    #[test]
    fn container_faults_name_a_part_the_run_has() {
        let text = std::fs::read_to_string(repo("suites/container-faults.yaml")).unwrap();
        let dir = tempfile::tempdir_in(repo("suites")).unwrap();
        let path = dir.path().join("containers.yaml");
        let cases = [
            (
                "restart: sidecar/svc-v2",
                "restart: sidecar/svc-v9",
                "32:18: `svc-v9` is not in the topology",
            ),
            (
                "restart: sidecar/svc-v2",
                "restart: fault-proxy",
                "32:18: the fault proxy's proxies live in its memory",
            ),
            (
                "        at: 3s",
                "        at: 3s\n      - pause: sidecar/svc-v2",
                "34:16: phase `partition` already has a fault on sidecar/svc-v2",
            ),
            (
                "- disconnect: fault-proxy",
                "- {}",
                "28:11: phase `partition`: expected each `containers` entry to have exactly one of",
            ),
            (
                "disconnect: fault-proxy",
                "disconnect: proxy",
                "31:21: unknown part `proxy`; expected control-plane",
            ),
            (
                "- pause: control-plane",
                "- pause: control-plane\n        at: 1s",
                "46:13: `pause` lasts the whole phase; `at` goes with `restart` only",
            ),
            (
                "        at: 3s",
                "        at: 30s",
                "33:13: restart at 30s is not within phase `partition` (12s)",
            ),
            (
                "- disconnect: fault-proxy",
                "- { disconnect: fault-proxy, pause: fault-proxy }",
                "31:23: phase `partition`: expected each `containers` entry to have exactly one of disconnect, pause, restart",
            ),
            (
                "restart_waits_for_heal: { phase: partition",
                "restart_waits_for_heal: { phase: heal",
                "52:38: phase `heal` restarts no outpost sidecar",
            ),
        ];
        let mut wrong = Vec::new();
        for (from, to, expected) in cases {
            assert!(text.contains(from), "{from}");
            let t = text
                .replacen(from, to, 1)
                .replace("mesh: ../fixtures", "mesh: ../../fixtures");
            std::fs::write(&path, t).unwrap();
            let err = load(&path).map(|_| ()).unwrap_err().to_string();
            if !err.contains(&format!("containers.yaml:{expected}")) {
                wrong.push(format!("{to}: got {err}\n want {expected}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_missing_file_is_an_input_error() {
        let err = load(Path::new("no/such/suite.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no/such/suite.yaml:1:1: cannot read suite"),
            "{err}"
        );
    }
}
