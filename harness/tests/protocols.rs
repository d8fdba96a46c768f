//! Listener protocols, match kinds, DNS discovery, the egress filter and the virtual
//! gateway, proven against real Envoy: what the mesh says is what traffic does.

mod common;

use std::net::SocketAddr;
use tether::plan::XdsVariant;
use tether::service::{GRPC_STATUS_REQUEST, H2Answer, h2c_request};
use tether::timeline::Timeline;

/// One Envoy statistic, read from its admin endpoint (0 when Envoy has none by that name).
async fn stat(admin: SocketAddr, name: &str) -> u64 {
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{admin}/stats?filter=^{name}$"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

async fn every_protocol_match_discovery_and_the_gateway_behave_as_configured_over_sotw() {
    protocols(XdsVariant::Sotw).await;
}

async fn every_protocol_match_discovery_and_the_gateway_behave_as_configured_over_delta() {
    protocols(XdsVariant::Delta).await;
}

/// Bring up the protocols mesh with every Envoy on `xds`, and send it what each part of
/// the mesh should route.
async fn protocols(xds: XdsVariant) {
    let timeline = Timeline::new();
    let (topo, dir) =
        common::bring_up_on("fixtures/suites/protocols.yaml", Some(xds), &timeline).await;
    let client = &topo.placement.nodes["client"];
    let egress = client.egress;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let served_by = |addr: SocketAddr, method: &'static str, host: &str, path: &str| {
        let request = http
            .request(method.parse().unwrap(), format!("http://{addr}{path}"))
            .header("host", host);
        async move {
            let r = request.send().await.unwrap();
            let by = r
                .headers()
                .get("x-served-by")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), by.unwrap_or_default())
        }
    };
    let ok = |who: &str| (200, who.to_string());

    // HTTP matches: exact path, method, path regex, and the default route.
    let web = "web.protocols.local";
    assert_eq!(
        served_by(egress, "GET", web, "/v2/exact").await,
        ok("web-v2")
    );
    assert_eq!(
        served_by(egress, "GET", web, "/v2/exact/more").await,
        ok("web-v1"),
        "an exact path matches nothing longer"
    );
    assert_eq!(served_by(egress, "POST", web, "/").await, ok("web-v2"));
    assert_eq!(served_by(egress, "GET", web, "/").await, ok("web-v1"));
    assert_eq!(
        served_by(egress, "GET", web, "/item/42").await,
        ok("web-v2")
    );
    assert_eq!(
        served_by(egress, "GET", web, "/item/abc").await,
        ok("web-v1")
    );

    // Weights: 30/70 over 200 requests, within 10 points.
    let mut to_v2 = 0;
    for i in 0..200 {
        let (status, who) = served_by(egress, "GET", web, &format!("/split/{i}")).await;
        assert_eq!(status, 200);
        to_v2 += u32::from(who == "web-v2");
    }
    assert!(
        (120..=160).contains(&to_v2),
        "{to_v2} of 200 to web-v2, expected about 140"
    );

    // HTTP/2: h2c in, an http2Route, and HTTP/2 from both sidecars on to the app.
    let h2 = h2c_request(egress, "h2.protocols.local", "/", false, &[])
        .await
        .unwrap();
    assert_eq!((h2.status, h2.served_by.as_deref()), (200, Some("h2-svc")));
    let client_admin = client.admin;
    let h2_admin = topo.placement.nodes["h2-svc"].admin;
    assert!(
        stat(
            client_admin,
            "cluster.cds_egress_protocols_h2-svc_http2_8443.upstream_cx_http2_total"
        )
        .await
            >= 1,
        "the client's sidecar should speak HTTP/2 to h2-svc's"
    );
    assert!(
        stat(
            h2_admin,
            "cluster.cds_ingress_protocols_h2-svc_http2_8443.upstream_cx_http2_total"
        )
        .await
            >= 1,
        "h2-svc's sidecar should speak HTTP/2 to its app"
    );

    // gRPC: service and method, metadata, gRPC requests only, retries on UNAVAILABLE.
    let grpc = "grpc.protocols.local";
    let call = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        h2c_request(egress, grpc, path, true, headers)
    };
    let answered = |a: H2Answer| {
        (
            a.grpc_status.unwrap_or_default(),
            a.served_by.unwrap_or_default(),
        )
    };
    let ok_call = |who: &str| ("0".to_string(), who.to_string());
    assert_eq!(
        answered(call("/demo.Echo/Say", &[]).await.unwrap()),
        ok_call("grpc-v2"),
        "Say is routed to grpc-v2, in the region, across the data link"
    );
    assert_eq!(
        answered(call("/demo.Echo/Other", &[]).await.unwrap()),
        ok_call("grpc-v1")
    );
    assert_eq!(
        answered(
            call("/demo.Echo/Other", &[("x-canary", "yes")])
                .await
                .unwrap()
        ),
        ok_call("grpc-v2")
    );
    let plain = h2c_request(egress, grpc, "/demo.Echo/Other", false, &[])
        .await
        .unwrap();
    assert_eq!(plain.status, 404, "gRPC routes take gRPC requests only");
    let retries = "cluster.cds_egress_protocols_grpc-v1_grpc_50051.upstream_rq_retry";
    let before = stat(client_admin, retries).await;
    let failing = call("/demo.Echo/Other", &[(GRPC_STATUS_REQUEST, "14")])
        .await
        .unwrap();
    assert_eq!(failing.grpc_status.as_deref(), Some("14"));
    assert_eq!(
        stat(client_admin, retries).await - before,
        2,
        "UNAVAILABLE is retried twice (maxRetries: 2)"
    );

    // TCP: connections split between tcp-v1 (outpost) and tcp-v2 (region) by weight.
    let tcp = client.tcp_egress["tcp.protocols.local"];
    let mut by = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..40 {
        let (status, who) = served_by(tcp, "GET", "anything", "/").await;
        assert_eq!(status, 200);
        *by.entry(who).or_default() += 1;
    }
    let share = |who: &str| by.get(who).copied().unwrap_or(0);
    assert_eq!(share("tcp-v1") + share("tcp-v2"), 40, "{by:?}");
    assert!(
        (8..=32).contains(&share("tcp-v1")),
        "50/50 split of 40 connections: {by:?}"
    );

    // DNS discovery: the client resolves `localhost` for dns-svc.
    assert_eq!(
        served_by(egress, "GET", "dns.protocols.local", "/").await,
        ok("dns-svc")
    );

    // Egress filter ALLOW_ALL: a host outside the mesh is passed through.
    let (outside_addr, stop) = common::outside_service().await;
    assert_eq!(
        served_by(egress, "GET", &outside_addr.to_string(), "/").await,
        ok("outside")
    );
    stop.cancel();

    // The virtual gateway: prefix rewrites (default `/`, and a value), hostname match.
    let gateway = topo.egress_of("gateway").unwrap();
    assert_eq!(
        served_by(gateway, "GET", "edge", "/web/item/7").await,
        ok("web-v2"),
        "/web/item/7 arrives as /item/7"
    );
    assert_eq!(
        served_by(gateway, "GET", "edge", "/web/other").await,
        ok("web-v1")
    );
    assert_eq!(
        served_by(gateway, "GET", "edge", "/api/exact").await,
        ok("web-v2"),
        "/api/exact arrives as /v2/exact"
    );
    assert_eq!(
        served_by(gateway, "GET", "shop.partner.example", "/web/item/7").await,
        ok("h2-svc"),
        "the hostname route comes first (priority 0)"
    );
    assert_eq!(served_by(gateway, "GET", "edge", "/nothing").await.0, 404);

    topo.shutdown().await;
    assert_eq!(common::processes_of_run(dir.path()), Vec::<String>::new());
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(async every_protocol_match_discovery_and_the_gateway_behave_as_configured_over_sotw)
            .needs(&[Need::Envoy]),
        case!(async every_protocol_match_discovery_and_the_gateway_behave_as_configured_over_delta)
            .needs(&[Need::Envoy]),
    ])
}
