use super::*;

fn ran(name: &str, dir: Result<PathBuf, String>) -> Ran {
    Ran {
        name: name.into(),
        file: PathBuf::from(format!("suites/{name}.yaml")),
        expect_failing: Vec::new(),
        expect_stopped: false,
        dir,
    }
}

#[test]
fn a_suite_that_did_not_run_is_listed_with_its_reason() {
    let root = tempfile::tempdir().unwrap();
    let entry = judge(
        &ran("container-faults", Err("needs --backend docker".into())),
        root.path(),
        None,
    );
    assert_eq!(entry.status, Status::NotRun);
    assert_eq!(entry.reason, "needs --backend docker");
    assert_eq!(entry.dir, None);
}

#[test]
fn a_suite_whose_folder_holds_no_result_failed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outpost-partition");
    std::fs::create_dir(&dir).unwrap();
    let entry = judge(&ran("outpost-partition", Ok(dir)), root.path(), None);
    assert_eq!(entry.status, Status::Failed);
    assert!(
        entry.reason.starts_with("no result to judge"),
        "{}",
        entry.reason
    );
    assert_eq!(entry.dir.as_deref(), Some("outpost-partition"));
}

#[test]
fn a_sign_off_passes_when_every_suite_that_ran_passed() {
    let entry = |status| SuiteSignOff {
        name: "s".into(),
        file: "s.yaml".into(),
        expect_failing: Vec::new(),
        expect_stopped: false,
        status,
        reason: String::new(),
        dir: None,
        duration_s: 0.0,
        checks: Vec::new(),
        regressed: false,
        envoy_version: String::new(),
        started_at: String::new(),
    };
    let signoff = |suites: Vec<SuiteSignOff>| {
        SignOff::new(
            suites,
            "process".into(),
            "tether run suites/".into(),
            String::new(),
            None,
        )
    };
    assert!(signoff(vec![entry(Status::Passed), entry(Status::NotRun)]).passed());
    assert!(!signoff(vec![entry(Status::Passed), entry(Status::Failed)]).passed());
    assert!(!signoff(vec![entry(Status::NotRun)]).passed());
    assert_eq!(
        Totals::of(&[
            entry(Status::Passed),
            entry(Status::NotRun),
            entry(Status::NotRun)
        ]),
        Totals {
            passed: 1,
            failed: 0,
            not_run: 2
        }
    );
}

/// Write a `result.json` of suite `suite` into `dir`, each check with its outcome.
fn result(dir: &Path, suite: &str, checks: &[(&str, &str)], reconvergence_ms: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let checks: Vec<serde_json::Value> = checks
        .iter()
        .map(|(name, outcome)| {
            serde_json::json!({
                "name": name, "outcome": outcome, "passed": *outcome == "passed",
                "detail": format!("{name} {outcome}"),
                "measurements": [{"name": format!("{name}_ms.client"), "value": reconvergence_ms, "unit": "ms", "bound": 10000.0}]
            })
        })
        .collect();
    let passed = checks.iter().all(|c| c["passed"] == true);
    let json = serde_json::json!({
        "suite": suite, "passed": passed, "envoy_version": "envoy 1.40.0",
        "duration_s": 10.0, "checks": checks
    });
    std::fs::write(dir.join("result.json"), json.to_string()).unwrap();
}

fn negative(name: &str, dir: PathBuf, expect: &str) -> Ran {
    Ran {
        expect_failing: vec![expect.into()],
        expect_stopped: false,
        ..ran(name, Ok(dir))
    }
}

#[test]
fn a_suite_passes_when_every_repeat_passed_and_fails_naming_what_did_not() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outpost-partition");
    result(
        &dir.join("repeat-1"),
        "outpost-partition",
        &[("reconvergence", "passed")],
        900.0,
    );
    result(
        &dir.join("repeat-2"),
        "outpost-partition",
        &[("reconvergence", "passed")],
        950.0,
    );
    let entry = judge(
        &ran("outpost-partition", Ok(dir.clone())),
        root.path(),
        None,
    );
    assert_eq!(entry.status, Status::Passed, "{}", entry.reason);
    assert_eq!(entry.reason, "2 of 2 repeats passed");
    assert_eq!(entry.checks.len(), 2);
    assert_eq!(entry.checks[1].repeat, 2);
    assert_eq!(entry.checks[1].report, "outpost-partition/repeat-2");
    assert_eq!(entry.envoy_version, "envoy 1.40.0");
    assert_eq!(entry.duration_s, 20.0);

    result(
        &dir.join("repeat-2"),
        "outpost-partition",
        &[("reconvergence", "failed")],
        12000.0,
    );
    let entry = judge(&ran("outpost-partition", Ok(dir)), root.path(), None);
    assert_eq!(entry.status, Status::Failed);
    assert_eq!(entry.reason, "repeat 2: did not pass: reconvergence");
}

#[test]
fn a_negative_control_passes_only_when_it_fails_the_checks_it_names() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("propagation-partitioned");
    let checks = [
        ("propagation", "failed"),
        ("outpost_traffic_flows", "passed"),
    ];
    result(&dir, "propagation-partitioned", &checks, 7000.0);
    let entry = judge(
        &negative("propagation-partitioned", dir.clone(), "propagation"),
        root.path(),
        None,
    );
    assert_eq!(entry.status, Status::Passed, "{}", entry.reason);
    assert!(entry.checks[0].expected_to_fail && !entry.checks[1].expected_to_fail);
    // The negative control of the negative control: the check it exists to fail passed.
    result(
        &dir,
        "propagation-partitioned",
        &[("propagation", "passed")],
        100.0,
    );
    let entry = judge(
        &negative("propagation-partitioned", dir.clone(), "propagation"),
        root.path(),
        None,
    );
    assert_eq!(entry.status, Status::Failed);
    assert!(
        entry.reason.contains("`propagation` was expected to fail"),
        "{}",
        entry.reason
    );
    // Could not judge is not failing.
    result(
        &dir,
        "propagation-partitioned",
        &[("propagation", "unknown")],
        100.0,
    );
    let entry = judge(
        &negative("propagation-partitioned", dir, "propagation"),
        root.path(),
        None,
    );
    assert_eq!(entry.status, Status::Failed);
}

