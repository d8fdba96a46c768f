//! Lowering: a validated suite as written made into a [`Plan`] (names resolved, defaults
//! filled in, phases placed on the run's clock).

use super::schema::{ContainerFaultSpec, ControlPlaneState, Phase, Suite, XdsConfig};
use super::validate::{container_fault, parse_at};
use crate::mesh::Mesh;
use crate::plan::{
    Images, JourneysPlan, Link, LoadPlan, Overhead, Plan, PlannedPhase, Site, XdsSettings,
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
        start += p.duration.0;
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
        images: Images {
            envoy: images.and_then(|i| i.envoy.clone()),
            fault_proxy: images.and_then(|i| i.fault_proxy.clone()),
        },
    })
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

/// One phase placed at `start`.
fn phase(path: &Path, p: &Phase, start: Duration) -> Result<PlannedPhase, InputError> {
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
    let faults = p
        .faults
        .iter()
        .map(|f| {
            let link = Link::parse(&f.link)
                .ok_or_else(|| InputError::spanned(path, &f.link, "unknown link"))?;
            Ok((link, f.fault.clone()))
        })
        .collect::<Result<Vec<_>, InputError>>()?;
    Ok(PlannedPhase {
        name: p.name.to_string(),
        start,
        duration: p.duration.0,
        faults,
        changes,
        control_plane_down: p.control_plane == Some(ControlPlaneState::Down),
        containers: containers(path, &p.containers, p)?,
        overhead: p.measure_overhead.as_ref().map(|m| Overhead {
            node: m.node.to_string(),
            connections: m.connections.as_ref().map_or(8, |c| **c),
        }),
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
