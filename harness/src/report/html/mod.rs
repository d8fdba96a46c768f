//! `report.html`: one self-contained page (no scripts, no external assets) with the
//! verdicts by area; per-second charts of requests and of latency with disruption
//! windows shaded and mesh changes marked; a lane per sidecar showing its connection to
//! the control plane and the config it serves, and one showing the control plane's
//! pushes and the sidecar's ACKs and NACKs ([`charts`]); tables of reconvergence per
//! proxy, propagation per change and latency per phase, and the disruptions with what
//! was set to make them ([`tables`]); the events; and the suite and mesh as run.

mod bands;
mod charts;
mod sidecars;
mod soak;
mod tables;

use super::RunInfo;
use crate::checks::{Outcome, PhaseFigures, SoakSummary, Verdict};
use crate::plan::Area;
use crate::timeline::{Entry, Event, LoadKind, XdsKind};
use std::fmt::Write;

/// Escape text for HTML (every page tether writes uses this one).
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart's width, and its margins left and right.
const W: f64 = 900.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;

/// The id of the chart marker where `check` failed, for the verdict table to link to.
pub fn failure_anchor(check: &str) -> String {
    let id: String = check
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("failed-{id}")
}

/// Render the page.
pub fn render(
    info: &RunInfo,
    verdicts: &[Verdict],
    phases: &[PhaseFigures],
    entries: &[Entry],
    soak_summary: Option<&SoakSummary>,
) -> String {
    let mut html = header(info, verdicts);
    meta_table(&mut html, info, soak_summary.map(|s| s.cycles_planned));
    verdict_table(&mut html, verdicts, &tables::dumps(entries));
    if let Some(summary) = soak_summary {
        // Hours of seconds are not drawn: the soak's own section summarises per minute
        // and per cycle, and the timeline stays on disk.
        soak::render(&mut html, summary, verdicts);
        inputs(&mut html, info);
        html.push_str("</body></html>\n");
        return html;
    }
    let end_ms = entries.iter().map(|e| e.t_ms).max().unwrap_or(1).max(1);
    let x = |t: u64| LEFT + (t as f64 / end_ms as f64) * (W - LEFT - RIGHT);
    charts::requests(&mut html, entries, verdicts, &x, end_ms);
    sidecars::lanes(&mut html, entries, &x, end_ms);
    charts::latency(&mut html, entries, verdicts, &x, end_ms);
    sidecars::xds(&mut html, entries, &x, end_ms);
    tables::reconvergence(&mut html, verdicts);
    tables::propagation(&mut html, verdicts);
    tables::phases(&mut html, phases);
    tables::faults(&mut html, entries);
    tables::sidecar_state(&mut html, entries);
    events(&mut html, info, entries);
    html.push_str("</body></html>");
    html.push('\n');
    html
}

