//! Translation of the mesh model into the Envoy resources one node's sidecar gets.
//!
//! A pure function: the same mesh, node and placement always give the same resources,
//! named as App Mesh names them.

use super::model::{Mesh, Provider};
use crate::topology::Placement;
use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, OutlierDetection, circuit_breakers, cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, HealthCheck, SocketAddress,
    config_source, health_check, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster, route,
    route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
use envoy_types::util::pack_any;
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

/// The resources App Mesh would give the sidecar of virtual node `node`.
pub fn translate(mesh: &Mesh, node: &str, placement: &Placement) -> Resources {
    let mut out = Resources::default();
    let Some(vn) = mesh.node(node) else {
        return out;
    };
    let Some(here) = placement.nodes.get(node) else {
        return out;
    };
    let mesh_name = mesh.mesh.name.as_str();

    // Ingress: each listener of the node forwards to the local app (a static cluster).
    if let (Some(ingress), Some(app)) = (here.ingress, here.app) {
        for l in &vn.listeners {
            let cluster = format!("cds_ingress_{mesh_name}_{node}_http_{}", l.port);
            out.clusters.push(Cluster {
                name: cluster.clone(),
                connect_timeout: Some(seconds(1)),
                cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                    cluster::DiscoveryType::Static as i32,
                )),
                load_assignment: Some(load_assignment(&cluster, &[app])),
                circuit_breakers: l.connection_pool.as_ref().map(circuit_breakers),
                health_checks: l.health_check.iter().map(health_check).collect(),
                ..Default::default()
            });
            let mut ingress_route = prefix_route("/", single_cluster(&cluster));
            if let (Some(t), Some(route::Action::Route(action))) =
                (&l.timeout, ingress_route.action.as_mut())
            {
                action.timeout = Some(duration(t.http.per_request.0));
            }
            let route_name = format!("rds_ingress_http_{}", l.port);
            out.routes.push(RouteConfiguration {
                name: route_name.clone(),
                virtual_hosts: vec![VirtualHost {
                    name: format!("{node}_ingress"),
                    domains: vec!["*".into()],
                    routes: vec![ingress_route],
                    ..Default::default()
                }],
                ..Default::default()
            });
            out.listeners.push(http_listener(
                &format!("lds_ingress_0.0.0.0_{}", ingress.port()),
                ingress,
                &route_name,
            ));
        }
    }

    // Egress: one route configuration with a virtual host per backend virtual service.
    let mut virtual_hosts = Vec::new();
    let mut targets = std::collections::BTreeSet::new();
    for backend in &vn.backends {
        let Some(service) = mesh.virtual_services.iter().find(|s| *s.name == **backend) else {
            continue;
        };
        let (routes, port) = match &service.provider {
            Provider::VirtualNode(target) => {
                let port = mesh
                    .node(target)
                    .and_then(|n| n.listeners.first())
                    .map(|l| l.port)
                    .unwrap_or(80);
                let cluster = egress_cluster(mesh_name, target, port);
                targets.insert((target.to_string(), port));
                (vec![prefix_route("/", single_cluster(&cluster))], port)
            }
            Provider::VirtualRouter(router) => {
                let Some(router) = mesh.router(router) else {
                    continue;
                };
                let port = router.listeners.first().map(|l| l.port).unwrap_or(80);
                // App Mesh tries routes by priority; those without one come last.
                let mut ordered: Vec<_> = router.routes.iter().collect();
                ordered.sort_by_key(|r| r.priority.as_ref().map(|p| **p).unwrap_or(u32::MAX));
                let routes = ordered
                    .into_iter()
                    .map(|r| {
                        let clusters = r
                            .http_route
                            .action
                            .weighted_targets
                            .iter()
                            .map(|t| {
                                let tport = mesh
                                    .node(&t.virtual_node)
                                    .and_then(|n| n.listeners.first())
                                    .map(|l| l.port)
                                    .unwrap_or(port);
                                targets.insert((t.virtual_node.to_string(), tport));
                                weighted_cluster::ClusterWeight {
                                    name: egress_cluster(mesh_name, &t.virtual_node, tport),
                                    weight: Some(UInt32Value { value: *t.weight }),
                                    ..Default::default()
                                }
                            })
                            .collect();
                        let action =
                            route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
                                clusters,
                                ..Default::default()
                            });
                        http_route(&r.http_route, action)
                    })
                    .collect();
                (routes, port)
            }
        };
        virtual_hosts.push(VirtualHost {
            name: format!("{}:{port}", *service.name),
            domains: vec![
                service.name.to_string(),
                format!("{}:{port}", *service.name),
            ],
            routes,
            ..Default::default()
        });
    }
    for (target, port) in &targets {
        let name = egress_cluster(mesh_name, target, *port);
        out.clusters.push(Cluster {
            name: name.clone(),
            connect_timeout: Some(seconds(1)),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            )),
            eds_cluster_config: Some(cluster::EdsClusterConfig {
                eds_config: Some(ads_source()),
                service_name: name.clone(),
            }),
            // App Mesh puts a node's outlier detection on its callers' clusters for it.
            outlier_detection: mesh
                .node(target)
                .and_then(|n| n.listeners.first())
                .and_then(|l| l.outlier_detection.as_ref())
                .map(outlier_detection),
            ..Default::default()
        });
        let endpoint = placement.endpoint_from(node, target);
        out.endpoints
            .push(load_assignment(&name, endpoint.as_slice()));
    }
    if !virtual_hosts.is_empty() {
        let route_name = format!("rds_egress_http_{}", here.egress.port());
        out.routes.push(RouteConfiguration {
            name: route_name.clone(),
            virtual_hosts,
            ..Default::default()
        });
        out.listeners.push(http_listener(
            &format!("lds_egress_0.0.0.0_{}", here.egress.port()),
            here.egress,
            &route_name,
        ));
    }
    out
}

