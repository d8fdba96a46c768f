//! The reports a release manager signs off from, tested as their readers use them:
//! `tether report` on a run folder (a hand-made one, and one whose run was SIGKILLed),
//! `result.json` against its JSON Schema, `junit.xml` against the structure CI systems
//! accept, and `report.html` in headless Chromium.

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tether::plan::{Disruption, Fault, Link};
use tether::result::RunInfo;
use tether::run::folder;
use tether::timeline::{Entry, Event, LoadSecond};

fn tether(args: &[&Path]) -> std::process::Output {
    Command::new(common::tether_bin())
        .args(args)
        .current_dir(common::repo(""))
        .output()
        .unwrap()
}

fn at(t_ms: u64, event: Event) -> Entry {
    Entry { t_ms, event }
}

/// A timeline of `suites/outpost-partition.yaml` in which the partition also broke the
/// outpost's traffic (so `outpost_traffic_flows` fails at 6 s) and the rest is thin;
/// `ended` adds the `run_ended` entry a finished run has.
fn hand_made_timeline(ended: bool) -> Vec<Entry> {
    let mut entries = vec![at(
        0,
        Event::PhaseStarted {
            phase: "baseline".into(),
            duration_ms: 5_000,
        },
    )];
    let phase = |t, name: &str| {
        at(
            t,
            Event::PhaseStarted {
                phase: name.into(),
                duration_ms: 12_000,
            },
        )
    };
    let fault = |applied: bool, t| {
        let disruption = Disruption::Link {
            link: Link::Xds,
            fault: Fault::Blackhole,
            flapping: false,
        };
        at(
            t,
            if applied {
                Event::FaultApplied {
                    draw: disruption.draw(),
                    disruption,
                    applied: vec![
                        "tether_xds: timeout downstream {\"timeout\":0} toxicity 1".into(),
                    ],
                }
            } else {
                Event::FaultRemoved { disruption }
            },
        )
    };
    entries.push(phase(5_000, "partition"));
    entries.push(fault(true, 5_000));
    entries.push(at(
        10_000,
        Event::MeshChange {
            description: "route svc-router/split weights svc-v1=0 svc-v2=100".into(),
            version: "2".into(),
            target: Some("svc-v2".into()),
            affects: vec!["client".into()],
        },
    ));
    entries.push(fault(false, 17_000));
    entries.push(phase(17_000, "heal"));
    for s in 0..29u64 {
        let broken = (6..9).contains(&s);
        let ok = if broken { 20 } else { 50 };
        let mut errors = BTreeMap::new();
        if broken {
            errors.insert("timeout".to_string(), 30);
        }
        entries.push(at(
            s * 1_000,
            Event::LoadSecond(LoadSecond {
                sent: 50,
                ok,
                errors,
                served_by: BTreeMap::from([("svc-v1".to_string(), ok)]),
                p50_us: 1_200,
                p99_us: 9_000,
                max_us: 1_000_000,
                ..LoadSecond::default()
            }),
        ));
        for node in ["client", "svc-v1", "svc-v2"] {
            entries.push(at(
                s * 1_000 + 500,
                Event::EnvoySample {
                    node: node.into(),
                    connected: Some(!(7..17).contains(&s)),
                    route_version: Some("1".into()),
                    cluster_version: Some("1".into()),
                    listener_version: None,
                    xds_keepalive_timeouts: Some(u64::from(s >= 7)),
                    ready: Some(true),
                    memory_allocated: Some(8_000_000),
                    memory_heap: Some(12_000_000),
                    updates_rejected: None,
                },
            ));
        }
    }
    if ended {
        entries.push(at(
            29_500,
            Event::RunEnded {
                reason: "completed".into(),
            },
        ));
    }
    entries.sort_by_key(|e| e.t_ms);
    entries
}

