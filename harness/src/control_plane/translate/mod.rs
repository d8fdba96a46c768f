//! Translation of the mesh model into the Envoy resources one node's sidecar (or one
//! gateway) gets: the ingress to the local app and a gateway's routes here, the egress
//! to the services a node calls in [`egress`], the Envoy resources themselves built in
//! [`build`].
//!
//! A pure function: the same mesh, node and placement always give the same resources,
//! named as App Mesh names them.

mod build;
mod egress;

use build::{
    circuit_breakers, grpc_match_route, health_check, http_listener, http_match_route,
    prefix_route, set_timeouts, single_cluster, single_tcp_cluster, static_cluster, tcp_listener,
};
use egress::Egress;
#[cfg(test)]
mod render;

use crate::mesh::model::{
    GatewayMatch, Mesh, PrefixRewrite, Protocol, Toggle, VirtualGateway, VirtualNode,
};
use crate::topology::{NodePlacement, Placement};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, VirtualHost, route, route_action,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NodePlacement, Site};
    use envoy_types::pb::envoy::config::core::v3::socket_address;
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint;
    use std::net::SocketAddr;
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
