//! `report.html`: one self-contained page (no scripts, no external assets) with the
//! verdicts; per-second charts of requests and of latency with fault windows shaded and
//! mesh changes marked; a lane per sidecar showing its connection to the control plane
//! and the config it serves, and one showing the control plane's pushes and the
//! sidecar's ACKs and NACKs; tables of reconvergence per proxy, propagation per change
//! and latency per phase; the faults applied with every toxic's attributes; and the
//! suite and mesh as run.

use super::RunInfo;
use crate::checks::{Outcome, PhaseFigures, Verdict};
use crate::timeline::{Entry, Event, XdsKind};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escape text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One sample in a sidecar's lane: time, connected, route version, keepalive timeouts.
type LaneSample<'a> = (u64, Option<bool>, Option<&'a str>, Option<u64>);

const W: f64 = 900.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;

/// The areas of the verdict table (and profiles of `summary.yaml`), in order, and the
/// checks in each.
pub const AREAS: [(&str, &[&str]); 5] = [
    (
        "Static stability",
        &["outpost_traffic_flows", "config_frozen", "journeys_succeed"],
    ),
    (
        "Reconvergence",
        &["reconvergence", "change_applied_after_heal"],
    ),
    ("Propagation", &["propagation"]),
    (
        "Link faults",
        &[
            "xds_stays_connected",
            "partition_noticed",
            "partition_unnoticed",
        ],
    ),
    ("Throughput", &["proxy_overhead"]),
];

