//! Link checks: every outpost sidecar reconverges after the heal, notices a silent link
//! in time (or, as predicted, never), and keeps its xDS connection over a degraded one.

use super::{
    Judged, Reconverged, Reconvergence, Sample, at_least, last_change_before,
    lost_control_plane_between, measure, noticed_at, per_node, phase_window, samples, secs,
    verdict,
};
use crate::checks::{Context, names};
use crate::timeline::{Entry, Event, XdsKind};
use std::collections::BTreeSet;

/// Every outpost sidecar ACKs the newest config sent to it, for every type it subscribes,
/// within the bound after the heal.
pub(super) fn reconvergence(
    ctx: &Context,
    entries: &[Entry],
    phase: &str,
    within_ms: u64,
) -> Judged {
    let heal = phase_window(entries, phase)?;
    let latest = last_change_before(entries, heal.start_ms)
        .map(|(_, v, _)| v.to_string())
        .unwrap_or_else(|| "1".into());
    let mut found = Reconvergence::new(within_ms);
    let mut worst = 0;
    for node in &ctx.outpost_nodes {
        let suffix = format!("/virtualNode/{node}");
        let xds: Vec<(u64, &str, XdsKind, &str)> = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::Xds {
                    node: n,
                    type_name,
                    xds,
                    version,
                    ..
                } if n.ends_with(&suffix) => {
                    Some((e.t_ms, type_name.as_str(), *xds, version.as_str()))
                }
                _ => None,
            })
            .collect();
        let types: BTreeSet<&str> = xds
            .iter()
            .filter(|x| x.2 == XdsKind::Push)
            .map(|x| x.1)
            .collect();
        if types.is_empty() {
            return Err(format!("the control plane never pushed to `{node}`"));
        }
        let mut ready_at = Some(heal.start_ms);
        for ty in types {
            // The newest config of this type the control plane sent this sidecar (with
            // delta xDS an unchanged type is not sent again, so this can be older than
            // the newest mesh version).
            let target = xds
                .iter()
                .filter(|x| x.1 == ty && x.2 == XdsKind::Push && x.0 < heal.end_ms)
                .filter_map(|x| x.3.parse::<u64>().ok())
                .max()
                .map(|v| v.to_string())
                .unwrap_or_else(|| latest.clone());
            let acks = || xds.iter().filter(move |x| x.1 == ty && x.2 == XdsKind::Ack);
            // Current at the heal: it had ACKed the target and kept its connection since.
            // Otherwise it must ACK the target after the heal.
            let current_at_heal = acks().rfind(|x| x.0 < heal.start_ms).is_some_and(|x| {
                at_least(x.3, &target)
                    && !lost_control_plane_between(entries, node, x.0, heal.start_ms)
            });
            let at = if current_at_heal {
                Some(heal.start_ms)
            } else {
                acks()
                    .find(|x| heal.contains(x.0) && at_least(x.3, &target))
                    .map(|x| x.0)
            };
            ready_at = match (ready_at, at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        let ms = ready_at.map(|t| t - heal.start_ms);
        worst = worst.max(ms.unwrap_or(0));
        found.record(
            node,
            ms.ok_or_else(|| format!("`{node}` never ACKed version {latest} during `{phase}`")),
        );
    }
    let Reconverged {
        passed,
        per_node,
        measurements,
        slow,
    } = found.finish();
    let detail = if passed {
        format!(
            "all {} outpost sidecars ACKed version {latest} within {} of the heal (bound {}): {}",
            ctx.outpost_nodes.len(),
            secs(worst),
            secs(within_ms),
            per_node.join(", ")
        )
    } else {
        format!(
            "not reconverged within {} of the heal: {}",
            secs(within_ms),
            slow.join("; ")
        )
    };
    Ok(verdict(
        passed,
        detail,
        measurements,
        Some(heal.start_ms + within_ms),
    ))
}

/// With a bound: every node noticed the partition within it. Without: none noticed it.
pub(super) fn partition_noticed(
    nodes: &[String],
    entries: &[Entry],
    phase: &str,
    within_ms: Option<u64>,
) -> Judged {
    let w = phase_window(entries, phase)?;
    let mut measurements = Vec::new();
    let mut wrong = Vec::new();
    let mut failed_at: Option<u64> = None;
    for node in nodes {
        if !samples(entries, node).any(|s| w.contains(s.t) && s.connected.is_some()) {
            return Err(format!(
                "no connection samples of `{node}` during `{phase}`"
            ));
        }
        match (noticed_at(entries, node, w), within_ms) {
            (Some(t), Some(bound)) => {
                let ms = t - w.start_ms;
                measurements.push(measure(
                    names::NOTICED_MS.of(node),
                    ms as f64,
                    "ms",
                    Some(bound as f64),
                ));
                if ms > bound {
                    wrong.push(format!("`{node}` noticed after {}", secs(ms)));
                    failed_at = Some(failed_at.map_or(t, |f| f.min(t)));
                }
            }
            (None, Some(_)) => {
                wrong.push(format!("`{node}` never noticed"));
                failed_at = Some(w.end_ms);
            }
            (Some(t), None) => {
                wrong.push(format!("`{node}` noticed after {}", secs(t - w.start_ms)));
                failed_at = Some(failed_at.map_or(t, |f| f.min(t)));
            }
            (None, None) => {}
        }
    }
    let passed = wrong.is_empty();
    let detail = match (passed, within_ms) {
        (true, Some(bound)) => {
            let each = per_node(&measurements, names::NOTICED_MS);
            format!(
                "the partition was noticed within {} by {}",
                secs(bound),
                each.join(", ")
            )
        }
        (true, None) => format!(
            "as predicted, {} never noticed the partition during `{phase}`",
            nodes.join(", ")
        ),
        (false, Some(_)) => format!("partition not noticed in time: {}", wrong.join("; ")),
        (false, None) => format!(
            "expected the partition to go unnoticed, but {}",
            wrong.join("; ")
        ),
    };
    Ok(verdict(passed, detail, measurements, failed_at))
}

/// No outpost sidecar loses its xDS connection during the phase.
pub(super) fn xds_stays_connected(ctx: &Context, entries: &[Entry], phase: &str) -> Judged {
    let w = phase_window(entries, phase)?;
    let mut lost = Vec::new();
    let mut failed_at: Option<u64> = None;
    for node in &ctx.outpost_nodes {
        let before = samples(entries, node)
            .filter(|s| s.t < w.start_ms)
            .filter_map(|s| s.keepalive_timeouts)
            .last();
        let during: Vec<Sample> = samples(entries, node).filter(|s| w.contains(s.t)).collect();
        if !during.iter().any(|s| s.connected.is_some()) {
            return Err(format!(
                "no connection samples of `{node}` during `{phase}`"
            ));
        }
        let broke = during.iter().find(|s| {
            s.connected == Some(false) || (before.is_some() && s.keepalive_timeouts > before)
        });
        if let Some(s) = broke {
            lost.push(format!("`{node}` at {}", secs(s.t)));
            failed_at = Some(failed_at.map_or(s.t, |f| f.min(s.t)));
        }
    }
    let passed = lost.is_empty();
    let detail = if passed {
        format!(
            "all {} outpost sidecars kept their xDS connection through `{phase}`",
            ctx.outpost_nodes.len()
        )
    } else {
        format!("xDS connection lost during `{phase}`: {}", lost.join(", "))
    };
    Ok(verdict(passed, detail, Vec::new(), failed_at))
}