/// A run folder as `tether run suites/outpost-partition.yaml` leaves it, with `timeline`.
fn hand_made_folder(dir: &Path, timeline: &[Entry]) {
    let suite = "suites/outpost-partition.yaml";
    let plan = tether::suite::load(&common::repo(suite)).unwrap();
    let mut info = RunInfo {
        suite: plan.name().into(),
        suite_path: suite.into(),
        started_at: "2026-01-02T03:04:05Z".into(),
        seed: 42,
        envoy_version: "envoy 1.40.0 (hand-made)".into(),
        backend: "process".into(),
        tether_version: tether::result::TETHER_VERSION.into(),
        git_revision: tether::result::GIT_REVISION.into(),
        machine: tether::result::Machine::this(),
        duration_s: 31.5,
        ..RunInfo::default()
    };
    let schedule = tether::plan::Schedule::of(&plan, 42);
    folder::write_inputs(dir, &plan, &schedule, &mut info).unwrap();
    let text: String = timeline
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join(folder::TIMELINE), text).unwrap();
}

/// `tether report DIR` on a hand-made folder: its exit code and result.json.
fn report(dir: &Path) -> (Option<i32>, Value) {
    let out = tether(&[Path::new("report"), dir]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let result = std::fs::read(dir.join("result.json")).unwrap_or_default();
    (
        out.status.code(),
        serde_json::from_slice(&result).unwrap_or(Value::Null),
    )
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(common::repo("harness/schema/result.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::meta::validate(&schema).expect("the schema is valid JSON Schema");
    jsonschema::draft202012::new(&schema).expect("the schema compiles as draft 2020-12")
}

fn assert_valid(validator: &jsonschema::Validator, result: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(result)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{result:#}");
}

fn tether_report_rerenders_a_hand_made_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    hand_made_folder(dir.path(), &hand_made_timeline(true));
    let (code, result) = report(dir.path());
    assert_eq!(code, Some(1), "a failed check exits 1");
    assert_eq!(result["passed"], false);
    assert_eq!(result["incomplete"], false);
    assert_eq!(result["seed"], 42);
    assert_eq!(result["duration_s"], 31.5, "run.json's duration is kept");
    let traffic = &result["checks"][0];
    assert_eq!(traffic["name"], "outpost_traffic_flows");
    assert_eq!(traffic["outcome"], "failed");
    assert_eq!(traffic["failed_at_ms"], 6_000);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains(">FAILED<"));
    assert!(!html.contains("INCOMPLETE"));
    // summary.yaml, read as a Gateway API ConformanceReport reader reads one: the same
    // verdicts, counted per profile, the failed ones named.
    let text = std::fs::read_to_string(dir.path().join("summary.yaml")).unwrap();
    let summary = conformance_report(&text);
    let checks = result["checks"].as_array().unwrap();
    let outcome = |o: &str| checks.iter().filter(|c| c["outcome"] == o).count();
    let passed: u32 = summary
        .profiles
        .iter()
        .map(|p| p.core.statistics.passed)
        .sum();
    let failed: u32 = summary
        .profiles
        .iter()
        .map(|p| p.core.statistics.failed)
        .sum();
    assert_eq!(passed as usize, outcome("passed"), "{text}");
    assert_eq!(failed as usize, checks.len() - outcome("passed"), "{text}");
    let named: Vec<&str> = summary
        .profiles
        .iter()
        .flat_map(|p| p.core.failed_tests.iter().map(String::as_str))
        .collect();
    assert!(named.contains(&"outpost_traffic_flows"), "{text}");
    let traffic = summary
        .profiles
        .iter()
        .find(|p| p.name == "STATIC-STABILITY")
        .expect("the static stability profile");
    assert_eq!(traffic.core.result, "failure", "{text}");
    assert!(traffic.summary.contains("outpost_traffic_flows"), "{text}");
    assert!(
        text.contains("  result: failed"),
        "tether's own result: {text}"
    );

    // The same run killed before its end: judged from what it recorded, marked so.
    hand_made_folder(dir.path(), &hand_made_timeline(false));
    let (code, result) = report(dir.path());
    assert_eq!(code, Some(1), "an incomplete run exits 1");
    assert_eq!(result["incomplete"], true);
    assert_eq!(
        result["duration_s"], 28.5,
        "a killed run lasted what it recorded"
    );
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("INCOMPLETE"));
    // junit.xml and summary.yaml agree: the unfinished run is an error in one and a
    // failed test in the other, never a skip or a pass.
    let summary =
        conformance_report(&std::fs::read_to_string(dir.path().join("summary.yaml")).unwrap());
    let other = summary.profiles.iter().find(|p| p.name == "OTHER").unwrap();
    assert_eq!(other.core.failed_tests, ["run_complete"]);
    let junit = common::read_junit(&dir.path().join("junit.xml"));
    let case = junit.test_suites[0]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "run_complete")
        .unwrap();
    assert!(matches!(
        case.status,
        quick_junit::TestCaseStatus::NonSuccess {
            kind: quick_junit::NonSuccessKind::Error,
            ..
        }
    ));
}

