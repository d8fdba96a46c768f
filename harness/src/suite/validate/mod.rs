//! Validation of a suite as written against its mesh, by section; every error names the
//! file, line and column of what is wrong, and what was expected there.

mod checks;
mod containers;
mod phases;

pub(super) use containers::container_fault;

use super::schema::Suite;
use crate::mesh::Mesh;
use crate::mesh::model::join;
use crate::plan::{Generator, Sidecars};
use crate::source::InputError;
use marked_yaml::Spanned;
use std::collections::BTreeSet;
use std::path::Path;

/// Checks `suite` against `mesh`, section by section, stopping at the first error.
pub(super) fn validate(path: &Path, suite: &Suite, mesh: &Mesh) -> Result<(), InputError> {
    let placed = topology(path, suite, mesh)?;
    load(path, suite, mesh)?;
    xds(path, suite)?;
    observe(path, suite)?;
    let phase_names = phases::validate(path, suite, mesh, &placed)?;
    checks::validate(path, suite, &phase_names)
}

/// Every placed node is in the mesh, once; `xds.per_node` names placed nodes. Gives the
/// placed nodes.
fn topology<'a>(
    path: &Path,
    suite: &'a Suite,
    mesh: &Mesh,
) -> Result<BTreeSet<&'a str>, InputError> {
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
    Ok(placed)
}

/// The load enters through an outpost node that can reach its service; the generator
/// has what it needs; rate and timeout are in range.
fn load(path: &Path, suite: &Suite, mesh: &Mesh) -> Result<(), InputError> {
    let err = |at: &Spanned<String>, msg: String| Err(InputError::spanned(path, at, msg));
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
    Ok(())
}

/// Keepalive and backoff settings above zero.
fn xds(path: &Path, suite: &Suite) -> Result<(), InputError> {
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
    Ok(())
}

/// A sampling period in range; no `sidecars: none` when a check reads samples.
fn observe(path: &Path, suite: &Suite) -> Result<(), InputError> {
    let Some(spec) = &suite.observe else {
        return Ok(());
    };
    if let Some(every) = &spec.every {
        let range = std::time::Duration::from_millis(50)..=std::time::Duration::from_secs(600);
        if !range.contains(&every.0) {
            return Err(InputError::spanned(
                path,
                every,
                "expected observe.every from 50ms to 10m",
            ));
        }
    }
    if let Some(none) = spec.sidecars.as_ref().filter(|s| ***s == Sidecars::None)
        && let Some(check) = suite.checks.iter().find(|c| c.reads(true).any())
    {
        return Err(InputError::spanned(
            path,
            none,
            format!(
                "`{}` judges from the sidecars' samples, which `sidecars: none` turns off; expected `checked` or `all`",
                check.name()
            ),
        ));
    }
    Ok(())
}

/// The offset of a change or restart within its phase.
pub(super) fn parse_at(
    path: &Path,
    at: &Spanned<String>,
) -> Result<std::time::Duration, InputError> {
    humantime::parse_duration(at.trim()).map_err(|e| {
        InputError::spanned(
            path,
            at,
            format!("expected a duration such as `5s`, found `{}` ({e})", **at),
        )
    })
}

/// A time in a phase that may be drawn: `5s` or `2s..10s`.
pub(super) fn parse_at_range(
    path: &Path,
    at: &Spanned<String>,
) -> Result<crate::source::DurationRange, InputError> {
    crate::source::DurationRange::parse(at).map_err(|e| InputError::spanned(path, at, e))
}
