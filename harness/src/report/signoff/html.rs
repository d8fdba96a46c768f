//! `signoff.html`: one self-contained page (no script, no external file) that prints on
//! A4 and Letter alike. From the top: the verdict; what is signed (Envoy, control
//! plane, tether, where it ran, machine, date, the command to reproduce it) and the
//! baseline; each regression and failed check with its figure against its bound and a
//! link to that moment in the suite's report; a verdict per area and per suite; the key
//! figures across suites; and the block for who signed and when.

use super::held;
use crate::plan::{Area, CheckName};
use crate::report::html::{esc, failure_anchor};
use crate::signoff::{SignOff, SignedCheck, Status, SuiteSignOff};
use std::fmt::Write as _;

/// The page's own style: plain, and for print (the printer's page size, A4 or Letter).
const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1b1b1f;max-width:60rem;margin:1.5rem auto;padding:0 1rem}\
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #e3e3e3;vertical-align:top}\
.pass{color:#0b6b2b;font-weight:600}.fail{color:#b3261e;font-weight:600}.skip{color:#6b5e00;font-weight:600}\
.verdict{font-size:1.3rem;padding:.5rem .8rem;border:2px solid;display:inline-block}\
code{font-size:.9em;word-break:break-all}.sign td{height:2.4rem}\
@page{size:auto;margin:14mm}@media print{body{margin:0;max-width:none}a{color:inherit}tr,li{break-inside:avoid}h2,h3{break-after:avoid;page-break-after:avoid}}";

/// Checks whose figures the page sets side by side across suites.
const KEY_CHECKS: [(&str, &str); 4] = [
    ("reconvergence", "Reconvergence after the heal"),
    ("partition_noticed", "Partition detection"),
    ("propagation", "Propagation of mesh changes"),
    ("proxy_overhead", "Proxy overhead"),
];

/// The page.
pub fn render(signoff: &SignOff) -> String {
    let mut page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tether sign-off</title><style>{STYLE}</style></head><body>"
    );
    header(&mut page, signoff);
    problems(&mut page, signoff);
    areas(&mut page, signoff);
    suites(&mut page, signoff);
    figures(&mut page, signoff);
    signature(&mut page, signoff);
    page.push_str("</body></html>\n");
    page
}

fn header(page: &mut String, s: &SignOff) {
    let (class, verdict) = match s.passed() {
        true => ("pass", "PASSED"),
        false => ("fail", "FAILED"),
    };
    let t = s.totals;
    let _ = write!(
        page,
        "<h1>Release sign-off</h1><p class=\"verdict {class}\" id=\"verdict\">{verdict}: {} passed, {} failed, {} not run</p>\
         <h2>What is signed</h2><table>\
         <tr><th>Envoy</th><td>{}</td></tr><tr><th>Control plane</th><td>{}</td></tr>\
         <tr><th>tether</th><td>{}</td></tr><tr><th>Ran on</th><td>{}</td></tr>\
         <tr><th>Machine</th><td>{} cores, {:.1} GiB</td></tr><tr><th>Date</th><td>{}</td></tr>\
         <tr><th>Reproduce</th><td><code>{}</code></td></tr><tr><th>Baseline</th><td>{}</td></tr></table>",
        t.passed,
        t.failed,
        t.not_run,
        esc(or_none(&s.envoy_version)),
        control_plane(s),
        esc(&s.tether_version),
        esc(&s.ran_on),
        s.machine.cores,
        s.machine.memory_bytes as f64 / (1u64 << 30) as f64,
        esc(&s.created_at),
        esc(&s.command),
        s.baseline.as_deref().map_or("none".into(), esc),
    );
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "unknown (no suite ran)"
    } else {
        s
    }
}

fn control_plane(s: &SignOff) -> String {
    match s.ran_on.strip_prefix("target ") {
        Some(target) => format!("the target's own, as <code>{}</code> names it", esc(target)),
        None => "tether's reference ADS control plane (App Mesh-shaped)".into(),
    }
}