/// A ConformanceReport as the Gateway API's own types read it (`conformance/apis/v1`:
/// JSON names, unknown keys ignored).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConformanceReport {
    api_version: String,
    kind: String,
    date: String,
    implementation: Implementation,
    profiles: Vec<ProfileReport>,
}

#[derive(Debug, serde::Deserialize)]
struct Implementation {
    organization: String,
    project: String,
    url: String,
    version: String,
    contact: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct ProfileReport {
    name: String,
    summary: String,
    core: Status,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    result: String,
    statistics: Statistics,
    #[serde(default)]
    skipped_tests: Vec<String>,
    #[serde(default)]
    failed_tests: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Statistics {
    passed: u32,
    failed: u32,
    skipped: u32,
}

/// Parse `summary.yaml` and hold it to what the Gateway API's report checks
/// (`ProfileReport.IsConformant`: a name, a summary, a known result) and to itself (the
/// statistics count the named tests; a profile with a failed test is a failure).
fn conformance_report(text: &str) -> ConformanceReport {
    let report: ConformanceReport =
        marked_yaml::from_yaml(0, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(report.kind, "ConformanceReport");
    assert!(
        report.api_version.starts_with("tether.dev/"),
        "tether's own group, not the Gateway API's: {}",
        report.api_version
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(&report.date).is_ok(),
        "{}",
        report.date
    );
    let i = &report.implementation;
    for field in [&i.organization, &i.project, &i.url, &i.version] {
        assert!(!field.is_empty(), "{text}");
    }
    assert!(!i.contact.is_empty());
    assert!(!report.profiles.is_empty());
    for p in &report.profiles {
        assert!(!p.name.is_empty() && !p.summary.is_empty(), "{text}");
        let s = &p.core.statistics;
        assert!(["success", "partial", "failure"].contains(&p.core.result.as_str()));
        assert_eq!(s.failed as usize, p.core.failed_tests.len(), "{text}");
        assert_eq!(s.skipped as usize, p.core.skipped_tests.len(), "{text}");
        assert_eq!(p.core.result == "failure", s.failed > 0, "{text}");
        assert!(s.passed + s.failed + s.skipped > 0);
    }
    report
}

fn tether_report_names_bad_input_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = tether(&[Path::new("report"), &dir.path().join("missing")]);
    assert_eq!(out.status.code(), Some(2));

    hand_made_folder(dir.path(), &hand_made_timeline(true));
    let timeline = dir.path().join(folder::TIMELINE);
    let mut text = std::fs::read_to_string(&timeline).unwrap();
    text.insert_str(0, "{\"t_ms\": 0, \"kind\": \"no_such_event\"}\n");
    std::fs::write(&timeline, text).unwrap();
    let out = tether(&[Path::new("report"), dir.path()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: {}:1:", timeline.display())),
        "names file:line:col: {stderr}"
    );

    std::fs::remove_file(dir.path().join(folder::MESH)).unwrap();
    let out = tether(&[Path::new("report"), dir.path()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mesh.yaml: missing"));
}

fn result_json_matches_its_schema_and_the_schema_rejects_a_result_without_passed() {
    let validator = schema();
    let dir = tempfile::tempdir().unwrap();
    for ended in [true, false] {
        hand_made_folder(dir.path(), &hand_made_timeline(ended));
        let (_, result) = report(dir.path());
        assert_valid(&validator, &result);
    }
    let (_, mut result) = report(dir.path());
    result.as_object_mut().unwrap().remove("passed");
    assert!(!validator.is_valid(&result), "a result without `passed`");
    let (_, mut result) = report(dir.path());
    result["checks"][0]["outcome"] = "maybe".into();
    assert!(!validator.is_valid(&result), "an outcome outside the three");
    let (_, mut result) = report(dir.path());
    result["checks"][0]["passed"] = true.into();
    assert!(
        !validator.is_valid(&result),
        "`passed` must agree with `outcome`"
    );
}

/// The structure Jenkins, GitLab and GitHub's JUnit readers accept, with the times
/// their dashboards show.
fn assert_junit_structure(report: &quick_junit::Report) {
    use quick_junit::{NonSuccessKind, TestCaseStatus};
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    assert!(!report.test_suites.is_empty());
    assert!(
        report.timestamp.is_some() && report.time.is_some(),
        "{report:?}"
    );
    for suite in &report.test_suites {
        assert!(!suite.name.is_empty());
        assert_eq!(
            suite.tests,
            suite.test_cases.len(),
            "tests= counts the testcases"
        );
        let with = |kind: NonSuccessKind| {
            suite
                .test_cases
                .iter()
                .filter(|c| matches!(&c.status, TestCaseStatus::NonSuccess { kind: k, .. } if *k == kind))
                .count()
        };
        assert_eq!(suite.failures, with(NonSuccessKind::Failure));
        assert_eq!(suite.errors, with(NonSuccessKind::Error));
        assert!(suite.timestamp.is_some(), "the suite's timestamp");
        assert!(suite.time.is_some_and(|t| !t.is_zero()), "the suite's time");
        for case in &suite.test_cases {
            assert!(!case.name.is_empty());
            assert!(case.classname.as_ref().is_some_and(|c| !c.is_empty()));
            assert!(
                case.time.is_some_and(|t| !t.is_zero()),
                "{} has a time",
                case.name.as_str()
            );
            assert!(
                case.timestamp.is_some(),
                "{} has a timestamp",
                case.name.as_str()
            );
            if let TestCaseStatus::NonSuccess { message, .. } = &case.status {
                assert!(message.as_ref().is_some_and(|m| !m.is_empty()));
            }
        }
        tests += suite.tests;
        failures += suite.failures;
        errors += suite.errors;
    }
    assert_eq!(report.tests, tests);
    assert_eq!(report.failures, failures);
    assert_eq!(report.errors, errors);
}

fn junit_xml_has_the_structure_ci_systems_accept_and_failures_carry_value_and_bound() {
    use quick_junit::{NonSuccessKind, TestCaseStatus};
    let dir = tempfile::tempdir().unwrap();
    hand_made_folder(dir.path(), &hand_made_timeline(true));
    report(dir.path());
    let junit = common::read_junit(&dir.path().join("junit.xml"));
    assert_junit_structure(&junit);
    let suite = &junit.test_suites[0];
    assert_eq!(suite.tests, 4, "one testcase per check");
    assert_eq!(
        suite.time,
        Some(Duration::from_secs_f64(31.5)),
        "the run's duration"
    );
    let traffic = suite
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "outpost_traffic_flows")
        .unwrap();
    let TestCaseStatus::NonSuccess {
        kind: NonSuccessKind::Failure,
        message: Some(message),
        ..
    } = &traffic.status
    else {
        panic!("a failure: {:?}", traffic.status)
    };
    let message = message.as_str();
    // 3 broken seconds of 30 failures in 12 seconds of 50: 510 of 600 ok.
    assert!(
        message.contains("85.00% of 600 requests"),
        "measured: {message}"
    );
    assert!(message.contains("bound >= 99.00%"), "bound: {message}");
    // Its time is the phase it watched (the partition: 12 s, from 5 s in).
    assert_eq!(traffic.time, Some(Duration::from_secs(12)));
    assert_eq!(
        traffic.timestamp.unwrap() - suite.timestamp.unwrap(),
        chrono::Duration::seconds(5)
    );

    // A run that never finished: one more erroring testcase says so.
    hand_made_folder(dir.path(), &hand_made_timeline(false));
    report(dir.path());
    let junit = common::read_junit(&dir.path().join("junit.xml"));
    assert_junit_structure(&junit);
    let run = junit.test_suites[0]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "run_complete")
        .expect("a run_complete testcase");
    assert!(matches!(
        run.status,
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            ..
        }
    ));
}

fn report_html_loads_in_headless_chromium_with_verdict_and_charts() {
    let chromium = common::chromium().expect("chromium, which the harness found");
    // Kept after the test (reports/ is git-ignored): the page and its screenshot are the
    // artifacts CI keeps of this test.
    let dir = common::repo("reports/browser-test");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let profile = tempfile::tempdir().unwrap();
    hand_made_folder(&dir, &hand_made_timeline(true));
    report(&dir);
    let page = dir.canonicalize().unwrap().join("report.html");

    let (dom, stderr) = common::headless(&chromium, profile.path(), &page, &["--dump-dom".into()]);
    assert!(
        dom.contains("outpost-partition: <span class=\"fail\">FAILED</span>"),
        "{dom}"
    );
    assert!(
        dom.matches("<svg").count() >= 2,
        "the charts are in the DOM"
    );
    assert!(
        dom.contains("id=\"failed-outpost_traffic_flows\""),
        "failure marker"
    );
    assert!(
        dom.contains("href=\"#failed-outpost_traffic_flows\""),
        "link to it"
    );
    assert!(dom.contains("Static stability") && dom.contains("Reconvergence"));
    assert!(dom.contains("tether run suites/outpost-partition.yaml --seed 42"));
    assert_eq!(common::console_errors(&stderr), Vec::<&str>::new());

    let shot = dir.join("report.png");
    let stderr = common::screenshot(&chromium, profile.path(), &page, &shot);
    assert_eq!(common::console_errors(&stderr), Vec::<&str>::new());
    eprintln!("report and screenshot kept in {}", dir.display());
}

/// Kill `tether run` with SIGKILL mid-partition: nothing it started may survive, and
/// `tether report` must still render what it recorded, marked incomplete.
fn a_killed_run_still_yields_an_incomplete_but_readable_report() {
    let envoy = common::envoy();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::tether_bin())
        .args([
            "run",
            "suites/negative/data-path-partition.yaml",
            "--report-dir",
        ])
        .arg(dir.path())
        .arg("--envoy-bin")
        .arg(&envoy.path)
        .current_dir(common::repo(""))
        .spawn()
        .unwrap();
    let timeline = dir.path().join(folder::TIMELINE);
    let started = Instant::now();
    while !std::fs::read_to_string(&timeline)
        .unwrap_or_default()
        .contains("\"phase\":\"partition\"")
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the partition never began"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "tether run ended early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    child.kill().unwrap(); // SIGKILL: no chance to clean up or write reports.
    child.wait().unwrap();
    assert!(
        !dir.path().join("result.json").exists(),
        "killed before reporting"
    );

    // Its children die with it (PR_SET_PDEATHSIG); give the kernel a moment.
    let started = Instant::now();
    let mut left = common::processes_of_run(dir.path());
    while !left.is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        left = common::processes_of_run(dir.path());
    }
    assert!(left.is_empty(), "outlived a SIGKILLed tether: {left:?}");

