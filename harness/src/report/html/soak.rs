//! A soak's part of the page: each check's outcomes over the cycles, per-minute charts
//! of the load, its latency and every part's memory (cycle boundaries drawn, failed
//! cycles shaded and anchored so the tables can link to them), each figure's
//! distribution over cycles, and a table of every cycle with what it drew.

use super::{LEFT, RIGHT, W, esc, failure_anchor};
use crate::checks::soak::minutes::Minute;
use crate::checks::{SoakSummary, Verdict, names};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The id of a cycle's window on the charts.
fn cycle_anchor(cycle: u32) -> String {
    format!("cycle-{cycle}")
}

/// The whole soak section.
pub(super) fn render(html: &mut String, soak: &SoakSummary, verdicts: &[Verdict]) {
    let failed = soak.cycles.iter().filter(|c| !c.passed).count();
    let _ = write!(
        html,
        "<h2>Soak</h2><p>{} of {} planned cycles judged; {} passed every check, {failed} did not.</p>",
        soak.cycles_judged,
        soak.cycles_planned,
        soak.cycles_judged as usize - failed,
    );
    tallies(html, soak);
    let end_ms = soak
        .minutes
        .last()
        .map(|m| m.t_ms + 60_000)
        .into_iter()
        .chain(soak.cycles.last().map(|c| c.end_ms))
        .max()
        .unwrap_or(1)
        .max(1);
    let x = |t: u64| LEFT + (t as f64 / end_ms as f64) * (W - LEFT - RIGHT);
    let charts = Charts {
        soak,
        verdicts,
        x: &x,
        end_ms,
    };
    charts.load(html);
    charts.latency(html);
    charts.memory(html);
    spreads(html, soak);
    cycles(html, soak);
}

