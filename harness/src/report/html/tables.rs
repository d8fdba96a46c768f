//! The page's tables: reconvergence per proxy, propagation per change, load per phase,
//! the disruptions with what was set to make them, and the sidecar state saved at the
//! end of each phase.

use super::esc;
use crate::checks::names::{self, Keyed};
use crate::checks::{Measurement, PhaseFigures, Verdict};
use crate::plan::CheckName;
use crate::timeline::{Entry, Event};
use std::fmt::Write;

/// Every measurement of `verdict` in `family`, as (key, measurement).
fn measured(verdict: &Verdict, family: Keyed) -> impl Iterator<Item = (&str, &Measurement)> {
    verdict
        .measurements
        .iter()
        .filter_map(move |m| Some((family.key(&m.name)?, m)))
}

/// `1,234 ms`, or `1.2 s` from ten seconds up.
fn ms_text(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// Reconvergence after each heal: one row per proxy, then the distribution.
pub(super) fn reconvergence(html: &mut String, verdicts: &[Verdict]) {
    let heals: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| CheckName::of_verdict(&v.name) == Some(CheckName::Reconvergence))
        .collect();
    if heals.is_empty() {
        return;
    }
    html.push_str("<h2>Reconvergence after each heal</h2><table><tr><th>check</th><th>proxy</th><th class=\"num\">heal to ACK of the newest config</th><th class=\"num\">bound</th></tr>");
    for v in heals {
        for (node, m) in measured(v, names::RECONVERGENCE_MS) {
            let bound = m.bound.map(ms_text).unwrap_or_default();
            let over = m.bound.is_some_and(|b| m.value > b);
            let _ = write!(
                html,
                r#"<tr><td>{}</td><td>{}</td><td class="num{}">{}</td><td class="num">{bound}</td></tr>"#,
                esc(&v.name),
                esc(node),
                if over { " FAIL" } else { "" },
                ms_text(m.value)
            );
        }
        let spread: Vec<String> = measured(v, names::RECONVERGENCE_SPREAD_MS)
            .map(|(name, m)| format!("{name} {}", ms_text(m.value)))
            .collect();
        if !spread.is_empty() {
            let _ = write!(
                html,
                r#"<tr><td>{}</td><td><i>across proxies</i></td><td class="num" colspan="2">{}</td></tr>"#,
                esc(&v.name),
                spread.join(", ")
            );
        }
    }
    html.push_str("</table>");
}

/// Propagation: the slowest ACK of each change, then the distribution over all ACKs.
pub(super) fn propagation(html: &mut String, verdicts: &[Verdict]) {
    let checks: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| CheckName::of_verdict(&v.name) == Some(CheckName::Propagation))
        .collect();
    if checks.is_empty() {
        return;
    }
    html.push_str("<h2>Propagation of each change</h2><table><tr><th>check</th><th>change (config version)</th><th class=\"num\">slowest ACK after the change</th><th class=\"num\">bound</th></tr>");
    for v in checks {
        for (version, m) in measured(v, names::PROPAGATION_MAX_MS) {
            let over = m.bound.is_some_and(|b| m.value > b);
            let _ = write!(
                html,
                r#"<tr><td>{}</td><td>{}</td><td class="num{}">{}</td><td class="num">{}</td></tr>"#,
                esc(&v.name),
                esc(version),
                if over { " FAIL" } else { "" },
                ms_text(m.value),
                m.bound.map(ms_text).unwrap_or_default()
            );
        }
        let overall: Vec<String> = ["p50", "p99", "max"]
            .iter()
            .filter_map(|q| {
                let m = v.measurement(&names::PROPAGATION_MS.of(q))?;
                Some(format!("{q} {}", ms_text(m.value)))
            })
            .collect();
        let acks = v
            .measurement(names::PROPAGATION_ACKS)
            .map_or(0.0, |m| m.value);
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td><i>all {acks:.0} ACKs</i></td><td class="num" colspan="2">{}</td></tr>"#,
            esc(&v.name),
            overall.join(", ")
        );
    }
    html.push_str("</table>");
}

