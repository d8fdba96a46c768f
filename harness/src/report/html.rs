//! `report.html`: one self-contained page (no scripts, no external assets) with the
//! verdicts, a per-second chart with fault windows shaded and mesh changes marked, and a
//! lane per sidecar showing its connection to the control plane and the config it serves.

use super::RunInfo;
use crate::checks::{Outcome, Verdict};
use crate::timeline::{Entry, Event};
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

/// Render the page.
pub fn render(info: &RunInfo, verdicts: &[Verdict], entries: &[Entry]) -> String {
    let passed = !info.interrupted && verdicts.iter().all(Verdict::passed);
    let verdict_word = if info.interrupted {
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
table{{border-collapse:collapse;width:100%}} td,th{{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}}
.PASS{{color:#16794a;font-weight:bold}} .FAIL{{color:#b3261e;font-weight:bold}} .UNKNOWN{{color:#8a6d00;font-weight:bold}}
svg{{width:100%;height:auto}} pre{{background:#f6f6f6;padding:8px;overflow-x:auto;white-space:pre-wrap}}
@media print{{pre{{white-space:pre-wrap}}}}
</style></head><body>
<h1>{suite}: <span class="{cls}">{verdict_word}</span></h1>
<p>Started {started} · {dur:.1} s · backend {backend} · seed {seed} · Envoy {envoy} · tether {version}</p>
<p>Reproduce: <code>tether run {path} --seed {seed}</code></p>
<h2>Verdicts</h2><table><tr><th>check</th><th>verdict</th><th>detail</th></tr>"#,
        suite = esc(&info.suite),
        cls = if passed { "pass" } else { "fail" },
        started = esc(&info.started_at),
        dur = info.duration_s,
        backend = esc(&info.backend),
        seed = info.seed,
        envoy = esc(&info.envoy_version),
        version = env!("CARGO_PKG_VERSION"),
        path = esc(&info.suite_path),
    );
    for v in verdicts {
        let mark = match v.outcome {
            Outcome::Passed => "PASS",
            Outcome::Failed => "FAIL",
            Outcome::Unknown => "UNKNOWN",
        };
        let at = v
            .failed_at_ms
            .map(|t| format!(" (at {:.1} s on the charts)", t as f64 / 1000.0))
            .unwrap_or_default();
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td class="{mark}">{mark}</td><td>{}{}</td></tr>"#,
            esc(&v.name),
            esc(&v.detail),
            at
        );
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
    axis(&mut html, end_ms, &x, top + height + 16.0);
    html.push_str("</svg><p>Blue: successful requests, red: failed ones. Shaded: fault windows. Dashed: mesh changes.</p>");

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

    // Events and the suite as run.
    html.push_str("<h2>Events</h2><table><tr><th>time</th><th>event</th></tr>");
    for e in entries {
        let text = match &e.event {
            Event::PhaseStarted { phase, duration_ms } => format!(
                "phase {phase} starts ({:.1} s)",
                *duration_ms as f64 / 1000.0
            ),
            Event::FaultApplied { link, fault } => format!("{fault} on link {link}"),
            Event::FaultRemoved { link, fault } => format!("{fault} removed from link {link}"),
            Event::MeshChange {
                description,
                version,
                ..
            } => format!("mesh change: {description} (version {version})"),
            Event::Xds {
                node,
                type_name,
                xds: crate::timeline::XdsKind::Nack,
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
        "</table><h2>Suite as run</h2><pre>{}</pre></body></html>",
        esc(&info.suite_text)
    );
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
            Event::FaultApplied { link, fault } => {
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
