//! Virtual node listener features, proven against real Envoy: connection pool (circuit
//! breakers on the node's ingress cluster), outlier detection (on the callers' clusters),
//! active health checks of the local app and the listener's per-request timeout.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tether::timeline::Timeline;

/// The value of one counter or gauge in an Envoy's `/stats`, if it exists.
async fn stat(http: &reqwest::Client, admin: SocketAddr, name: &str) -> Option<u64> {
    let text = http
        .get(format!("http://{admin}/stats?filter=^{name}$"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Wait up to `within` for `name` to satisfy `ok`; the last value seen.
async fn wait_stat(
    http: &reqwest::Client,
    admin: SocketAddr,
    name: &str,
    within: Duration,
    ok: impl Fn(Option<u64>) -> bool,
) -> Option<u64> {
    let deadline = Instant::now() + within;
    loop {
        let v = stat(http, admin, name).await;
        if ok(v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn pool_outlier_detection_health_check_and_timeout_behave_as_configured() {
    let timeline = Timeline::new();
    let (topo, dir) = common::bring_up("fixtures/suites/listener-features.yaml", &timeline).await;
    let egress = topo.egress_of("client").unwrap();
    let admin = |node: &str| topo.placement.nodes[node].admin;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |service: &str, path: &str| {
        http.get(format!("http://{egress}{path}"))
            .header("host", format!("{service}.listeners.local"))
            .send()
    };

    // Health check: each sidecar checks its own app; `sick`'s check path answers 503.
    let ingress = |node: &str| format!("cluster.cds_ingress_listeners_{node}_http_8080");
    let within = Duration::from_secs(15);
    let healthy = |node: &'static str| {
        let name = format!("{}.membership_healthy", ingress(node));
        let http = http.clone();
        let admin = admin(node);
        async move { wait_stat(&http, admin, &name, within, |v| v == Some(1)).await }
    };
    assert_eq!(
        healthy("pooled").await,
        Some(1),
        "pooled's app passes its check"
    );
    let name = format!("{}.health_check.failure", ingress("sick"));
    let failures = wait_stat(&http, admin("sick"), &name, within, |v| v >= Some(1)).await;
    assert!(
        failures >= Some(1),
        "sick's check never failed: {failures:?}"
    );
    let name = format!("{}.membership_healthy", ingress("sick"));
    assert_eq!(stat(&http, admin("sick"), &name).await, Some(0));
    let name = format!("{}.health_check.attempt", ingress("plain"));
    assert_eq!(
        stat(&http, admin("plain"), &name).await.unwrap_or(0),
        0,
        "plain has no health check"
    );

    // Connection pool: one connection and one waiting request; the rest overflow.
    let burst = |service: &'static str| {
        futures::future::join_all((0..8).map(move |_| get(service, "/?delay_ms=400")))
    };
    let (mut ok, mut overloaded) = (0, 0);
    for r in burst("pooled").await {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            503 if r.headers().contains_key("x-envoy-overloaded") => overloaded += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        ok >= 1 && overloaded >= 1,
        "pooled: {ok} ok, {overloaded} overloaded"
    );
    let statuses: Vec<u16> = burst("plain")
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(statuses, vec![200; 8], "plain has no pool limits");
    let name = format!("{}.upstream_rq_pending_overflow", ingress("pooled"));
    assert!(stat(&http, admin("pooled"), &name).await >= Some(1));

    // Listener timeout: pooled gives up after 1 s; plain waits (15 s default).
    let started = Instant::now();
    let r = get("pooled", "/?delay_ms=3000").await.unwrap();
    assert_eq!(r.status().as_u16(), 504);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        get("plain", "/?delay_ms=1500")
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // Outlier detection: the client ejects `ejecting` after 3 consecutive 5xx; the same
    // failures from `plain` eject nothing.
    for service in ["ejecting", "plain"] {
        for _ in 0..4 {
            let r = get(service, "/?status=503").await.unwrap();
            assert_eq!(r.status().as_u16(), 503);
        }
    }
    let egress_stat = |node: &str| {
        format!(
            "cluster.cds_egress_listeners_{node}_http_8080.outlier_detection.ejections_enforced_total"
        )
    };
    let ejections = wait_stat(
        &http,
        admin("client"),
        &egress_stat("ejecting"),
        Duration::from_secs(5),
        |v| v >= Some(1),
    )
    .await;
    assert!(
        ejections >= Some(1),
        "ejecting was never ejected: {ejections:?}"
    );
    assert_eq!(
        stat(&http, admin("client"), &egress_stat("plain"))
            .await
            .unwrap_or(0),
        0,
        "plain has no outlier detection"
    );

    topo.shutdown().await;
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async pool_outlier_detection_health_check_and_timeout_behave_as_configured)
            .needs(&[Need::Envoy]),
    ])
}
