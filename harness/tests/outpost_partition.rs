//! The outpost link partition, end to end against real Envoy, and its negative control.
//!
//! Both runs bring up real Envoys, the control plane, the fault proxy and the sample
//! services as child processes; they run one after the other so that neither's timing is
//! disturbed by the other on a small machine.

mod common;

use tether::plan::XdsVariant;

use tether::checks::Outcome as CheckOutcome;

use common::run_suite;

async fn partition_keeps_outpost_serving_and_change_lands_after_heal() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/outpost-partition.yaml", dir.path()).await;
    for v in &outcome.verdicts {
        eprintln!("{:?} {}: {}", v.outcome, v.name, v.detail);
    }
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    assert_eq!(outcome.exit_code(), 0);
    for file in ["result.json", "junit.xml", "report.html", "timeline.jsonl"] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    // The measured reconvergence reaches result.json, per outpost sidecar.
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(result["passed"], true);
    for node in ["client", "svc-v1", "svc-v2"] {
        assert!(
            result["reconvergence_ms"][node].is_number(),
            "no reconvergence figure for {node}: {result}"
        );
    }
    // The partition was real: the client's sidecar lost the control plane.
    let frozen = outcome.verdict("config_frozen").unwrap();
    assert!(
        frozen
            .measurements
            .iter()
            .any(|m| m.name == "disconnect_noticed_ms.client"),
        "{frozen:?}"
    );
}

async fn the_same_partition_passes_with_delta_xds() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/outpost-partition-delta.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    let bootstrap = std::fs::read_to_string(dir.path().join("work/envoy-client.json")).unwrap();
    assert!(
        bootstrap.contains("DELTA_GRPC"),
        "the sidecars were not on delta xDS"
    );
}

async fn negative_control_cutting_the_data_path_fails_the_traffic_check() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/negative/data-path-partition.yaml", dir.path()).await;
    assert_eq!(outcome.exit_code(), 1);
    let traffic = outcome.verdict("outpost_traffic_flows").unwrap();
    assert_eq!(traffic.outcome, CheckOutcome::Failed, "{traffic:?}");
    assert!(traffic.detail.contains("timeout"), "{}", traffic.detail);
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    // Each sidecar's admin state was saved at the end of every phase, and the failed
    // check links the state at the end of the phase it judged.
    let phase = traffic.phase.as_deref().expect("the check judged a phase");
    for sidecar in ["client", "svc-v1", "svc-v2"] {
        let saved = dir.path().join("sidecars").join(phase).join(sidecar);
        let dump = std::fs::read_to_string(saved.join("config_dump.json")).unwrap();
        assert!(dump.contains("EndpointsConfigDump"), "with EDS: {saved:?}");
        let clusters = std::fs::read_to_string(saved.join("clusters.txt")).unwrap();
        assert!(clusters.contains("::"), "{clusters}");
        let stats = std::fs::read_to_string(saved.join("stats.txt")).unwrap();
        assert!(stats.contains("server.live"), "{saved:?}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains(&format!("sidecar state at the end of {phase}")),
        "the failed check links its phase's sidecar state"
    );
    assert!(html.contains(&format!("sidecars/{phase}/client/config_dump.json")));
}

async fn control_plane_crash_keeps_outpost_serving_and_sidecars_reconverge_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/control-plane-restart.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    // The restarted control plane resumed its persisted state: traffic stayed on svc-v2
    // (the mesh file alone would have sent it back to svc-v1).
    let timeline =
        tether::timeline::Timeline::read_jsonl(&dir.path().join("timeline.jsonl")).unwrap();
    let recovered = tether::checks::Window::of_phase(&timeline, "recovered").unwrap();
    let served_by_v1: u64 = timeline
        .iter()
        .filter(|e| recovered.contains(e.t_ms))
        .filter_map(|e| match &e.event {
            tether::timeline::Event::LoadSecond(s) => s.served_by.get("svc-v1").copied(),
            _ => None,
        })
        .sum();
    assert_eq!(
        served_by_v1, 0,
        "the restarted control plane forgot the change"
    );
}