/// A listener's connection pool as circuit breakers on the cluster of the local app.
fn circuit_breakers(pool: &crate::mesh::model::ConnectionPool) -> CircuitBreakers {
    CircuitBreakers {
        thresholds: vec![circuit_breakers::Thresholds {
            max_connections: Some(UInt32Value {
                value: *pool.http.max_connections,
            }),
            max_pending_requests: pool
                .http
                .max_pending_requests
                .as_ref()
                .map(|p| UInt32Value { value: **p }),
            ..Default::default()
        }],
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
    let checker = if hc.protocol.as_str() == "tcp" {
        health_check::HealthChecker::TcpHealthCheck(health_check::TcpHealthCheck::default())
    } else {
        health_check::HealthChecker::HttpHealthCheck(health_check::HttpHealthCheck {
            path: hc.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
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

fn egress_cluster(mesh: &str, node: &str, port: u16) -> String {
    format!("cds_egress_{mesh}_{node}_http_{port}")
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
    Address {
        address: Some(
            envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(
                SocketAddress {
                    address: addr.ip().to_string(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(
                        addr.port() as u32
                    )),
                    ..Default::default()
                },
            ),
        ),
    }
}

fn load_assignment(cluster: &str, addrs: &[SocketAddr]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: cluster.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: addrs
                .iter()
                .map(|a| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket_address(*a)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn single_cluster(cluster: &str) -> route_action::ClusterSpecifier {
    route_action::ClusterSpecifier::Cluster(cluster.to_string())
}

/// An Envoy route for a mesh HTTP route: its match (prefix, headers), timeout and retries.
fn http_route(r: &crate::mesh::model::HttpRoute, target: route_action::ClusterSpecifier) -> Route {
    use crate::mesh::model::{HeaderValueMatch, RETRY_EVENTS};
    use envoy_types::pb::envoy::config::route::v3::{HeaderMatcher, RetryPolicy, header_matcher};
    use envoy_types::pb::envoy::r#type::matcher::v3::{
        RegexMatcher, StringMatcher, string_matcher,
    };
    let mut route = prefix_route(&r.matcher.prefix, target);
    if let Some(m) = route.r#match.as_mut() {
        m.headers = r
            .matcher
            .headers
            .iter()
            .map(|h| HeaderMatcher {
                name: h.name.clone(),
                header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                    StringMatcher {
                        match_pattern: Some(match &h.matcher {
                            HeaderValueMatch::Exact(v) => {
                                string_matcher::MatchPattern::Exact(v.clone())
                            }
                            HeaderValueMatch::Prefix(v) => {
                                string_matcher::MatchPattern::Prefix(v.clone())
                            }
                            HeaderValueMatch::Suffix(v) => {
                                string_matcher::MatchPattern::Suffix(v.clone())
                            }
                            HeaderValueMatch::Regex(v) => {
                                string_matcher::MatchPattern::SafeRegex(RegexMatcher {
                                    regex: v.clone(),
                                    ..Default::default()
                                })
                            }
                        }),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })
            .collect();
    }
    if let Some(route::Action::Route(action)) = route.action.as_mut() {
        if let Some(t) = &r.timeout {
            action.timeout = Some(duration(t.per_request.0));
        }
        if let Some(retry) = &r.retry_policy {
            let retry_on: Vec<&str> = retry
                .http_retry_events
                .iter()
                .filter_map(|e| {
                    RETRY_EVENTS
                        .iter()
                        .find(|(name, _)| *name == e.as_str())
                        .map(|(_, on)| *on)
                })
                .collect();
            action.retry_policy = Some(RetryPolicy {
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
            });
        }
    }
    route
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

fn http_listener(name: &str, addr: SocketAddr, route_config: &str) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: name.to_string(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads_source()),
            route_config_name: route_config.to_string(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                Router::default(),
            ))),
            ..Default::default()
        }],
        strip_port_mode: Some(http_connection_manager::StripPortMode::StripAnyHostPort(
            true,
        )),
        ..Default::default()
    };
    Listener {
        name: name.to_string(),
        address: Some(socket_address(addr)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
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
