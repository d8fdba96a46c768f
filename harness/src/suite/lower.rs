//! Lowering: a validated suite as written made into a [`Plan`] (names resolved, defaults
//! filled in, phases placed on the run's clock).

use super::schema::{
    ContainerFaultSpec, ControlPlaneState, ObserveSpec, Phase, SoakSpec, Suite, XdsConfig,
};
use super::validate::{container_fault, parse_at_range};
use crate::mesh::Mesh;
use crate::plan::{
    Images, JourneysPlan, Link, LoadPlan, Observe, Overhead, PhaseDraws, Plan, PlannedPhase, Site,
    Soak, SoakLength, StopWhen, SuccessBelow, XdsSettings,
};
use crate::source::InputError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The inputs of a plan besides the suite: where it and its mesh came from.
pub(super) struct Sources {
    /// The suite file.
    pub suite_path: PathBuf,
    /// Its text.
    pub suite_text: String,
    /// The mesh file.
    pub mesh_path: PathBuf,
    /// The mesh.
    pub mesh: Mesh,
}

/// The plan of `suite` (already validated against `sources.mesh`).
pub(super) fn plan(suite: Suite, sources: Sources) -> Result<Plan, InputError> {
    let path = sources.suite_path.as_path();
    let mut sites = BTreeMap::new();
    for n in &suite.topology.outpost {
        sites.insert(n.to_string(), Site::Outpost);
    }
    for n in &suite.topology.region {
        sites.insert(n.to_string(), Site::Region);
    }
    let mut start = Duration::ZERO;
    let mut phases = Vec::new();
    for p in &suite.phases {
        phases.push(phase(path, p, start)?);
        start += p.duration.min;
    }
    let load = &suite.load;
    let images = suite.images.as_ref();
    Ok(Plan {
        suite_path: sources.suite_path.clone(),
        suite_text: sources.suite_text,
        name: suite.name.to_string(),
        mesh_path: sources.mesh_path,
        mesh: sources.mesh,
        sites,
        link: suite.link.as_ref().map(|l| **l).unwrap_or_default(),
        link_span: suite.link.as_ref().map(|l| *l.span()),
        xds: xds_settings(&suite.xds),
        xds_per_node: suite
            .xds
            .per_node
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect(),
        xds_forced: false,
        load: LoadPlan {
            through: load.through.to_string(),
            service: load.service.to_string(),
            rate: *load.rate,
            timeout: load.timeout.map_or(Duration::from_secs(1), |t| t.0),
            generator: load.generator.as_ref().map(|g| **g).unwrap_or_default(),
            journeys: load.journeys.as_ref().map(|j| JourneysPlan {
                calls: j.calls.to_string(),
                users: j.users.as_ref().map_or(4, |u| **u),
            }),
        },
        phases,
        checks: suite.checks.clone(),
        observe: suite.observe.as_ref().map(observe).unwrap_or_default(),
        expect_failing: suite.expect_failing.iter().map(|n| n.to_string()).collect(),
        expect_stopped: suite.expect_stopped.as_ref().is_some_and(|s| **s),
        images: Images {
            envoy: images.and_then(|i| i.envoy.clone()),
            fault_proxy: images.and_then(|i| i.fault_proxy.clone()),
        },
        soak: suite.soak.as_ref().map(soak),
    })
}

/// What to sample as the suite writes it.
fn observe(spec: &ObserveSpec) -> Observe {
    Observe {
        sidecars: spec.sidecars.as_ref().map(|s| **s).unwrap_or_default(),
        every: spec.every.as_ref().map(|d| d.0),
    }
}

