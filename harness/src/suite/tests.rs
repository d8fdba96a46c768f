//! Suites parsed, validated and lowered: the bundled ones, and broken ones that must name
//! file, line and column.

use super::*;
use std::path::PathBuf;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn bundled_suites_are_valid() {
    for suite in [
        "suites/outpost-partition.yaml",
        "suites/outpost-partition-delta.yaml",
        "suites/negative/data-path-partition.yaml",
        "suites/control-plane-restart.yaml",
        "suites/negative/control-plane-stays-down.yaml",
        "suites/propagation.yaml",
        "suites/scale-500.yaml",
        "suites/negative/propagation-partitioned.yaml",
        "suites/link-latency.yaml",
        "suites/negative/link-latency-past-keepalive.yaml",
        "suites/link-flapping.yaml",
        "suites/negative/link-flapping-never-up.yaml",
        "suites/keepalive-detection.yaml",
        "suites/negative/keepalive-detection-tcp-expected.yaml",
        "suites/container-faults.yaml",
        "suites/negative/restart-gives-up-waiting.yaml",
        "suites/soak.yaml",
        "suites/soak-quick.yaml",
        "suites/negative/soak-data-cut.yaml",
        "suites/negative/memory-grows.yaml",
    ] {
        let plan = load(&repo(suite)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!plan.phases.is_empty());
    }
    // A repeated change is made `times` times, `every` apart, `{n}` its number.
    let grows = load(&repo("suites/negative/memory-grows.yaml")).unwrap();
    let changes = &grows.phase("growing").unwrap().changes;
    assert_eq!(changes.len(), 160);
    assert_eq!(changes[4].0, std::time::Duration::from_millis(1_250));
    match &changes[4].1 {
        crate::plan::Change::AddRoute { route, .. } => {
            assert_eq!(
                (route.name.as_str(), route.prefix.as_str()),
                ("grow-5", "/grow/5/")
            );
        }
        other => panic!("{other:?}"),
    }
    // A fleet placed by its name is placed as its members.
    let plan = load(&repo("suites/propagation.yaml")).unwrap();
    assert_eq!(plan.sites.len(), 52);
    assert!(plan.sites.contains_key("client-01") && plan.sites.contains_key("client-50"));
    assert!(!plan.sites.contains_key("client"));
    let plan = load(&repo("suites/outpost-partition.yaml")).unwrap();
    assert_eq!(plan.sites.len(), 3);
    assert_eq!(
        plan.phase("heal").unwrap().start,
        std::time::Duration::from_secs(17)
    );
    assert_eq!(
        plan.xds.keepalive_interval,
        std::time::Duration::from_secs(1)
    );
}

/// `suite` with `from` replaced by `to`, written next to it so the mesh path still
/// resolves; returns the error text.
fn broken_suite(suite: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(repo(suite)).unwrap();
    assert!(text.contains(from), "the suite no longer contains {from:?}");
    let dir = tempfile::tempdir_in(repo("suites")).unwrap();
    let path = dir.path().join("broken.yaml");
    let text = text
        .replacen(from, to, 1)
        .replace("mesh: ../fixtures", "mesh: ../../fixtures");
    std::fs::write(&path, text).unwrap();
    let err = load(&path).unwrap_err();
    err.to_string()
        .replace(&format!("{}/", dir.path().display()), "")
}

