//! `junit.xml`: one testcase per check, for CI systems.

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
            Outcome::Failed | Outcome::Unknown => {
                let mut s = TestCaseStatus::non_success(if v.outcome == Outcome::Failed {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                });
                s.set_message(v.detail.as_str());
                s
            }
        };
        let mut case = TestCase::new(v.name.as_str(), status);
        case.set_classname(format!("tether.{}", info.suite));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string()
}