    let run: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(folder::RUN)).unwrap()).unwrap();
    assert!(
        run["envoy_version"].as_str().unwrap().contains("1.40"),
        "{run}"
    );
    let (code, result) = report(dir.path());
    assert_eq!(code, Some(1));
    assert_eq!(result["incomplete"], true);
    assert_eq!(result["passed"], false);
    assert_eq!(result["checks"][0]["name"], "outpost_traffic_flows");
    assert_valid(&schema(), &result);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("INCOMPLETE"));
    assert!(html.matches("<svg").count() >= 2);
    assert!(html.contains("blackhole on xds"), "the events it saw");
    assert_junit_structure(&common::read_junit(&dir.path().join("junit.xml")));
}

/// The outpost partition, shortened so three runs fit in a CI run: the same faults,
/// change and checks as `suites/outpost-partition.yaml`.
fn short_partition_suite(dir: &Path) -> PathBuf {
    let mesh = common::repo("fixtures/meshes/outpost-basic.yaml")
        .canonicalize()
        .unwrap();
    let text = format!(
        r#"name: short-partition
mesh: {}
topology:
  outpost: [client, svc-v1, svc-v2]
  region: []
xds:
  keepalive: {{ interval: 1s, timeout: 2s }}
  backoff: {{ base: 500ms, max: 2s }}
load:
  through: client
  service: svc.outpost.local
  rate: 50
  timeout: 1s
phases:
  - name: baseline
    duration: 2s
  - name: partition
    duration: 6s
    faults:
      - link: xds
        fault: blackhole
    changes:
      - at: 2s
        set_route_weights:
          router: svc-router
          route: split
          weights: {{ svc-v1: 0, svc-v2: 100 }}
  - name: heal
    duration: 9s
checks:
  - outpost_traffic_flows: {{ phase: partition, min_success_ratio: 0.99 }}
  - config_frozen: {{ phase: partition }}
  - change_applied_after_heal: {{ phase: heal, within: 7s, min_share: 0.95 }}
  - reconvergence: {{ phase: heal, within: 7s }}
"#,
        mesh.display()
    );
    let path = dir.join("short-partition.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `tether` with `args`, its output echoed for the test log; (exit code, stdout).
fn tether_cli(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(common::tether_bin())
        .args(args)
        .current_dir(common::repo(""))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("tether {args:?}:\n{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), stdout)
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

/// Real runs as a release manager and CI use them: two baseline runs, the report.html
/// of one read in headless Chromium (every chart and table present, no console error),
/// then `tether run --repeat 2 --baseline` and `tether compare`, with a candidate whose
/// traffic check failed as the negative control (REGRESSED, exit 1).
fn real_runs_render_in_chromium_and_compare_against_a_baseline() {
    let envoy = common::envoy();
    let chromium = common::chromium().expect("chromium, which the harness found");
    // Kept after the test (reports/ is git-ignored) as CI artifacts.
    let dir = common::repo("reports/compare-test");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let suite = short_partition_suite(&dir);
    let (baseline, candidate) = (dir.join("baseline"), dir.join("candidate"));
    let envoy_bin = envoy.path.as_os_str();

    // The baseline, twice: its run-to-run noise is measured too.
    let (code, _) = tether_cli(&[
        "run".as_ref(),
        suite.as_os_str(),
        "--repeat".as_ref(),
        "2".as_ref(),
        "--report-dir".as_ref(),
        baseline.as_os_str(),
        "--envoy-bin".as_ref(),
        envoy_bin,
    ]);
    assert_eq!(code, Some(0), "the baseline runs pass");
    let result = read_json(&baseline.join("repeat-1/result.json"));
    assert_valid(&schema(), &result);
    let phases = result["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 3, "{result:#}");
    for phase in phases {
        assert!(phase["requests"].as_u64().unwrap() > 0, "{phase}");
        assert!(
            phase["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
            "{phase}"
        );
    }

    // The real run's report, as a browser shows it.
    let profile = tempfile::tempdir().unwrap();
    let page = baseline.join("repeat-1/report.html");
    let (dom, stderr) = common::headless(&chromium, profile.path(), &page, &["--dump-dom".into()]);
    assert!(dom.contains("short-partition: <span class=\"pass\">PASSED</span>"));
    for heading in [
        "Load: requests per second",
        "Latency per second: p50, p99 and max",
        "Sidecars: connection to the control plane",
        "Control plane: pushes, ACKs and NACKs per sidecar",
        "Reconvergence after each heal",
        "Load per phase",
        "Faults applied",
    ] {
        assert!(dom.contains(heading), "no `{heading}` in the report");
    }
    assert!(dom.matches("<svg").count() >= 4, "four charts");
    assert!(
        dom.matches("<polyline").count() >= 3,
        "p50, p99 and max lines"
    );
    assert!(
        dom.contains("across proxies"),
        "the reconvergence distribution"
    );
    // The toxic that made the blackhole, with its attributes.
    assert!(
        dom.contains("timeout downstream {\"timeout\":0}"),
        "toxic attributes"
    );
    assert_eq!(common::console_errors(&stderr), Vec::<&str>::new());
    let (_, stderr) = common::headless(
        &chromium,
        profile.path(),
        &page,
        &[format!("--screenshot={}", dir.join("report.png").display())],
    );
    assert_eq!(common::console_errors(&stderr), Vec::<&str>::new());

    // The candidate: repeated to measure its noise, compared as it finishes.
    let (code, stdout) = tether_cli(&[
        "run".as_ref(),
        suite.as_os_str(),
        "--repeat".as_ref(),
        "2".as_ref(),
        "--report-dir".as_ref(),
        candidate.as_os_str(),
        "--baseline".as_ref(),
        baseline.as_os_str(),
        "--envoy-bin".as_ref(),
        envoy_bin,
    ]);
    for repeat in ["repeat-1", "repeat-2"] {
        assert_eq!(
            read_json(&candidate.join(repeat).join("result.json"))["passed"],
            true,
            "{repeat}"
        );
    }
    let comparison = read_json(&candidate.join("comparison.json"));
    assert_eq!(comparison["baseline"]["runs"], 2);
    assert_eq!(comparison["candidate"]["runs"], 2);
    // The same suite on the same build: a figure may still move beyond the noise two
    // runs measure, but then the exit code says so.
    let regressed = comparison["regressed"].as_bool().unwrap();
    assert_eq!(code, Some(if regressed { 1 } else { 0 }), "{stdout}");
    let figures = comparison["figures"].as_array().unwrap();
    let reconvergence = figures
        .iter()
        .find(|f| f["name"] == "reconvergence: reconvergence_ms.client")
        .expect("reconvergence compared");
    assert_eq!(reconvergence["candidate"]["runs"], 2);
    assert!(reconvergence["noise"].is_number(), "{reconvergence}");
    assert!(
        comparison["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["moved"] == "still_passes"),
        "{comparison:#}"
    );
    let page = candidate.join("comparison.html");
    let (dom, stderr) = common::headless(&chromium, profile.path(), &page, &["--dump-dom".into()]);
    assert!(dom.contains("Candidate against baseline"));
    assert!(dom.contains("reconvergence_ms.client"));
    assert_eq!(common::console_errors(&stderr), Vec::<&str>::new());

    // Negative control: a candidate whose traffic check failed regresses.
    let failing = dir.join("failing");
    std::fs::create_dir_all(&failing).unwrap();
    hand_made_folder(&failing, &hand_made_timeline(true));
    report(&failing);
    let (code, stdout) = tether_cli(&[
        "compare".as_ref(),
        baseline.as_os_str(),
        failing.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("REGRESSED"), "{stdout}");
    let comparison = read_json(&failing.join("comparison.json"));
    let traffic = comparison["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "outpost_traffic_flows")
        .unwrap();
    assert_eq!(traffic["moved"], "regressed");

    // Bad input: exit 2, naming the folder.
    let missing = dir.join("no-such-run");
    let (code, _) = tether_cli(&[
        "compare".as_ref(),
        baseline.as_os_str(),
        missing.as_os_str(),
    ]);
    assert_eq!(code, Some(2));
    eprintln!(
        "reports, comparison and screenshot kept in {}",
        dir.display()
    );
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(tether_report_rerenders_a_hand_made_run_folder),
        case!(tether_report_names_bad_input_and_exits_2),
        case!(result_json_matches_its_schema_and_the_schema_rejects_a_result_without_passed),
        case!(junit_xml_has_the_structure_ci_systems_accept_and_failures_carry_value_and_bound),
        case!(report_html_loads_in_headless_chromium_with_verdict_and_charts)
            .needs(&[Need::Chromium]),
        case!(a_killed_run_still_yields_an_incomplete_but_readable_report).needs(&[Need::Envoy]),
        case!(real_runs_render_in_chromium_and_compare_against_a_baseline)
            .needs(&[Need::Envoy, Need::Chromium]),
    ])
}
