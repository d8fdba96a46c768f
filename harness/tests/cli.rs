//! The `tether` command line as a user meets it: bad input, validation, doctor, Ctrl-C.

mod common;

use std::process::Command;
use std::time::Duration;

fn tether(args: &[&str]) -> std::process::Output {
    Command::new(common::tether_bin())
        .args(args)
        .current_dir(common::repo(""))
        .output()
        .unwrap()
}

#[test]
fn validate_accepts_the_bundled_suites() {
    for suite in [
        "suites/outpost-partition.yaml",
        "suites/negative/data-path-partition.yaml",
    ] {
        let out = tether(&["validate", suite]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    }
}

#[test]
fn malformed_suites_give_one_line_with_file_line_column_and_exit_2() {
    let dir = tempfile::tempdir_in(common::repo("suites")).unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(common::repo("suites/outpost-partition.yaml")).unwrap();
    std::fs::write(
        &bad,
        text.replace("mesh: ../", "mesh: ../../")
            .replace("link: xds", "link: sattelite"),
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    for command in ["validate", "run"] {
        let out = tether(&[command, bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{command}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {bad}:29:15: unknown link `sattelite`")),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
    let out = tether(&["run", "no-such-suite.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tether(&["run"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn doctor_reports_envoy_fault_proxy_and_docker() {
    let out = tether(&["doctor"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for part in ["envoy:", "fault proxy:", "docker:"] {
        assert!(stdout.contains(part), "{stdout}");
    }
}

#[test]
fn ctrl_c_stops_everything_and_still_writes_reports() {
    let Some(envoy) = common::envoy() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::tether_bin())
        .args(["run", "suites/outpost-partition.yaml", "--report-dir"])
        .arg(dir.path())
        .arg("--envoy-bin")
        .arg(&envoy.path)
        .current_dir(common::repo(""))
        .spawn()
        .unwrap();
    // Let the topology come up and the partition begin.
    let started = std::time::Instant::now();
    while !dir.path().join("work/logs/envoy-client.log").exists()
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(7));
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(result["interrupted"], true);
    assert_eq!(result["passed"], false);
    let timeline = std::fs::read_to_string(dir.path().join("timeline.jsonl")).unwrap();
    assert!(
        timeline.contains("\"interrupted\""),
        "the timeline records why the run ended"
    );
    assert!(
        timeline.contains("load_second"),
        "what was recorded before the interrupt is kept"
    );
    std::thread::sleep(Duration::from_millis(500));
    let left = common::processes_of_run(dir.path());
    assert!(left.is_empty(), "left running after Ctrl-C: {left:?}");
}
