//! Soaks end to end against real Envoy: a short soak judged cycle by cycle, a stop
//! condition ending one early, a soak killed with SIGKILL leaving reports of its finished
//! cycles, and memory_drift with its negative control. They run one at a time.

mod common;

use common::{processes_of_run, repo, run_suite, tether_bin};
use std::path::Path;
use std::time::{Duration, Instant};
use tether::checks::Outcome;
use tether::timeline::{Event, Timeline};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn a_short_soak_passes_every_cycle_with_its_figures_over_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/soak-quick.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    let result = json(&dir.path().join("result.json"));
    let soak = &result["soak"];
    assert_eq!(soak["cycles_planned"], 3);
    assert_eq!(soak["cycles_judged"], 3);
    for tally in soak["checks"].as_array().unwrap() {
        assert_eq!(tally["passed"], 3, "{tally}");
    }
    let cycles = soak["cycles"].as_array().unwrap();
    assert!(cycles.iter().all(|c| c["passed"] == true));
    // Each cycle drew its own partition.
    assert!(
        cycles[0]["draws"][1]
            .as_str()
            .unwrap()
            .starts_with("partition: xds ")
    );
    let figure = |name: &str| {
        soak["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {}", soak["figures"]))
            .clone()
    };
    for name in [
        "reconvergence_ms.client",
        "disconnect_noticed_ms.client",
        "propagation_ms.p99",
        "latency_ms.p99@partition",
    ] {
        let f = figure(name);
        assert_eq!(f["cycles"], 3, "{f}");
        assert!(
            f["min"].as_f64() <= f["p50"].as_f64() && f["p50"].as_f64() <= f["max"].as_f64(),
            "{f}"
        );
    }
    let minutes = soak["minutes"].as_array().unwrap();
    assert!(minutes[0]["requests"].as_u64().unwrap() > 0);
    assert!(minutes[0]["memory"]["tether"].as_u64().unwrap() > 0);
    assert!(minutes[0]["memory"]["control-plane"].as_u64().unwrap() > 0);
    assert!(minutes[0]["memory"]["envoy/client"].as_u64().unwrap() > 0);
    let memory = outcome.verdict("memory_drift").unwrap();
    assert_eq!(memory.outcome, Outcome::Passed, "{}", memory.detail);
    let summary = std::fs::read_to_string(dir.path().join("summary.yaml")).unwrap();
    assert!(summary.contains("cyclesJudged: 3"), "{summary}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for part in [
        "<h2>Soak</h2>",
        "<h3>Cycles</h3>",
        "Memory per minute",
        "reconvergence_ms.client",
    ] {
        assert!(html.contains(part), "report.html lacks {part}");
    }
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&junit).unwrap();
    assert_eq!((report.tests, report.failures), (7, 0), "{junit}");
}

async fn a_stop_condition_ends_the_soak_early_heals_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/negative/soak-data-cut.yaml", dir.path()).await;
    let reason = outcome.stopped.clone().expect("the stop condition tripped");
    assert!(
        reason.contains("outpost success below 50% for 3 s"),
        "{reason}"
    );
    assert_eq!(outcome.exit_code(), tether::run::exit::STOPPED);
    let result = json(&dir.path().join("result.json"));
    assert_eq!(result["stopped"], reason.as_str());
    assert_eq!(result["passed"], false);
    assert!(
        result["soak"]["cycles_judged"].as_u64().unwrap() < 3,
        "stopped in the first cycle"
    );
    // Every fault put on was taken off before the run ended, and the run ended early.
    let entries = Timeline::read_jsonl(&dir.path().join("timeline.jsonl")).unwrap();
    let applied = entries
        .iter()
        .filter(|e| matches!(e.event, Event::FaultApplied { .. }))
        .count();
    let removed = entries
        .iter()
        .filter(|e| matches!(e.event, Event::FaultRemoved { .. }))
        .count();
    assert!(
        applied >= 2 && applied == removed,
        "{applied} applied, {removed} removed"
    );
    let ended = entries.iter().find_map(|e| match &e.event {
        Event::RunEnded { reason } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(ended.as_deref(), Some("stopped"));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("STOPPED EARLY"), "report.html says why");
}

/// Wait until the run folder's result.json says `cycles` cycles were judged.
fn wait_for_cycles(dir: &Path, cycles: u64, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let judged = std::fs::read(dir.join("result.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|r| r["soak"]["cycles_judged"].as_u64());
        if judged.is_some_and(|j| j >= cycles) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the soak ended ({status}) before {cycles} cycles were reported");
        }
        assert!(Instant::now() < deadline, "no cycle was reported in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn a_soak_killed_with_sigkill_leaves_reports_of_its_finished_cycles() {
    let envoy = common::envoy();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("killed");
    let mut child = std::process::Command::new(tether_bin())
        .arg("run")
        .arg(repo("suites/soak-quick.yaml"))
        .arg("--report-dir")
        .arg(&run_dir)
        .arg("--envoy-bin")
        .arg(&envoy.path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_cycles(&run_dir, 1, &mut child);
    child.kill().unwrap(); // SIGKILL: no handler runs
    let _ = child.wait();
    // Its children die with it (PR_SET_PDEATHSIG), the fault proxy and its toxics too.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !processes_of_run(&run_dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{:?} outlived a killed soak",
            processes_of_run(&run_dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The reports it left cover the cycles it finished, marked incomplete.
    let result = json(&run_dir.join("result.json"));
    assert_eq!(result["incomplete"], true);
    let judged = result["soak"]["cycles_judged"].as_u64().unwrap();
    assert!(judged >= 1);
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("INCOMPLETE") && html.contains("<h3>Cycles</h3>"));
    // `tether report` judges the rest of what it recorded.
    let status = std::process::Command::new(tether_bin())
        .arg("report")
        .arg(&run_dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "an incomplete run does not pass");
    let again = json(&run_dir.join("result.json"));
    assert!(again["soak"]["cycles_judged"].as_u64().unwrap() >= judged);
    // The next run starts clean, and its cycle passes (one short cycle is too little to
    // fit a memory line through: its start-up is most of it).
    let mut plan = tether::suite::load(&repo("suites/soak-quick.yaml")).unwrap();
    plan.set_soak_length(tether::plan::SoakLength::Cycles(1));
    let next = common::run_plan(&plan, &dir.path().join("next")).await;
    let per_cycle = next.verdicts.iter().filter(|v| v.name != "memory_drift");
    assert!(
        per_cycle.clone().all(|v| v.passed()),
        "{:#?}",
        next.verdicts
    );
}

async fn memory_drift_fails_when_the_mesh_grows_all_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/negative/memory-grows.yaml", dir.path()).await;
    let v = outcome.verdict("memory_drift").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert!(v.detail.contains("envoy/client grew"), "{}", v.detail);
    assert!(outcome.verdict("outpost_traffic_flows").unwrap().passed());
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async a_short_soak_passes_every_cycle_with_its_figures_over_cycles)
            .needs(&[Need::Envoy]),
        case!(async a_stop_condition_ends_the_soak_early_heals_and_says_why).needs(&[Need::Envoy]),
        case!(async a_soak_killed_with_sigkill_leaves_reports_of_its_finished_cycles)
            .needs(&[Need::Envoy]),
        case!(async memory_drift_fails_when_the_mesh_grows_all_the_time).needs(&[Need::Envoy]),
    ])
}
