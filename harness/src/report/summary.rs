//! `summary.yaml`, in the spirit of the Gateway API's ConformanceReport: what was tested
//! (Envoy, control plane, tether), and per profile (an area of checks) how many passed,
//! failed or were skipped (unknown or invalid: neither a pass nor a failure of the mesh),
//! with the failed checks named.
//!
//! Every text is written as a double-quoted scalar in JSON's escaping, which YAML reads as
//! the same string, so no value can break the file.

use super::RunInfo;
use crate::checks::{Outcome, SoakSummary, Verdict};
use crate::plan::Area;
use std::fmt::Write;

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Render `summary.yaml`.
pub fn render(info: &RunInfo, verdicts: &[Verdict], soak: Option<&SoakSummary>) -> String {
    let mut out = String::new();
    let result = if info.incomplete {
        "incomplete"
    } else if info.stopped.is_some() {
        "stopped"
    } else if info.interrupted {
        "interrupted"
    } else if info.passed(verdicts) {
        "passed"
    } else if verdicts.iter().any(|v| v.outcome == Outcome::Failed) {
        "failed"
    } else {
        "inconclusive"
    };
    let _ = writeln!(out, "# tether run summary (see README: Reports)");
    let _ = writeln!(out, "apiVersion: tether/v1");
    let _ = writeln!(out, "kind: RunSummary");
    let _ = writeln!(out, "suite: {}", quoted(&info.suite));
    let _ = writeln!(out, "date: {}", quoted(&info.started_at));
    let _ = writeln!(out, "result: {result}");
    let _ = writeln!(out, "implementation:");
    let _ = writeln!(out, "  envoy: {}", quoted(&info.envoy_version));
    let _ = writeln!(
        out,
        "  controlPlane: {}",
        quoted("tether reference control plane (xDS ADS, state of the world and delta)")
    );
    let _ = writeln!(
        out,
        "  tether: {}",
        quoted(&format!("{} ({})", info.tether_version, info.git_revision))
    );
    let _ = writeln!(out, "  backend: {}", quoted(&info.backend));
    let _ = writeln!(out, "  xds: {}", quoted(&info.xds));
    if let Some(reason) = &info.stopped {
        let _ = writeln!(out, "stopped: {}", quoted(reason));
    }
    if let Some(soak) = soak {
        soak_counts(&mut out, soak);
    }
    let _ = writeln!(out, "profiles:");
    for area in Area::EVERY {
        let profile = area.title();
        let in_profile: Vec<&Verdict> = verdicts
            .iter()
            .filter(|v| Area::of_verdict(&v.name) == area)
            .collect();
        if in_profile.is_empty() {
            continue;
        }
        let count = |o: fn(&Outcome) -> bool| in_profile.iter().filter(|v| o(&v.outcome)).count();
        let _ = writeln!(out, "  - name: {}", quoted(profile));
        let _ = writeln!(
            out,
            "    summary: {{ passed: {}, failed: {}, skipped: {} }}",
            count(|o| *o == Outcome::Passed),
            count(|o| *o == Outcome::Failed),
            count(|o| matches!(o, Outcome::Unknown | Outcome::Invalid))
        );
        let _ = writeln!(out, "    checks:");
        for v in &in_profile {
            let _ = writeln!(out, "      - {}", quoted(&v.name));
        }
        let failed: Vec<&&Verdict> = in_profile
            .iter()
            .filter(|v| v.outcome == Outcome::Failed)
            .collect();
        if failed.is_empty() {
            let _ = writeln!(out, "    failedChecks: []");
        } else {
            let _ = writeln!(out, "    failedChecks:");
            for v in failed {
                let _ = writeln!(out, "      - name: {}", quoted(&v.name));
                let _ = writeln!(out, "        detail: {}", quoted(&v.detail));
            }
        }
    }
    out
}

/// A soak's cycles: how many ran, and each check's outcomes over them.
fn soak_counts(out: &mut String, soak: &SoakSummary) {
    let _ = writeln!(out, "soak:");
    let _ = writeln!(out, "  cyclesPlanned: {}", soak.cycles_planned);
    let _ = writeln!(out, "  cyclesJudged: {}", soak.cycles_judged);
    let _ = writeln!(out, "  checks:");
    for c in &soak.checks {
        let failed: Vec<String> = c.failed_cycles.iter().map(u32::to_string).collect();
        let _ = writeln!(out, "    - name: {}", quoted(&c.name));
        let _ = writeln!(
            out,
            "      cycles: {{ passed: {}, failed: {}, unknown: {} }}",
            c.passed, c.failed, c.unknown
        );
        let _ = writeln!(out, "      failedCycles: [{}]", failed.join(", "));
    }
}
