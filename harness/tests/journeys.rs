//! goose user journeys across two services, end to end: they keep succeeding through an
//! xDS partition, and fail when the data link to the back service's region is cut.

mod common;

use tether::checks::Outcome;

async fn journeys_keep_succeeding_through_an_xds_partition() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = common::run_suite("suites/journeys.yaml", dir.path()).await;
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    // Both generators ran, and the journeys crossed both sidecars to both back versions.
    let timeline = std::fs::read_to_string(dir.path().join("timeline.jsonl")).unwrap();
    assert!(timeline.contains("\"load_second\""));
    for backend in ["\"backend\":\"back-v1\"", "\"backend\":\"back-v2\""] {
        assert!(timeline.contains(backend), "no journey reached {backend}");
    }
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
}

async fn negative_control_journeys_fail_when_the_data_link_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let outcome =
        common::run_suite("suites/negative/journeys-data-link-cut.yaml", dir.path()).await;
    let v = outcome.verdict("journeys_succeed").unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:#?}");
    assert!(v.detail.contains("front-to-back"), "{v:#?}");
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async journeys_keep_succeeding_through_an_xds_partition).needs(&[Need::Envoy]),
        case!(async negative_control_journeys_fail_when_the_data_link_is_cut).needs(&[Need::Envoy]),
    ])
}
