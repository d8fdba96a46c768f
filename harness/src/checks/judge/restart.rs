//! `restart_waits_for_heal`: a sidecar restarted while the link is cut must not get
//! ready (it has no config to serve with) until the link heals, and must get ready soon
//! after. This is what App Mesh's `initial_fetch_timeout` 0 promises; a sidecar that
//! gives up waiting would serve with no routes.

use super::{Judged, measure, phase_window, samples, secs, verdict};
use crate::checks::names;
use crate::timeline::{Entry, Event};

/// When each sidecar restarted in the phase was killed and started again:
/// (node, killed at, started at).
fn restarts(entries: &[Entry], start_ms: u64, end_ms: u64) -> Vec<(String, u64, u64)> {
    let mut found: Vec<(String, u64, u64)> = Vec::new();
    for e in entries {
        match &e.event {
            Event::FaultApplied { disruption, .. } if (start_ms..end_ms).contains(&e.t_ms) => {
                if let Some(node) = disruption.restarted_sidecar() {
                    found.push((node.to_string(), e.t_ms, e.t_ms));
                }
            }
            Event::FaultRemoved { disruption } => {
                let Some(node) = disruption.restarted_sidecar() else {
                    continue;
                };
                if let Some(open) = found
                    .iter_mut()
                    .rev()
                    .find(|(n, killed, started)| n == node && killed == started)
                {
                    open.2 = e.t_ms;
                }
            }
            _ => {}
        }
    }
    found
}

/// Judges every sidecar restarted during `phase`.
pub(super) fn waits_for_heal(entries: &[Entry], phase: &str, within_ms: u64) -> Judged {
    let w = phase_window(entries, phase)?;
    let restarted = restarts(entries, w.start_ms, w.end_ms);
    if restarted.is_empty() {
        return Err(format!("no sidecar was restarted during phase `{phase}`"));
    }
    let mut measurements = Vec::new();
    let mut problems = Vec::new();
    let mut unseen = Vec::new();
    let mut first_failure = None;
    for (node, _killed, started) in &restarted {
        let after: Vec<_> = samples(entries, node).filter(|s| s.t > *started).collect();
        let waited = after
            .iter()
            .filter(|s| s.t < w.end_ms && s.ready == Some(false))
            .count();
        if let Some(early) = after
            .iter()
            .find(|s| s.t < w.end_ms && s.ready == Some(true))
        {
            problems.push(format!(
                "{node} was ready {} after its restart, {} before the heal: it serves without config",
                secs(early.t - started),
                secs(w.end_ms - early.t)
            ));
            first_failure.get_or_insert(early.t);
            continue;
        }
        if waited == 0 {
            unseen.push(node.as_str());
            continue;
        }
        let ready = after
            .iter()
            .find(|s| s.t >= w.end_ms && s.ready == Some(true));
        match ready {
            Some(s) if s.t - w.end_ms <= within_ms => {
                measurements.push(measure(
                    names::READY_AFTER_HEAL_MS.of(node),
                    (s.t - w.end_ms) as f64,
                    "ms",
                    Some(within_ms as f64),
                ));
                measurements.push(measure(
                    names::NOT_READY_MS.of(node),
                    (s.t - started) as f64,
                    "ms",
                    None,
                ));
            }
            Some(s) => {
                problems.push(format!(
                    "{node} got ready {} after the heal (bound {})",
                    secs(s.t - w.end_ms),
                    secs(within_ms)
                ));
                first_failure.get_or_insert(w.end_ms + within_ms);
            }
            None => {
                problems.push(format!(
                    "{node} was not ready by the end of the run ({waited} samples not ready before the heal)"
                ));
                first_failure.get_or_insert(w.end_ms + within_ms);
            }
        }
    }
    // A failure seen stands; otherwise a sidecar nobody saw leaves the check unjudged.
    if problems.is_empty() && !unseen.is_empty() {
        return Err(format!(
            "the admin endpoint of {} never answered between the restart and the end of `{phase}`",
            unseen.join(", ")
        ));
    }
    let passed = problems.is_empty();
    let detail = if passed {
        let each: Vec<String> = restarted
            .iter()
            .filter_map(|(node, _, _)| {
                let m = measurements
                    .iter()
                    .find(|m| m.name == names::READY_AFTER_HEAL_MS.of(node))?;
                Some(format!("{node} {}", secs(m.value as u64)))
            })
            .collect();
        format!(
            "every sidecar restarted during `{phase}` stayed not ready until the heal, then got ready within {} (after the heal: {})",
            secs(within_ms),
            each.join(", ")
        )
    } else {
        problems.join("; ")
    };
    Ok(verdict(passed, detail, measurements, first_failure))
}