/// Each check's passed/failed/unknown count, with links to the cycles that failed.
fn tallies(html: &mut String, soak: &SoakSummary) {
    html.push_str(r#"<table><tr><th>check</th><th class="num">passed</th><th class="num">failed</th><th class="num">unknown</th><th>cycles that failed</th></tr>"#);
    for c in &soak.checks {
        let links: Vec<String> = c
            .failed_cycles
            .iter()
            .map(|k| format!(r##"<a href="#{}">{k}</a>"##, cycle_anchor(*k)))
            .collect();
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(&c.name),
            c.passed,
            c.failed,
            c.unknown,
            links.join(", ")
        );
    }
    html.push_str("</table>");
}

/// The per-minute charts, on one time axis.
struct Charts<'a> {
    soak: &'a SoakSummary,
    verdicts: &'a [Verdict],
    x: &'a dyn Fn(u64) -> f64,
    end_ms: u64,
}

const TOP: f64 = 20.0;
const HEIGHT: f64 = 160.0;

impl Charts<'_> {
    /// Requests per minute: successful and failed.
    fn load(&self, html: &mut String) {
        let max = self
            .soak
            .minutes
            .iter()
            .map(|m| m.requests)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        self.open(html, "Load: requests per minute", &format!("{max:.0}"));
        let bar = ((W - LEFT - RIGHT) / (self.end_ms as f64 / 60_000.0)).max(1.0) * 0.8;
        let y = |v: f64| TOP + HEIGHT - v / max * HEIGHT;
        for m in &self.soak.minutes {
            let (ok, failed) = (m.ok as f64, (m.requests - m.ok.min(m.requests)) as f64);
            let _ = write!(
                html,
                r##"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="#3b7dd8"><title>minute {}: {} of {} ok</title></rect>"##,
                (self.x)(m.t_ms),
                y(ok),
                HEIGHT - (y(ok) - TOP),
                m.t_ms / 60_000,
                m.ok,
                m.requests
            );
            if failed > 0.0 {
                let _ = write!(
                    html,
                    r##"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="#d83b3b"/>"##,
                    (self.x)(m.t_ms),
                    y(ok + failed),
                    y(ok) - y(ok + failed)
                );
            }
        }
        self.close(html, "Blue: successful requests per minute, red: failed. Thin lines: cycle boundaries; shaded red: cycles that failed a check (linked from the tables); red marks: where a check first failed.");
    }

    /// p50 and p99 latency per minute.
    fn latency(&self, html: &mut String) {
        let p99 = |m: &Minute| m.p99_ms;
        let p50 = |m: &Minute| m.p50_ms;
        let max = self.soak.minutes.iter().filter_map(p99).fold(1.0, f64::max);
        self.open(
            html,
            "Latency per minute (from the intended send time)",
            &format!("{max:.1} ms"),
        );
        for (series, color) in [
            (p50 as fn(&Minute) -> Option<f64>, "#3b7dd8"),
            (p99, "#d8823b"),
        ] {
            let points: Vec<(u64, f64)> = self
                .soak
                .minutes
                .iter()
                .filter_map(|m| Some((m.t_ms, series(m)?)))
                .collect();
            self.line(html, &points, max, color);
        }
        self.close(
            html,
            "Blue: p50, orange: p99, each minute's requests merged.",
        );
    }

    /// Each part's memory per minute, as its growth since the part's first minute (MiB),
    /// so a drift of a few MiB shows beside a part hundreds of MiB large.
    fn memory(&self, html: &mut String) {
        let mut parts: BTreeMap<&str, Vec<(u64, f64)>> = BTreeMap::new();
        for m in &self.soak.minutes {
            for (part, bytes) in &m.memory {
                let mib = *bytes as f64 / 1024.0 / 1024.0;
                parts.entry(part).or_default().push((m.t_ms, mib));
            }
        }
        if parts.is_empty() {
            return;
        }
        for points in parts.values_mut() {
            let first = points[0].1;
            points.iter_mut().for_each(|p| p.1 -= first);
        }
        let values = || parts.values().flatten().map(|p| p.1);
        let (lo, hi) = (values().fold(0.0, f64::min), values().fold(1.0, f64::max));
        self.open_between(
            html,
            "Memory per minute: growth since the first minute",
            (&format!("{hi:+.1} MiB"), &format!("{lo:+.1} MiB")),
        );
        const COLORS: [&str; 6] = [
            "#3b7dd8", "#d8823b", "#2e9d5b", "#8e44ad", "#c0392b", "#555",
        ];
        let mut legend = Vec::new();
        for (i, (part, points)) in parts.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            self.line_between(html, points, (lo, hi), color);
            let last = self
                .soak
                .minutes
                .iter()
                .rev()
                .find_map(|m| m.memory.get(*part))
                .map_or(0.0, |b| *b as f64 / 1024.0 / 1024.0);
            legend.push(format!(
                r#"<span style="color:{color}">{} ({last:.0} MiB)</span>"#,
                esc(part)
            ));
        }
        let growth: Vec<String> = self
            .verdicts
            .iter()
            .flat_map(|v| &v.measurements)
            .filter_map(|m| {
                let part = names::MEMORY_DRIFT.key(&m.name)?;
                Some(format!("{} {:+.0} KiB/h", esc(part), m.value / 1024.0))
            })
            .collect();
        let envoys = if parts.keys().any(|p| p.starts_with("envoy/")) {
            "Envoys: server.memory_allocated"
        } else {
            "no Envoy sampled (no check reads their memory: add memory_drift)"
        };
        let mut caption = format!(
            "{envoys}; others: resident; at the end: {}",
            legend.join(", ")
        );
        if !growth.is_empty() {
            caption.push_str(&format!(
                ". Fitted growth (memory_drift): {}",
                growth.join(", ")
            ));
        }
        self.close_raw(html, &caption);
    }

    fn open(&self, html: &mut String, title: &str, top_label: &str) {
        self.open_between(html, title, (top_label, "0"));
    }

    /// A chart's frame, labelled at its top and bottom.
    fn open_between(&self, html: &mut String, title: &str, (top, bottom): (&str, &str)) {
        let _ = write!(
            html,
            r##"<h3>{title}</h3><svg viewBox="0 0 {W} {}" role="img" aria-label="{title}"><line x1="{LEFT}" y1="{b}" x2="{e}" y2="{b}" stroke="#888"/><text x="4" y="{}" font-size="11">{}</text><text x="4" y="{b}" font-size="11">{}</text>"##,
            TOP + HEIGHT + 30.0,
            TOP + 10.0,
            esc(top),
            esc(bottom),
            b = TOP + HEIGHT,
            e = W - RIGHT,
        );
        self.cycle_marks(html);
    }

    /// Cycle boundaries, failed cycles shaded (anchored once, on the first chart), and
    /// where each check first failed.
    fn cycle_marks(&self, html: &mut String) {
        let first_chart = !html.contains(r#"id="cycle-"#);
        for c in &self.soak.cycles {
            let (a, b) = ((self.x)(c.start_ms), (self.x)(c.end_ms));
            let _ = write!(
                html,
                r##"<line x1="{a:.1}" y1="{TOP}" x2="{a:.1}" y2="{}" stroke="#ccc"/>"##,
                TOP + HEIGHT
            );
            if !c.passed {
                let id = if first_chart {
                    format!(r#" id="{}""#, cycle_anchor(c.cycle))
                } else {
                    String::new()
                };
                let _ = write!(
                    html,
                    r##"<rect{id} x="{a:.1}" y="{TOP}" width="{:.1}" height="{HEIGHT}" fill="#d83b3b" opacity="0.15"><title>cycle {} failed</title></rect>"##,
                    (b - a).max(1.0),
                    c.cycle
                );
            }
        }
        for v in self.verdicts.iter().filter(|v| !v.passed()) {
            if let Some(t) = v.failed_at_ms {
                let id = if first_chart {
                    format!(r#" id="{}""#, failure_anchor(&v.name))
                } else {
                    String::new()
                };
                let _ = write!(
                    html,
                    r##"<line{id} x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#b3261e" stroke-width="2"><title>{} failed</title></line>"##,
                    TOP + HEIGHT,
                    esc(&v.name),
                    x = (self.x)(t)
                );
            }
        }
    }

    fn line(&self, html: &mut String, points: &[(u64, f64)], max: f64, color: &str) {
        self.line_between(html, points, (0.0, max), color);
    }

    /// A line through `points`, `lo` at the bottom and `hi` at the top.
    fn line_between(
        &self,
        html: &mut String,
        points: &[(u64, f64)],
        (lo, hi): (f64, f64),
        color: &str,
    ) {
        let span = (hi - lo).max(f64::EPSILON);
        let path: Vec<String> = points
            .iter()
            .map(|(t, v)| {
                format!(
                    "{:.1},{:.1}",
                    (self.x)(*t),
                    TOP + HEIGHT - (v - lo) / span * HEIGHT
                )
            })
            .collect();
        if !path.is_empty() {
            let _ = write!(
                html,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                path.join(" ")
            );
        }
    }

    fn close(&self, html: &mut String, caption: &str) {
        self.close_raw(html, &esc(caption));
    }

    /// Closes a chart with its time axis (minutes) and a caption already escaped.
    fn close_raw(&self, html: &mut String, caption: &str) {
        let minutes = self.end_ms / 60_000;
        let step = (minutes / 8).max(1);
        for m in (0..=minutes).step_by(step as usize) {
            let _ = write!(
                html,
                r#"<text x="{:.1}" y="{}" font-size="11">{m} min</text>"#,
                (self.x)(m * 60_000),
                TOP + HEIGHT + 16.0
            );
        }
        let _ = write!(html, "</svg><p>{caption}</p>");
    }
}

/// Each figure's distribution over cycles (the slowest ACK of each change left out:
/// the propagation percentiles summarise them).
fn spreads(html: &mut String, soak: &SoakSummary) {
    html.push_str(r#"<h3>Figures over cycles</h3><table><tr><th>figure</th><th class="num">cycles</th><th class="num">min</th><th class="num">p50</th><th class="num">p99</th><th class="num">max</th></tr>"#);
    for f in soak
        .figures
        .iter()
        .filter(|f| names::PROPAGATION_MAX_MS.key(&f.name).is_none())
    {
        let _ = write!(
            html,
            r#"<tr><td>{} ({})</td><td class="num">{}</td><td class="num">{:.1}</td><td class="num">{:.1}</td><td class="num">{:.1}</td><td class="num">{:.1}</td></tr>"#,
            esc(&f.name),
            esc(&f.unit),
            f.cycles,
            f.min,
            f.p50,
            f.p99,
            f.max
        );
    }
    html.push_str("</table>");
}

/// Every cycle: when, what it drew, and what did not pass in it.
fn cycles(html: &mut String, soak: &SoakSummary) {
    html.push_str(r#"<h3>Cycles</h3><table><tr><th class="num">cycle</th><th class="num">start</th><th class="num">length</th><th>drawn</th><th>verdict</th></tr>"#);
    for c in &soak.cycles {
        let verdict = if c.passed {
            r#"<span class="PASS">PASS</span>"#.to_string()
        } else {
            let each: Vec<String> = c
                .not_passed
                .iter()
                .map(|n| format!("<b>{}</b>: {}", esc(&n.name), esc(&n.detail)))
                .collect();
            format!(
                r##"<a class="FAIL" href="#{}">FAIL</a> {}"##,
                cycle_anchor(c.cycle),
                each.join("<br>")
            )
        };
        let _ = write!(
            html,
            r#"<tr><td class="num">{}</td><td class="num">{:.1} s</td><td class="num">{:.1} s</td><td>{}</td><td>{verdict}</td></tr>"#,
            c.cycle,
            c.start_ms as f64 / 1000.0,
            c.end_ms.saturating_sub(c.start_ms) as f64 / 1000.0,
            esc(&c.draws.join("; ")),
        );
    }
    html.push_str("</table>");
}
