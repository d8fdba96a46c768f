//! The Envoy resources translation is made of: clusters, endpoints, listeners, routes,
//! matchers and policies, each from its mesh counterpart.

use crate::mesh::model::{
    ConnectionPool, GrpcMatch, HeaderValueMatch, HostnameMatch, HttpMatch, PathMatch, Protocol,
    RETRY_EVENTS, RouteTimeout,
};
use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, OutlierDetection, circuit_breakers, cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, HealthCheck, Http2ProtocolOptions,
    SocketAddress, config_source, health_check, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher, RetryPolicy, Route, RouteAction, RouteMatch, header_matcher, route,
    route_action, route_match,
};
use envoy_types::pb::envoy::extensions::clusters::dynamic_forward_proxy::v3::{
    ClusterConfig as DfpClusterConfig, cluster_config as dfp_cluster_config,
};
use envoy_types::pb::envoy::extensions::common::dynamic_forward_proxy::v3::DnsCacheConfig;
use envoy_types::pb::envoy::extensions::filters::http::dynamic_forward_proxy::v3::{
    FilterConfig as DfpFilterConfig, filter_config as dfp_filter_config,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};
use envoy_types::pb::envoy::r#type::v3::CodecClientType;
use envoy_types::pb::google::protobuf::{Any, Duration, UInt32Value};
use envoy_types::util::pack_any;
use marked_yaml::Spanned;
use std::net::SocketAddr;

/// The cluster that passes requests for hosts outside the mesh on (egress filter ALLOW_ALL).
pub(super) const ALLOW_ALL_CLUSTER: &str = "cds_egress_allow_all";

/// The DNS cache shared by the dynamic forward proxy filter and its cluster.
pub(super) fn dns_cache() -> DnsCacheConfig {
    DnsCacheConfig {
        name: "allow_all".into(),
        dns_lookup_family: cluster::DnsLookupFamily::V4Only as i32,
        ..Default::default()
    }
}

pub(super) fn dynamic_forward_cluster() -> Cluster {
    Cluster {
        name: ALLOW_ALL_CLUSTER.into(),
        connect_timeout: Some(seconds(1)),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::ClusterType(
            cluster::CustomClusterType {
                name: "envoy.clusters.dynamic_forward_proxy".into(),
                typed_config: Some(pack_any(DfpClusterConfig {
                    cluster_implementation_specifier: Some(
                        dfp_cluster_config::ClusterImplementationSpecifier::DnsCacheConfig(
                            dns_cache(),
                        ),
                    ),
                    ..Default::default()
                })),
            },
        )),
        ..Default::default()
    }
}

/// Route timeouts: the whole request and the idle stream.
pub(super) fn set_timeouts(action: &mut RouteAction, t: &RouteTimeout) {
    if let Some(d) = t.per_request {
        action.timeout = Some(duration(d.0));
    }
    if let Some(d) = t.idle {
        action.idle_timeout = Some(duration(d.0));
    }
}

/// A listener's connection pool as circuit breakers on the cluster of the local app.
pub(super) fn circuit_breakers(pool: &ConnectionPool) -> CircuitBreakers {
    let value = |v: &Spanned<u32>| Some(UInt32Value { value: **v });
    let mut t = circuit_breakers::Thresholds::default();
    if let Some(http) = &pool.http {
        t.max_connections = value(&http.max_connections);
        t.max_pending_requests = http.max_pending_requests.as_ref().and_then(value);
    }
    if let Some(streams) = pool.http2.as_ref().or(pool.grpc.as_ref()) {
        t.max_requests = value(&streams.max_requests);
    }
    if let Some(tcp) = &pool.tcp {
        t.max_connections = value(&tcp.max_connections);
    }
    CircuitBreakers {
        thresholds: vec![t],
        ..Default::default()
    }
}

/// A node's outlier detection, for its callers' clusters.
pub(super) fn outlier_detection(od: &crate::mesh::model::OutlierDetection) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: Some(UInt32Value {
            value: *od.max_server_errors,
        }),
        interval: Some(duration(od.interval.0)),
        base_ejection_time: Some(duration(od.base_ejection_duration.0)),
        max_ejection_percent: Some(UInt32Value {
            value: *od.max_ejection_percent,
        }),
        ..Default::default()
    }
}