async fn negative_control_a_control_plane_that_stays_down_fails_reconvergence() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/negative/control-plane-stays-down.yaml", dir.path()).await;
    assert_eq!(outcome.exit_code(), 1);
    let reconvergence = outcome.verdict("reconvergence").unwrap();
    assert_eq!(
        reconvergence.outcome,
        CheckOutcome::Failed,
        "{reconvergence:?}"
    );
    // Only reconvergence fails: the outpost kept serving on its last config.
    let failed: Vec<&str> = outcome
        .verdicts
        .iter()
        .filter(|v| !v.passed())
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(failed, ["reconvergence"], "{:#?}", outcome.verdicts);
}

async fn every_route_change_reaches_all_fifty_client_sidecars_over_sotw() {
    every_route_change_reaches_all_fifty_client_sidecars(XdsVariant::Sotw).await;
}

async fn every_route_change_reaches_all_fifty_client_sidecars_over_delta() {
    every_route_change_reaches_all_fifty_client_sidecars(XdsVariant::Delta).await;
}

/// The propagation suite with every sidecar on `xds`: it passes, with every change ACKed
/// by all 50 clients.
async fn every_route_change_reaches_all_fifty_client_sidecars(xds: XdsVariant) {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = tether::suite::load(&common::repo("suites/propagation.yaml")).unwrap();
    plan.force_xds_variant(xds);
    let outcome = common::run_plan(&plan, dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    let propagation = outcome.verdict("propagation").unwrap();
    let acks = propagation.measurement("propagation.acks").unwrap();
    assert_eq!(acks.value, 8.0 * 50.0, "8 changes x 50 client sidecars");
}

async fn negative_control_a_change_behind_a_blackhole_fails_propagation() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/negative/propagation-partitioned.yaml", dir.path()).await;
    let propagation = outcome.verdict("propagation").unwrap();
    assert_eq!(propagation.outcome, CheckOutcome::Failed, "{propagation:?}");
    // It lands only after the heal: later than the bound, or never.
    let max = propagation.measurement("propagation_ms.max").unwrap();
    assert!(
        max.value > 3000.0 || propagation.detail.contains("never ACKed"),
        "{propagation:?}"
    );
}

async fn control_plane_restart_with_every_sidecar_on_sotw_xds() {
    control_plane_restart_with_every_sidecar_on(XdsVariant::Sotw, "\"GRPC\"").await;
}

async fn control_plane_restart_with_every_sidecar_on_delta_xds() {
    control_plane_restart_with_every_sidecar_on(XdsVariant::Delta, "DELTA_GRPC").await;
}

/// The control-plane-restart suite with every sidecar on `xds` (whose bootstraps then
/// name `api_type`): it passes.
async fn control_plane_restart_with_every_sidecar_on(xds: XdsVariant, api_type: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = tether::suite::load(&common::repo("suites/control-plane-restart.yaml")).unwrap();
    plan.force_xds_variant(xds);
    let outcome = common::run_plan(&plan, dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    for node in ["client", "svc-v1", "svc-v2"] {
        let bootstrap =
            std::fs::read_to_string(dir.path().join(format!("work/envoy-{node}.json"))).unwrap();
        assert!(
            bootstrap.contains(api_type),
            "{node} was not on {xds:?} xDS"
        );
    }
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async partition_keeps_outpost_serving_and_change_lands_after_heal).needs(&[Need::Envoy]),
        case!(async the_same_partition_passes_with_delta_xds).needs(&[Need::Envoy]),
        case!(async negative_control_cutting_the_data_path_fails_the_traffic_check).needs(&[Need::Envoy]),
        case!(async control_plane_crash_keeps_outpost_serving_and_sidecars_reconverge_after_restart).needs(&[Need::Envoy]),
        case!(async negative_control_a_control_plane_that_stays_down_fails_reconvergence).needs(&[Need::Envoy]),
        case!(async every_route_change_reaches_all_fifty_client_sidecars_over_sotw).needs(&[Need::Envoy]),
        case!(async every_route_change_reaches_all_fifty_client_sidecars_over_delta).needs(&[Need::Envoy]),
        case!(async negative_control_a_change_behind_a_blackhole_fails_propagation).needs(&[Need::Envoy]),
        case!(async control_plane_restart_with_every_sidecar_on_sotw_xds).needs(&[Need::Envoy]),
        case!(async control_plane_restart_with_every_sidecar_on_delta_xds).needs(&[Need::Envoy]),
    ])
}
