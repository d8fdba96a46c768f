//! The checks that read the control plane's xDS log, judged instead from what each Envoy
//! reports, for a control plane that gives no log (a target's foreign xDS server). Their
//! times are only as fine as the sampling (every 250 ms for a small mesh), and the detail
//! says so.

use super::{
    Judged, Reconverged, Reconvergence, Sample, at_least, changes_in, last_change_before, measure,
    p50_p99_max, phase_window, samples, secs, verdict,
};
use crate::checks::{Context, names};
use crate::timeline::Entry;

/// Has `s` the change of `version` (a counter, or any version text), given the routes
/// version it served before the change (`before`)? With no version known, a routes
/// version other than `before` is the change.
pub(super) fn has_change(s: &Sample, version: &str, before: Option<&str>) -> bool {
    match s.route {
        Some(route) if !version.is_empty() => at_least(route, version),
        Some(route) => Some(route) != before,
        None => false,
    }
}

/// Why `node` did not serve the change made at `t`, in words: it rejected an update
/// since (its `update_rejected` grew), or it never got it.
fn not_served(entries: &[Entry], node: &str, t: u64) -> String {
    let rejected = |s: Sample| s.rejected;
    let before = samples(entries, node)
        .filter(|s| s.t < t)
        .filter_map(rejected)
        .last();
    let after = samples(entries, node).filter_map(rejected).last();
    match (before, after) {
        (Some(b), Some(a)) if a > b => format!(
            "`{node}` never served the change made at {}: it rejected {} update(s) since (update_rejected {b} -> {a})",
            secs(t),
            a - b
        ),
        _ => format!("`{node}` never served the change made at {}", secs(t)),
    }
}

/// The routes version `node` served last before `t`.
pub(super) fn route_before<'a>(entries: &'a [Entry], node: &'a str, t: u64) -> Option<&'a str> {
    samples(entries, node)
        .filter(|s| s.t < t)
        .filter_map(|s| s.route)
        .last()
}

/// Every outpost sidecar is connected to its control plane again, serving the config it
/// ends the phase with, within the bound after the heal; and a change made before the
/// heal is in that config.
pub(super) fn reconvergence(
    ctx: &Context,
    entries: &[Entry],
    phase: &str,
    within_ms: u64,
) -> Judged {
    let heal = phase_window(entries, phase)?;
    let change = last_change_before(entries, heal.start_ms);
    let mut found = Reconvergence::new(within_ms);
    for node in &ctx.outpost_nodes {
        let during: Vec<Sample> = samples(entries, node)
            .filter(|s| heal.contains(s.t))
            .collect();
        let last = during
            .iter()
            .rfind(|s| s.has_config())
            .ok_or_else(|| format!("`{node}` reported no config during `{phase}`"))?;
        if let Some((at, version, _)) = change {
            let before = route_before(entries, node, at);
            if !has_change(last, version, before) {
                found.record(node, Err(not_served(entries, node, at)));
                continue;
            }
        }
        let back = during
            .iter()
            .find(|s| s.connected == Some(true) && s.config() == last.config());
        found.record(
            node,
            back.map(|s| s.t - heal.start_ms).ok_or_else(|| {
                format!("`{node}` never reported itself connected during `{phase}`")
            }),
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
            "all {} outpost sidecars were connected and serving their final config within the bound {} of the heal, as each Envoy reported it (sampled, no xDS log): {}",
            ctx.outpost_nodes.len(),
            secs(within_ms),
            per_node.join(", ")
        )
    } else {
        format!(
            "not reconverged within {} of the heal (as each Envoy reported it; no xDS log): {}",
            secs(within_ms),
            slow.join("; ")
        )
    };
    Ok(verdict(
        passed,
        detail,
        measurements,
        (!passed).then_some(heal.end_ms),
    ))
}

/// Every change made in the phase is served by every sidecar it affects within the
/// bound, as the sidecars report their routes version.
pub(super) fn propagation(entries: &[Entry], phase: &str, within_ms: u64) -> Judged {
    let w = phase_window(entries, phase)?;
    let changes = changes_in(entries, w, phase)?;
    let mut delays = Vec::new();
    let mut missing = Vec::new();
    for (t, version, affects) in &changes {
        for node in affects.iter() {
            if samples(entries, node).next().is_none() {
                return Err(format!(
                    "`{node}` was never sampled: nothing to judge it by"
                ));
            }
            let before = route_before(entries, node, *t);
            match samples(entries, node).find(|s| s.t >= *t && has_change(s, version, before)) {
                Some(s) => delays.push(s.t - t),
                None => missing.push(not_served(entries, node, *t)),
            }
        }
    }
    delays.sort_unstable();
    let (p50, p99, max) = p50_p99_max(&delays);
    let measurements = vec![
        measure(names::PROPAGATION_MS.of("p50"), p50 as f64, "ms", None),
        measure(names::PROPAGATION_MS.of("p99"), p99 as f64, "ms", None),
        measure(
            names::PROPAGATION_MS.of("max"),
            max as f64,
            "ms",
            Some(within_ms as f64),
        ),
    ];
    let passed = missing.is_empty() && max <= within_ms;
    let mut detail = format!(
        "{} changes were served by {} sidecars, as each Envoy reported its routes (sampled, no xDS log): p50 {p50} ms, p99 {p99} ms, max {max} ms (bound {within_ms} ms)",
        changes.len(),
        delays.len()
    );
    if !missing.is_empty() {
        detail.push_str(&format!("; {}", missing.join("; ")));
    }
    Ok(verdict(
        passed,
        detail,
        measurements,
        (!passed).then_some(w.end_ms),
    ))
}