/// Each (from, to, error) case: `suite` with `from` replaced by `to` fails to load with
/// a message starting with `error`.
fn expect_errors(suite: &str, cases: &[(&str, &str, &str)]) {
    let mut wrong = Vec::new();
    for (from, to, expected) in cases {
        let err = broken_suite(suite, from, to);
        if !err.starts_with(expected) {
            wrong.push(format!(
                "{from:?} -> {to:?}\n  got: {err}\n want: {expected}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn bad_suites_name_file_line_column_and_what_was_expected() {
    let cases = [
        (
            "phase: partition, min",
            "phase: partiton, min",
            "broken.yaml:40:37: unknown phase `partiton`; expected one of: baseline, heal, partition",
        ),
        (
            "- link: xds",
            "- link: xdz",
            "broken.yaml:29:15: unknown link `xdz`; expected one of: xds, data, all",
        ),
        (
            "topology:\n  outpost",
            "link: packet\ntopology:\n  outpost",
            "broken.yaml:30:15: a packet link is one wire between the sites; expected link `all`, found `xds`",
        ),
        (
            "fault: blackhole",
            "fault: { loss: { percent: 5 } }",
            "broken.yaml:29:15: loss, duplicate and reorder are packet-level faults; the fault proxy carries TCP streams (set `link: packet`)",
        ),
        (
            "outpost: [client, svc-v1, svc-v2]",
            "outpost: [client, svc-v9, svc-v2]",
            "broken.yaml:11:21: unknown virtual node or gateway `svc-v9`; expected one of: client, svc-v1, svc-v2",
        ),
        (
            "duration: 5s",
            "duration: 5 parsecs",
            "broken.yaml:25:15: phases[0].duration: expected a duration such as `5s` or `500ms` (or a range such as `30s..90s`), found `5 parsecs`",
        ),
        (
            "rate: 50",
            "rat: 50",
            "broken.yaml:21:3: load.rat: Unknown field `rat`, expected one of `through`, `service`, `rate`, `timeout`, `generator`, or `journeys`",
        ),
        (
            "      - at: 5s",
            "      - at: 50s",
            "broken.yaml:32:13: change at 50s is not within phase `partition` (12s)",
        ),
        (
            "svc-v1: 0, svc-v2: 100",
            "svc-v1: 10, svc-v2: 100",
            "broken.yaml:34:19: weights add up to 110; expected 100",
        ),
        (
            "name: heal",
            "name: [heal",
            "broken.yaml:39:7: invalid YAML",
        ),
    ];
    expect_errors("suites/outpost-partition.yaml", &cases);
}

#[test]
fn suites_add_and_remove_routes_in_order() {
    let add = "      - at: 5s\n        add_route:\n          router: svc-router\n          route: { name: beta, prefix: /beta, targets: { svc-v2: 100 } }\n      - at: 6s\n        remove_route: { router: svc-router, route: beta }\n";
    let text = std::fs::read_to_string(repo("suites/outpost-partition.yaml")).unwrap();
    let at = text.find("      - at: 5s").unwrap();
    let dir = tempfile::tempdir_in(repo("suites")).unwrap();
    let path = dir.path().join("routes.yaml");
    let write = |extra: &str| {
        let mut t = text.clone();
        t.insert_str(at, extra);
        std::fs::write(
            &path,
            t.replace("mesh: ../fixtures", "mesh: ../../fixtures"),
        )
        .unwrap();
    };
    write(add);
    let plan = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<String> = plan
        .phase("partition")
        .unwrap()
        .changes
        .iter()
        .map(|(_, c)| c.describe())
        .collect();
    assert_eq!(
        kinds,
        [
            "add route svc-router/beta (prefix /beta)",
            "remove route svc-router/beta",
            "route svc-router/split weights svc-v1=0 svc-v2=100"
        ]
    );
    // Removing a route that was never added is caught before anything runs.
    write("      - at: 5s\n        remove_route: { router: svc-router, route: beta }\n");
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("routes.yaml:33:33: unknown route `beta`"),
        "{err}"
    );
    // Two kinds of change in one entry.
    write(
        "      - at: 5s\n        remove_route: { router: svc-router, route: split }\n        set_route_weights: { router: svc-router, route: split, weights: { svc-v1: 100 } }\n",
    );
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("expected exactly one of set_route_weights, add_route, remove_route"),
        "{err}"
    );
}

#[test]
fn container_faults_name_a_part_the_run_has() {
    let text = std::fs::read_to_string(repo("suites/container-faults.yaml")).unwrap();
    let dir = tempfile::tempdir_in(repo("suites")).unwrap();
    let path = dir.path().join("containers.yaml");
    let cases = [
        (
            "restart: sidecar/svc-v2",
            "restart: sidecar/svc-v9",
            "32:18: `svc-v9` is not in the topology",
        ),
        (
            "restart: sidecar/svc-v2",
            "restart: fault-proxy",
            "32:18: the fault proxy's proxies live in its memory",
        ),
        (
            "        at: 3s",
            "        at: 3s\n      - pause: sidecar/svc-v2",
            "34:16: phase `partition` already has a fault on sidecar/svc-v2",
        ),
        (
            "- disconnect: fault-proxy",
            "- {}",
            "28:11: phase `partition`: expected each `containers` entry to have exactly one of",
        ),
        (
            "disconnect: fault-proxy",
            "disconnect: proxy",
            "31:21: unknown part `proxy`; expected control-plane",
        ),
        (
            "- pause: control-plane",
            "- pause: control-plane\n        at: 1s",
            "46:13: `pause` lasts the whole phase; `at` goes with `restart` only",
        ),
        (
            "        at: 3s",
            "        at: 30s",
            "33:13: restart at 30s is not within phase `partition` (12s)",
        ),
        (
            "- disconnect: fault-proxy",
            "- { disconnect: fault-proxy, pause: fault-proxy }",
            "31:23: phase `partition`: expected each `containers` entry to have exactly one of disconnect, pause, restart",
        ),
        (
            "restart_waits_for_heal: { phase: partition",
            "restart_waits_for_heal: { phase: heal",
            "52:38: phase `heal` restarts no outpost sidecar",
        ),
    ];
    let mut wrong = Vec::new();
    for (from, to, expected) in cases {
        assert!(text.contains(from), "{from}");
        let t = text
            .replacen(from, to, 1)
            .replace("mesh: ../fixtures", "mesh: ../../fixtures");
        std::fs::write(&path, t).unwrap();
        let err = load(&path).map(|_| ()).unwrap_err().to_string();
        if !err.contains(&format!("containers.yaml:{expected}")) {
            wrong.push(format!("{to}: got {err}\n want {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_missing_file_is_an_input_error() {
    let err = load(Path::new("no/such/suite.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no/such/suite.yaml:1:1: cannot read suite"),
        "{err}"
    );
}

#[test]
fn bad_soaks_name_file_line_column_and_what_was_expected() {
    let cases = [
        (
            "duration: 3s..5s",
            "duration: 5s..3s",
            "broken.yaml:30:15: phases[0].duration: expected a range from the shorter to the longer, found `5s..3s`",
        ),
        (
            "        one_of: [blackhole, reset, down]",
            "        fault: down\n        one_of: [blackhole, reset]",
            "broken.yaml:32:15: expected either `fault` or `one_of` (a list of faults to draw from)",
        ),
        (
            "      - at: 500ms..2s",
            "      - at: 500ms..2s\n        repeat: { every: 1s, times: 2 }",
            "broken.yaml:35:13: a repeated change starts at a fixed time, not a range",
        ),
        (
            "  - memory_drift: { max_per_hour: 64MiB,",
            "  - memory_drift: { phase: heal, max_per_hour: 64MiB,",
            "broken.yaml:58:28: in a soak memory_drift judges every cycle together: leave out `phase`",
        ),
        (
            "parts: [envoy/client,",
            "parts: [envoy/nobody,",
            "broken.yaml:58:50: unknown part `envoy/nobody`; expected one of: control-plane, envoy/client, envoy/svc-v1, envoy/svc-v2, tether",
        ),
        (
            "        set_route_weights: { router: svc-router, route: split, weights: { svc-v1: 0, svc-v2: 100 } }",
            "        add_route: { router: svc-router, route: { name: beta, prefix: /beta, targets: { svc-v2: 100 } } }",
            "broken.yaml:36:30: a soak repeats its changes every cycle, and the second cycle cannot make this one: router `svc-router` already has a route `beta`",
        ),
    ];
    expect_errors("suites/soak-quick.yaml", &cases);
}

#[test]
fn a_negative_controls_expected_failures_are_checks_of_its_own() {
    let cases = [
        (
            "expect_failing: [propagation]",
            "expect_failing: [propagaton]",
            "broken.yaml:6:18: `expect_failing` names `propagaton`, which is not a check of this suite; expected one of: propagation",
        ),
        (
            "expect_failing: [propagation]",
            "expect_failing: [propagation, propagation]",
            "broken.yaml:6:31: `propagation` is named twice in `expect_failing`",
        ),
    ];
    expect_errors("suites/negative/propagation-partitioned.yaml", &cases);
    let plan = load(&repo("suites/negative/propagation-partitioned.yaml")).unwrap();
    assert_eq!(plan.expect_failing, ["propagation"]);
    let plan = load(&repo("suites/outpost-partition.yaml")).unwrap();
    assert!(plan.expect_failing.is_empty() && !plan.expect_stopped);
    // Only a soak with a stop condition can be expected to stop.
    expect_errors(
        "suites/outpost-partition.yaml",
        &[(
            "name: outpost-partition\n",
            "name: outpost-partition\nexpect_stopped: true\n",
            "broken.yaml:6:17: `expect_stopped` needs a soak with `stop_when`",
        )],
    );
    assert!(
        load(&repo("suites/negative/soak-data-cut.yaml"))
            .unwrap()
            .expect_stopped
    );
}

#[test]
fn a_run_samples_the_sidecars_its_checks_read() {
    let sampled = |suite: &str, xds_log: bool| {
        let plan = load(&repo(suite)).unwrap_or_else(|e| panic!("{e}"));
        plan.sampled_sidecars(xds_log)
            .into_iter()
            .collect::<Vec<_>>()
    };
    // Propagation judges from the control plane's ACK log and the load: nothing to sample,
    // unless the control plane is a target's own (no log): then every sidecar.
    assert!(sampled("suites/scale-500.yaml", true).is_empty());
    assert_eq!(sampled("suites/propagation.yaml", false).len(), 52);
    // The partition's checks read every outpost sidecar (the load enters through one).
    assert_eq!(
        sampled("suites/outpost-partition.yaml", true),
        ["client", "svc-v1", "svc-v2"]
    );
    // A restart check reads the restarted sidecar.
    let restarts = load(&repo("suites/container-faults.yaml")).unwrap();
    for node in restarts.restarted_sidecars() {
        assert!(restarts.sampled_sidecars(true).contains(&node), "{node}");
    }
    // `observe: { sidecars: all }` samples every one, at the period asked for.
    let text = std::fs::read_to_string(repo("suites/propagation.yaml"))
        .unwrap()
        .replace("checks:", "observe: { sidecars: all, every: 1s }\nchecks:");
    let dir = tempfile::tempdir_in(repo("suites")).unwrap();
    let path = dir.path().join("all.yaml");
    std::fs::write(&path, text.replace("../fixtures", "../../fixtures")).unwrap();
    let plan = load(&path).unwrap();
    assert_eq!(plan.sampled_sidecars(true).len(), 52);
    assert_eq!(plan.observe.every, Some(std::time::Duration::from_secs(1)));
}

#[test]
fn bad_observe_settings_name_file_line_column_and_what_was_expected() {
    expect_errors(
        "suites/outpost-partition.yaml",
        &[
            (
                "checks:",
                "observe: { sidecars: none }\nchecks:",
                "broken.yaml:39:22: `config_frozen` judges from the sidecars' samples, which `sidecars: none` turns off",
            ),
            (
                "checks:",
                "observe: { every: 10ms }\nchecks:",
                "broken.yaml:39:19: expected observe.every from 50ms to 10m",
            ),
            (
                "checks:",
                "observe: { sidecars: some }\nchecks:",
                "broken.yaml:39:22: observe.sidecars: unknown variant `some`",
            ),
        ],
    );
    // `none` is fine where no check reads a sample.
    let text = std::fs::read_to_string(repo("suites/propagation.yaml")).unwrap();
    let dir = tempfile::tempdir_in(repo("suites")).unwrap();
    let path = dir.path().join("none.yaml");
    let text = text.replace("checks:", "observe: { sidecars: none }\nchecks:");
    std::fs::write(&path, text.replace("../fixtures", "../../fixtures")).unwrap();
    assert!(load(&path).unwrap().sampled_sidecars(true).is_empty());
}
