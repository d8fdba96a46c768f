//! The comparison of a candidate against a baseline (see [`crate::compare`]), rendered
//! for the console, as `comparison.json` and as `comparison.html` (self-contained, no
//! scripts). Nothing is judged here: the flags come with the comparison.

use super::html::esc;
use crate::compare::{CheckMove, Comparison, FigureChange, Flag, Side, Stats};
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::Path;

/// Writes `comparison.json` and `comparison.html` into `dir`.
pub fn write(dir: &Path, comparison: &Comparison) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(comparison)?;
    for (name, text) in [
        ("comparison.json", json),
        ("comparison.html", html(comparison)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// A value with its unit, compactly.
fn value(v: f64, unit: &str) -> String {
    match unit {
        "ratio" => format!("{:.2}%", v * 100.0),
        "ms" => format!("{v:.1} ms"),
        "requests/s" => format!("{v:.0}/s"),
        _ => format!("{v:.0} {unit}"),
    }
}

/// A value in the unit's precision, without the unit.
fn bare(v: f64, unit: &str) -> String {
    match unit {
        "ratio" => format!("{:.2}", v * 100.0),
        "ms" => format!("{v:.1}"),
        _ => format!("{v:.0}"),
    }
}

/// `mean (min-max)`, the range left out when every run measured the same.
fn stats(s: Option<Stats>, unit: &str) -> String {
    match s {
        None => "-".into(),
        Some(s) if s.min == s.max => value(s.mean, unit),
        Some(s) => format!(
            "{} ({}\u{2013}{})",
            value(s.mean, unit),
            bare(s.min, unit),
            bare(s.max, unit)
        ),
    }
}

/// `+12.0 ms (+4.1%)`.
fn change(f: &FigureChange) -> String {
    let Some(change) = f.change else {
        return "-".into();
    };
    let sign = if change >= 0.0 { "+" } else { "-" };
    let absolute = value(change.abs(), &f.unit);
    match f.relative {
        Some(r) => format!("{sign}{absolute} ({:+.1}%)", r * 100.0),
        None => format!("{sign}{absolute}"),
    }
}

fn flag_word(flag: Flag) -> &'static str {
    match flag {
        Flag::Better => "BETTER",
        Flag::Worse => "WORSE",
        Flag::Changed => "CHANGED",
        Flag::WithinNoise => "within noise",
        Flag::NoiseUnknown => "noise unknown",
        Flag::OneSided => "one side only",
    }
}

fn move_word(moved: CheckMove) -> &'static str {
    match moved {
        CheckMove::StillPasses => "passes",
        CheckMove::StillFails => "still fails",
        CheckMove::Regressed => "REGRESSED",
        CheckMove::Fixed => "FIXED",
        CheckMove::New => "new",
        CheckMove::Gone => "gone",
    }
}

