//! Degraded and flapping links, end to end against real Envoy, with their negative controls.

mod common;

use common::run_suite;
use tether::checks::Outcome;

static ONE_RUN_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xds_survives_latency_past_the_aws_limit_and_a_one_megabit_link() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(outcome) = run_suite("suites/link-latency.yaml", dir.path()).await else {
        return;
    };
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    // The latency was really there: the change took about one round trip to land (180 ms,
    // less up to 20 ms of jitter).
    let p = outcome.verdict("propagation@rtt-180ms").unwrap();
    let max = p.measurement("propagation_ms.max").unwrap();
    assert!(max.value >= 150.0, "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_control_a_round_trip_past_the_keepalive_timeout_drops_xds() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(outcome) = run_suite(
        "suites/negative/link-latency-past-keepalive.yaml",
        dir.path(),
    )
    .await
    else {
        return;
    };
    let v = outcome.verdict("xds_stays_connected").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_land_between_outages_of_a_flapping_link() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(outcome) = run_suite("suites/link-flapping.yaml", dir.path()).await else {
        return;
    };
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    // The link really flapped: one outage per 4 s cycle of the 16 s phase.
    let timeline = std::fs::read_to_string(dir.path().join("timeline.jsonl")).unwrap();
    let outages = timeline
        .lines()
        .filter(|l| l.contains("fault_applied") && l.contains("flapping"))
        .count();
    assert_eq!(outages, 4, "{timeline}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_control_a_link_that_never_comes_up_fails_propagation() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(outcome) = run_suite("suites/negative/link-flapping-never-up.yaml", dir.path()).await
    else {
        return;
    };
    let v = outcome.verdict("propagation").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_keepalive_notices_a_blackhole_and_tcp_keepalive_alone_does_not() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(outcome) = run_suite("suites/keepalive-detection.yaml", dir.path()).await else {
        return;
    };
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    let tcp = std::fs::read_to_string(dir.path().join("work/envoy-svc-v1.json")).unwrap();
    assert!(
        tcp.contains("tcp_keepalive") && !tcp.contains("connection_keepalive"),
        "{tcp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_control_expecting_tcp_keepalive_to_notice_fails() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(outcome) = run_suite(
        "suites/negative/keepalive-detection-tcp-expected.yaml",
        dir.path(),
    )
    .await
    else {
        return;
    };
    let v = outcome.verdict("partition_noticed").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
    assert!(v.detail.contains("never noticed"), "{}", v.detail);
}
