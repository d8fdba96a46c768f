//! tether used as a library from code that is not tether's own: the `library` example
//! (built by `cargo test`, using only the public API, as a user's crate would) runs a
//! suite with no path to a `tether` executable given, finding one on `PATH`; with none
//! there it fails in one line saying how to get one. The README's snippet is the
//! example's, word for word.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The example's executable, which `cargo test` builds beside the tests.
fn example() -> PathBuf {
    let tether = common::tether_bin();
    let dir = tether.parent().unwrap().join("examples").join("library");
    assert!(
        dir.exists(),
        "{} is missing: `cargo test` builds the examples",
        dir.display()
    );
    dir
}

/// A five-second suite with one check.
fn short_suite(dir: &Path) -> PathBuf {
    let suite = dir.join("short.yaml");
    let mesh = common::repo("fixtures/meshes/outpost-basic.yaml");
    std::fs::write(
        &suite,
        format!(
            "name: library-short\nmesh: {}\ntopology:\n  outpost: [client, svc-v1, svc-v2]\n  region: []\n\
             load: {{ through: client, service: svc.outpost.local, rate: 20, timeout: 1s }}\n\
             phases:\n  - name: baseline\n    duration: 3s\n\
             checks:\n  - outpost_traffic_flows: {{ phase: baseline, min_success_ratio: 0.99 }}\n",
            mesh.display()
        ),
    )
    .unwrap();
    suite
}

/// Run the example on `suite` with `path` as its whole `PATH` and no `TETHER_BIN`.
fn run_example(suite: &Path, report_dir: &Path, path: &str) -> Output {
    Command::new(example())
        .args([suite.to_str().unwrap(), report_dir.to_str().unwrap()])
        .env("PATH", path)
        .env_remove("TETHER_BIN")
        .current_dir(common::repo(""))
        .output()
        .unwrap()
}

fn a_crate_of_its_own_runs_a_suite_finding_tether_on_path() {
    let dir = tempfile::tempdir().unwrap();
    let suite = short_suite(dir.path());
    let tether_dir = common::tether_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:/usr/bin:/bin", tether_dir.display());
    let report = dir.path().join("report");
    let out = run_example(&suite, &report, &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let result = std::fs::read_to_string(report.join("result.json")).unwrap();
    assert!(result.contains("outpost_traffic_flows"), "{result}");
    assert!(
        common::processes_of_run(&report).is_empty(),
        "the run's processes are gone"
    );

    // Negative control: the same run with no tether on PATH fails before starting
    // anything, in one line that says how to get one.
    let report = dir.path().join("none");
    let out = run_example(&suite, &report, "/usr/bin:/bin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no tether executable") && stderr.contains("TETHER_BIN"),
        "{stderr}"
    );
    assert!(common::processes_of_run(&report).is_empty());
}

fn the_readme_snippet_is_the_examples_word_for_word() {
    let example = std::fs::read_to_string(common::repo("harness/examples/library.rs")).unwrap();
    let snippet = example
        .split_once("// README:begin\n")
        .and_then(|(_, rest)| rest.split_once("// README:end"))
        .map(|(snippet, _)| snippet)
        .expect("the example marks its README part");
    let readme = std::fs::read_to_string(common::repo("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{snippet}```")),
        "README's \"Using it from `cargo test`\" block differs from harness/examples/library.rs:\n{snippet}"
    );
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(a_crate_of_its_own_runs_a_suite_finding_tether_on_path).needs(&[Need::Envoy]),
        case!(the_readme_snippet_is_the_examples_word_for_word),
    ])
}
