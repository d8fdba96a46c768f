//! The phases: names, durations, overhead measurements, link faults and mesh changes
//! (container faults in [`super::containers`]).

use super::containers::validate_containers;
use super::parse_at_range;
use crate::mesh::Mesh;
use crate::mesh::model::join;
use crate::plan::{Fault, Link, LinkKind};
use crate::source::InputError;
use crate::suite::schema::{ControlPlaneState, FaultSpec, MeasureOverhead, Phase, Suite};
use marked_yaml::Spanned;
use std::collections::BTreeSet;
use std::path::Path;

/// Checks every phase; gives their names.
pub(super) fn validate<'a>(
    path: &Path,
    suite: &'a Suite,
    mesh: &Mesh,
    placed: &BTreeSet<&str>,
) -> Result<BTreeSet<&'a str>, InputError> {
    let err = |at: &Spanned<String>, msg: String| Err(InputError::spanned(path, at, msg));
    if suite.phases.is_empty() {
        return Err(InputError::spanned(
            path,
            &suite.name,
            "expected at least one phase",
        ));
    }
    let kind = suite.link.as_ref().map(|l| **l).unwrap_or_default();
    let mut phase_names = BTreeSet::new();
    // Every change is tried on this copy, in order, each on top of the ones before.
    let mut trial = mesh.clone();
    for p in &suite.phases {
        if !phase_names.insert(p.name.as_str()) {
            return err(&p.name, format!("duplicate phase `{}`", *p.name));
        }
        if p.duration.min.is_zero() {
            return err(&p.name, format!("phase `{}` has no duration", *p.name));
        }
        if let Some(m) = &p.measure_overhead {
            overhead(path, p, m, mesh, placed)?;
        }
        validate_containers(path, p, mesh, placed)?;
        for f in &p.faults {
            fault(path, f, kind)?;
        }
        changes(path, p, mesh, &mut trial)?;
    }
    if suite.soak.is_some() {
        // Every cycle makes its changes again, on the mesh the cycle before left.
        for p in &suite.phases {
            changes(path, p, mesh, &mut trial).map_err(|e| InputError {
                message: format!(
                    "a soak repeats its changes every cycle, and the second cycle cannot make this one: {}",
                    e.message
                ),
                ..e
            })?;
        }
    }
    Ok(phase_names)
}

/// A proxy-overhead measurement names a placed node with a listener, sensible
/// connections, and a phase long enough for both halves.
fn overhead(
    path: &Path,
    p: &Phase,
    m: &MeasureOverhead,
    mesh: &Mesh,
    placed: &BTreeSet<&str>,
) -> Result<(), InputError> {
    let err = |at: &Spanned<String>, msg: &str| Err(InputError::spanned(path, at, msg));
    if !placed.contains(m.node.as_str())
        || mesh.node(&m.node).is_none_or(|n| n.listeners.is_empty())
    {
        return err(
            &m.node,
            &format!(
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
    if p.duration.min < std::time::Duration::from_secs(2) {
        return err(
            &m.node,
            "a phase that measures overhead needs at least 2s (half direct, half through the sidecar)",
        );
    }
    Ok(())
}

/// A link fault names a link this kind of link has and one fault (or a list to draw
/// from) it can make.
fn fault(path: &Path, f: &FaultSpec, kind: LinkKind) -> Result<(), InputError> {
    let err = |msg: String| Err(InputError::spanned(path, &f.link, msg));
    match (&f.fault, f.one_of.is_empty()) {
        (Some(_), false) | (None, true) => {
            return err(
                "expected either `fault` or `one_of` (a list of faults to draw from)".into(),
            );
        }
        _ => {}
    }
    let Some(link) = Link::parse(&f.link) else {
        let names: Vec<&str> = Link::EVERY.iter().map(|l| l.as_str()).collect();
        return err(format!(
            "unknown link `{}`; expected one of: {}",
            *f.link,
            names.join(", ")
        ));
    };
    if kind == LinkKind::Packet && link != Link::All {
        return err(format!(
            "a packet link is one wire between the sites; expected link `all`, found `{}`",
            *f.link
        ));
    }
    for choice in f.choices() {
        if let Some(why) = wrong(&choice, kind) {
            return err(why);
        }
    }
    Ok(())
}

/// What is wrong with one fault on this kind of link, if anything.
fn wrong(fault: &Fault, kind: LinkKind) -> Option<String> {
    if let Fault::Flapping {
        every, down_for, ..
    } = fault
        && (every.0.is_zero() || down_for.0.is_zero() || down_for.0 > every.0)
    {
        return Some("expected flapping with `every` and `down_for` above zero and `down_for` at most `every`".into());
    }
    if let Some(why) = kind.cannot(fault) {
        return Some(why.to_string());
    }
    match fault {
        Fault::Loss { percent } if !(0.0..=100.0).contains(percent) => Some(format!(
            "expected a loss from 0 to 100 percent, found {percent}"
        )),
        _ => None,
    }
}

/// A phase's mesh changes: within the phase, with the control plane up, one change
/// each, about a router the mesh has, and each applicable to `trial` (the mesh with
/// every change before it applied).
fn changes(path: &Path, p: &Phase, mesh: &Mesh, trial: &mut Mesh) -> Result<(), InputError> {
    let err = |at: &Spanned<String>, msg: String| Err(InputError::spanned(path, at, msg));
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
        let at = parse_at_range(path, &c.at)?;
        let last = match &c.repeat {
            Some(_) if at.is_drawn() => {
                return err(
                    &c.at,
                    "a repeated change starts at a fixed time, not a range".into(),
                );
            }
            Some(r) if *r.times == 0 || r.every.0.is_zero() => {
                return err(
                    &c.at,
                    "expected `repeat` with `every` above zero and `times` at least 1".into(),
                );
            }
            Some(r) => at.max + r.every.0 * (*r.times - 1),
            None => at.max,
        };
        if last >= p.duration.min {
            return err(
                &c.at,
                format!(
                    "change at {} is not within phase `{}` ({}s)",
                    *c.at,
                    *p.name,
                    p.duration.min.as_secs_f64()
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
        for (_, made) in c.repeated() {
            if let Err(e) = made.apply(trial) {
                return err(subject, e);
            }
        }
    }
    Ok(())
}