/// A soak as the suite writes it: one hour by default.
fn soak(spec: &SoakSpec) -> Soak {
    let length = match (&spec.cycles, &spec.for_) {
        (Some(n), _) => SoakLength::Cycles(**n),
        (None, Some(d)) => SoakLength::For(d.0),
        (None, None) => SoakLength::For(Duration::from_secs(3600)),
    };
    let stop = spec.stop_when.as_ref();
    Soak {
        length,
        warm_up: spec.warm_up.map_or(Duration::ZERO, |d| d.0),
        stop_when: StopWhen {
            success_below: stop
                .and_then(|s| s.outpost_success_below.as_ref())
                .map(|b| SuccessBelow {
                    ratio: *b.ratio,
                    seconds: b.for_.0.as_secs().max(1),
                }),
            failed_cycles: stop.and_then(|s| s.failed_cycles.as_ref()).map(|n| **n),
        },
    }
}

/// The suite's xDS settings, App Mesh's where it says nothing.
fn xds_settings(xds: &XdsConfig) -> XdsSettings {
    let defaults = XdsSettings::default();
    let keepalive = xds.keepalive.as_ref();
    let backoff = xds.backoff.as_ref();
    XdsSettings {
        variant: xds.variant,
        keepalive: keepalive.map(|k| k.kind).unwrap_or_default(),
        keepalive_interval: keepalive.map_or(defaults.keepalive_interval, |k| k.interval.0),
        keepalive_timeout: keepalive.map_or(defaults.keepalive_timeout, |k| k.timeout.0),
        backoff_base: backoff.map_or(defaults.backoff_base, |b| b.base.0),
        backoff_max: backoff.map_or(defaults.backoff_max, |b| b.max.0),
        initial_fetch_timeout: xds
            .initial_fetch_timeout
            .map_or(defaults.initial_fetch_timeout, |t| t.0),
    }
}

/// One phase placed at `start`: its shortest length, first fault and earliest times,
/// with what it draws.
fn phase(path: &Path, p: &Phase, start: Duration) -> Result<PlannedPhase, InputError> {
    let mut draws = PhaseDraws {
        duration: p
            .duration
            .is_drawn()
            .then_some((p.duration.min, p.duration.max)),
        ..PhaseDraws::default()
    };
    let mut changes = Vec::new();
    for c in &p.changes {
        let at = parse_at_range(path, &c.at)?;
        let made = c.repeated();
        if made.is_empty() {
            return Err(InputError::spanned(path, &c.at, "expected one change"));
        }
        if at.is_drawn() {
            draws.changes_at.push((changes.len(), at.min, at.max));
        }
        changes.extend(
            made.into_iter()
                .map(|(offset, change)| (at.min + offset, change)),
        );
    }
    let mut faults = Vec::new();
    for (i, f) in p.faults.iter().enumerate() {
        let link = Link::parse(&f.link)
            .ok_or_else(|| InputError::spanned(path, &f.link, "unknown link"))?;
        let choices = f.choices();
        let first = choices
            .first()
            .cloned()
            .ok_or_else(|| InputError::spanned(path, &f.link, "expected a fault"))?;
        if choices.len() > 1 {
            draws.faults.push((i, choices));
        }
        faults.push((link, first));
    }
    Ok(PlannedPhase {
        name: p.name.to_string(),
        start,
        duration: p.duration.min,
        faults,
        changes,
        control_plane_down: p.control_plane == Some(ControlPlaneState::Down),
        containers: containers(path, &p.containers, p)?,
        overhead: p.measure_overhead.as_ref().map(|m| Overhead {
            node: m.node.to_string(),
            connections: m.connections.as_ref().map_or(8, |c| **c),
        }),
        draws,
    })
}

/// A phase's container faults: held ones first, restarts in time order, whatever order
/// they are written in.
fn containers(
    path: &Path,
    specs: &[ContainerFaultSpec],
    p: &Phase,
) -> Result<Vec<crate::plan::ContainerFault>, InputError> {
    let mut faults = specs
        .iter()
        .map(|c| container_fault(path, c, &p.name))
        .collect::<Result<Vec<_>, _>>()?;
    faults.sort_by_key(|f| (!f.action.held(), f.at));
    Ok(faults)
}
