//! Translation of the mesh model into the Envoy resources one node's sidecar (or one
//! gateway) gets.
//!
//! A pure function: the same mesh, node and placement always give the same resources,
//! named as App Mesh names them.

use super::model::{
    ConnectionPool, GatewayMatch, GrpcMatch, HeaderValueMatch, HostnameMatch, HttpMatch, Mesh,
    PathMatch, PrefixRewrite, Protocol, Provider, RETRY_EVENTS, RouteAction as MeshAction,
    RouteKind, RouteTimeout, Toggle, VirtualGateway, VirtualNode,
};
use crate::topology::{NodePlacement, Placement};
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
    HeaderMatcher, RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
    WeightedCluster, header_matcher, route, route_action, route_match, weighted_cluster,
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
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// The resources of one node, by xDS type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// CDS.
    pub clusters: Vec<Cluster>,
    /// EDS.
    pub endpoints: Vec<ClusterLoadAssignment>,
    /// LDS.
    pub listeners: Vec<Listener>,
    /// RDS.
    pub routes: Vec<RouteConfiguration>,
}

/// The resources App Mesh would give the Envoy of virtual node or virtual gateway `name`.
pub fn translate(mesh: &Mesh, name: &str, placement: &Placement) -> Resources {
    let mut out = Resources::default();
    let Some(here) = placement.nodes.get(name) else {
        return out;
    };
    if let Some(gateway) = mesh.gateway(name) {
        translate_gateway(mesh, gateway, here, placement, &mut out);
    } else if let Some(node) = mesh.node(name) {
        ingress(mesh, node, here, &mut out);
        let backends: Vec<&str> = node.backends.iter().map(|b| b.as_str()).collect();
        let egress = Egress {
            mesh,
            from: name,
            placement,
            allow_all: mesh.allows_all_egress(),
        };
        egress.translate(&backends, here.egress, &here.tcp_egress, &mut out);
    }
    out
}

/// Ingress: each listener of the node forwards to the local app (a static cluster).
fn ingress(mesh: &Mesh, node: &VirtualNode, here: &NodePlacement, out: &mut Resources) {
    let (Some(ingress), Some(app)) = (here.ingress, here.app) else {
        return;
    };
    let mesh_name = mesh.mesh.name.as_str();
    for l in &node.listeners {
        let protocol = *l.protocol;
        let cluster = format!(
            "cds_ingress_{mesh_name}_{}_{protocol}_{}",
            *node.name, l.port
        );
        let mut app_cluster = static_cluster(&cluster, app, protocol.is_http2());
        app_cluster.circuit_breakers = l.connection_pool.as_ref().map(circuit_breakers);
        app_cluster.health_checks = l.health_check.iter().map(health_check).collect();
        out.clusters.push(app_cluster);
        let listener_name = format!("lds_ingress_0.0.0.0_{}", ingress.port());
        if protocol == Protocol::Tcp {
            let idle = l
                .timeout
                .as_ref()
                .and_then(|t| t.tcp.as_ref())
                .map(|t| t.idle);
            out.listeners.push(tcp_listener(
                &listener_name,
                ingress,
                single_tcp_cluster(&cluster),
                idle,
            ));
            continue;
        }
        let mut ingress_route = prefix_route("/", single_cluster(&cluster));
        let timeout = l
            .timeout
            .as_ref()
            .and_then(|t| t.http.as_ref().or(t.http2.as_ref()).or(t.grpc.as_ref()));
        if let (Some(t), Some(route::Action::Route(action))) =
            (timeout, ingress_route.action.as_mut())
        {
            set_timeouts(action, t);
        }
        let route_name = format!("rds_ingress_{protocol}_{}", l.port);
        out.routes.push(RouteConfiguration {
            name: route_name.clone(),
            virtual_hosts: vec![VirtualHost {
                name: format!("{}_ingress", *node.name),
                domains: vec!["*".into()],
                routes: vec![ingress_route],
                ..Default::default()
            }],
            ..Default::default()
        });
        out.listeners
            .push(http_listener(&listener_name, ingress, &route_name, false));
    }
}

