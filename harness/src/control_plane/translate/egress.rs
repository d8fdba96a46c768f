//! The egress side of an Envoy: a listener and routes for the virtual services it may
//! call, and a cluster per target node, reached directly on its site and through the
//! data link's fault proxy across sites.

use super::Resources;
use super::build::{
    ALLOW_ALL_CLUSTER, ads_source, dns_address, dynamic_forward_cluster, grpc_match_route,
    http_listener, http_match_route, http2_options, lb_endpoint_at, load_assignment,
    outlier_detection, prefix_route, retry_policy, seconds, set_timeouts, single_cluster,
    single_tcp_cluster, tcp_listener,
};
use crate::mesh::model::{Mesh, Protocol, Provider, RouteAction as MeshAction, RouteKind};
use crate::topology::Placement;
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, LocalityLbEndpoints};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteConfiguration, VirtualHost, WeightedCluster, route, route_action, weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy;
use envoy_types::pb::google::protobuf::UInt32Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// The egress side of an Envoy: how it reaches the virtual services it may call.
pub(super) struct Egress<'a> {
    pub(super) mesh: &'a Mesh,
    /// The virtual node or gateway whose Envoy this is.
    pub(super) from: &'a str,
    pub(super) placement: &'a Placement,
    /// The mesh lets sidecars call hosts outside it.
    pub(super) allow_all: bool,
}

impl Egress<'_> {
    /// A listener at `http` with a virtual host per HTTP, HTTP/2 or gRPC service, a
    /// listener per TCP service (at its address in `tcp`), and a cluster per target node.
    pub(super) fn translate(
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
