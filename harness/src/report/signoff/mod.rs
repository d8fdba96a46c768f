//! A sign-off's files: `signoff.json` (the [`SignOff`] as it is), `junit.xml` (a test
//! suite per suite, a case per check and repeat), `signoff.html` (the document a release
//! manager signs, see [`html`]) and the console summary. They render the sign-off's
//! verdicts; they never judge.

pub mod html;

use crate::checks::Outcome;
use crate::signoff::{SignOff, SignedCheck, Status, SuiteSignOff};
use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Write `signoff.json`, `junit.xml` and `signoff.html` into `dir`.
pub fn write(dir: &Path, signoff: &SignOff) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("junit.xml");
    std::fs::write(&path, junit(signoff)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    write_document(dir, signoff)
}

/// Rewrite only the signed document (`signoff.json` and `signoff.html`), as signing
/// does: the files a signature covers stay as they are.
pub fn write_document(dir: &Path, signoff: &SignOff) -> Result<()> {
    for (name, text) in [
        (
            "signoff.json",
            serde_json::to_string_pretty(signoff)? + "\n",
        ),
        ("signoff.html", html::render(signoff)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// A check's verdict in the sign-off: for a negative control's own checks, failing is
/// what passes.
pub fn held(check: &SignedCheck) -> bool {
    match check.expected_to_fail {
        true => check.outcome == Outcome::Failed,
        false => check.outcome == Outcome::Passed,
    }
}

/// `junit.xml`: a test suite per suite; a case per check (and repeat, when repeated). A
/// negative control's expected failure is a success; a check that could not judge is an
/// `<error>`; a suite not run is one skipped case with the reason; a regression against
/// the baseline is a failed `no_regression` case.
pub fn junit(signoff: &SignOff) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("tether signoff");
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&signoff.created_at) {
        report.set_timestamp(at);
    }
    let total: f64 = signoff.suites.iter().map(|s| s.duration_s.max(0.0)).sum();
    report.set_time(Duration::from_secs_f64(total));
    for suite in &signoff.suites {
        report.add_test_suite(junit_suite(suite));
    }
    report.to_string()
}

fn junit_suite(suite: &SuiteSignOff) -> TestSuite {
    let mut out = TestSuite::new(suite.name.as_str());
    out.set_time(Duration::from_secs_f64(suite.duration_s.max(0.0)));
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&suite.started_at) {
        out.set_timestamp(at);
    }
    let class = format!("tether.{}", suite.name);
    let repeats = suite.checks.iter().map(|c| c.repeat).max().unwrap_or(1);
    if suite.status == Status::NotRun {
        let mut status = TestCaseStatus::skipped();
        status.set_message(suite.reason.as_str());
        let mut case = TestCase::new("not_run", status);
        case.set_classname(class.as_str());
        out.add_test_case(case);
        return out;
    }
    for check in &suite.checks {
        let name = match repeats {
            1 => check.name.clone(),
            _ => format!("{} (repeat {})", check.name, check.repeat),
        };
        let mut case = TestCase::new(name, junit_status(check));
        case.set_classname(class.as_str());
        out.add_test_case(case);
    }
    if suite.regressed {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message("regressed against the baseline (see its comparison.html)");
        let mut case = TestCase::new("no_regression", status);
        case.set_classname(class.as_str());
        out.add_test_case(case);
    }
    out
}

fn junit_status(check: &SignedCheck) -> TestCaseStatus {
    if held(check) {
        return TestCaseStatus::success();
    }
    let (kind, message) = match (check.expected_to_fail, check.outcome) {
        (true, outcome) => (
            NonSuccessKind::Failure,
            format!(
                "a negative control expected this check to fail; it is {outcome:?}: {}",
                check.detail
            ),
        ),
        (false, Outcome::Failed) => (NonSuccessKind::Failure, check.detail.clone()),
        (false, _) => (NonSuccessKind::Error, check.detail.clone()),
    };
    let mut status = TestCaseStatus::non_success(kind);
    status.set_message(message);
    status
}

/// The console summary: a line per suite, then the totals and the verdict.
pub fn console(signoff: &SignOff) -> String {
    let mut out = String::from("\nsign-off\n  status   suite                              why\n");
    for suite in &signoff.suites {
        let status = match (suite.status, !suite.negative()) {
            (Status::Passed, true) => "PASS",
            (Status::Passed, false) => "PASS (-)",
            (Status::Failed, _) => "FAIL",
            (Status::NotRun, _) => "NOT RUN",
        };
        let _ = writeln!(out, "  {status:<8} {:<34} {}", suite.name, suite.reason);
    }
    let t = signoff.totals;
    let verdict = if signoff.passed() {
        "SIGN-OFF PASSED"
    } else {
        "SIGN-OFF FAILED"
    };
    let _ = writeln!(
        out,
        "{verdict}: {} passed, {} failed, {} not run ((-): a negative control failing as it exists to)",
        t.passed, t.failed, t.not_run
    );
    out
}

#[cfg(test)]
mod tests;
