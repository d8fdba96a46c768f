//! `junit.xml`: one testcase per check, for CI systems; a failure's message is the
//! check's detail (measured value against bound), its text every measured figure. A run
//! that did not finish adds an erroring `run_complete` testcase.

use super::RunInfo;
use crate::checks::{Outcome, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// Render `junit.xml`.
pub fn render(info: &RunInfo, verdicts: &[Verdict]) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("tether");
    let mut suite = TestSuite::new(info.suite.as_str());
    for v in verdicts {
        let status = match v.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed | Outcome::Unknown | Outcome::Invalid => {
                let mut s = TestCaseStatus::non_success(if v.outcome == Outcome::Failed {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                });
                s.set_message(v.detail.as_str());
                s.set_description(measured(v));
                s
            }
        };
        let mut case = TestCase::new(v.name.as_str(), status);
        case.set_classname(format!("tether.{}", info.suite));
        suite.add_test_case(case);
    }
    if info.incomplete || info.interrupted {
        // CI must not read a run that never finished as green: one more testcase says so.
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message(if info.incomplete {
            "the run did not finish (killed or crashed): its timeline has no run_ended entry; the verdicts judge only what it recorded"
        } else {
            "the run was interrupted before all phases ran"
        });
        let mut case = TestCase::new("run_complete", s);
        case.set_classname(format!("tether.{}", info.suite));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string()
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
