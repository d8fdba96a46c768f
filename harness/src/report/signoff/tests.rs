use super::*;
use crate::signoff::{SignOff, SignedCheck, Status, SuiteSignOff};

fn check(name: &str, outcome: Outcome, expected_to_fail: bool) -> SignedCheck {
    SignedCheck {
        name: name.into(),
        repeat: 1,
        outcome,
        detail: format!("{name} measured 12 ms (bound 10 ms)"),
        expected_to_fail,
        failed_at_ms: (outcome == Outcome::Failed).then_some(4_000),
        measurements: vec![crate::checks::Measurement {
            name: format!("{name}_ms.client"),
            value: 12.0,
            unit: "ms".into(),
            bound: Some(10.0),
        }],
        report: format!("{name}-suite"),
    }
}

fn suite(name: &str, status: Status, checks: Vec<SignedCheck>, expect: &[&str]) -> SuiteSignOff {
    SuiteSignOff {
        name: name.into(),
        file: format!("suites/{name}.yaml"),
        expect_failing: expect.iter().map(|e| e.to_string()).collect(),
        expect_stopped: false,
        status,
        reason: format!("{name} reason"),
        dir: (status != Status::NotRun).then(|| name.to_string()),
        duration_s: 12.5,
        checks,
        regressed: false,
        envoy_version: "1.40.0".into(),
        started_at: "2026-12-04T10:00:00Z".into(),
    }
}

fn signoff() -> SignOff {
    let mut regressed = suite(
        "link-latency",
        Status::Failed,
        vec![check("xds_stays_connected", Outcome::Passed, false)],
        &[],
    );
    regressed.regressed = true;
    SignOff::new(
        vec![
            suite(
                "outpost-partition",
                Status::Passed,
                vec![check("reconvergence", Outcome::Passed, false)],
                &[],
            ),
            suite(
                "propagation",
                Status::Failed,
                vec![check("propagation", Outcome::Failed, false)],
                &[],
            ),
            suite("container-faults", Status::NotRun, Vec::new(), &[]),
            suite(
                "propagation-partitioned",
                Status::Passed,
                vec![check("propagation", Outcome::Failed, true)],
                &["propagation"],
            ),
            suite(
                "journeys",
                Status::Failed,
                vec![check("journeys_succeed", Outcome::Unknown, false)],
                &[],
            ),
            regressed,
        ],
        "process".into(),
        "tether run suites/ --with-negative".into(),
        "2026-12-04T10:00:00Z".into(),
        None,
    )
}

#[test]
fn junit_has_a_suite_per_suite_and_counts_an_expected_failure_as_a_success() {
    let xml = junit(&signoff()).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 6, "{xml}");
    assert!(
        xml.contains(
            r#"<testsuites name="tether signoff" tests="7" skipped="1" failures="2" errors="1""#
        ),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<skipped message="container-faults reason"/>"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="no_regression" classname="tether.link-latency">"#),
        "{xml}"
    );
    let negative = &xml[xml.find(r#"name="propagation-partitioned""#).unwrap()..];
    let negative = &negative[..negative.find("</testsuite>").unwrap()];
    assert!(!negative.contains("<failure"), "{negative}");
}

#[test]
fn the_page_names_every_suite_each_failure_with_its_link_and_the_unsigned_block() {
    let page = html::render(&signoff());
    for name in [
        "outpost-partition",
        "propagation",
        "container-faults",
        "propagation-partitioned",
        "journeys",
        "link-latency",
    ] {
        assert!(page.contains(&format!(r#"id="suite-{name}""#)), "{name}");
    }
    assert!(
        page.contains(
            r#"<p class="verdict fail" id="verdict">FAILED: 2 passed, 3 failed, 1 not run</p>"#
        ),
        "{page}"
    );
    // The failed check links to its moment in its run's report, with figure and bound.
    assert!(
        page.contains(r##"<a href="propagation-suite/report.html#failed-propagation"><code>propagation</code></a>"##),
        "{page}"
    );
    assert!(
        page.contains("propagation_ms.client 12 ms (bound 10)"),
        "{page}"
    );
    assert!(
        page.contains(r#"href="link-latency/comparison.html""#),
        "{page}"
    );
    // A negative control's expected failure is not listed as a problem.
    let problems = &page[page.find(r#"id="problems""#).unwrap()..page.find("<h2>By area").unwrap()];
    assert!(!problems.contains("propagation-partitioned"), "{problems}");
    assert!(page.contains("tether signoff DIR --signed-by NAME"));
    assert!(page.contains("@page{size:auto"));
}

#[test]
fn the_console_summary_has_a_line_per_suite_and_the_verdict() {
    let text = console(&signoff());
    assert!(text.contains("PASS (-) propagation-partitioned"), "{text}");
    assert!(text.contains("NOT RUN  container-faults"), "{text}");
    assert!(
        text.contains("SIGN-OFF FAILED: 2 passed, 3 failed, 1 not run"),
        "{text}"
    );
}
