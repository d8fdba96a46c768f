//! The page's charts of the load: requests and latency per second, with disruption
//! windows shaded, mesh changes dashed and failed checks marked (the helpers that do so
//! serve the sidecars' charts too).

use super::{LEFT, RIGHT, W, esc, failure_anchor};
use crate::checks::Verdict;
use crate::plan::DrawClass;
use crate::timeline::{Entry, Event};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Requests per second, ok and failed.
pub(super) fn requests(
    html: &mut String,
    entries: &[Entry],
    verdicts: &[Verdict],
    x: &dyn Fn(u64) -> f64,
    end_ms: u64,
) {
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
    shade_faults(html, entries, x, top, height);
    mark_changes(html, entries, x, top, height);
    mark_failures(html, verdicts, x, top, height);
    axis(html, end_ms, x, top + height + 16.0);
    html.push_str("</svg><p>Blue: successful requests, red: failed ones. Shaded: fault windows. Dashed: mesh changes. Red lines: where a check failed.</p>");
}

/// Each disruption's window: shaded by its kind and labelled as the timeline draws it.
pub(super) fn shade_faults(
    html: &mut String,
    entries: &[Entry],
    x: &dyn Fn(u64) -> f64,
    top: f64,
    height: f64,
) {
    let end = entries.iter().map(|e| e.t_ms).max().unwrap_or(0);
    // Open windows: (disruption, start, how to draw it).
    let mut open = Vec::new();
    let mut windows = Vec::new();
    for e in entries {
        match &e.event {
            Event::FaultApplied {
                disruption, draw, ..
            } => open.push((disruption, e.t_ms, draw)),
            Event::FaultRemoved { disruption } => {
                if let Some(i) = open.iter().rposition(|(d, _, _)| *d == disruption) {
                    let (_, start, draw) = open.remove(i);
                    windows.push((start, e.t_ms, draw.label.clone(), draw.class));
                }
            }
            _ => {}
        }
    }
    windows.extend(
        open.into_iter()
            .map(|(_, start, draw)| (start, end, draw.label.clone(), draw.class)),
    );
    // Disruptions put on and taken off together (several links in one phase) share one
    // window.
    windows.sort_by_key(|w| (w.0, w.1));
    let mut merged: Vec<(u64, u64, String, DrawClass)> = Vec::new();
    for (s, e, label, class) in windows {
        match merged.last_mut() {
            Some(last) if s.abs_diff(last.0) < 500 && e.abs_diff(last.1) < 500 => {
                last.2 = format!("{}, {label}", last.2);
            }
            _ => merged.push((s, e, label, class)),
        }
    }
    for (s, e, label, class) in merged {
        let fill = match class {
            DrawClass::Partition => "#555",
            DrawClass::Degraded => "#d8903b",
            DrawClass::Flap => "#6a3bd8",
            DrawClass::Container => "#3b7dd8",
            DrawClass::ControlPlane => "#b3261e",
        };
        let _ = write!(
            html,
            r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{height}" fill="{fill}" opacity="0.18"><title>{}</title></rect>"##,
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

/// A dashed line at each mesh change, from `top` down `height`, its description as tooltip.
pub(super) fn mark_changes(
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

/// The time axis at height `y`: a label at every tenth of the run, in whole seconds.
pub(super) fn axis(html: &mut String, end_ms: u64, x: &dyn Fn(u64) -> f64, y: f64) {
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
pub(super) fn latency(
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