/// A virtual gateway: its listener takes requests and its gateway routes hand them, with
/// host and prefix rewritten, to a second listener that routes them to the virtual
/// services as a sidecar's egress would.
fn translate_gateway(
    mesh: &Mesh,
    gateway: &VirtualGateway,
    here: &NodePlacement,
    placement: &Placement,
    out: &mut Resources,
) {
    let (Some(listener), Some(hop)) = (gateway.listeners.first(), here.gateway_hop) else {
        return;
    };
    let mesh_name = mesh.mesh.name.as_str();
    let name = gateway.name.as_str();
    let hop_cluster = format!("cds_gateway_{mesh_name}_{name}_hop");
    out.clusters.push(static_cluster(&hop_cluster, hop, true));
    let mut routes: Vec<_> = mesh.routes_of_gateway(name).collect();
    routes.sort_by_key(|r| r.priority.as_ref().map(|p| **p).unwrap_or(u32::MAX));
    let mut services = Vec::new();
    let envoy_routes = routes
        .into_iter()
        .filter_map(|r| {
            let (_, matcher, action) = r.kind()?;
            let service = action.target.virtual_service.virtual_service_name.as_str();
            if !services.contains(&service) {
                services.push(service);
            }
            let mut route = match matcher {
                GatewayMatch::Http(m) => http_match_route(m, single_cluster(&hop_cluster)),
                GatewayMatch::Grpc(m) => grpc_match_route(m, single_cluster(&hop_cluster)),
            };
            let rewrite = action.rewrite.clone().unwrap_or_default();
            if let Some(route::Action::Route(a)) = route.action.as_mut() {
                let keep_host = rewrite
                    .hostname
                    .is_some_and(|h| h.default_target_hostname == Toggle::Disabled);
                if !keep_host {
                    a.host_rewrite_specifier = Some(
                        route_action::HostRewriteSpecifier::HostRewriteLiteral(service.to_string()),
                    );
                }
                if let GatewayMatch::Http(m) = matcher
                    && let Some(prefix) = &m.prefix
                {
                    let p = rewrite.prefix.unwrap_or(PrefixRewrite {
                        default_prefix: None,
                        value: None,
                    });
                    a.prefix_rewrite = match (p.value, p.default_prefix) {
                        (Some(v), _) => v.to_string(),
                        (None, Some(Toggle::Disabled)) => String::new(),
                        (None, _) if prefix.as_str() == "/" => String::new(),
                        (None, _) => "/".into(),
                    };
                }
            }
            Some(route)
        })
        .collect();
    let protocol = *listener.protocol;
    let route_name = format!("rds_ingress_{protocol}_{}", listener.port);
    out.routes.push(RouteConfiguration {
        name: route_name.clone(),
        virtual_hosts: vec![VirtualHost {
            name: format!("{name}_gateway"),
            domains: vec!["*".into()],
            routes: envoy_routes,
            ..Default::default()
        }],
        ..Default::default()
    });
    out.listeners.push(http_listener(
        &format!("lds_ingress_0.0.0.0_{}", here.egress.port()),
        here.egress,
        &route_name,
        false,
    ));
    let egress = Egress {
        mesh,
        from: name,
        placement,
        allow_all: false,
    };
    egress.translate(&services, hop, &Default::default(), out);
}

/// The egress side of an Envoy: how it reaches the virtual services it may call.
struct Egress<'a> {
    mesh: &'a Mesh,
    /// The virtual node or gateway whose Envoy this is.
    from: &'a str,
    placement: &'a Placement,
    /// The mesh lets sidecars call hosts outside it.
    allow_all: bool,
}

