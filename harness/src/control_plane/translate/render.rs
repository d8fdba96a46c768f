//! A readable form of [`Resources`] for snapshots and reports: names, addresses, matches,
//! weights, timeouts, retry policies, rewrites, endpoints, circuit breakers, outlier
//! detection and health checks, with the packed `Any` configs (the HTTP connection
//! manager, the TCP proxy) decoded.

use super::Resources;
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{Address, address, health_check, socket_address};
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteConfiguration, header_matcher, route, route_action, route_match,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher;
use envoy_types::pb::envoy::r#type::v3::CodecClientType;
use envoy_types::pb::google::protobuf::{Any, Duration};
use prost::Message;
use serde_json::{Map, Value, json};

/// `resources` as JSON: `clusters`, `endpoints`, `listeners` and `routes`, in order.
pub fn render(resources: &Resources) -> Value {
    json!({
        "clusters": resources.clusters.iter().map(render_cluster).collect::<Vec<_>>(),
        "endpoints": resources.endpoints.iter().map(render_assignment).collect::<Vec<_>>(),
        "listeners": resources.listeners.iter().map(render_listener).collect::<Vec<_>>(),
        "routes": resources.routes.iter().map(render_route_config).collect::<Vec<_>>(),
    })
}

fn dur(d: &Option<Duration>) -> Value {
    match d {
        Some(d) => {
            let std = std::time::Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32);
            Value::String(humantime::format_duration(std).to_string())
        }
        None => Value::Null,
    }
}

fn u32v(v: &Option<envoy_types::pb::google::protobuf::UInt32Value>) -> Value {
    v.as_ref().map_or(Value::Null, |v| json!(v.value))
}

/// Put `value` in `map` under `key` unless it is null or empty.
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        map.insert(key.to_string(), value);
    }
}

fn render_address(a: &Option<Address>) -> Value {
    match a.as_ref().and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(sa)) => {
            let port = match sa.port_specifier {
                Some(socket_address::PortSpecifier::PortValue(p)) => p.to_string(),
                _ => "?".into(),
            };
            Value::String(format!("{}:{port}", sa.address))
        }
        _ => Value::Null,
    }
}

fn addresses(cla: &ClusterLoadAssignment) -> Value {
    cla.endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .map(|lb| match &lb.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(e)) => render_address(&e.address),
            _ => Value::Null,
        })
        .collect()
}

fn render_assignment(cla: &ClusterLoadAssignment) -> Value {
    json!({ "cluster": cla.cluster_name, "addresses": addresses(cla) })
}

fn render_cluster(c: &Cluster) -> Value {
    let mut m = Map::new();
    put(&mut m, "name", json!(c.name));
    let kind = match c.cluster_discovery_type {
        Some(cluster::ClusterDiscoveryType::Type(t)) => cluster::DiscoveryType::try_from(t)
            .map(|t| t.as_str_name().to_lowercase())
            .unwrap_or_else(|_| t.to_string()),
        _ => "other".into(),
    };
    put(&mut m, "type", json!(kind));
    if let Some(cluster::ClusterDiscoveryType::ClusterType(custom)) = &c.cluster_discovery_type {
        put(&mut m, "cluster_type", json!(custom.name));
    }
    put(&mut m, "connect_timeout", dur(&c.connect_timeout));
    if !c.typed_extension_protocol_options.is_empty() {
        // The only protocol options tether sets: HTTP/2 upstream.
        put(&mut m, "upstream", json!("http2"));
    }
    if let Some(eds) = &c.eds_cluster_config {
        put(&mut m, "eds_service", json!(eds.service_name));
    }
    if let Some(cla) = &c.load_assignment {
        put(&mut m, "addresses", addresses(cla));
    }
    if let Some(cb) = &c.circuit_breakers {
        let thresholds: Vec<Value> = cb
            .thresholds
            .iter()
            .map(|t| {
                let mut m = Map::new();
                put(&mut m, "max_connections", u32v(&t.max_connections));
                put(
                    &mut m,
                    "max_pending_requests",
                    u32v(&t.max_pending_requests),
                );
                put(&mut m, "max_requests", u32v(&t.max_requests));
                Value::Object(m)
            })
            .collect();
        put(&mut m, "circuit_breakers", json!(thresholds));
    }
    if let Some(od) = &c.outlier_detection {
        put(
            &mut m,
            "outlier_detection",
            json!({
                "consecutive_5xx": u32v(&od.consecutive_5xx),
                "interval": dur(&od.interval),
                "base_ejection_time": dur(&od.base_ejection_time),
                "max_ejection_percent": u32v(&od.max_ejection_percent),
            }),
        );
    }
    let checks: Vec<Value> = c
        .health_checks
        .iter()
        .map(|hc| {
            let mut m = Map::new();
            match &hc.health_checker {
                Some(health_check::HealthChecker::HttpHealthCheck(h)) => {
                    let http2 = h.codec_client_type == CodecClientType::Http2 as i32;
                    put(
                        &mut m,
                        "protocol",
                        json!(if http2 { "http2" } else { "http" }),
                    );
                    put(&mut m, "path", json!(h.path));
                }
                Some(health_check::HealthChecker::TcpHealthCheck(_)) => {
                    put(&mut m, "protocol", json!("tcp"));
                }
                _ => put(&mut m, "protocol", json!("other")),
            }
            put(&mut m, "interval", dur(&hc.interval));
            put(&mut m, "timeout", dur(&hc.timeout));
            put(&mut m, "healthy_threshold", u32v(&hc.healthy_threshold));
            put(&mut m, "unhealthy_threshold", u32v(&hc.unhealthy_threshold));
            Value::Object(m)
        })
        .collect();
    put(&mut m, "health_checks", json!(checks));
    Value::Object(m)
}