/// A listener's active health check of the local app.
pub(super) fn health_check(hc: &crate::mesh::model::HealthCheck) -> HealthCheck {
    let millis = |ms: u64| duration(std::time::Duration::from_millis(ms));
    let checker = if *hc.protocol == Protocol::Tcp {
        health_check::HealthChecker::TcpHealthCheck(health_check::TcpHealthCheck::default())
    } else {
        health_check::HealthChecker::HttpHealthCheck(health_check::HttpHealthCheck {
            path: hc.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            codec_client_type: if *hc.protocol == Protocol::Http2 {
                CodecClientType::Http2 as i32
            } else {
                CodecClientType::Http1 as i32
            },
            ..Default::default()
        })
    };
    HealthCheck {
        timeout: Some(millis(*hc.timeout_millis)),
        interval: Some(millis(*hc.interval_millis)),
        healthy_threshold: Some(UInt32Value {
            value: *hc.healthy_threshold,
        }),
        unhealthy_threshold: Some(UInt32Value {
            value: *hc.unhealthy_threshold,
        }),
        health_checker: Some(checker),
        ..Default::default()
    }
}

/// Protocol options that make a cluster speak HTTP/2 (prior knowledge) upstream.
pub(super) fn http2_options(http2: bool) -> std::collections::HashMap<String, Any> {
    let mut options = std::collections::HashMap::new();
    if http2 {
        options.insert(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".into(),
            pack_any(HttpProtocolOptions {
                upstream_protocol_options: Some(
                    http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                        http_protocol_options::ExplicitHttpConfig {
                            protocol_config: Some(
                                http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                                    Http2ProtocolOptions::default(),
                                ),
                            ),
                        },
                    ),
                ),
                ..Default::default()
            }),
        );
    }
    options
}

/// A cluster with one fixed address.
pub(super) fn static_cluster(name: &str, addr: SocketAddr, http2: bool) -> Cluster {
    Cluster {
        name: name.to_string(),
        connect_timeout: Some(seconds(1)),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(load_assignment(name, &[addr])),
        typed_extension_protocol_options: http2_options(http2),
        ..Default::default()
    }
}

pub(super) fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}

pub(super) fn ads_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

pub(super) fn socket_address(addr: SocketAddr) -> Address {
    dns_address(&addr.ip().to_string(), addr.port())
}

/// An address by host name (or IP) and port.
pub(super) fn dns_address(host: &str, port: u16) -> Address {
    Address {
        address: Some(
            envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(
                SocketAddress {
                    address: host.to_string(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(port as u32)),
                    ..Default::default()
                },
            ),
        ),
    }
}

pub(super) fn lb_endpoint_at(address: Address) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(address),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(super) fn load_assignment(cluster: &str, addrs: &[SocketAddr]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: cluster.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: addrs
                .iter()
                .map(|a| lb_endpoint_at(socket_address(*a)))
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn single_cluster(cluster: &str) -> route_action::ClusterSpecifier {
    route_action::ClusterSpecifier::Cluster(cluster.to_string())
}

pub(super) fn single_tcp_cluster(cluster: &str) -> tcp_proxy::ClusterSpecifier {
    tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())
}

/// Envoy's matcher for a header value.
pub(super) fn header_matcher(name: &str, how: &HeaderValueMatch) -> HeaderMatcher {
    let pattern = match how {
        HeaderValueMatch::Exact(v) => string_matcher::MatchPattern::Exact(v.clone()),
        HeaderValueMatch::Prefix(v) => string_matcher::MatchPattern::Prefix(v.clone()),
        HeaderValueMatch::Suffix(v) => string_matcher::MatchPattern::Suffix(v.clone()),
        HeaderValueMatch::Regex(v) => string_matcher::MatchPattern::SafeRegex(RegexMatcher {
            regex: v.clone(),
            ..Default::default()
        }),
    };
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
            StringMatcher {
                match_pattern: Some(pattern),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// An Envoy route for an HTTP match: prefix or path, method, headers, hostname.
pub(super) fn http_match_route(m: &HttpMatch, target: route_action::ClusterSpecifier) -> Route {
    let mut route = prefix_route("/", target);
    let Some(rm) = route.r#match.as_mut() else {
        return route;
    };
    rm.path_specifier = match (&m.prefix, &m.path) {
        (_, Some(PathMatch::Exact(p))) => Some(route_match::PathSpecifier::Path(p.to_string())),
        (_, Some(PathMatch::Regex(r))) => {
            Some(route_match::PathSpecifier::SafeRegex(RegexMatcher {
                regex: r.to_string(),
                ..Default::default()
            }))
        }
        (Some(p), None) => Some(route_match::PathSpecifier::Prefix(p.to_string())),
        (None, None) => Some(route_match::PathSpecifier::Prefix("/".into())),
    };
    rm.headers = m
        .headers
        .iter()
        .map(|h| header_matcher(&h.name, &h.matcher))
        .collect();
    if let Some(method) = &m.method {
        rm.headers.push(header_matcher(
            ":method",
            &HeaderValueMatch::Exact(method.to_string()),
        ));
    }
    match &m.hostname {
        Some(HostnameMatch::Exact(h)) => rm.headers.push(header_matcher(
            ":authority",
            &HeaderValueMatch::Exact(h.to_string()),
        )),
        Some(HostnameMatch::Suffix(h)) => rm.headers.push(header_matcher(
            ":authority",
            &HeaderValueMatch::Suffix(h.to_string()),
        )),
        None => {}
    }
    route
}

/// An Envoy route for a gRPC match: `/<service>/<method>`, gRPC requests only, metadata.
pub(super) fn grpc_match_route(m: &GrpcMatch, target: route_action::ClusterSpecifier) -> Route {
    let mut route = prefix_route("/", target);
    let Some(rm) = route.r#match.as_mut() else {
        return route;
    };
    rm.path_specifier = Some(match (&m.service_name, &m.method_name) {
        (Some(s), Some(method)) => {
            route_match::PathSpecifier::Path(format!("/{}/{}", **s, **method))
        }
        (Some(s), None) => route_match::PathSpecifier::Prefix(format!("/{}/", **s)),
        _ => route_match::PathSpecifier::Prefix("/".into()),
    });
    rm.grpc = Some(route_match::GrpcRouteMatchOptions::default());
    rm.headers = m
        .metadata
        .iter()
        .map(|h| header_matcher(&h.name, &h.matcher))
        .collect();
    route
}