/// The area a verdict is listed under (a repeated check is named `<check>@<phase>`).
pub fn area(check: &str) -> &'static str {
    let base = check.split('@').next().unwrap_or(check);
    AREAS
        .iter()
        .find(|(_, checks)| checks.contains(&base))
        .map_or("Other", |(area, _)| area)
}

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
) -> String {
    let passed = info.passed(verdicts);
    let verdict_word = if info.incomplete || info.interrupted {
        "INCOMPLETE"
    } else if passed {
        "PASSED"
    } else {
        "FAILED"
    };
    let end_ms = entries.iter().map(|e| e.t_ms).max().unwrap_or(1).max(1);
    let x = |t: u64| LEFT + (t as f64 / end_ms as f64) * (W - LEFT - RIGHT);

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
    if info.incomplete {
        html.push_str(r#"<p class="incomplete">INCOMPLETE: the timeline has no <code>run_ended</code> entry, so the run was killed or crashed before it finished. The verdicts below judge only what it recorded.</p>"#);
    } else if info.interrupted {
        html.push_str(r#"<p class="incomplete">INCOMPLETE: the run was interrupted before all its phases ran. The verdicts below judge only what it recorded.</p>"#);
    }
    let backend_flag = if info.backend == "process" {
        String::new()
    } else {
        format!(" --backend {}", info.backend)
    };
    let rows = [
        ("started", info.started_at.clone()),
        ("duration", format!("{:.1} s", info.duration_s)),
        ("seed", info.seed.to_string()),
        ("backend", info.backend.clone()),
        ("Envoy", info.envoy_version.clone()),
        (
            "tether",
            format!("{} (git {})", info.tether_version, info.git_revision),
        ),
        ("machine", info.machine.describe()),
    ];
    html.push_str(r#"<table class="meta">"#);
    for (k, v) in rows {
        let _ = write!(html, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    let _ = write!(
        html,
        "<tr><th>reproduce</th><td><code>tether run {} --seed {}{}</code></td></tr></table>",
        esc(&info.suite_path),
        info.seed,
        esc(&backend_flag)
    );
    html.push_str(r#"<h2>Verdicts</h2><table class="verdicts"><tr><th>check</th><th>verdict</th><th>detail</th></tr>"#);
    let mut areas: Vec<&str> = AREAS.iter().map(|(a, _)| *a).collect();
    areas.push("Other");
    for group in areas {
        let in_group: Vec<&Verdict> = verdicts.iter().filter(|v| area(&v.name) == group).collect();
        if in_group.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            r#"<tr class="area"><th colspan="3">{group}</th></tr>"#
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
            let _ = write!(
                html,
                r#"<tr><td>{}</td><td class="{mark}">{mark}</td><td>{}{}</td></tr>"#,
                esc(&v.name),
                esc(&v.detail),
                at
            );
        }
    }
    html.push_str("</table>");

    // Chart 1: requests per second, ok and failed, with fault windows and changes.
    let mut per_sec: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for e in entries {
        if let Event::LoadSecond(s) = &e.event {
            let v = per_sec.entry(e.t_ms).or_default();
            v.0 += s.ok;
            v.1 += s.sent - s.ok;
        }
    }
    let max_rps = per_sec
        .values()
        .map(|(ok, err)| ok + err)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (top, height) = (20.0, 200.0);
    let y = |v: f64| top + height - v / max_rps * height;
    html.push_str("<h2>Load: requests per second</h2>");
    let _ = write!(
        html,
        r#"<svg viewBox="0 0 {W} {}" role="img" aria-label="requests per second">"#,
        top + height + 30.0
    );
    let _ = write!(
        html,
        r##"<line x1="{LEFT}" y1="{b}" x2="{e}" y2="{b}" stroke="#888"/>"##,
        b = top + height,
        e = W - RIGHT
    );
    let _ = write!(
        html,
        r##"<text x="4" y="{}" font-size="11">{max_rps:.0}/s</text><text x="4" y="{}" font-size="11">0</text>"##,
        top + 10.0,
        top + height
    );
    let bar = ((W - LEFT - RIGHT) / (end_ms as f64 / 1000.0)).max(1.0) * 0.8;
    for (t, (ok, err)) in &per_sec {
        let (ok, err) = (*ok as f64, *err as f64);
        let _ = write!(
            html,
            r##"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="#3b7dd8"><title>{:.0}s: {ok} ok</title></rect>"##,
            x(*t),
            y(ok),
            height - (y(ok) - top),
            *t as f64 / 1000.0
        );
        if err > 0.0 {
            let _ = write!(
                html,
                r##"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="#d83b3b"><title>{:.0}s: {err} failed</title></rect>"##,
                x(*t),
                y(ok + err),
                y(ok) - y(ok + err),
                *t as f64 / 1000.0
            );
        }
    }
    // Drawn over the bars so the windows show through them.
    shade_faults(&mut html, entries, &x, top, height);
    mark_changes(&mut html, entries, &x, top, height);
    mark_failures(&mut html, verdicts, &x, top, height);
    axis(&mut html, end_ms, &x, top + height + 16.0);
    html.push_str("</svg><p>Blue: successful requests, red: failed ones. Shaded: fault windows. Dashed: mesh changes. Red lines: where a check failed.</p>");

    // Chart 2: a lane per sidecar: connected (green) or not (red), config version as text.
    let mut lanes: BTreeMap<&str, Vec<LaneSample>> = BTreeMap::new();
    for e in entries {
        if let Event::EnvoySample {
            node,
            connected,
            route_version,
            xds_keepalive_timeouts,
            ..
        } = &e.event
        {
            lanes.entry(node).or_default().push((
                e.t_ms,
                *connected,
                route_version.as_deref(),
                *xds_keepalive_timeouts,
            ));
        }
    }
    let lane_h = 26.0;
    html.push_str("<h2>Sidecars: connection to the control plane and config version</h2>");
    let _ = write!(
        html,
        r#"<svg viewBox="0 0 {W} {}" role="img" aria-label="sidecar lanes">"#,
        lanes.len() as f64 * lane_h + 46.0
    );
    shade_faults(&mut html, entries, &x, 16.0, lanes.len() as f64 * lane_h);
    for (i, (node, samples)) in lanes.iter().enumerate() {
        let ly = 16.0 + i as f64 * lane_h;
        let _ = write!(
            html,
            r#"<text x="2" y="{:.1}" font-size="11">{}</text>"#,
            ly + 16.0,
            esc(node)
        );
        let mut last_version = None;
        for w in samples.windows(2) {
            let (t, c, v, _) = w[0];
            // A tick where the sidecar's keepalive on the xDS connection timed out.
            if let (Some(before), Some(after)) = (w[0].3, w[1].3)
                && after > before
            {
                let _ = write!(
                    html,
                    r##"<rect x="{:.1}" y="{:.1}" width="2" height="14" fill="#222"><title>keepalive timeout</title></rect>"##,
                    x(w[1].0),
                    ly + 1.0
                );
            }
            let color = match c {
                Some(true) => "#2e9d5b",
                Some(false) => "#d83b3b",
                None => "#aaa",
            };
            let _ = write!(
                html,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="8" fill="{color}"/>"#,
                x(t),
                ly + 4.0,
                (x(w[1].0) - x(t)).max(0.5)
            );
            if v != last_version {
                let _ = write!(
                    html,
                    r#"<text x="{:.1}" y="{:.1}" font-size="10">v{}</text>"#,
                    x(t),
                    ly + 23.0,
                    esc(v.unwrap_or("-"))
                );
                last_version = v;
            }
        }
    }
    mark_changes(&mut html, entries, &x, 16.0, lanes.len() as f64 * lane_h);
    axis(&mut html, end_ms, &x, lanes.len() as f64 * lane_h + 36.0);
    html.push_str("</svg><p>Green: Envoy reports itself connected to the control plane (<code>control_plane.connected_state</code>); red: not connected. Black ticks: an HTTP/2 keepalive timeout on the xDS connection (the sidecar noticed a silent link). Through a TCP-terminating fault proxy the connected state returns as soon as a reconnect is accepted by the proxy, so during a blackhole it flaps; the ticks show each detection. <code>vN</code>: the route config version served from then on.</p>");

    latency_chart(&mut html, entries, verdicts, &x, end_ms);
    xds_chart(&mut html, entries, &x, end_ms);
    reconvergence_table(&mut html, verdicts);
    propagation_table(&mut html, verdicts);
    phase_table(&mut html, phases);
    faults_table(&mut html, entries);

    // Events and the suite as run.
    html.push_str("<h2>Events</h2><table><tr><th>time</th><th>event</th></tr>");
    for e in entries {
        let text = match &e.event {
            Event::PhaseStarted { phase, duration_ms } => format!(
                "phase {phase} starts ({:.1} s)",
                *duration_ms as f64 / 1000.0
            ),
            Event::FaultApplied { link, fault, .. } => format!("{fault} on {link}"),
            Event::FaultRemoved { link, fault } => format!("{fault} removed from {link}"),
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
    let _ = write!(
        html,
        "</table><h2>Suite as run</h2><pre>{}</pre>",
        esc(&info.suite_text)
    );
    if !info.mesh_text.is_empty() {
        let _ = write!(
            html,
            "<h2>Mesh as run</h2><pre>{}</pre>",
            esc(&info.mesh_text)
        );
    }
    html.push_str("</body></html>");
    html.push('\n');
    html
}

fn shade_faults(
    html: &mut String,
    entries: &[Entry],
    x: &dyn Fn(u64) -> f64,
    top: f64,
    height: f64,
) {
    let mut open: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let end = entries.iter().map(|e| e.t_ms).max().unwrap_or(0);
    let mut windows = Vec::new();
    for e in entries {
        match &e.event {
            Event::FaultApplied { link, fault, .. } => {
                open.insert((link, fault), e.t_ms);
            }
            Event::FaultRemoved { link, fault } => {
                if let Some(s) = open.remove(&(link.as_str(), fault.as_str())) {
                    windows.push((s, e.t_ms, format!("{fault} on {link}")));
                }
            }
            _ => {}
        }
    }
    windows.extend(
        open.into_iter()
            .map(|((l, f), s)| (s, end, format!("{f} on {l}"))),
    );
    // Faults put on and taken off together (several links in one phase) share one window.
    windows.sort_by_key(|w| (w.0, w.1));
    let mut merged: Vec<(u64, u64, String)> = Vec::new();
    for (s, e, label) in windows {
        match merged.last_mut() {
            Some(last) if s.abs_diff(last.0) < 500 && e.abs_diff(last.1) < 500 => {
                last.2 = format!("{}, {label}", last.2);
            }
            _ => merged.push((s, e, label)),
        }
    }
    for (s, e, label) in merged {
        let _ = write!(
            html,
            r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{height}" fill="#555" opacity="0.18"><title>{}</title></rect>"##,
            x(s),
            x(e) - x(s),
            esc(&label)
        );
        let _ = write!(
            html,
            r#"<text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
            x(s) + 2.0,
            top - 3.0,
            esc(&label)
        );
    }
}

/// A red line, with an id the verdict table links to, where each failed check failed.
fn mark_failures(
    html: &mut String,
    verdicts: &[Verdict],
    x: &dyn Fn(u64) -> f64,
    top: f64,
    height: f64,
) {
    let failed = verdicts
        .iter()
        .filter(|v| !v.passed())
        .filter_map(|v| Some((v, v.failed_at_ms?)));
    for (i, (v, t)) in failed.enumerate() {
        // Labels stack downwards, and turn left of their line near the right edge.
        let (label_x, anchor) = if x(t) > W - 200.0 {
            (x(t) - 3.0, "end")
        } else {
            (x(t) + 3.0, "start")
        };
        let _ = write!(
            html,
            r##"<g id="{id}"><line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1}" stroke="#b3261e" stroke-width="2"><title>{2} failed here</title></line><text x="{3:.1}" y="{4:.1}" font-size="10" fill="#b3261e" text-anchor="{anchor}" stroke="#fff" stroke-width="3" paint-order="stroke">{2} failed</text></g>"##,
            x(t),
            top + height,
            esc(&v.name),
            label_x,
            top + 24.0 + 12.0 * i as f64,
            id = failure_anchor(&v.name),
        );
    }
}

fn mark_changes(
    html: &mut String,
    entries: &[Entry],
    x: &dyn Fn(u64) -> f64,
    top: f64,
    height: f64,
) {
    for e in entries {
        if let Event::MeshChange { description, .. } = &e.event {
            let _ = write!(
                html,
                r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1}" stroke="#6a3bd8" stroke-dasharray="4 3"><title>{2}</title></line>"##,
                x(e.t_ms),
                top + height,
                esc(description)
            );
        }
    }
}

fn axis(html: &mut String, end_ms: u64, x: &dyn Fn(u64) -> f64, y: f64) {
    let step = ((end_ms / 1000) / 10).max(1) * 1000;
    let mut t = 0;
    while t <= end_ms {
        let _ = write!(
            html,
            r#"<text x="{:.1}" y="{y}" font-size="10" text-anchor="middle">{}s</text>"#,
            x(t),
            t / 1000
        );
        t += step;
    }
}

/// Latency per second on a logarithmic axis: p50, p99 and max, each a line.
fn latency_chart(
    html: &mut String,
    entries: &[Entry],
    verdicts: &[Verdict],
    x: &dyn Fn(u64) -> f64,
    end_ms: u64,
) {
    let seconds: Vec<(u64, [u64; 3])> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::LoadSecond(s) if s.ok > 0 => Some((e.t_ms, [s.p50_us, s.p99_us, s.max_us])),
            _ => None,
        })
        .collect();
    html.push_str("<h2>Latency per second: p50, p99 and max</h2>");
    if seconds.is_empty() {
        html.push_str("<p>No request was answered, so there is no latency to draw.</p>");
        return;
    }
    let (top, height) = (20.0, 200.0);
    // Decades of microseconds that hold every point: 100 µs at the least.
    let low = seconds
        .iter()
        .map(|(_, v)| v[0].max(1))
        .min()
        .unwrap_or(100)
        .min(100);
    let high = seconds
        .iter()
        .map(|(_, v)| v[2])
        .max()
        .unwrap_or(1)
        .max(low * 10);
    let (lo_exp, hi_exp) = (
        (low as f64).log10().floor() as i32,
        (high as f64).log10().ceil() as i32,
    );
    let y = |us: u64| {
        let v = (us.max(1) as f64).log10();
        top + height - (v - f64::from(lo_exp)) / f64::from(hi_exp - lo_exp) * height
    };
    let _ = write!(
        html,
        r#"<svg viewBox="0 0 {W} {}" role="img" aria-label="latency per second">"#,
        top + height + 30.0
    );
    for exp in lo_exp..=hi_exp {
        let us = 10u64.pow(exp.max(0) as u32);
        let label = if us >= 1000 {
            format!("{} ms", us / 1000)
        } else {
            format!("{us} µs")
        };
        let _ = write!(
            html,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#ddd"/><text x="4" y="{2:.1}" font-size="10">{label}</text>"##,
            y(us),
            W - RIGHT,
            y(us) + 3.0
        );
    }
    shade_faults(html, entries, x, top, height);
    for (index, (name, color)) in [("p50", "#3b7dd8"), ("p99", "#d8903b"), ("max", "#b3261e")]
        .into_iter()
        .enumerate()
    {
        let points: Vec<String> = seconds
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(v[index])))
            .collect();
        let _ = write!(
            html,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"><title>{name}</title></polyline>"#,
            points.join(" ")
        );
        let _ = write!(
            html,
            r#"<text x="{:.1}" y="12" font-size="11" fill="{color}">{name}</text>"#,
            W - RIGHT - 120.0 + 40.0 * index as f64
        );
    }
    mark_changes(html, entries, x, top, height);
    mark_failures(html, verdicts, x, top, height);
    axis(html, end_ms, x, top + height + 16.0);
    html.push_str("</svg><p>Each second's latency percentiles (logarithmic scale), measured from each request's intended send time, so a stalled second shows its full wait. Seconds with no answered request are left out.</p>");
}

/// A lane per sidecar: the control plane's pushes (blue, top), the sidecar's ACKs
/// (green, bottom) and NACKs (red, full height).
fn xds_chart(html: &mut String, entries: &[Entry], x: &dyn Fn(u64) -> f64, end_ms: u64) {
    let mut lanes: BTreeMap<&str, Vec<(u64, XdsKind, &str, &str)>> = BTreeMap::new();
    for e in entries {
        if let Event::Xds {
            node,
            type_name,
            xds,
            version,
            ..
        } = &e.event
        {
            lanes
                .entry(node)
                .or_default()
                .push((e.t_ms, *xds, type_name, version));
        }
    }
    html.push_str("<h2>Control plane: pushes, ACKs and NACKs per sidecar</h2>");
    if lanes.is_empty() {
        html.push_str("<p>No xDS message was recorded.</p>");
        return;
    }
    let lane_h = 18.0;
    let height = lanes.len() as f64 * lane_h;
    let _ = write!(
        html,
        r#"<svg viewBox="0 0 {W} {}" role="img" aria-label="xDS pushes and answers">"#,
        height + 46.0
    );
    shade_faults(html, entries, x, 16.0, height);
    for (i, (node, messages)) in lanes.iter().enumerate() {
        let ly = 16.0 + i as f64 * lane_h;
        let _ = write!(
            html,
            r##"<text x="2" y="{:.1}" font-size="10">{}</text><line x1="{LEFT}" y1="{2:.1}" x2="{3}" y2="{2:.1}" stroke="#eee"/>"##,
            ly + 12.0,
            esc(short_node(node)),
            ly + lane_h / 2.0,
            W - RIGHT
        );
        for (t, kind, type_name, version) in messages {
            let (dy, h, color, word) = match kind {
                XdsKind::Push => (2.0, 7.0, "#3b7dd8", "push"),
                XdsKind::Ack => (9.0, 7.0, "#2e9d5b", "ACK"),
                XdsKind::Nack => (1.0, 16.0, "#d83b3b", "NACK"),
                XdsKind::Request => continue,
            };
            let _ = write!(
                html,
                r##"<rect x="{:.1}" y="{:.1}" width="1.5" height="{h}" fill="{color}"><title>{:.3} s: {word} {} v{}</title></rect>"##,
                x(*t),
                ly + dy,
                *t as f64 / 1000.0,
                esc(type_name),
                esc(version)
            );
        }
    }
    mark_changes(html, entries, x, 16.0, height);
    axis(html, end_ms, x, height + 36.0);
    html.push_str("</svg><p>Blue (top half): the control plane sent the sidecar a config. Green (bottom half): the sidecar ACKed one. Red (full height): it NACKed one. Hover a tick for its type and version.</p>");
}

/// The node name without the `mesh/<mesh>/virtualNode/` prefix of its xDS id.
fn short_node(node: &str) -> &str {
    node.rsplit('/').next().unwrap_or(node)
}

/// Every measurement of `verdict` named `<prefix><rest>`, as (rest, measurement).
fn measured<'a>(
    verdict: &'a Verdict,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a str, &'a crate::checks::Measurement)> + 'a {
    verdict
        .measurements
        .iter()
        .filter_map(move |m| Some((m.name.strip_prefix(prefix)?, m)))
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
fn reconvergence_table(html: &mut String, verdicts: &[Verdict]) {
    let heals: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| v.name.split('@').next() == Some("reconvergence"))
        .collect();
    if heals.is_empty() {
        return;
    }
    html.push_str("<h2>Reconvergence after each heal</h2><table><tr><th>check</th><th>proxy</th><th class=\"num\">heal to ACK of the newest config</th><th class=\"num\">bound</th></tr>");
    for v in heals {
        for (node, m) in measured(v, "reconvergence_ms.") {
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
        let spread: Vec<String> = measured(v, "reconvergence_spread_ms.")
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
fn propagation_table(html: &mut String, verdicts: &[Verdict]) {
    let checks: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| v.name.split('@').next() == Some("propagation"))
        .collect();
    if checks.is_empty() {
        return;
    }
    html.push_str("<h2>Propagation of each change</h2><table><tr><th>check</th><th>change (config version)</th><th class=\"num\">slowest ACK after the change</th><th class=\"num\">bound</th></tr>");
    for v in checks {
        for (version, m) in measured(v, "propagation_ms.max.") {
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
                let m = v.measurement(&format!("propagation_ms.{q}"))?;
                Some(format!("{q} {}", ms_text(m.value)))
            })
            .collect();
        let acks = v.measurement("propagation.acks").map_or(0.0, |m| m.value);
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td><i>all {acks:.0} ACKs</i></td><td class="num" colspan="2">{}</td></tr>"#,
            esc(&v.name),
            overall.join(", ")
        );
    }
    html.push_str("</table>");
}