/// The TCP proxy packed in `any`, if that is what it holds.
fn decode_tcp_proxy(any: &Any) -> Option<TcpProxy> {
    any.type_url
        .ends_with("TcpProxy")
        .then(|| TcpProxy::decode(any.value.as_slice()).ok())
        .flatten()
}

/// The HTTP connection manager packed in `any`, if that is what it holds.
fn decode_hcm(any: &Any) -> Option<HttpConnectionManager> {
    any.type_url
        .ends_with("HttpConnectionManager")
        .then(|| HttpConnectionManager::decode(any.value.as_slice()).ok())
        .flatten()
}

fn render_listener(l: &Listener) -> Value {
    let filters: Vec<Value> = l
        .filter_chains
        .iter()
        .flat_map(|fc| &fc.filters)
        .map(|f| {
            let mut m = Map::new();
            put(&mut m, "name", json!(f.name));
            let any = match &f.config_type {
                Some(filter::ConfigType::TypedConfig(any)) => Some(any),
                _ => None,
            };
            if let Some(proxy) = any.and_then(decode_tcp_proxy) {
                put(&mut m, "stat_prefix", json!(proxy.stat_prefix));
                match &proxy.cluster_specifier {
                    Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => {
                        put(&mut m, "cluster", json!(c))
                    }
                    Some(tcp_proxy::ClusterSpecifier::WeightedClusters(wc)) => {
                        let w: Vec<Value> = wc
                            .clusters
                            .iter()
                            .map(|c| json!({ "cluster": c.name, "weight": c.weight }))
                            .collect();
                        put(&mut m, "weighted_clusters", json!(w));
                    }
                    None => {}
                }
                put(&mut m, "idle_timeout", dur(&proxy.idle_timeout));
            }
            let hcm = any.and_then(decode_hcm);
            if let Some(hcm) = hcm {
                put(&mut m, "stat_prefix", json!(hcm.stat_prefix));
                if let Some(http_connection_manager::RouteSpecifier::Rds(rds)) =
                    &hcm.route_specifier
                {
                    put(&mut m, "rds", json!(rds.route_config_name));
                }
                let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
                put(&mut m, "http_filters", json!(names));
            }
            Value::Object(m)
        })
        .collect();
    json!({ "name": l.name, "address": render_address(&l.address), "filters": filters })
}