/// Each regression and failed check, at the top: what a signer must read first.
fn problems(page: &mut String, s: &SignOff) {
    let mut items = String::new();
    for suite in &s.suites {
        if suite.regressed {
            let _ = write!(
                items,
                "<li><b>{}</b> regressed against the baseline: <a href=\"{}/comparison.html\">comparison</a></li>",
                esc(&suite.name),
                esc(suite.dir.as_deref().unwrap_or("."))
            );
        }
        for check in suite.checks.iter().filter(|c| !held(c)) {
            let _ = write!(
                items,
                "<li><b>{}</b> {}: {} {}</li>",
                esc(&suite.name),
                link(check),
                esc(&check.detail),
                bounds(check)
            );
        }
        if suite.status == Status::Failed && suite.checks.is_empty() {
            let _ = write!(
                items,
                "<li><b>{}</b>: {}</li>",
                esc(&suite.name),
                esc(&suite.reason)
            );
        }
    }
    page.push_str("<h2>Regressions and failed checks</h2>");
    if items.is_empty() {
        page.push_str("<p id=\"problems\">None.</p>");
    } else {
        let _ = write!(page, "<ul id=\"problems\">{items}</ul>");
    }
}

/// A check's name, linked to its moment in its run's report (or the report itself).
fn link(check: &SignedCheck) -> String {
    let anchor = check
        .failed_at_ms
        .map(|_| format!("#{}", failure_anchor(&check.name)))
        .unwrap_or_default();
    format!(
        "<a href=\"{}/report.html{anchor}\"><code>{}</code></a>{}",
        esc(&check.report),
        esc(&check.name),
        if check.repeat > 1 {
            format!(" (repeat {})", check.repeat)
        } else {
            String::new()
        }
    )
}

/// Each bounded figure of a check as `name value unit (bound b)`.
fn bounds(check: &SignedCheck) -> String {
    let figures: Vec<String> = check
        .measurements
        .iter()
        .filter_map(|m| {
            let bound = m.bound?;
            Some(format!(
                "{} {} {} (bound {})",
                esc(&m.name),
                m.value,
                esc(&m.unit),
                bound
            ))
        })
        .collect();
    if figures.is_empty() {
        String::new()
    } else {
        format!("[{}]", figures.join("; "))
    }
}

/// The checks of `area` across the suites, of the negative controls (`negative`) or of
/// the others.
fn in_area(s: &SignOff, area: Area, negative: bool) -> Vec<&SignedCheck> {
    s.suites
        .iter()
        .filter(|suite| suite.negative() == negative)
        .flat_map(|suite| &suite.checks)
        .filter(|c| Area::of_verdict(&c.name) == area)
        .collect()
}

/// A verdict per area, from the suites that ran (negative controls aside: beside it,
/// how many of their checks in the area still fail when the property is broken).
fn areas(page: &mut String, s: &SignOff) {
    page.push_str("<h2>By area</h2><table id=\"areas\"><tr><th>Area</th><th>Verdict</th><th>Checks held</th><th>Negative controls failing as they exist to</th></tr>");
    for area in Area::EVERY {
        let checks = in_area(s, area, false);
        let negative = in_area(s, area, true);
        let failing = negative.iter().filter(|c| held(c)).count();
        let controls = match negative.len() {
            0 => "none".to_string(),
            n => format!("{failing} of {n}"),
        };
        if checks.is_empty() && negative.is_empty() && area == Area::Other {
            continue;
        }
        let kept = checks.iter().filter(|c| held(c)).count();
        let verdict = match (checks.len(), kept == checks.len()) {
            (0, _) => "<span class=\"skip\">not covered</span>",
            (_, true) => "<span class=\"pass\">PASS</span>",
            (_, false) => "<span class=\"fail\">FAIL</span>",
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{verdict}</td><td>{kept} of {}</td><td>{controls}</td></tr>",
            area.title(),
            checks.len()
        );
    }
    page.push_str("</table>");
}

