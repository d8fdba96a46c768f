//! A phase's `containers:` list: one action per entry, a part the run has, `at` only for
//! restarts and within the phase, one fault per part, no clash with the phase's other
//! faults.

use super::parse_at;
use crate::mesh::Mesh;
use crate::plan::{Action, ContainerFault, Part};
use crate::source::InputError;
use crate::suite::schema::{ContainerFaultSpec, Phase};
use marked_yaml::Spanned;
use std::collections::BTreeSet;
use std::path::Path;

/// The planned fault of a `containers:` entry (already validated).
/// An entry with no action at all is reported at its phase's name.
pub(crate) fn container_fault(
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
        span: *part.span(),
    })
}

/// Checks one phase's `containers:` list against the topology and the phase.
pub(super) fn validate_containers(
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
            (Some(at), false) if fault.at >= phase.duration.min => {
                return Err(InputError::spanned(
                    path,
                    at,
                    format!(
                        "restart at {} is not within phase `{}` ({}s)",
                        **at,
                        *phase.name,
                        phase.duration.min.as_secs_f64()
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
        if fault.part == Part::FaultProxy && fault.action == Action::Restart {
            return err(
                "the fault proxy's proxies live in its memory: a restart would lose the link; disconnect or pause it instead".into(),
            );
        }
        if fault.part == Part::FaultProxy
            && fault.action != Action::Disconnect
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