/// The page's head, title and verdict word, and a warning when the run did not finish.
fn header(info: &RunInfo, verdicts: &[Verdict]) -> String {
    let passed = info.passed(verdicts);
    let verdict_word = if info.incomplete || info.interrupted {
        "INCOMPLETE"
    } else if info.stopped.is_some() {
        "STOPPED"
    } else if passed {
        "PASSED"
    } else {
        "FAILED"
    };
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tether: {suite}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;max-width:960px;margin:1em auto;padding:0 1em;color:#222}}
h1 span.pass{{color:#16794a}} h1 span.fail{{color:#b3261e}}
table{{border-collapse:collapse;width:100%}} td.num,th.num{{text-align:right;font-variant-numeric:tabular-nums}} td,th{{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}}
table.meta th{{width:11em;font-weight:normal;color:#555}} tr.area th{{background:#f0f0f0}}
.PASS{{color:#16794a;font-weight:bold}} .FAIL{{color:#b3261e;font-weight:bold}} .UNKNOWN{{color:#8a6d00;font-weight:bold}}
p.incomplete{{border-left:4px solid #b3261e;padding:4px 8px;background:#fbeaea}}
svg{{width:100%;height:auto}} pre{{background:#f6f6f6;padding:8px;overflow-x:auto;white-space:pre-wrap}}
code{{overflow-wrap:anywhere}}
@media print{{pre{{white-space:pre-wrap}} svg,table{{break-inside:avoid}}}}
</style></head><body>
<h1>{suite}: <span class="{cls}">{verdict_word}</span></h1>
"#,
        suite = esc(&info.suite),
        cls = if passed { "pass" } else { "fail" },
    );
    if let Some(reason) = &info.stopped {
        let _ = write!(
            html,
            r#"<p class="incomplete">STOPPED EARLY by a stop condition: {}. Every fault was removed; the verdicts judge the cycles that finished.</p>"#,
            esc(reason)
        );
    }
    if info.incomplete {
        html.push_str(r#"<p class="incomplete">INCOMPLETE: the timeline has no <code>run_ended</code> entry, so the run was killed or crashed before it finished. The verdicts below judge only what it recorded.</p>"#);
    } else if info.interrupted {
        html.push_str(r#"<p class="incomplete">INCOMPLETE: the run was interrupted before all its phases ran. The verdicts below judge only what it recorded.</p>"#);
    }
    html
}

/// What ran where, and the command that runs it again.
/// (A soak's planned cycles: `--cycles N` with the same seed draws the same ones.)
fn meta_table(html: &mut String, info: &RunInfo, cycles: Option<u32>) {
    let mut flags = match &info.target {
        Some(target) => format!(" --target {}", target.path),
        None if info.backend == "process" => String::new(),
        None => format!(" --backend {}", info.backend),
    };
    if let Some(n) = cycles {
        flags.push_str(&format!(" --cycles {n}"));
    }
    // The same fault proxy, whatever the machine that runs it again has on PATH.
    if info.backend == "process" {
        if info.fault_proxy.starts_with("Toxiproxy (") {
            flags.push_str(" --fault-proxy toxiproxy");
        } else if info.fault_proxy.starts_with("tether's own") {
            flags.push_str(" --fault-proxy tether");
        }
    }
    // `(--xds)` marks a variant the command line chose.
    if let Some(variant) = info.xds.strip_suffix(" (--xds)") {
        flags.push_str(&format!(" --xds {variant}"));
    }
    let mut rows = vec![
        ("started", info.started_at.clone()),
        ("duration", format!("{:.1} s", info.duration_s)),
        ("seed", info.seed.to_string()),
        ("backend", info.backend.clone()),
        ("xDS", info.xds.clone()),
        ("fault proxy", info.fault_proxy.clone()),
        ("Envoy", info.envoy_version.clone()),
        (
            "tether",
            format!("{} (git {})", info.tether_version, info.git_revision),
        ),
        ("machine", info.machine.describe()),
    ];
    if let Some(cost) = &info.observer {
        rows.push(("observer", cost.describe()));
    }
    if let Some(target) = &info.target {
        rows.insert(
            4,
            (
                "target",
                format!(
                    "{} (file {}, SHA-256 {})",
                    target.name, target.path, target.digest
                ),
            ),
        );
        if let (Some(offset), Some(within)) = (target.clock_offset_us, target.clock_uncertainty_us)
        {
            rows.insert(
                5,
                (
                    "clock",
                    format!(
                        "the control plane's clock is {:+.3} ms against the harness's (±{:.3} ms); its xDS log is placed on the timeline with that taken off",
                        offset as f64 / 1000.0,
                        within as f64 / 1000.0
                    ),
                ),
            );
        }
    }
    html.push_str(r#"<table class="meta">"#);
    for (k, v) in rows {
        let _ = write!(html, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    let _ = write!(
        html,
        "<tr><th>reproduce</th><td><code>tether run {} --seed {}{}</code></td></tr></table>",
        esc(&info.suite_path),
        info.seed,
        esc(&flags)
    );
}

/// Every verdict, by area, with a link to where a failed one failed on the chart and to
/// the sidecars' state at the end of the phase it judged.
fn verdict_table(
    html: &mut String,
    verdicts: &[Verdict],
    dumps: &std::collections::BTreeMap<&str, (&str, &[String])>,
) {
    html.push_str(r#"<h2>Verdicts</h2><table class="verdicts"><tr><th>check</th><th>verdict</th><th>detail</th></tr>"#);
    for group in Area::EVERY {
        let in_group: Vec<&Verdict> = verdicts
            .iter()
            .filter(|v| Area::of_verdict(&v.name) == group)
            .collect();
        if in_group.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            r#"<tr class="area"><th colspan="3">{}</th></tr>"#,
            group.title()
        );
        for v in in_group {
            let mark = match v.outcome {
                Outcome::Passed => "PASS",
                Outcome::Failed => "FAIL",
                Outcome::Unknown => "UNKNOWN",
                Outcome::Invalid => "INVALID",
            };
            let at = match v.failed_at_ms {
                Some(t) if !v.passed() => format!(
                    r##" (<a href="#{}">at {:.1} s on the chart</a>)"##,
                    failure_anchor(&v.name),
                    t as f64 / 1000.0
                ),
                _ => String::new(),
            };
            let state = match v.phase.as_deref().and_then(|p| Some((p, dumps.get(p)?))) {
                Some((phase, _)) if !v.passed() => format!(
                    r##" (<a href="#sidecars-{}">sidecar state at the end of {}</a>)"##,
                    esc(phase),
                    esc(phase)
                ),
                _ => String::new(),
            };
            let _ = write!(
                html,
                r#"<tr><td>{}</td><td class="{mark}">{mark}</td><td>{}{at}{state}</td></tr>"#,
                esc(&v.name),
                esc(&v.detail),
            );
        }
    }
    html.push_str("</table>");
}

/// The events that are not samples, then the suite and mesh as run.
fn events(html: &mut String, info: &RunInfo, entries: &[Entry]) {
    // Events and the suite as run.
    html.push_str("<h2>Events</h2><table><tr><th>time</th><th>event</th></tr>");
    for e in entries {
        let text = match &e.event {
            Event::PhaseStarted { phase, duration_ms } => format!(
                "phase {phase} starts ({:.1} s)",
                *duration_ms as f64 / 1000.0
            ),
            Event::PhaseEnded { phase } => format!("phase {phase} ends"),
            Event::FaultApplied { disruption, .. } => disruption.to_string(),
            Event::FaultRemoved { disruption } => format!("{disruption}: removed"),
            Event::LoadStarted { load, duration_ms } => format!(
                "{} started ({:.1} s)",
                match load {
                    LoadKind::HotPath => "load".to_string(),
                    LoadKind::Journeys => "goose journeys".to_string(),
                    LoadKind::Overhead { node } => format!("overhead measurement of {node}"),
                },
                *duration_ms as f64 / 1000.0
            ),
            Event::MeshChange {
                description,
                version,
                ..
            } => format!("mesh change: {description} (version {version})"),
            Event::Xds {
                node,
                type_name,
                xds: XdsKind::Nack,
                version,
                error,
            } => {
                format!(
                    "NACK {type_name} v{version} from {node}: {}",
                    error.as_deref().unwrap_or("")
                )
            }
            Event::RunEnded { reason } => format!("run ended: {reason}"),
            _ => continue,
        };
        let _ = write!(
            html,
            "<tr><td>{:.3} s</td><td>{}</td></tr>",
            e.t_ms as f64 / 1000.0,
            esc(&text)
        );
    }
    html.push_str("</table>");
    inputs(html, info);
}

/// The suite and mesh as run.
fn inputs(html: &mut String, info: &RunInfo) {
    let _ = write!(
        html,
        "<h2>Suite as run</h2><pre>{}</pre>",
        esc(&info.suite_text)
    );
    if !info.mesh_text.is_empty() {
        let _ = write!(
            html,
            "<h2>Mesh as run</h2><pre>{}</pre>",
            esc(&info.mesh_text)
        );
    }
}