fn suites(page: &mut String, s: &SignOff) {
    page.push_str("<h2>By suite</h2><table id=\"suites\"><tr><th>Suite</th><th>Verdict</th><th>Why</th><th>Time</th></tr>");
    for suite in &s.suites {
        let _ = write!(
            page,
            "<tr class=\"suite\" id=\"suite-{}\"><td>{}<br><code>{}</code></td><td>{}</td><td>{}</td><td>{:.0} s</td></tr>",
            esc(&suite.name),
            suite_link(suite),
            esc(&suite.file),
            status(suite),
            esc(&suite.reason),
            suite.duration_s
        );
    }
    page.push_str("</table>");
}

fn suite_link(suite: &SuiteSignOff) -> String {
    match &suite.dir {
        Some(dir) => format!("<a href=\"{}/\">{}</a>", esc(dir), esc(&suite.name)),
        None => esc(&suite.name),
    }
}

fn status(suite: &SuiteSignOff) -> &'static str {
    match (suite.status, !suite.negative()) {
        (Status::Passed, true) => "<span class=\"pass\">PASS</span>",
        (Status::Passed, false) => "<span class=\"pass\">PASS</span> (negative control)",
        (Status::Failed, _) => "<span class=\"fail\">FAIL</span>",
        (Status::NotRun, _) => "<span class=\"skip\">NOT RUN</span>",
    }
}

/// The key figures across suites: for each key check, every figure each suite measured,
/// with the spread of those in milliseconds. Negative controls are left out: their
/// figures are of a property broken on purpose.
fn figures(page: &mut String, s: &SignOff) {
    page.push_str("<h2>Key figures across suites</h2>");
    let mut any = false;
    for (check, title) in KEY_CHECKS {
        let rows: Vec<(&SuiteSignOff, &SignedCheck)> = s
            .suites
            .iter()
            .filter(|suite| !suite.negative())
            .flat_map(|suite| suite.checks.iter().map(move |c| (suite, c)))
            .filter(|(_, c)| CheckName::base_of(&c.name) == check)
            .collect();
        let mut values: Vec<f64> = rows
            .iter()
            .flat_map(|(_, c)| {
                c.measurements
                    .iter()
                    .filter(|m| m.unit == "ms")
                    .map(|m| m.value)
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        any = true;
        values.sort_by(f64::total_cmp);
        let spread = match values.len() {
            0 => String::new(),
            n => format!(
                " ({n} figures in ms: min {:.0}, median {:.0}, max {:.0})",
                values[0],
                values[n / 2],
                values[n - 1]
            ),
        };
        let _ = write!(
            page,
            "<h3>{title}{spread}</h3><table><tr><th>Suite</th><th>Figures</th></tr>"
        );
        for (suite, c) in rows {
            let figures: Vec<String> = c
                .measurements
                .iter()
                .map(|m| format!("{} {:.1} {}", esc(&m.name), m.value, esc(&m.unit)))
                .collect();
            let _ = write!(
                page,
                "<tr><td>{} {}</td><td>{}</td></tr>",
                esc(&suite.name),
                link(c),
                figures.join("; ")
            );
        }
        page.push_str("</table>");
    }
    if !any {
        page.push_str("<p>No suite measured them.</p>");
    }
}

fn signature(page: &mut String, s: &SignOff) {
    page.push_str("<h2>Signature</h2><table class=\"sign\" id=\"signature\">");
    match &s.signature {
        Some(sig) => {
            let _ = write!(
                page,
                "<tr><th>Signed by</th><td>{}</td></tr><tr><th>Signed at</th><td>{}</td></tr>\
                 <tr><th>Covers</th><td>{} files, each by its SHA-256 in signoff.json (<code>tether signoff --verify</code> checks them)</td></tr>",
                esc(&sig.signed_by),
                esc(&sig.signed_at),
                sig.digests.len()
            );
        }
        None => page.push_str(
            "<tr><th>Signed by</th><td></td></tr><tr><th>Date</th><td></td></tr>\
             <tr><th>Record it</th><td><code>tether signoff DIR --signed-by NAME</code></td></tr>",
        ),
    }
    page.push_str("</table>");
}
