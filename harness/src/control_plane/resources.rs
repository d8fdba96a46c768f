//! The xDS resource types the control plane serves: their type URLs, the order they are
//! pushed in, and a node's resources of one type by name.

use super::translate::Resources;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;

/// Cluster type URL.
pub const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// Endpoint type URL.
pub const EDS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/// Listener type URL.
pub const LDS: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// Route type URL.
pub const RDS: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

/// The push order: clusters before endpoints before listeners before routes.
pub(super) const ORDER: [&str; 4] = [CDS, EDS, LDS, RDS];

/// `cds` for the cluster type URL, and so on.
pub fn short_type(type_url: &str) -> &'static str {
    match type_url {
        CDS => "cds",
        EDS => "eds",
        LDS => "lds",
        RDS => "rds",
        _ => "other",
    }
}

/// Every resource of `type_url` in `resources`, by name.
pub(super) fn named(resources: &Resources, type_url: &str) -> Vec<(String, Any)> {
    match type_url {
        CDS => resources
            .clusters
            .iter()
            .map(|c| (c.name.clone(), pack_any(c.clone())))
            .collect(),
        EDS => resources
            .endpoints
            .iter()
            .map(|e| (e.cluster_name.clone(), pack_any(e.clone())))
            .collect(),
        LDS => resources
            .listeners
            .iter()
            .map(|l| (l.name.clone(), pack_any(l.clone())))
            .collect(),
        RDS => resources
            .routes
            .iter()
            .map(|r| (r.name.clone(), pack_any(r.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Clusters and listeners are wildcard types: a client gets all of them unless it names some.
pub(super) fn is_wildcard_type(type_url: &str) -> bool {
    type_url == CDS || type_url == LDS
}