fn render_route(r: &Route) -> Value {
    let mut m = Map::new();
    if let Some(rm) = &r.r#match {
        let mut matcher = Map::new();
        match &rm.path_specifier {
            Some(route_match::PathSpecifier::Prefix(p)) => put(&mut matcher, "prefix", json!(p)),
            Some(route_match::PathSpecifier::Path(p)) => put(&mut matcher, "path", json!(p)),
            Some(route_match::PathSpecifier::SafeRegex(r)) => {
                put(&mut matcher, "path_regex", json!(r.regex))
            }
            _ => {}
        }
        if rm.grpc.is_some() {
            put(&mut matcher, "grpc", json!(true));
        }
        let headers: Vec<Value> = rm
            .headers
            .iter()
            .map(|h| {
                let how = match &h.header_match_specifier {
                    Some(header_matcher::HeaderMatchSpecifier::StringMatch(sm)) => {
                        match &sm.match_pattern {
                            Some(string_matcher::MatchPattern::Exact(v)) => json!({"exact": v}),
                            Some(string_matcher::MatchPattern::Prefix(v)) => json!({"prefix": v}),
                            Some(string_matcher::MatchPattern::Suffix(v)) => json!({"suffix": v}),
                            Some(string_matcher::MatchPattern::SafeRegex(v)) => {
                                json!({"regex": v.regex})
                            }
                            _ => json!("other"),
                        }
                    }
                    _ => json!("other"),
                };
                json!({ "name": h.name, "match": how })
            })
            .collect();
        put(&mut matcher, "headers", json!(headers));
        put(&mut m, "match", Value::Object(matcher));
    }
    if let Some(route::Action::Route(a)) = &r.action {
        match &a.cluster_specifier {
            Some(route_action::ClusterSpecifier::Cluster(c)) => put(&mut m, "cluster", json!(c)),
            Some(route_action::ClusterSpecifier::WeightedClusters(wc)) => {
                let w: Vec<Value> = wc
                    .clusters
                    .iter()
                    .map(|c| json!({ "cluster": c.name, "weight": u32v(&c.weight) }))
                    .collect();
                put(&mut m, "weighted_clusters", json!(w));
            }
            _ => {}
        }
        put(&mut m, "timeout", dur(&a.timeout));
        put(&mut m, "idle_timeout", dur(&a.idle_timeout));
        if !a.prefix_rewrite.is_empty() {
            put(&mut m, "prefix_rewrite", json!(a.prefix_rewrite));
        }
        if let Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(h)) =
            &a.host_rewrite_specifier
        {
            put(&mut m, "host_rewrite", json!(h));
        }
        if let Some(rp) = &a.retry_policy {
            let mut retry = Map::new();
            put(&mut retry, "retry_on", json!(rp.retry_on));
            put(&mut retry, "num_retries", u32v(&rp.num_retries));
            put(&mut retry, "per_try_timeout", dur(&rp.per_try_timeout));
            put(
                &mut retry,
                "retriable_status_codes",
                json!(rp.retriable_status_codes),
            );
            put(&mut m, "retry_policy", Value::Object(retry));
        }
    }
    Value::Object(m)
}

fn render_route_config(rc: &RouteConfiguration) -> Value {
    let hosts: Vec<Value> = rc
        .virtual_hosts
        .iter()
        .map(|vh| {
            json!({
                "name": vh.name,
                "domains": vh.domains,
                "routes": vh.routes.iter().map(render_route).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "name": rc.name, "virtual_hosts": hosts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control_plane::translate::translate;
    use crate::mesh::Mesh;
    use crate::topology::{Placement, Site};
    use std::net::SocketAddr;
    use std::path::Path;

    /// Fixed addresses for every node and gateway of `mesh`, in name order, from port
    /// 10000 up; every third is in the region, so snapshots show both direct and
    /// cross-site (data link) endpoints.
    fn placement(mesh: &Mesh) -> Placement {
        let mut names: Vec<&str> = mesh
            .virtual_nodes
            .iter()
            .map(|n| n.name.as_str())
            .chain(mesh.virtual_gateways.iter().map(|g| g.name.as_str()))
            .collect();
        names.sort();
        let sites = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let site = if i % 3 == 2 {
                    Site::Region
                } else {
                    Site::Outpost
                };
                (name.to_string(), site)
            })
            .collect();
        let mut port = 10_000;
        let addr = |_: &str, _, _| {
            port += 1;
            SocketAddr::from(([127, 0, 0, 1], port - 1))
        };
        Placement::assign(mesh, &sites, addr, true)
    }

    #[test]
    fn every_fixture_mesh_translates_as_snapshotted() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meshes");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() >= 4, "{files:?}");
        // fleet-500 is fleet-50 with ten times the members: fleet-50's snapshot (whose
        // fifty hand-written nodes became a fleet with the same names and resources)
        // covers the translation of a fleet's members, without a megabyte of copies.
        files.retain(|f| !f.ends_with("fleet-500.yaml"));
        for file in files {
            let mesh = Mesh::load(&file).unwrap_or_else(|e| panic!("{e}"));
            let placement = placement(&mesh);
            let by_node: Map<String, Value> = placement
                .nodes
                .keys()
                .map(|node| (node.clone(), render(&translate(&mesh, node, &placement))))
                .collect();
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            insta::assert_json_snapshot!(stem, by_node);
        }
    }
}