/// Per phase: requests, success, throughput and latency percentiles.
fn phase_table(html: &mut String, phases: &[PhaseFigures]) {
    if phases.is_empty() {
        return;
    }
    html.push_str("<h2>Load per phase</h2><table><tr><th>phase</th><th class=\"num\">requests</th><th class=\"num\">ok</th><th class=\"num\">ok/s</th><th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th></tr>");
    for p in phases {
        let latency = match p.latency_ms {
            Some(l) => [l.p50, l.p99, l.p999, l.max]
                .map(|v| format!(r#"<td class="num">{v:.2} ms</td>"#))
                .concat(),
            None => r#"<td class="num" colspan="4">no answers</td>"#.to_string(),
        };
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{:.1}%</td><td class="num">{:.0}</td>{latency}</tr>"#,
            esc(&p.phase),
            p.requests,
            p.success_ratio() * 100.0,
            p.ok_per_second
        );
    }
    html.push_str("</table><p>Latency is measured from each request's intended send time and merged without loss from every second's histogram.</p>");
}

/// Every fault put on a link, when, and what was set to make it.
fn faults_table(html: &mut String, entries: &[Entry]) {
    let applied: Vec<(u64, &str, &str, &[String])> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::FaultApplied {
                link,
                fault,
                applied,
            } => Some((e.t_ms, link.as_str(), fault.as_str(), applied.as_slice())),
            _ => None,
        })
        .collect();
    if applied.is_empty() {
        return;
    }
    html.push_str("<h2>Faults applied</h2><table><tr><th>time</th><th>link</th><th>fault</th><th>what was set (toxics and their attributes, or the packet link)</th></tr>");
    for (t, link, fault, set) in applied {
        let set: Vec<String> = set
            .iter()
            .map(|line| format!("<code>{}</code>", esc(line)))
            .collect();
        let _ = write!(
            html,
            "<tr><td>{:.3} s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t as f64 / 1000.0,
            esc(link),
            esc(fault),
            set.join("<br>")
        );
    }
    html.push_str("</table>");
}
