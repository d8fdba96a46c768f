//! `junit.xml`: one testcase per check, for CI systems; a failure's message is the
//! check's detail (measured value against bound), its text every measured figure. A check
//! that could not judge (unknown, or invalid figures) is an `<error>`, as
//! `summary.yaml` counts it failed; a run that did not finish adds an erroring
//! `run_complete` testcase (see [`super::listed`]). The suite and every case carry a
//! `timestamp` and a `time`: a case's is the phase its check watched (the whole run for
//! a check over the run, or over a soak's cycles).

use super::RunInfo;
use crate::checks::{Outcome, PhaseFigures, Verdict};
use chrono::{DateTime, FixedOffset};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// Render `junit.xml`.
pub fn render(
    info: &RunInfo,
    verdicts: &[Verdict],
    phases: &[PhaseFigures],
) -> Result<String, quick_junit::SerializeError> {
    let started = DateTime::parse_from_rfc3339(&info.started_at).ok();
    let run_time = Duration::from_secs_f64(info.duration_s.max(0.0));
    let mut report = Report::new("tether");
    let mut suite = TestSuite::new(info.suite.as_str());
    if let Some(started) = started {
        report.set_timestamp(started);
        suite.set_timestamp(started);
    }
    report.set_time(run_time);
    suite.set_time(run_time);
    for v in super::listed(info, verdicts) {
        let mut case = TestCase::new(v.name.as_str(), status(&v));
        case.set_classname(format!("tether.{}", info.suite));
        match v
            .phase
            .as_ref()
            .and_then(|p| phases.iter().find(|f| f.phase == *p))
        {
            Some(phase) => {
                case.set_time(Duration::from_millis(phase.end_ms - phase.start_ms));
                if let Some(started) = started {
                    case.set_timestamp(at(started, phase.start_ms));
                }
            }
            None => {
                case.set_time(run_time);
                if let Some(started) = started {
                    case.set_timestamp(started);
                }
            }
        }
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string()
}

/// A verdict as a testcase's status: failed is a `<failure>`, unknown or invalid an
/// `<error>`.
fn status(v: &Verdict) -> TestCaseStatus {
    let kind = match v.outcome {
        Outcome::Passed => return TestCaseStatus::success(),
        Outcome::Failed => NonSuccessKind::Failure,
        Outcome::Unknown | Outcome::Invalid => NonSuccessKind::Error,
    };
    let mut s = TestCaseStatus::non_success(kind);
    s.set_message(v.detail.as_str());
    let figures = measured(v);
    if !figures.is_empty() {
        s.set_description(figures);
    }
    s
}

/// `ms` after `started`.
fn at(started: DateTime<FixedOffset>, ms: u64) -> DateTime<FixedOffset> {
    started + chrono::Duration::milliseconds(ms as i64)
}

/// The measured figures with their bounds, one a line (`name = value unit (bound b)`).
fn measured(v: &Verdict) -> String {
    v.measurements
        .iter()
        .map(|m| {
            let bound = m.bound.map(|b| format!(" (bound {b})")).unwrap_or_default();
            format!("{} = {} {}{bound}", m.name, m.value, m.unit)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
