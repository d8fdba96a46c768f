//! Degraded and flapping links, end to end against real Envoy, with their negative controls.

mod common;

use common::run_suite;
use tether::checks::Outcome;

async fn xds_survives_latency_past_the_aws_limit_and_a_one_megabit_link() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/link-latency.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    // The latency was really there: the change took about one round trip to land (180 ms,
    // less up to 20 ms of jitter).
    let p = outcome.verdict("propagation@rtt-180ms").unwrap();
    let max = p.measurement("propagation_ms.max").unwrap();
    assert!(max.value >= 150.0, "{p:?}");
}

async fn negative_control_a_round_trip_past_the_keepalive_timeout_drops_xds() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite(
        "suites/negative/link-latency-past-keepalive.yaml",
        dir.path(),
    )
    .await;
    let v = outcome.verdict("xds_stays_connected").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
}

async fn changes_land_between_outages_of_a_flapping_link() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/link-flapping.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    // The link really flapped: one outage per 4 s cycle of the 16 s phase.
    let timeline = std::fs::read_to_string(dir.path().join("timeline.jsonl")).unwrap();
    let outages = timeline
        .lines()
        .filter(|l| l.contains("fault_applied") && l.contains("flapping"))
        .count();
    assert_eq!(outages, 4, "{timeline}");
}

async fn negative_control_a_link_that_never_comes_up_fails_propagation() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/negative/link-flapping-never-up.yaml", dir.path()).await;
    let v = outcome.verdict("propagation").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
}

async fn http2_keepalive_notices_a_blackhole_and_tcp_keepalive_alone_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite("suites/keepalive-detection.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    let tcp = std::fs::read_to_string(dir.path().join("work/envoy-svc-v1.json")).unwrap();
    assert!(
        tcp.contains("tcp_keepalive") && !tcp.contains("connection_keepalive"),
        "{tcp}"
    );
}

async fn negative_control_expecting_tcp_keepalive_to_notice_fails() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_suite(
        "suites/negative/keepalive-detection-tcp-expected.yaml",
        dir.path(),
    )
    .await;
    let v = outcome.verdict("partition_noticed").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
    assert!(v.detail.contains("never noticed"), "{}", v.detail);
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async xds_survives_latency_past_the_aws_limit_and_a_one_megabit_link)
            .needs(&[Need::Envoy]),
        case!(async negative_control_a_round_trip_past_the_keepalive_timeout_drops_xds)
            .needs(&[Need::Envoy]),
        case!(async changes_land_between_outages_of_a_flapping_link).needs(&[Need::Envoy]),
        case!(async negative_control_a_link_that_never_comes_up_fails_propagation)
            .needs(&[Need::Envoy]),
        case!(async http2_keepalive_notices_a_blackhole_and_tcp_keepalive_alone_does_not)
            .needs(&[Need::Envoy]),
        case!(async negative_control_expecting_tcp_keepalive_to_notice_fails).needs(&[Need::Envoy]),
    ])
}
