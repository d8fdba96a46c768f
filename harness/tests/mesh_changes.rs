//! Mesh changes through the control plane's admin API, proven against real Envoy: an added
//! route takes traffic, a removed one stops taking it, and a route Envoy rejects (an RE2
//! regex App Mesh's API would accept) is NACKed with Envoy's error text on the timeline
//! while the last good config keeps serving; a node's endpoints leave and rejoin.

mod common;

use serde_json::json;
use std::time::{Duration, Instant};
use tether::timeline::{Event, Timeline, XdsKind};

const CLIENT: &str = "mesh/features/virtualNode/client";

/// The client's answer to a config version of one xDS type (`rds`, `eds`, ...): the ACK
/// or NACK event, once it comes.
async fn answer(timeline: &Timeline, kind: &str, version: &str) -> (XdsKind, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = timeline.entries().into_iter().find_map(|e| match e.event {
            Event::Xds {
                node,
                type_name,
                xds: xds @ (XdsKind::Ack | XdsKind::Nack),
                version: v,
                error,
            } if node == CLIENT && type_name == kind && v == version => Some((xds, error)),
            _ => None,
        });
        if let Some(found) = found {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the client never answered {kind} version {version}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn added_routes_take_traffic_and_a_nacked_route_leaves_the_last_good_config() {
    let timeline = Timeline::new();
    let (topo, dir) = common::bring_up("fixtures/suites/route-features.yaml", &timeline).await;
    let egress = topo.egress_of("client").unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let served_by = |path: &'static str| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://{egress}{path}"))
                .header("host", "svc.features.local")
                .send()
                .await
                .unwrap();
            let by = r
                .headers()
                .get("x-served-by")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), by.unwrap_or_default())
        }
    };
    let cp = topo.control_plane_admin.unwrap();
    let change = |body: serde_json::Value| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("http://{cp}/changes"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(status, 200, "{body}");
            body["version"].to_string()
        }
    };
    let v1 = (200, "svc-v1".to_string());
    let v2 = (200, "svc-v2".to_string());
    assert_eq!(served_by("/beta").await, v1);

    // Added: /beta goes to svc-v2 once the client has acknowledged the new routes.
    let version = change(json!({"add_route": {"router": "svc-router", "route": {
        "name": "beta", "priority": 0, "prefix": "/beta", "targets": {"svc-v2": 100}}}}))
    .await;
    assert_eq!(
        answer(&timeline, "rds", &version).await,
        (XdsKind::Ack, None)
    );
    assert_eq!(served_by("/beta").await, v2);
    assert_eq!(served_by("/").await, v1);

    // Removed: /beta falls back to the default route.
    let version = change(json!({"remove_route": {"router": "svc-router", "route": "beta"}})).await;
    assert_eq!(
        answer(&timeline, "rds", &version).await,
        (XdsKind::Ack, None)
    );
    assert_eq!(served_by("/beta").await, v1);
    let good = version;

    // A lookahead is not RE2: Envoy rejects the route config, says why, keeps the last good.
    let bad = change(json!({"add_route": {"router": "svc-router", "route": {
        "name": "lookahead", "priority": 0, "prefix": "/",
        "headers": [{"name": "x-version", "match": {"regex": "(?=v2).*"}}],
        "targets": {"svc-v2": 100}}}}))
    .await;
    let (kind, error) = answer(&timeline, "rds", &bad).await;
    assert_eq!(kind, XdsKind::Nack);
    let error = error.unwrap_or_default();
    eprintln!("Envoy's NACK: {error}");
    assert!(
        error.contains("invalid perl operator: (?="),
        "Envoy's error text: {error}"
    );
    let snapshot = topo.envoys["client"].snapshot().await;
    assert_eq!(snapshot.route_version.as_deref(), Some(good.as_str()));
    assert_eq!(
        served_by("/").await,
        v1,
        "the last good config still serves"
    );
    assert_eq!(
        served_by("/beta").await,
        v1,
        "the removed route stays removed"
    );

    // Taking the bad route out again makes the next version acceptable.
    let version =
        change(json!({"remove_route": {"router": "svc-router", "route": "lookahead"}})).await;
    assert_eq!(
        answer(&timeline, "rds", &version).await,
        (XdsKind::Ack, None)
    );
    assert_eq!(served_by("/").await, v1);

    // Endpoints: deregistered, svc-v1 keeps its cluster on the client but has no endpoint
    // (503); registered again, it serves.
    let version = change(json!({"remove_endpoints": {"virtual_node": "svc-v1"}})).await;
    assert_eq!(
        answer(&timeline, "eds", &version).await,
        (XdsKind::Ack, None)
    );
    assert_eq!(served_by("/").await, (503, String::new()));
    let version = change(json!({"add_endpoints": {"virtual_node": "svc-v1"}})).await;
    assert_eq!(
        answer(&timeline, "eds", &version).await,
        (XdsKind::Ack, None)
    );
    assert_eq!(served_by("/").await, v1);

    topo.shutdown().await;
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async added_routes_take_traffic_and_a_nacked_route_leaves_the_last_good_config)
            .needs(&[Need::Envoy]),
    ])
}