/// Per phase: requests, success, throughput, and the response time (from the intended
/// send), the service time (from the actual send) and the generator's lag.
pub(super) fn phases(html: &mut String, phases: &[PhaseFigures]) {
    if phases.is_empty() {
        return;
    }
    html.push_str("<h2>Load per phase</h2><table><tr><th>phase</th><th class=\"num\">requests</th><th class=\"num\">ok</th><th class=\"num\">ok/s</th><th>time</th><th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th></tr>");
    for p in phases {
        let kinds = [
            ("response", p.latency_ms),
            ("service", p.service_ms),
            ("generator lag", p.generator_lag_ms),
        ];
        let rows: Vec<String> = kinds
            .iter()
            .filter(|(what, l)| l.is_some() || *what == "response")
            .map(|(what, l)| {
                let cells = match l {
                    Some(l) => [l.p50, l.p99, l.p999, l.max]
                        .map(|v| format!(r#"<td class="num">{v:.2} ms</td>"#))
                        .concat(),
                    None => r#"<td class="num" colspan="4">no answers</td>"#.to_string(),
                };
                format!("<td>{what}</td>{cells}")
            })
            .collect();
        let _ = write!(
            html,
            r#"<tr><td rowspan="{n}">{}</td><td class="num" rowspan="{n}">{}</td><td class="num" rowspan="{n}">{:.1}%</td><td class="num" rowspan="{n}">{:.0}</td>{}</tr>"#,
            esc(&p.phase),
            p.requests,
            p.success_ratio() * 100.0,
            p.ok_per_second,
            rows[0],
            n = rows.len(),
        );
        for row in &rows[1..] {
            let _ = write!(html, "<tr>{row}</tr>");
        }
    }
    html.push_str("</table><p><b>Response time</b> is measured from each request's intended send time (what a user waits, a stalled target included); <b>service time</b> from when it was actually sent (what the mesh took); <b>generator lag</b> is how late tether sent it. Each is merged without loss from every second's histogram.</p>");
}

/// Every fault put on a link, when, and what was set to make it.
pub(super) fn faults(html: &mut String, entries: &[Entry]) {
    let applied: Vec<(u64, String, String, &[String])> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::FaultApplied {
                disruption,
                applied,
                draw,
            } => Some((
                e.t_ms,
                disruption.target(),
                draw.label.clone(),
                applied.as_slice(),
            )),
            _ => None,
        })
        .collect();
    if applied.is_empty() {
        return;
    }
    html.push_str("<h2>Faults applied</h2><table><tr><th>time</th><th>on</th><th>fault</th><th>what was set (toxics and their attributes, the packet link, or the container)</th></tr>");
    for (t, target, label, set) in applied {
        let set: Vec<String> = set
            .iter()
            .map(|line| format!("<code>{}</code>", esc(line)))
            .collect();
        let _ = write!(
            html,
            "<tr><td>{:.3} s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t as f64 / 1000.0,
            esc(&target),
            esc(&label),
            set.join("<br>")
        );
    }
    html.push_str("</table>");
}

/// Each phase's saved sidecar state (`sidecars_dumped` on the timeline): phase to its
/// folder and the sidecars saved; a phase that came again keeps its last.
pub(super) fn dumps(entries: &[Entry]) -> std::collections::BTreeMap<&str, (&str, &[String])> {
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::SidecarsDumped {
                phase,
                dir,
                sidecars,
            } => Some((phase.as_str(), (dir.as_str(), sidecars.as_slice()))),
            _ => None,
        })
        .collect()
}

/// The saved sidecar state, a row per phase with a link to each file.
pub(super) fn sidecar_state(html: &mut String, entries: &[Entry]) {
    let dumps = dumps(entries);
    if dumps.is_empty() {
        return;
    }
    html.push_str("<h2>Sidecar state at the end of each phase</h2>");
    html.push_str(
        "<table><tr><th>phase</th><th>sidecar: config_dump (with EDS), clusters, stats</th></tr>",
    );
    for (phase, (dir, sidecars)) in dumps {
        let links: Vec<String> = sidecars
            .iter()
            .map(|node| {
                let at = |file: &str| esc(&format!("{dir}/{node}/{file}"));
                format!(
                    r#"{}: <a href="{}">config_dump</a>, <a href="{}">clusters</a>, <a href="{}">stats</a>"#,
                    esc(node),
                    at("config_dump.json"),
                    at("clusters.txt"),
                    at("stats.txt")
                )
            })
            .collect();
        let links = if links.is_empty() {
            "no sidecar answered".to_string()
        } else {
            links.join("<br>")
        };
        let _ = write!(
            html,
            r#"<tr><td id="sidecars-{}">{}</td><td>{links}</td></tr>"#,
            esc(phase),
            esc(phase)
        );
    }
    html.push_str("</table>");
}