#[test]
fn a_regression_against_the_baseline_fails_a_suite_that_passed() {
    let root = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    let dir = root.path().join("outpost-partition");
    let old = base.path().join("outpost-partition");
    for (i, ms) in [(1, 900.0), (2, 910.0)] {
        result(
            &old.join(format!("repeat-{i}")),
            "outpost-partition",
            &[("reconvergence", "passed")],
            ms,
        );
        result(
            &dir.join(format!("repeat-{i}")),
            "outpost-partition",
            &[("reconvergence", "passed")],
            ms,
        );
    }
    let entry = judge(
        &ran("outpost-partition", Ok(dir.clone())),
        root.path(),
        Some(&old),
    );
    assert_eq!(entry.status, Status::Passed, "{}", entry.reason);
    assert!(!entry.regressed);
    // Four times slower, far beyond the repeats' noise: still within the bound, but worse.
    for (i, ms) in [(1, 3900.0), (2, 3910.0)] {
        result(
            &dir.join(format!("repeat-{i}")),
            "outpost-partition",
            &[("reconvergence", "passed")],
            ms,
        );
    }
    let entry = judge(&ran("outpost-partition", Ok(dir)), root.path(), Some(&old));
    assert!(entry.regressed);
    assert_eq!(entry.status, Status::Failed);
    assert!(
        entry.reason.contains("regressed against the baseline"),
        "{}",
        entry.reason
    );
}

#[test]
fn a_signed_folder_verifies_until_a_file_or_a_verdict_changes() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outpost-partition");
    result(
        &dir,
        "outpost-partition",
        &[("reconvergence", "passed")],
        900.0,
    );
    let entry = judge(
        &ran("outpost-partition", Ok(dir.clone())),
        root.path(),
        None,
    );
    let signoff = SignOff::new(
        vec![entry],
        "process".into(),
        "tether run suites/".into(),
        String::new(),
        None,
    );
    let write = |s: &SignOff| {
        std::fs::write(
            root.path().join("signoff.json"),
            serde_json::to_string_pretty(s).unwrap(),
        )
        .unwrap()
    };
    write(&signoff);
    assert!(matches!(
        seal::verify(root.path()),
        Err(seal::SealError::NotSigned(_))
    ));
    let signed = seal::sign(root.path(), signoff, "Ada").unwrap();
    write(&signed);
    let sig = seal::verify(root.path()).unwrap();
    assert_eq!(sig.signed_by, "Ada");
    assert_eq!(sig.digests.len(), 1, "{:?}", sig.digests);

    let changed = |what: &str| match seal::verify(root.path()) {
        Err(seal::SealError::Changed { changes, .. }) => {
            assert!(changes.iter().any(|c| c.contains(what)), "{changes:?}")
        }
        other => panic!("{what}: {other:?}"),
    };
    let text = std::fs::read_to_string(dir.join("result.json")).unwrap();
    std::fs::write(dir.join("result.json"), text.replace("900", "901")).unwrap();
    changed("outpost-partition/result.json changed");
    std::fs::write(dir.join("result.json"), &text).unwrap();
    std::fs::write(dir.join("extra.txt"), "x").unwrap();
    changed("outpost-partition/extra.txt was added");
    std::fs::remove_file(dir.join("extra.txt")).unwrap();
    seal::verify(root.path()).unwrap();
    let mut edited = seal::read(root.path()).unwrap();
    edited.suites[0].status = Status::Failed;
    write(&edited);
    changed("signoff.json's verdicts changed");
}

/// The schema file is the one the type gives; `TETHER_BLESS=1 cargo test --lib signoff`
/// writes it anew after the type changed.
#[test]
fn the_schema_file_is_generated_from_the_signoff_type() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/signoff.schema.json");
    let generated = schema();
    if std::env::var("TETHER_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not what SignOff gives; run `TETHER_BLESS=1 cargo test --lib signoff` and review the diff",
        path.display()
    );
}

#[test]
fn a_stop_condition_control_passes_only_when_its_stop_condition_ended_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("soak-data-cut");
    let stopped = Ran {
        expect_stopped: true,
        ..ran("soak-data-cut", Ok(dir.clone()))
    };
    result(
        &dir,
        "soak-data-cut",
        &[("outpost_traffic_flows", "unknown")],
        0.0,
    );
    let entry = judge(&stopped, root.path(), None);
    assert_eq!(
        entry.status,
        Status::Failed,
        "ran to its end: {}",
        entry.reason
    );
    assert!(
        entry.reason.contains("expected to be stopped"),
        "{}",
        entry.reason
    );
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    json["stopped"] = "outpost success below 50% for 3 s".into();
    std::fs::write(dir.join("result.json"), json.to_string()).unwrap();
    let entry = judge(&stopped, root.path(), None);
    assert_eq!(entry.status, Status::Passed, "{}", entry.reason);
    assert!(entry.negative());
    assert_eq!(
        entry.reason,
        "a negative control: was stopped by its stop condition as it exists to"
    );
}
