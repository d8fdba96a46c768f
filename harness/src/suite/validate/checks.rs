//! The checks: bounds in range, phases and nodes that exist, something to judge.

use super::containers::container_fault;
use crate::mesh::model::join;
use crate::plan::{Action, Check, Part};
use crate::source::InputError;
use crate::suite::schema::{Phase, Suite};
use marked_yaml::Spanned;
use std::collections::BTreeSet;
use std::path::Path;

/// Checks every check of the suite against its phases and topology.
pub(super) fn validate(
    path: &Path,
    suite: &Suite,
    phase_names: &BTreeSet<&str>,
) -> Result<(), InputError> {
    if suite.checks.is_empty() {
        return Err(InputError::spanned(
            path,
            &suite.name,
            "expected at least one check",
        ));
    }
    for c in &suite.checks {
        check(path, suite, c, phase_names)?;
    }
    expect_failing(path, suite)
}

/// Each check a negative control expects to fail is one of its checks, named once; one
/// that expects to be stopped is a soak with a stop condition.
fn expect_failing(path: &Path, suite: &Suite) -> Result<(), InputError> {
    if let Some(stopped) = suite.expect_stopped.as_ref().filter(|s| ***s)
        && suite.soak.as_ref().is_none_or(|s| s.stop_when.is_none())
    {
        return Err(InputError::spanned(
            path,
            stopped,
            "`expect_stopped` needs a soak with `stop_when`, the condition expected to stop it",
        ));
    }
    let names: BTreeSet<&str> = suite.checks.iter().map(|c| c.name().as_str()).collect();
    let mut seen = BTreeSet::new();
    for name in &suite.expect_failing {
        if !names.contains(name.as_str()) {
            return Err(InputError::spanned(
                path,
                name,
                format!(
                    "`expect_failing` names `{}`, which is not a check of this suite; expected one of: {}",
                    **name,
                    join(&names)
                ),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(InputError::spanned(
                path,
                name,
                format!("`{}` is named twice in `expect_failing`", **name),
            ));
        }
    }
    Ok(())
}

/// One check: its share in range, its nodes on the outpost, its phase known, and for
/// `restart_waits_for_heal` a restart to judge.
fn check(
    path: &Path,
    suite: &Suite,
    c: &Check,
    phase_names: &BTreeSet<&str>,
) -> Result<(), InputError> {
    let err = |at: &Spanned<String>, msg: String| Err(InputError::spanned(path, at, msg));
    if let Some(share) = share(c).filter(|s| !(0.0..=1.0).contains(&***s)) {
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
    if let Check::MemoryDrift {
        phase,
        max_per_hour,
        parts,
        ..
    } = c
    {
        return memory_drift(
            path,
            suite,
            phase.as_ref(),
            max_per_hour,
            parts,
            phase_names,
        );
    }
    let Some(phase) = c.phase() else {
        return Ok(());
    };
    known_phase(path, phase, phase_names)?;
    // An outpost sidecar: a region one reaches the control plane without the link.
    let outpost = |n: &str| suite.topology.outpost.iter().any(|o| o.as_str() == n);
    let restarts_sidecar = |p: &Phase| {
        p.containers.iter().any(|c| {
            container_fault(path, c, &p.name).is_ok_and(|f| {
                f.action == Action::Restart && matches!(&f.part, Part::Sidecar(n) if outpost(n))
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
    Ok(())
}

/// A phase the suite has.
fn known_phase(
    path: &Path,
    phase: &Spanned<String>,
    phase_names: &BTreeSet<&str>,
) -> Result<(), InputError> {
    if phase_names.contains(phase.as_str()) {
        return Ok(());
    }
    Err(InputError::spanned(
        path,
        phase,
        format!(
            "unknown phase `{}`; expected one of: {}",
            **phase,
            join(phase_names)
        ),
    ))
}

/// `memory_drift`: a bound above zero, parts the run has, and in a soak no phase (it
/// judges every cycle together).
fn memory_drift(
    path: &Path,
    suite: &Suite,
    phase: Option<&Spanned<String>>,
    max_per_hour: &Spanned<crate::source::Bytes>,
    parts: &[Spanned<String>],
    phase_names: &BTreeSet<&str>,
) -> Result<(), InputError> {
    let err = |at: &Spanned<String>, msg: String| Err(InputError::spanned(path, at, msg));
    if max_per_hour.0 <= 0.0 {
        return Err(InputError::spanned(
            path,
            max_per_hour,
            "expected a growth per hour above zero, such as `1MiB`",
        ));
    }
    if let Some(phase) = phase {
        if suite.soak.is_some() {
            return err(
                phase,
                "in a soak memory_drift judges every cycle together: leave out `phase`".into(),
            );
        }
        known_phase(path, phase, phase_names)?;
    }
    let nodes = suite.topology.outpost.iter().chain(&suite.topology.region);
    let mut known: BTreeSet<String> = nodes.map(|n| format!("envoy/{}", **n)).collect();
    known.extend(["control-plane".to_string(), "tether".to_string()]);
    if let Some(part) = parts.iter().find(|p| !known.contains(p.as_str())) {
        let known: BTreeSet<&str> = known.iter().map(String::as_str).collect();
        return err(
            part,
            format!(
                "unknown part `{}`; expected one of: {}",
                **part,
                join(&known)
            ),
        );
    }
    Ok(())
}

/// The share (0-1) a check is bounded by, if it has one.
fn share(c: &Check) -> Option<&Spanned<f64>> {
    match c {
        Check::OutpostTrafficFlows {
            min_success_ratio, ..
        }
        | Check::JourneysSucceed {
            min_success_ratio, ..
        } => Some(min_success_ratio),
        Check::ChangeAppliedAfterHeal { min_share, .. } => min_share.as_ref(),
        Check::ProxyOverhead {
            min_throughput_ratio,
            ..
        } => Some(min_throughput_ratio),
        _ => None,
    }
}