/// A mesh retry policy as Envoy's.
pub(super) fn retry_policy(retry: &crate::mesh::model::RetryPolicy) -> RetryPolicy {
    let mut retry_on: Vec<&str> = retry
        .http_retry_events
        .iter()
        .filter_map(|e| {
            RETRY_EVENTS
                .iter()
                .find(|(name, _)| *name == e.as_str())
                .map(|(_, on)| *on)
        })
        .collect();
    retry_on.extend(retry.grpc_retry_events.iter().map(|e| e.as_str()));
    if !retry.tcp_retry_events.is_empty() {
        retry_on.push("connect-failure");
    }
    RetryPolicy {
        retry_on: retry_on.join(","),
        num_retries: Some(UInt32Value {
            value: retry.max_retries,
        }),
        per_try_timeout: Some(duration(retry.per_retry_timeout.0)),
        // App Mesh's client-error event retries 409 Conflict.
        retriable_status_codes: if retry_on.contains(&"retriable-status-codes") {
            vec![409]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

pub(super) fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub(super) fn prefix_route(prefix: &str, target: route_action::ClusterSpecifier) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.to_string())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(target),
            timeout: Some(seconds(15)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// An HTTP listener (HTTP/1.1 and h2c) whose routes come over RDS; `forward_proxy` adds
/// the dynamic forward proxy filter that ALLOW_ALL egress needs.
pub(super) fn http_listener(
    name: &str,
    addr: SocketAddr,
    route_config: &str,
    forward_proxy: bool,
) -> Listener {
    let mut http_filters = Vec::new();
    if forward_proxy {
        http_filters.push(HttpFilter {
            name: "envoy.filters.http.dynamic_forward_proxy".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                DfpFilterConfig {
                    implementation_specifier: Some(
                        dfp_filter_config::ImplementationSpecifier::DnsCacheConfig(dns_cache()),
                    ),
                    ..Default::default()
                },
            ))),
            ..Default::default()
        });
    }
    http_filters.push(HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
            Router::default(),
        ))),
        ..Default::default()
    });
    let hcm = HttpConnectionManager {
        stat_prefix: name.to_string(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads_source()),
            route_config_name: route_config.to_string(),
        })),
        http_filters,
        // Port-less hosts match the virtual hosts; ALLOW_ALL needs the port to forward to.
        strip_port_mode: (!forward_proxy).then_some(
            http_connection_manager::StripPortMode::StripAnyHostPort(true),
        ),
        ..Default::default()
    };
    single_filter_listener(
        name,
        addr,
        "envoy.filters.network.http_connection_manager",
        pack_any(hcm),
    )
}

/// A TCP listener that proxies each connection to `target`.
pub(super) fn tcp_listener(
    name: &str,
    addr: SocketAddr,
    target: tcp_proxy::ClusterSpecifier,
    idle: Option<crate::source::Duration>,
) -> Listener {
    let proxy = TcpProxy {
        stat_prefix: name.to_string(),
        cluster_specifier: Some(target),
        idle_timeout: idle.map(|d| duration(d.0)),
        ..Default::default()
    };
    single_filter_listener(
        name,
        addr,
        "envoy.filters.network.tcp_proxy",
        pack_any(proxy),
    )
}

/// A listener at `addr` whose one filter chain is the network filter `filter_name`.
pub(super) fn single_filter_listener(
    name: &str,
    addr: SocketAddr,
    filter_name: &str,
    config: Any,
) -> Listener {
    Listener {
        name: name.to_string(),
        address: Some(socket_address(addr)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: filter_name.into(),
                config_type: Some(filter::ConfigType::TypedConfig(config)),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}
