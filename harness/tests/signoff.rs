//! A release sign-off end to end, as a release manager makes one: `tether run` of a
//! folder of three short suites, a Docker-only suite and a negative control, repeated
//! twice; then again against the first as baseline; the document read as its readers
//! read it (JSON Schema, a JUnit reader, headless Chromium, the printed PDF's pages),
//! signed, verified, and caught out after one report file is edited.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tether ARGS` from the repository root, its output echoed.
fn tether(args: &[&str]) -> Output {
    let out = Command::new(common::tether_bin())
        .args(args)
        .current_dir(common::repo(""))
        .output()
        .unwrap();
    eprintln!(
        "tether {args:?} -> {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A folder of suites: three of one 3 s phase, the bundled Docker-only
/// `container-faults`, and in `negative/` the bundled `propagation-partitioned`.
fn suites(dir: &Path) -> PathBuf {
    let mesh = common::repo("fixtures/meshes/outpost-basic.yaml");
    let folder = dir.join("suites");
    std::fs::create_dir_all(folder.join("negative")).unwrap();
    for name in ["alpha", "beta", "gamma"] {
        std::fs::write(
            folder.join(format!("{name}.yaml")),
            format!(
                "name: short-{name}\nmesh: {}\ntopology:\n  outpost: [client, svc-v1, svc-v2]\n  region: []\n\
                 load: {{ through: client, service: svc.outpost.local, rate: 20, timeout: 1s }}\n\
                 phases:\n  - name: baseline\n    duration: 3s\n\
                 checks:\n  - outpost_traffic_flows: {{ phase: baseline, min_success_ratio: 0.99 }}\n",
                mesh.display()
            ),
        )
        .unwrap();
    }
    let absolute = |from: &str, text: String| {
        text.replace(
            from,
            &format!("mesh: {}", common::repo("fixtures").display()),
        )
    };
    let read = |path: &str| std::fs::read_to_string(common::repo(path)).unwrap();
    std::fs::write(
        folder.join("container-faults.yaml"),
        absolute("mesh: ../fixtures", read("suites/container-faults.yaml")),
    )
    .unwrap();
    std::fs::write(
        folder.join("negative/propagation-partitioned.yaml"),
        absolute(
            "mesh: ../../fixtures",
            read("suites/negative/propagation-partitioned.yaml"),
        ),
    )
    .unwrap();
    folder
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `signoff.json` of `dir` matches harness/schema/signoff.schema.json; the document.
fn valid_signoff(dir: &Path) -> serde_json::Value {
    let schema = json(&common::repo("harness/schema/signoff.schema.json"));
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let signoff = json(&dir.join("signoff.json"));
    let errors: Vec<String> = validator
        .iter_errors(&signoff)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "signoff.json: {errors:#?}");
    signoff
}

fn status<'a>(signoff: &'a serde_json::Value, suite: &str) -> &'a str {
    signoff["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == suite)
        .unwrap_or_else(|| panic!("no suite {suite}"))["status"]
        .as_str()
        .unwrap()
}

/// The sign-off's JUnit, as a CI system reads it: a test suite per suite, the
/// Docker-only one skipped with its reason, the negative control's expected failures
/// successes.
fn check_junit(dir: &Path) {
    use quick_junit::TestCaseStatus;
    let junit = common::read_junit(&dir.join("junit.xml"));
    let names: Vec<&str> = junit.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "short-alpha",
            "short-beta",
            "container-faults",
            "short-gamma",
            "propagation-partitioned"
        ]
    );
    assert!(junit.timestamp.is_some() && junit.time.is_some());
    for suite in &junit.test_suites {
        assert_eq!(suite.tests, suite.test_cases.len());
        let skipped = suite.name.as_str() == "container-faults";
        for case in &suite.test_cases {
            match &case.status {
                TestCaseStatus::Success { .. } => assert!(!skipped),
                TestCaseStatus::Skipped { message, .. } => {
                    assert!(skipped, "{:?}", suite.name);
                    let message = message.as_ref().unwrap().as_str();
                    assert!(message.contains("--backend docker"), "{message}");
                }
                other => panic!("{:?}: {other:?}", suite.name),
            }
        }
    }
    let negative = &junit.test_suites[4];
    assert_eq!(
        negative.test_cases.len(),
        2,
        "propagation in each of 2 repeats"
    );
}

