//! The packet-level link end to end: the sites as two network namespaces, a partition
//! that drops packets, and the difference it makes to TCP keepalive (against
//! `suites/keepalive-detection.yaml`, where a TCP-terminating proxy answers the probes).

mod common;

use std::time::Duration;
use tether::checks::Outcome;

async fn a_packet_partition_is_noticed_even_on_tcp_keepalive() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = common::run_suite("suites/packet-partition.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    let noticed = outcome.verdict("partition_noticed").unwrap();
    assert!(
        noticed.detail.contains("svc-v1"),
        "the TCP-keepalive sidecar is judged too: {noticed:?}"
    );
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
    assert_eq!(
        common::leftover_links(Duration::from_secs(10)),
        Vec::<String>::new(),
        "namespaces and veths go with the run"
    );
}

async fn negative_control_tcp_keepalive_does_not_miss_a_packet_partition() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = common::run_suite(
        "suites/negative/packet-partition-tcp-unnoticed.yaml",
        dir.path(),
    )
    .await;
    let v = outcome.verdict("partition_unnoticed").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
    assert!(v.detail.contains("`svc-v1` noticed"), "{v:?}");
    assert_eq!(
        common::leftover_links(Duration::from_secs(10)),
        Vec::<String>::new()
    );
}

async fn xds_and_traffic_carry_on_over_a_lossy_slow_reordering_wire() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = common::run_suite("suites/packet-degraded.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    // The delay was on the wire: the change took at least one way's delay (90 ms +- 10
    // ms). Not the whole round trip: netem's `reorder` sends a tenth of the packets at
    // once, so the push or the ACK skips the delay in about one run in five.
    let p = outcome.verdict("propagation@lossy-180ms").unwrap();
    let max = p.measurement("propagation_ms.max").unwrap();
    assert!(max.value >= 75.0, "{p:?}");
    assert_eq!(
        common::leftover_links(Duration::from_secs(10)),
        Vec::<String>::new()
    );
}

async fn negative_control_a_round_trip_past_the_keepalive_timeout_on_the_wire_drops_xds() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = common::run_suite(
        "suites/negative/packet-latency-past-keepalive.yaml",
        dir.path(),
    )
    .await;
    let v = outcome.verdict("xds_stays_connected").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async a_packet_partition_is_noticed_even_on_tcp_keepalive)
            .needs(&[Need::Envoy, Need::PacketLinks]),
        case!(async negative_control_tcp_keepalive_does_not_miss_a_packet_partition)
            .needs(&[Need::Envoy, Need::PacketLinks]),
        case!(async xds_and_traffic_carry_on_over_a_lossy_slow_reordering_wire)
            .needs(&[Need::Envoy, Need::PacketLinks]),
        case!(async negative_control_a_round_trip_past_the_keepalive_timeout_on_the_wire_drops_xds)
            .needs(&[Need::Envoy, Need::PacketLinks]),
    ])
}
