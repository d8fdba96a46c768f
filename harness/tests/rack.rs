//! Runs against a rack tether did not start: `ci/rack up` stands the compose rack of
//! `fixtures/racks/compose` up (Compose, no tether backend code), and `tether` reaches it
//! only through the addresses of its target files. One test drives the rack, so its
//! faults and mesh changes never overlap; the others need no rack.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const TARGET: &str = "fixtures/racks/compose/target.yaml";
const COMMANDS: &str = "fixtures/racks/compose/target-commands.yaml";
const FOREIGN: &str = "fixtures/racks/compose/target-foreign.yaml";

/// `tether ARGS` with its state (fault ledgers) in `state`; its output echoed.
fn tether(state: &Path, args: &[&str]) -> Output {
    let out = Command::new(common::tether_bin())
        .args(args)
        .current_dir(common::repo(""))
        .env("TETHER_STATE_DIR", state)
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

/// `tether run SUITE --target TARGET --report-dir DIR`.
fn run(state: &Path, suite: &str, target: &str, dir: &Path) -> Output {
    tether(
        state,
        &[
            "run",
            suite,
            "--target",
            target,
            "--report-dir",
            dir.to_str().unwrap(),
        ],
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ci/rack ACTION`, which must succeed.
fn rack(action: &str) {
    let out = Command::new(common::repo("ci/rack"))
        .arg(action)
        .env("TETHER_BIN", common::tether_bin())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ci/rack {action}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Takes the rack down when the test ends, however it ends.
struct RackUp;

impl Drop for RackUp {
    fn drop(&mut self) {
        rack("down");
    }
}

/// The toxics on the rack's `xds` link proxy, read from its Toxiproxy API with a plain
/// HTTP request (not tether's own client: what any Toxiproxy client would see).
fn xds_toxics() -> Vec<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect("127.0.0.1:23474").unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    conn.write_all(
        b"GET /proxies/xds/toxics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    let toxics: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
    toxics
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn verdict<'a>(result: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {result}"))
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn suites_run_against_a_rack_tether_did_not_start() {
    rack("up");
    let _down = RackUp;
    let state = tempfile::tempdir().unwrap();
    let state = state.path();
    let runs = tempfile::tempdir().unwrap();
    let dir = |name: &str| runs.path().join(name);

    // Every part the suite needs is there and answers.
    let out = tether(
        state,
        &[
            "validate",
            "suites/outpost-partition.yaml",
            "--target",
            TARGET,
        ],
    );
    assert_eq!(out.status.code(), Some(0));

    // A suite stating other xDS settings than the rack's sidecars run is refused: its
    // bounds would not hold for them.
    let out = tether(state, &["validate", "suites/soak.yaml", "--target", TARGET]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("keepalive interval 1000 ms (the suite says 10000 ms)"),
        "{}",
        stderr(&out)
    );

    // The partition suite passes, judged from the reference control plane's log.
    let pass = dir("pass");
    let out = run(state, "suites/outpost-partition.yaml", TARGET, &pass);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result = json(&pass.join("result.json"));
    assert_eq!(verdict(&result, "reconvergence")["passed"], true);
    let timeline = std::fs::read_to_string(pass.join("timeline.jsonl")).unwrap();
    assert!(
        timeline.contains(r#""kind":"clock_offset""#),
        "no clock offset on the timeline"
    );
    assert!(
        timeline.contains(r#""xds":"ack","version":"2""#),
        "no ACK of the change from the control plane's log"
    );
    let info = json(&pass.join("run.json"));
    assert_eq!(info["target"]["name"], "compose-rack");
    assert_eq!(info["target"]["digest"].as_str().unwrap().len(), 64);
    assert!(
        info["target"]["clock_uncertainty_us"].as_u64().is_some(),
        "{info}"
    );
    // The target's credential reaches no file of the run folder.
    for file in files(&pass) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !text.contains("rack-token-5f1d2c"),
            "{} holds the credential",
            file.display()
        );
    }
    assert!(xds_toxics().is_empty(), "the run left a toxic");

    // Its negative control fails: a change behind a blackholed link cannot propagate.
    let negative = dir("negative");
    let out = run(
        state,
        "suites/negative/propagation-partitioned.yaml",
        TARGET,
        &negative,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        verdict(&json(&negative.join("result.json")), "propagation")["passed"],
        false
    );

    // The same suite with the control plane declared foreign (changes made by a command,
    // no xDS log followed) passes on what each Envoy reports; its negative control fails.
    // A fresh rack first: the runs above left its mesh on svc-v2, where this one moves it.
    rack("up");
    let foreign = dir("foreign");
    let out = run(state, "suites/outpost-partition.yaml", FOREIGN, &foreign);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result = json(&foreign.join("result.json"));
    assert!(
        verdict(&result, "reconvergence")["detail"]
            .as_str()
            .unwrap()
            .contains("no xDS log"),
        "{result}"
    );
    let timeline = std::fs::read_to_string(foreign.join("timeline.jsonl")).unwrap();
    assert!(
        !timeline.contains(r#""kind":"xds""#),
        "a foreign control plane's log was followed"
    );
    assert_eq!(
        json(&foreign.join("run.json"))["target"]["control_plane"],
        "foreign"
    );
    let negative = dir("foreign-negative");
    let out = run(
        state,
        "suites/negative/propagation-partitioned.yaml",
        FOREIGN,
        &negative,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        verdict(&json(&negative.join("result.json")), "propagation")["passed"],
        false
    );

    // The data link cut by a command actuator (`docker network disconnect`), and healed.
    let cut = dir("cut");
    let out = run(
        state,
        "fixtures/racks/compose/suites/region-calls.yaml",
        COMMANDS,
        &cut,
    );
    assert_eq!(out.status.code(), Some(1), "the cut phase must fail");
    let result = json(&cut.join("result.json"));
    assert_eq!(
        verdict(&result, "outpost_traffic_flows@cut")["passed"],
        false
    );
    assert_eq!(
        verdict(&result, "outpost_traffic_flows@healed")["passed"],
        true
    );
    let on_outpost = Command::new("docker")
        .args([
            "network",
            "inspect",
            "tether-rack-outpost",
            "--format",
            "{{range .Containers}}{{.Name}} {{end}}",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&on_outpost.stdout).contains("tether-rack-data-link"),
        "the relay was not reconnected"
    );

    // A suite needing a fault the commands cannot make is refused before anything runs.
    let suite = std::fs::read_to_string(common::repo(
        "fixtures/racks/compose/suites/region-calls.yaml",
    ))
    .unwrap()
    .replace(
        "mesh: ../mesh.yaml",
        &format!(
            "mesh: {}",
            common::repo("fixtures/racks/compose/mesh.yaml").display()
        ),
    )
    .replace("fault: blackhole", "fault: { latency: { delay: 50ms } }");
    let slow = dir("slow-data.yaml");
    std::fs::write(&slow, suite).unwrap();
    let out = tether(
        state,
        &["validate", slow.to_str().unwrap(), "--target", COMMANDS],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("its commands make only blackhole, down"),
        "{}",
        stderr(&out)
    );

    killed_runs_are_healed(state, &dir("killed"));
}

/// A run SIGKILLed during its partition leaves its toxic on the rack; the next run
/// refuses to start; `tether heal` removes it.
fn killed_runs_are_healed(state: &Path, killed: &Path) {
    let mut child = Command::new(common::tether_bin())
        .args([
            "run",
            "suites/outpost-partition.yaml",
            "--target",
            TARGET,
            "--report-dir",
            killed.to_str().unwrap(),
        ])
        .current_dir(common::repo(""))
        .env("TETHER_STATE_DIR", state)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while xds_toxics().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the run never put its blackhole on"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        xds_toxics().len(),
        2,
        "the killed run's blackhole is on the rack"
    );
    let ledger = std::fs::read_to_string(killed.join("ledger.jsonl")).unwrap();
    assert!(ledger.contains(r#""ledger":"applying""#), "{ledger}");

    let refused = killed.with_file_name("refused");
    let out = run(state, "suites/outpost-partition.yaml", TARGET, &refused);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("tether heal --target"),
        "{}",
        stderr(&out)
    );

    let out = tether(state, &["heal", "--target", TARGET]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed blackhole on the xds link"));
    assert!(xds_toxics().is_empty(), "heal left the toxic");
    let out = tether(state, &["heal", "--target", TARGET]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no fault left"));
}

fn bad_targets_are_refused_with_where_and_why() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = std::fs::read_to_string(common::repo(TARGET)).unwrap();

    // The file's fault: exit 2, file:line:col.
    let unknown = write("unknown.yaml", &format!("{good}colour: blue\n"));
    let out = tether(
        state.path(),
        &[
            "validate",
            "suites/outpost-partition.yaml",
            "--target",
            &unknown,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown.yaml:29:1") && stderr(&out).contains("colour"),
        "{}",
        stderr(&out)
    );

    // The suite needs a node the target lacks, or on another site: exit 3, its line.
    let out = tether(
        state.path(),
        &[
            "validate",
            "suites/negative/data-path-partition.yaml",
            "--target",
            TARGET,
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("target.yaml:8:3") && stderr(&out).contains("`svc-v1` on the region"),
        "{}",
        stderr(&out)
    );

    // Nothing answers at its addresses: exit 3, naming each part.
    let gone = write(
        "gone.yaml",
        &good.replace("23101", "1").replace("23300", "2"),
    );
    let out = tether(
        state.path(),
        &[
            "validate",
            "suites/outpost-partition.yaml",
            "--target",
            &gone,
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let said = stderr(&out);
    assert!(
        said.contains("sidecar `client`") && said.contains("control plane API"),
        "{said}"
    );
    // A run against it is refused the same way, and applies nothing.
    let folder = dir.path().join("run");
    let out = run(
        state.path(),
        "suites/outpost-partition.yaml",
        &gone,
        &folder,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(!folder.join("ledger.jsonl").exists());

    // A dry run prints every call and makes none: it succeeds against the target that
    // does not answer, and writes no ledger.
    let out = tether(
        state.path(),
        &[
            "run",
            "suites/outpost-partition.yaml",
            "--target",
            &gone,
            "--dry-run",
            "--report-dir",
            folder.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("POST http://127.0.0.1:23474/proxies/xds/toxics"),
        "{printed}"
    );
    assert!(!printed.contains("rack-token-5f1d2c"), "{printed}");
    assert!(files(state.path()).is_empty(), "a dry run wrote state");

    // A fault the target's actuator cannot make (a container restart): exit 3.
    let out = tether(
        state.path(),
        &[
            "validate",
            "suites/container-faults.yaml",
            "--target",
            TARGET,
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("container fault"), "{}", stderr(&out));
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(suites_run_against_a_rack_tether_did_not_start).needs(&[Need::Docker, Need::Envoy]),
        case!(bad_targets_are_refused_with_where_and_why),
    ])
}