/// signoff.html in headless Chromium: every suite there, no console error; a
/// screenshot; printed to PDF and its pages made images. All kept in `keep`.
fn check_page(dir: &Path, keep: &Path) {
    let chromium = common::chromium().expect("chromium, which the harness found");
    let profile = tempfile::tempdir().unwrap();
    let page = dir.canonicalize().unwrap().join("signoff.html");
    let (dom, stderr) = common::headless(&chromium, profile.path(), &page, &["--dump-dom".into()]);
    for suite in [
        "short-alpha",
        "short-beta",
        "short-gamma",
        "container-faults",
        "propagation-partitioned",
    ] {
        assert!(
            dom.contains(&format!("id=\"suite-{suite}\"")),
            "{suite} in {dom}"
        );
    }
    assert!(dom.contains("id=\"verdict\""), "{dom}");
    assert_eq!(common::console_errors(&stderr), Vec::<&str>::new());
    let shot = keep.join("signoff.png");
    common::screenshot(&chromium, profile.path(), &page, &shot);
    let pdf = keep.join("signoff.pdf");
    common::headless(
        &chromium,
        profile.path(),
        &page,
        &[
            "--no-pdf-header-footer".into(),
            format!("--print-to-pdf={}", pdf.display()),
        ],
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"), "a PDF");
    let pages = keep.join("page");
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "60"])
        .arg(&pdf)
        .arg(&pages)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let images: Vec<PathBuf> = std::fs::read_dir(keep)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("page"))
        .collect();
    assert!(!images.is_empty() && images.len() <= 4, "{images:?}");
    for image in &images {
        assert!(
            std::fs::metadata(image).unwrap().len() > 5_000,
            "a page with print on it: {image:?}"
        );
    }
}

fn a_release_is_signed_off_across_suites_against_the_last_one() {
    let work = tempfile::tempdir().unwrap();
    let folder = suites(work.path());
    let folder = folder.to_str().unwrap();
    let first = work.path().join("first");
    let second = work.path().join("second");

    let out = tether(&[
        "run",
        folder,
        "--with-negative",
        "--cycles",
        "1",
        "--repeat",
        "2",
        "--report-dir",
        first.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[signoff 1/5] short-alpha (0 passed, 0 failed, 0 not run so far; about"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SIGN-OFF PASSED: 4 passed, 0 failed, 1 not run"),
        "{stdout}"
    );
    let signoff = valid_signoff(&first);
    // Nothing any suite's runs started outlives the sign-off.
    for suite in [
        "short-alpha",
        "short-beta",
        "short-gamma",
        "propagation-partitioned",
    ] {
        for repeat in ["repeat-1", "repeat-2"] {
            let dir = first.join(suite).join(repeat);
            assert!(dir.join("report.html").is_file(), "{dir:?}");
            assert_eq!(common::processes_of_run(&dir), Vec::<String>::new());
        }
    }
    assert_eq!(status(&signoff, "container-faults"), "not_run");
    assert_eq!(status(&signoff, "propagation-partitioned"), "passed");
    assert_eq!(signoff["suites"][4]["expect_failing"][0], "propagation");
    check_junit(&first);

    let out = tether(&[
        "run",
        folder,
        "--with-negative",
        "--repeat",
        "2",
        "--baseline",
        first.to_str().unwrap(),
        "--report-dir",
        second.to_str().unwrap(),
    ]);
    let signoff = valid_signoff(&second);
    assert_eq!(signoff["baseline"], first.to_str().unwrap());
    // Every suite that ran was compared with its first run; one that moved beyond the
    // repeats' noise fails as a regression, and only that way.
    for suite in signoff["suites"].as_array().unwrap() {
        if suite["status"] == "not_run" {
            continue;
        }
        let dir = second.join(suite["dir"].as_str().unwrap());
        assert!(dir.join("comparison.json").is_file(), "{dir:?}");
        if suite["status"] == "failed" {
            assert_eq!(suite["regressed"], true, "{suite}");
        }
    }
    let passed = signoff["suites"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] != "failed");
    assert_eq!(out.status.code(), Some(if passed { 0 } else { 1 }));

    let keep = common::repo("reports/signoff-test");
    let _ = std::fs::remove_dir_all(&keep);
    std::fs::create_dir_all(&keep).unwrap();
    check_page(&second, &keep);

    let second = second.to_str().unwrap();
    assert_eq!(
        tether(&["signoff", second, "--signed-by", "Release Manager"])
            .status
            .code(),
        Some(0)
    );
    let verified = tether(&["signoff", "--verify", second]);
    assert_eq!(verified.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&verified.stdout)
            .starts_with("VERIFIED: signed by Release Manager")
    );
    let signed = json(&Path::new(second).join("signoff.json"));
    assert_eq!(signed["signature"]["signed_by"], "Release Manager");
    // One report file edited after signing: --verify names it and fails.
    let report = Path::new(second).join("short-beta/repeat-1/report.html");
    let mut text = std::fs::read_to_string(&report).unwrap();
    text.push_str("<!-- edited -->");
    std::fs::write(&report, text).unwrap();
    let verified = tether(&["signoff", "--verify", second]);
    assert_eq!(verified.status.code(), Some(1));
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        said.contains("short-beta/repeat-1/report.html changed"),
        "{said}"
    );
    eprintln!(
        "sign-off page, screenshot and PDF pages kept in {}",
        keep.display()
    );
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(a_release_is_signed_off_across_suites_against_the_last_one).needs(&[
            Need::Envoy,
            Need::Chromium,
            Need::Pdftoppm,
        ]),
    ])
}
