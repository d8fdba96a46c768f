//! Mesh route features, proven against real Envoy: what the mesh says is what traffic does.

mod common;

use std::time::{Duration, Instant};
use tether::timeline::Timeline;

async fn header_match_priority_retries_and_timeouts_behave_as_configured() {
    let timeline = Timeline::new();
    let (topo, dir) = common::bring_up("fixtures/suites/route-features.yaml", &timeline).await;
    let egress = topo.egress_of("client").unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str| {
        http.get(format!("http://{egress}{path}"))
            .header("host", "svc.features.local")
    };
    let served_by = |r: &reqwest::Response| {
        r.headers()
            .get("x-served-by")
            .map(|v| v.to_str().unwrap().to_string())
    };

    // Priority and header match: the canary route (priority 0) takes requests asking for v2.
    let r = get("/").send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), served_by(&r).as_deref()),
        (200, Some("svc-v1"))
    );
    let r = get("/").header("x-version", "v2").send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), served_by(&r).as_deref()),
        (200, Some("svc-v2"))
    );
    let r = get("/").header("x-version", "v3").send().await.unwrap();
    assert_eq!(
        served_by(&r).as_deref(),
        Some("svc-v1"),
        "only an exact match goes to v2"
    );

    // Retries: two failures are retried away on /retry; the default route does not retry.
    let r = get("/retry?fail_first=2&key=retried").send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "the retry policy should have retried twice"
    );
    let r = get("/retry?fail_first=3&key=exhausted")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        503,
        "three failures exhaust two retries"
    );
    let r = get("/?fail_first=1&key=not-retried").send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        503,
        "the default route has no retry policy"
    );

    // Timeouts: /slow gives up after 500 ms; the default route waits.
    let started = Instant::now();
    let r = get("/slow?delay_ms=3000").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 504);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
    let r = get("/?delay_ms=800").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Egress filter DROP_ALL (the default): a host outside the mesh gets no route.
    let (outside_addr, stop) = common::outside_service().await;
    let r = http
        .get(format!("http://{egress}/"))
        .header("host", outside_addr.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        404,
        "DROP_ALL keeps the client in the mesh"
    );
    stop.cancel();

    topo.shutdown().await;
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async header_match_priority_retries_and_timeouts_behave_as_configured)
            .needs(&[Need::Envoy]),
    ])
}
