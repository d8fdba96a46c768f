//! A suite file as written: the serde shapes of its YAML, every value with its position.
//!
//! [`super::lower`] makes a [`crate::plan::Plan`] of it once [`super::validate`] has
//! checked it.

use crate::plan::{
    Action, Change, Check, Fault, Generator, KeepaliveKind, LinkKind, NodeXds, Sidecars, XdsVariant,
};
use crate::source::{Duration, DurationRange};
use marked_yaml::Spanned;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

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
    /// The phases, run in order (in a soak: the phases of one cycle, repeated).
    pub phases: Vec<Phase>,
    /// Make the run a soak: its phases repeat in cycles, each cycle drawing its own
    /// ranges, and every check is judged per cycle.
    #[serde(default)]
    pub soak: Option<SoakSpec>,
    /// The checks that judge the run.
    pub checks: Vec<Check>,
    /// Which sidecars' admin endpoints the run samples, and how often (default: the
    /// ones the checks read, at a period adapted to how many).
    #[serde(default)]
    pub observe: Option<ObserveSpec>,
    /// Docker backend: official images to run instead of the ones tether builds.
    #[serde(default)]
    pub images: Option<Images>,
    /// A negative control: the checks it exists to fail. The suite counts as passed
    /// (in a sign-off, and in `cargo test`) when exactly these fail.
    #[serde(default)]
    pub expect_failing: Vec<Spanned<String>>,
    /// A negative control of a soak's stop condition: it passes when `stop_when` ends it
    /// early (in a sign-off, and in `cargo test`).
    #[serde(default)]
    pub expect_stopped: Option<Spanned<bool>>,
}

/// `observe:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveSpec {
    /// `checked` (the default), `all` or `none`.
    #[serde(default)]
    pub sidecars: Option<Spanned<Sidecars>>,
    /// Sample each this often (default: 250 ms, longer for a large fleet).
    #[serde(default)]
    pub every: Option<Spanned<Duration>>,
}

/// A soak: how long it runs by default, what comes first, and when it stops early.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoakSpec {
    /// Run this many cycles (`tether run --cycles` overrides)...
    #[serde(default)]
    pub cycles: Option<Spanned<u32>>,
    /// ...or cycles until this much time has passed (`tether run --for` overrides).
    #[serde(default, rename = "for")]
    pub for_: Option<Duration>,
    /// Load without faults before the first cycle (default none).
    #[serde(default)]
    pub warm_up: Option<Duration>,
    /// End the run early when one of these holds.
    #[serde(default)]
    pub stop_when: Option<StopWhenSpec>,
}

/// Stop conditions of a soak.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopWhenSpec {
    /// The outpost's load succeeds below `ratio` for `for` on end.
    #[serde(default)]
    pub outpost_success_below: Option<SuccessBelow>,
    /// This many cycles have failed a check.
    #[serde(default)]
    pub failed_cycles: Option<Spanned<u32>>,
}

/// A success ratio held too low for too long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuccessBelow {
    /// The ratio (0-1).
    pub ratio: Spanned<f64>,
    /// For how long, in whole seconds of load.
    #[serde(rename = "for")]
    pub for_: Duration,
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
    pub per_node: HashMap<Spanned<String>, NodeXds>,
    /// HTTP/2 keepalive on the xDS connection.
    pub keepalive: Option<Keepalive>,
    /// Reconnect backoff.
    pub backoff: Option<Backoff>,
    /// How long a starting sidecar waits for its first config before serving without it
    /// (App Mesh: `0s`, for ever).
    #[serde(default)]
    pub initial_fetch_timeout: Option<Duration>,
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
    /// How long it lasts: `30s`, or a range `30s..90s` drawn per cycle.
    pub duration: DurationRange,
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
    /// What happens to the link...
    #[serde(default)]
    pub fault: Option<Fault>,
    /// ...or one of these, drawn per cycle from the run's seed.
    #[serde(default)]
    pub one_of: Vec<Fault>,
}

impl FaultSpec {
    /// The faults it can be: the one given, or those it is drawn from.
    pub fn choices(&self) -> Vec<Fault> {
        match &self.fault {
            Some(f) => vec![f.clone()],
            None => self.one_of.clone(),
        }
    }
}

/// A mesh change at a time within its phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSpec {
    /// When, from the start of the phase: `2s`, or a range `2s..10s` drawn per cycle.
    pub at: Spanned<String>,
    /// Make the change again and again, from `at`: `{ every: 500ms, times: 80 }`; `{n}`
    /// in any of its texts (a route's name, prefix, header values) becomes the
    /// repetition's number, 1 to `times`.
    #[serde(default)]
    pub repeat: Option<RepeatSpec>,
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

/// A change made again and again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatSpec {
    /// The time between two of them.
    pub every: Duration,
    /// How many (the first at `at` included).
    pub times: Spanned<u32>,
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
    pub route: crate::plan::change::NewRoute,
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

    /// The change as made, once or (with `repeat`) every time, each with its offset from
    /// `at` and `{n}` replaced by its number; empty unless exactly one kind is given.
    pub fn repeated(&self) -> Vec<(std::time::Duration, Change)> {
        let Some((change, _)) = self.change() else {
            return Vec::new();
        };
        let Some(repeat) = &self.repeat else {
            return vec![(std::time::Duration::ZERO, change)];
        };
        let template = serde_json::to_value(&change).unwrap_or_default();
        (1..=*repeat.times)
            .filter_map(|n| {
                let made = serde_json::from_value(numbered(&template, n)).ok()?;
                Some((repeat.every.0 * (n - 1), made))
            })
            .collect()
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

/// One entry of a phase's `containers:` list, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerFaultSpec {
    /// Cut this part off its network for the phase.
    #[serde(default)]
    pub disconnect: Option<Spanned<String>>,
    /// Freeze this part for the phase.
    #[serde(default)]
    pub pause: Option<Spanned<String>>,
    /// Kill this part and start it again.
    #[serde(default)]
    pub restart: Option<Spanned<String>>,
    /// When a restart happens, from the start of the phase (default 0s).
    #[serde(default)]
    pub at: Option<Spanned<String>>,
}

impl ContainerFaultSpec {
    /// The one action given and the part it names as written; `None` unless exactly
    /// one of `disconnect`, `pause`, `restart` is given.
    pub fn action(&self) -> Option<(Action, &Spanned<String>)> {
        let given: Vec<(Action, &Spanned<String>)> = [
            (Action::Disconnect, &self.disconnect),
            (Action::Pause, &self.pause),
            (Action::Restart, &self.restart),
        ]
        .into_iter()
        .filter_map(|(action, part)| Some((action, part.as_ref()?)))
        .collect();
        match given.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// `value` with `{n}` in every text replaced by `n`.
fn numbered(value: &serde_json::Value, n: u32) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(s.replace("{n}", &n.to_string())),
        Value::Array(a) => Value::Array(a.iter().map(|v| numbered(v, n)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.replace("{n}", &n.to_string()), numbered(v, n)))
                .collect(),
        ),
        other => other.clone(),
    }
}
