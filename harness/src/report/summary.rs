//! `summary.yaml`: a Gateway API ConformanceReport in shape, so that what reads those
//! reads this. Its keys are the ConformanceReport's wherever the meaning is the same:
//! `apiVersion` (tether's own group), `kind: ConformanceReport`, `date`,
//! `implementation` (the Envoy under test: `organization`, `project`, `url`, `version`,
//! `contact`), and one profile per area of checks, with its `name`, a `summary`
//! sentence and `core` (`result` success|partial|failure, `statistics` with `Passed`,
//! `Failed`, `Skipped`, `failedTests`, `skippedTests`). What only tether has sits under
//! keys of its own: `implementation.controlPlane`, `.xds`, `.faultProxy`, a `tether` key per profile
//! (each check with its outcome, failed ones with their detail) and a top-level
//! `tether` key (suite, result, backend, version, soak).
//!
//! A check that could not judge (unknown, or invalid figures) counts as failed, as
//! `junit.xml` counts it an error: neither may read as a pass. Nothing is skipped today;
//! `Skipped` is there for readers that expect it.
//!
//! Every text is written as a double-quoted scalar in JSON's escaping, which YAML reads as
//! the same string, so no value can break the file.

use super::RunInfo;
use crate::checks::{Outcome, SoakSummary, Verdict};
use crate::plan::Area;
use std::fmt::Write;

/// `summary.yaml`'s `apiVersion`: tether's own group, not the Gateway API's.
pub const API_VERSION: &str = "tether.dev/v1alpha1";

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Render `summary.yaml`.
pub fn render(info: &RunInfo, verdicts: &[Verdict], soak: Option<&SoakSummary>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# tether run summary, shaped as a Gateway API ConformanceReport (see README: Reports)"
    );
    let _ = writeln!(out, "apiVersion: {API_VERSION}");
    let _ = writeln!(out, "kind: ConformanceReport");
    let _ = writeln!(out, "date: {}", quoted(&info.started_at));
    implementation(&mut out, info);
    let listed = super::listed(info, verdicts);
    let _ = writeln!(out, "profiles:");
    for area in Area::EVERY {
        let in_profile: Vec<&Verdict> = listed
            .iter()
            .filter(|v| Area::of_verdict(&v.name) == area)
            .collect();
        if !in_profile.is_empty() {
            profile(&mut out, area, &in_profile);
        }
    }
    let _ = writeln!(out, "tether:");
    let _ = writeln!(out, "  suite: {}", quoted(&info.suite));
    let _ = writeln!(out, "  result: {}", run_result(info, verdicts));
    let _ = writeln!(out, "  backend: {}", quoted(&info.backend));
    let _ = writeln!(
        out,
        "  version: {}",
        quoted(&format!("{} ({})", info.tether_version, info.git_revision))
    );
    let _ = writeln!(out, "  seed: {}", info.seed);
    if let Some(reason) = &info.stopped {
        let _ = writeln!(out, "  stopped: {}", quoted(reason));
    }
    if let Some(soak) = soak {
        soak_counts(&mut out, soak);
    }
    out
}

/// What was tested: the Envoy, with the control plane and xDS variant beside it.
fn implementation(out: &mut String, info: &RunInfo) {
    let foreign = info
        .target
        .as_ref()
        .is_some_and(|t| t.control_plane != "tether");
    let control_plane = if foreign {
        "the target's own xDS server"
    } else {
        "tether reference control plane (xDS ADS, state of the world and delta)"
    };
    let _ = writeln!(out, "implementation:");
    let _ = writeln!(out, "  organization: \"envoyproxy\"");
    let _ = writeln!(out, "  project: \"envoy\"");
    let _ = writeln!(out, "  url: \"https://github.com/envoyproxy/envoy\"");
    let _ = writeln!(out, "  version: {}", quoted(&info.envoy_version));
    let _ = writeln!(out, "  contact:");
    let _ = writeln!(out, "    - \"https://github.com/envoyproxy/envoy/issues\"");
    let _ = writeln!(out, "  controlPlane: {}", quoted(control_plane));
    let _ = writeln!(out, "  xds: {}", quoted(&info.xds));
    let _ = writeln!(out, "  faultProxy: {}", quoted(&info.fault_proxy));
}

/// One profile: the ConformanceReport's `name`, `summary` and `core`, then tether's.
fn profile(out: &mut String, area: Area, verdicts: &[&Verdict]) {
    let failed: Vec<&&Verdict> = verdicts.iter().filter(|v| !v.passed()).collect();
    let passed = verdicts.len() - failed.len();
    let (result, summary) = if failed.is_empty() {
        (
            "success",
            format!(
                "Core tests succeeded: {passed} of {} passed.",
                verdicts.len()
            ),
        )
    } else {
        let names: Vec<&str> = failed.iter().map(|v| v.name.as_str()).collect();
        (
            "failure",
            format!(
                "Core tests failed: {} of {} did not pass ({}).",
                failed.len(),
                verdicts.len(),
                names.join(", ")
            ),
        )
    };
    let _ = writeln!(out, "  - name: {}", quoted(area.profile()));
    let _ = writeln!(out, "    summary: {}", quoted(&summary));
    let _ = writeln!(out, "    core:");
    let _ = writeln!(out, "      result: {result}");
    let _ = writeln!(out, "      statistics:");
    let _ = writeln!(out, "        Passed: {passed}");
    let _ = writeln!(out, "        Failed: {}", failed.len());
    let _ = writeln!(out, "        Skipped: 0");
    if !failed.is_empty() {
        let _ = writeln!(out, "      failedTests:");
        for v in &failed {
            let _ = writeln!(out, "        - {}", quoted(&v.name));
        }
    }
    let _ = writeln!(out, "    tether:");
    let _ = writeln!(out, "      title: {}", quoted(area.title()));
    let _ = writeln!(out, "      checks:");
    for v in verdicts {
        let _ = writeln!(out, "        - name: {}", quoted(&v.name));
        let _ = writeln!(out, "          outcome: {}", outcome(v.outcome));
        if !v.passed() {
            let _ = writeln!(out, "          detail: {}", quoted(&v.detail));
        }
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Unknown => "unknown",
        Outcome::Invalid => "invalid",
    }
}

/// The run as a whole, in one word.
fn run_result(info: &RunInfo, verdicts: &[Verdict]) -> &'static str {
    if info.incomplete {
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
    }
}

/// A soak's cycles: how many ran, and each check's outcomes over them.
fn soak_counts(out: &mut String, soak: &SoakSummary) {
    let _ = writeln!(out, "  soak:");
    let _ = writeln!(out, "    cyclesPlanned: {}", soak.cycles_planned);
    let _ = writeln!(out, "    cyclesJudged: {}", soak.cycles_judged);
    let _ = writeln!(out, "    checks:");
    for c in &soak.checks {
        let failed: Vec<String> = c.failed_cycles.iter().map(u32::to_string).collect();
        let _ = writeln!(out, "      - name: {}", quoted(&c.name));
        let _ = writeln!(
            out,
            "        cycles: {{ passed: {}, failed: {}, unknown: {} }}",
            c.passed, c.failed, c.unknown
        );
        let _ = writeln!(out, "        failedCycles: [{}]", failed.join(", "));
    }
}