impl Egress<'_> {
    /// A listener at `http` with a virtual host per HTTP, HTTP/2 or gRPC service, a
    /// listener per TCP service (at its address in `tcp`), and a cluster per target node.
    fn translate(
        &self,
        services: &[&str],
        http: SocketAddr,
        tcp: &BTreeMap<String, SocketAddr>,
        out: &mut Resources,
    ) {
        let mesh = self.mesh;
        let mut virtual_hosts = Vec::new();
        let mut targets = BTreeSet::new();
        for service in services {
            let Some(s) = mesh.service(service) else {
                continue;
            };
            let Some((port, protocol)) = mesh.service_listener(service) else {
                continue;
            };
            let routes: Vec<Route> = match &s.provider {
                Provider::VirtualNode(target) => {
                    targets.insert(target.to_string());
                    let cluster = self.cluster_name(target);
                    if protocol == Protocol::Tcp {
                        if let Some(addr) = tcp.get(*service) {
                            out.listeners.push(tcp_listener(
                                &format!("lds_egress_tcp_0.0.0.0_{}", addr.port()),
                                *addr,
                                single_tcp_cluster(&cluster),
                                None,
                            ));
                        }
                        continue;
                    }
                    vec![prefix_route("/", single_cluster(&cluster))]
                }
                Provider::VirtualRouter(router) => {
                    let Some(router) = mesh.router(router) else {
                        continue;
                    };
                    // App Mesh tries routes by priority; those without one come last.
                    let mut ordered: Vec<_> = router.routes.iter().collect();
                    ordered.sort_by_key(|r| r.priority.as_ref().map(|p| **p).unwrap_or(u32::MAX));
                    for t in ordered.iter().filter_map(|r| r.action()) {
                        for w in &t.weighted_targets {
                            targets.insert(w.virtual_node.to_string());
                        }
                    }
                    if protocol == Protocol::Tcp {
                        // A TCP connection carries no request to match: the first route rules.
                        if let (Some(addr), Some(RouteKind::Tcp(r))) =
                            (tcp.get(*service), ordered.first().and_then(|r| r.kind()))
                        {
                            out.listeners.push(tcp_listener(
                                &format!("lds_egress_tcp_0.0.0.0_{}", addr.port()),
                                *addr,
                                self.weighted_tcp(&r.action),
                                r.timeout.as_ref().map(|t| t.idle),
                            ));
                        }
                        continue;
                    }
                    ordered
                        .into_iter()
                        .filter_map(|r| r.kind())
                        .filter_map(|kind| self.route(kind))
                        .collect()
                }
            };
            virtual_hosts.push(VirtualHost {
                name: format!("{service}:{port}"),
                domains: vec![service.to_string(), format!("{service}:{port}")],
                routes,
                ..Default::default()
            });
        }
        for target in &targets {
            self.target_cluster(target, out);
        }
        if self.allow_all {
            // ALLOW_ALL: any other host is passed on to where it names.
            out.clusters.push(dynamic_forward_cluster());
            virtual_hosts.push(VirtualHost {
                name: "allow_all".into(),
                domains: vec!["*".into()],
                routes: vec![prefix_route("/", single_cluster(ALLOW_ALL_CLUSTER))],
                ..Default::default()
            });
        }
        if !virtual_hosts.is_empty() {
            let route_name = format!("rds_egress_http_{}", http.port());
            out.routes.push(RouteConfiguration {
                name: route_name.clone(),
                virtual_hosts,
                ..Default::default()
            });
            out.listeners.push(http_listener(
                &format!("lds_egress_0.0.0.0_{}", http.port()),
                http,
                &route_name,
                self.allow_all,
            ));
        }
    }

    /// `cds_egress_<mesh>_<node>_<protocol>_<port>`, after the target's listener.
    fn cluster_name(&self, target: &str) -> String {
        let (port, protocol) = self
            .mesh
            .node(target)
            .and_then(|n| n.listeners.first())
            .map(|l| (l.port, *l.protocol))
            .unwrap_or((80, Protocol::Http));
        format!(
            "cds_egress_{}_{target}_{protocol}_{port}",
            *self.mesh.mesh.name
        )
    }

    /// The cluster for a target node: its endpoints through EDS, or its DNS name.
    fn target_cluster(&self, target: &str, out: &mut Resources) {
        let name = self.cluster_name(target);
        let node = self.mesh.node(target);
        let listener = node.and_then(|n| n.listeners.first());
        let http2 = listener.is_some_and(|l| l.protocol.is_http2());
        let endpoint = self.placement.endpoint_from(self.from, target);
        let mut cluster = Cluster {
            name: name.clone(),
            connect_timeout: Some(seconds(1)),
            // App Mesh puts a node's outlier detection on its callers' clusters for it.
            outlier_detection: listener
                .and_then(|l| l.outlier_detection.as_ref())
                .map(outlier_detection),
            typed_extension_protocol_options: http2_options(http2),
            ..Default::default()
        };
        match node.and_then(|n| n.service_discovery.as_ref()) {
            Some(sd) => {
                // DNS: the caller resolves the name itself, at the port the node is reached on.
                cluster.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                    cluster::DiscoveryType::StrictDns as i32,
                ));
                cluster.dns_lookup_family = cluster::DnsLookupFamily::V4Only as i32;
                let port = endpoint.map(|e| e.port()).unwrap_or(0);
                cluster.load_assignment = Some(ClusterLoadAssignment {
                    cluster_name: name.clone(),
                    endpoints: vec![LocalityLbEndpoints {
                        lb_endpoints: vec![lb_endpoint_at(dns_address(&sd.dns.hostname, port))],
                        ..Default::default()
                    }],
                    ..Default::default()
                });
            }
            None => {
                cluster.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                    cluster::DiscoveryType::Eds as i32,
                ));
                cluster.eds_cluster_config = Some(cluster::EdsClusterConfig {
                    eds_config: Some(ads_source()),
                    service_name: name.clone(),
                });
                let registered = node.is_some_and(|n| !n.deregistered);
                let endpoints: Vec<SocketAddr> =
                    endpoint.into_iter().filter(|_| registered).collect();
                out.endpoints.push(load_assignment(&name, &endpoints));
            }
        }
        out.clusters.push(cluster);
    }

    /// The Envoy route for one HTTP, HTTP/2 or gRPC route of a virtual router.
    fn route(&self, kind: RouteKind) -> Option<Route> {
        let (mut route, timeout, retry) = match kind {
            RouteKind::Http(_, r) => (
                http_match_route(&r.matcher, self.weighted(&r.action)),
                r.timeout.as_ref(),
                r.retry_policy.as_ref(),
            ),
            RouteKind::Grpc(r) => (
                grpc_match_route(&r.matcher, self.weighted(&r.action)),
                r.timeout.as_ref(),
                r.retry_policy.as_ref(),
            ),
            RouteKind::Tcp(_) => return None,
        };
        if let Some(route::Action::Route(a)) = route.action.as_mut() {
            if let Some(t) = timeout {
                set_timeouts(a, t);
            }
            a.retry_policy = retry.map(retry_policy);
        }
        Some(route)
    }

    fn weighted(&self, action: &MeshAction) -> route_action::ClusterSpecifier {
        route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: action
                .weighted_targets
                .iter()
                .map(|t| weighted_cluster::ClusterWeight {
                    name: self.cluster_name(&t.virtual_node),
                    weight: Some(UInt32Value { value: *t.weight }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn weighted_tcp(&self, action: &MeshAction) -> tcp_proxy::ClusterSpecifier {
        tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
            clusters: action
                .weighted_targets
                .iter()
                // Envoy's TCP proxy refuses a weight of 0: a target without traffic is left out.
                .filter(|t| *t.weight > 0)
                .map(|t| tcp_proxy::weighted_cluster::ClusterWeight {
                    name: self.cluster_name(&t.virtual_node),
                    weight: *t.weight,
                    ..Default::default()
                })
                .collect(),
        })
    }
}

/// The cluster that passes requests for hosts outside the mesh on (egress filter ALLOW_ALL).
const ALLOW_ALL_CLUSTER: &str = "cds_egress_allow_all";

/// The DNS cache shared by the dynamic forward proxy filter and its cluster.
fn dns_cache() -> DnsCacheConfig {
    DnsCacheConfig {
        name: "allow_all".into(),
        dns_lookup_family: cluster::DnsLookupFamily::V4Only as i32,
        ..Default::default()
    }
}

fn dynamic_forward_cluster() -> Cluster {
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
fn set_timeouts(action: &mut RouteAction, t: &RouteTimeout) {
    if let Some(d) = t.per_request {
        action.timeout = Some(duration(d.0));
    }
    if let Some(d) = t.idle {
        action.idle_timeout = Some(duration(d.0));
    }
}

/// A listener's connection pool as circuit breakers on the cluster of the local app.
fn circuit_breakers(pool: &ConnectionPool) -> CircuitBreakers {
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
fn outlier_detection(od: &crate::mesh::model::OutlierDetection) -> OutlierDetection {
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
fn health_check(hc: &crate::mesh::model::HealthCheck) -> HealthCheck {
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
fn http2_options(http2: bool) -> std::collections::HashMap<String, Any> {
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
fn static_cluster(name: &str, addr: SocketAddr, http2: bool) -> Cluster {
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

fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}

fn ads_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

fn socket_address(addr: SocketAddr) -> Address {
    dns_address(&addr.ip().to_string(), addr.port())
}

/// An address by host name (or IP) and port.
fn dns_address(host: &str, port: u16) -> Address {
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

fn lb_endpoint_at(address: Address) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(address),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn load_assignment(cluster: &str, addrs: &[SocketAddr]) -> ClusterLoadAssignment {
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

fn single_cluster(cluster: &str) -> route_action::ClusterSpecifier {
    route_action::ClusterSpecifier::Cluster(cluster.to_string())
}

fn single_tcp_cluster(cluster: &str) -> tcp_proxy::ClusterSpecifier {
    tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())
}

/// Envoy's matcher for a header value.
fn header_matcher(name: &str, how: &HeaderValueMatch) -> HeaderMatcher {
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
fn http_match_route(m: &HttpMatch, target: route_action::ClusterSpecifier) -> Route {
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
fn grpc_match_route(m: &GrpcMatch, target: route_action::ClusterSpecifier) -> Route {
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
fn retry_policy(retry: &crate::mesh::model::RetryPolicy) -> RetryPolicy {
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

fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn prefix_route(prefix: &str, target: route_action::ClusterSpecifier) -> Route {
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
fn http_listener(
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
fn tcp_listener(
    name: &str,
    addr: SocketAddr,
    target: tcp_proxy::ClusterSpecifier,
    idle: Option<crate::suite::source::Duration>,
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
fn single_filter_listener(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NodePlacement, Site};
    use std::path::Path;

    fn mesh() -> Mesh {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meshes/outpost-basic.yaml");
        Mesh::load(&path).unwrap()
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// client and svc-v1 on the outpost, svc-v2 in the region.
    fn placement() -> Placement {
        let node = |site, base: u16, serves: bool| NodePlacement {
            site,
            admin: addr(base),
            egress: addr(base + 1),
            ingress: serves.then(|| addr(base + 2)),
            app: serves.then(|| addr(base + 3)),
            remote_ingress: serves.then(|| addr(base + 4)),
            tcp_egress: Default::default(),
            gateway_hop: None,
        };
        Placement {
            nodes: [
                ("client".to_string(), node(Site::Outpost, 10_000, false)),
                ("svc-v1".to_string(), node(Site::Outpost, 11_000, true)),
                ("svc-v2".to_string(), node(Site::Region, 12_000, true)),
            ]
            .into(),
        }
    }

    fn endpoint_of(cla: &ClusterLoadAssignment) -> String {
        let lb = &cla.endpoints[0].lb_endpoints[0];
        let Some(lb_endpoint::HostIdentifier::Endpoint(e)) = &lb.host_identifier else {
            panic!()
        };
        let Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(sa)) =
            &e.address.as_ref().unwrap().address
        else {
            panic!()
        };
        let Some(socket_address::PortSpecifier::PortValue(port)) = sa.port_specifier else {
            panic!()
        };
        format!("{}:{port}", sa.address)
    }

    #[test]
    fn the_client_gets_app_mesh_named_egress_resources() {
        let r = translate(&mesh(), "client", &placement());
        let names = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            r.clusters
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
            names(vec![
                "cds_egress_outpost_svc-v1_http_8080",
                "cds_egress_outpost_svc-v2_http_8080"
            ])
        );
        assert_eq!(
            r.listeners
                .iter()
                .map(|l| l.name.clone())
                .collect::<Vec<_>>(),
            names(vec!["lds_egress_0.0.0.0_10001"])
        );
        assert_eq!(r.routes.len(), 1);
        assert_eq!(r.routes[0].name, "rds_egress_http_10001");
        let vhost = &r.routes[0].virtual_hosts[0];
        assert_eq!(
            vhost.domains,
            names(vec!["svc.outpost.local", "svc.outpost.local:8080"])
        );
        let Some(route::Action::Route(action)) = &vhost.routes[0].action else {
            panic!()
        };
        let Some(route_action::ClusterSpecifier::WeightedClusters(wc)) = &action.cluster_specifier
        else {
            panic!()
        };
        let weights: Vec<(String, u32)> = wc
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.weight.unwrap().value))
            .collect();
        assert_eq!(
            weights,
            vec![
                ("cds_egress_outpost_svc-v1_http_8080".to_string(), 100),
                ("cds_egress_outpost_svc-v2_http_8080".to_string(), 0)
            ]
        );
        // Same site: straight to svc-v1's sidecar; across sites: through the data link.
        let endpoints: Vec<String> = r.endpoints.iter().map(endpoint_of).collect();
        assert_eq!(endpoints, vec!["127.0.0.1:11002", "127.0.0.1:12004"]);
    }

    #[test]
    fn a_service_gets_an_ingress_to_its_app_and_an_unknown_node_nothing() {
        let r = translate(&mesh(), "svc-v1", &placement());
        assert_eq!(r.listeners.len(), 1);
        assert_eq!(r.listeners[0].name, "lds_ingress_0.0.0.0_11002");
        assert_eq!(r.clusters[0].name, "cds_ingress_outpost_svc-v1_http_8080");
        assert_eq!(
            endpoint_of(r.clusters[0].load_assignment.as_ref().unwrap()),
            "127.0.0.1:11003"
        );
        assert!(r.endpoints.is_empty(), "svc-v1 calls nothing");
        assert_eq!(
            translate(&mesh(), "nobody", &placement()),
            Resources::default()
        );
    }
}