/// The console summary: checks, then the flagged figures (all of them when none is).
pub fn console(c: &Comparison) -> String {
    let mut out = String::new();
    let describe = |s: &Side| {
        format!(
            "{} ({} run{}, {} passed; {}; xDS {})",
            s.dir,
            s.runs,
            if s.runs == 1 { "" } else { "s" },
            s.passed,
            s.envoy_versions.join(", "),
            s.xds.join(", ")
        )
    };
    let _ = writeln!(out, "baseline:  {}", describe(&c.baseline));
    let _ = writeln!(out, "candidate: {}", describe(&c.candidate));
    for warning in &c.warnings {
        let _ = writeln!(out, "WARNING: {warning}");
    }
    let _ = writeln!(out, "checks:");
    for check in &c.checks {
        let _ = writeln!(
            out,
            "  {:<12} {}  (baseline {}/{} passed, candidate {}/{})",
            move_word(check.moved),
            check.name,
            check.baseline.0,
            check.baseline.1,
            check.candidate.0,
            check.candidate.1
        );
    }
    let flagged: Vec<&FigureChange> = c
        .figures
        .iter()
        .filter(|f| matches!(f.flag, Flag::Better | Flag::Worse | Flag::Changed))
        .collect();
    let noise_known = c.figures.iter().any(|f| f.noise.is_some());
    let (title, shown): (&str, Vec<&FigureChange>) = if !noise_known {
        (
            "figures (noise unknown: run both sides with --repeat N to flag changes):",
            c.figures.iter().filter(|f| f.change.is_some()).collect(),
        )
    } else if flagged.is_empty() {
        (
            "figures: every change is within the run-to-run noise",
            Vec::new(),
        )
    } else {
        ("figures changed beyond the run-to-run noise:", flagged)
    };
    let _ = writeln!(out, "{title}");
    for f in shown {
        let _ = writeln!(
            out,
            "  {:<13} {}: {} -> {} ({}{})",
            flag_word(f.flag),
            f.name,
            stats(f.baseline, &f.unit),
            stats(f.candidate, &f.unit),
            change(f),
            f.noise
                .map(|n| format!(", noise {}", value(n, &f.unit)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if c.regressed {
            "REGRESSED: the candidate is worse than the baseline"
        } else {
            "no regression"
        }
    );
    out
}

/// `comparison.html`.
pub fn html(c: &Comparison) -> String {
    let mut html = String::new();
    let regressed = c.regressed;
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tether comparison</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;max-width:960px;margin:1em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;width:100%;table-layout:fixed}} td,th{{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}}
.worse,.regressed{{color:#b3261e;font-weight:bold}} .better,.fixed{{color:#16794a;font-weight:bold}} .quiet{{color:#777}} .warning{{color:#8a5300;font-weight:bold}}
h1 .fail{{color:#b3261e}} h1 .pass{{color:#16794a}}
@media print{{table{{break-inside:auto}} tr{{break-inside:avoid}}}}
</style></head><body>
<h1>Candidate against baseline: <span class="{}">{}</span></h1>
"#,
        if regressed { "fail" } else { "pass" },
        if regressed {
            "REGRESSED"
        } else {
            "NO REGRESSION"
        }
    );
    html.push_str(r#"<table><tr><th></th><th>baseline</th><th>candidate</th></tr>"#);
    let row = |html: &mut String, label: &str, f: &dyn Fn(&Side) -> String| {
        let _ = write!(
            html,
            "<tr><th>{label}</th><td>{}</td><td>{}</td></tr>",
            esc(&f(&c.baseline)),
            esc(&f(&c.candidate))
        );
    };
    row(&mut html, "folder", &|s| s.dir.clone());
    row(&mut html, "runs", &|s| {
        format!("{} ({} passed)", s.runs, s.passed)
    });
    row(&mut html, "suite", &|s| s.suites.join(", "));
    row(&mut html, "Envoy", &|s| s.envoy_versions.join(", "));
    row(&mut html, "tether git", &|s| s.git_revisions.join(", "));
    row(&mut html, "xDS", &|s| s.xds.join(", "));
    row(&mut html, "fault proxy", &|s| s.fault_proxies.join(", "));
    html.push_str("</table>");
    for warning in &c.warnings {
        let _ = write!(html, r#"<p class="warning">WARNING: {}</p>"#, esc(warning));
    }

    html.push_str(r#"<h2>Checks</h2><table><tr><th style="width:40%">check</th><th>baseline passed</th><th>candidate passed</th><th>change</th></tr>"#);
    for check in &c.checks {
        let class = match check.moved {
            CheckMove::Regressed => "regressed",
            CheckMove::Fixed => "fixed",
            _ => "quiet",
        };
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td>{}/{}</td><td>{}/{}</td><td class="{class}">{}</td></tr>"#,
            esc(&check.name),
            check.baseline.0,
            check.baseline.1,
            check.candidate.0,
            check.candidate.1,
            move_word(check.moved)
        );
    }
    html.push_str("</table>");

    html.push_str(r#"<h2>Figures</h2><p>Mean over each side's runs, with the smallest and largest in parentheses. A change is flagged only when it is larger than the run-to-run noise: the larger of the two sides' spreads (largest minus smallest). Unless both sides ran more than once the noise is unknown and nothing is flagged; <code>tether run --repeat N</code> measures it, and more repeats measure it better.</p>"#);
    html.push_str(r#"<table><tr><th style="width:30%">figure</th><th>baseline</th><th>candidate</th><th>change</th><th>noise</th><th style="width:10%"></th></tr>"#);
    for f in &c.figures {
        let class = match f.flag {
            Flag::Worse => "worse",
            Flag::Better => "better",
            Flag::Changed => "",
            _ => "quiet",
        };
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="{class}">{}</td></tr>"#,
            esc(&f.name),
            esc(&stats(f.baseline, &f.unit)),
            esc(&stats(f.candidate, &f.unit)),
            esc(&change(f)),
            f.noise.map(|n| value(n, &f.unit)).unwrap_or_default(),
            flag_word(f.flag)
        );
    }
    html.push_str("</table></body></html>\n");
    html
}
