//! The App Mesh-shaped resource model, as written in `fixtures/meshes/*.yaml`.

use crate::suite::source::{self, Duration, InputError};
use marked_yaml::Spanned;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// A whole mesh definition file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mesh {
    /// The mesh itself.
    pub mesh: MeshSpec,
    /// Virtual nodes: one per deployable service version, each with an Envoy sidecar.
    #[serde(default)]
    pub virtual_nodes: Vec<VirtualNode>,
    /// Virtual services: the names callers use.
    #[serde(default)]
    pub virtual_services: Vec<VirtualService>,
    /// Virtual routers: route a virtual service's traffic to virtual nodes.
    #[serde(default)]
    pub virtual_routers: Vec<VirtualRouter>,
}

/// The mesh resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshSpec {
    /// Mesh name; part of every Envoy node id (`mesh/<mesh>/virtualNode/<node>`).
    pub name: Spanned<String>,
}

/// A listener port and protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Listener {
    /// Port the service listens on.
    pub port: u16,
    /// Protocol; only `http` for now.
    #[serde(default = "http")]
    pub protocol: Spanned<String>,
}

fn http() -> Spanned<String> {
    Spanned::new(marked_yaml::Span::new_blank(), "http".to_string())
}

/// A virtual node: a service version with its sidecar.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualNode {
    /// Name, unique in the mesh.
    pub name: Spanned<String>,
    /// Inbound listeners (a node without any is a pure client).
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Virtual services this node may call.
    #[serde(default)]
    pub backends: Vec<Spanned<String>>,
}

/// A virtual service: a name, provided by a node or a router.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualService {
    /// The name callers use (the HTTP Host).
    pub name: Spanned<String>,
    /// Who serves it.
    pub provider: Provider,
}

/// What provides a virtual service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Provider {
    /// A single virtual node.
    VirtualNode(Spanned<String>),
    /// A virtual router with routes.
    VirtualRouter(Spanned<String>),
}

/// A virtual router and its routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualRouter {
    /// Name, unique in the mesh.
    pub name: Spanned<String>,
    /// The port and protocol it routes.
    pub listeners: Vec<Listener>,
    /// Routes, tried in order.
    pub routes: Vec<Route>,
}

/// One route of a virtual router.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// Name, unique in the router.
    pub name: Spanned<String>,
    /// Routes are tried from the lowest priority number up (0-1000); routes without one
    /// come last, in the order written.
    #[serde(default)]
    pub priority: Option<Spanned<u32>>,
    /// An HTTP route.
    pub http_route: HttpRoute,
}

/// An HTTP route: a match and an action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRoute {
    /// What requests it takes.
    #[serde(rename = "match")]
    pub matcher: HttpMatch,
    /// Where they go.
    pub action: RouteAction,
    /// How long a request may take, all retries included.
    #[serde(default)]
    pub timeout: Option<RouteTimeout>,
    /// When and how often to retry.
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
}

/// A route's timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteTimeout {
    /// The whole request, retries included (`15s` when unset).
    pub per_request: Duration,
}

/// A route's retry policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub max_retries: u32,
    /// Timeout of each try.
    pub per_retry_timeout: Duration,
    /// Which failures are retried: `server-error` (5xx), `gateway-error` (502, 503, 504),
    /// `client-error` (409), `stream-error` (a refused stream).
    #[serde(default)]
    pub http_retry_events: Vec<Spanned<String>>,
}

/// The retry events App Mesh knows, and Envoy's `retry_on` name for each.
pub const RETRY_EVENTS: [(&str, &str); 4] = [
    ("server-error", "5xx"),
    ("gateway-error", "gateway-error"),
    ("client-error", "retriable-status-codes"),
    ("stream-error", "refused-stream"),
];

/// Which requests a route takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpMatch {
    /// Path prefix, e.g. `/`.
    pub prefix: String,
    /// Headers the request must carry.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
}

/// A header a request must carry, and its value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// How its value must look.
    #[serde(rename = "match")]
    pub matcher: HeaderValueMatch,
}

/// How a header's value must look.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum HeaderValueMatch {
    /// Exactly this.
    Exact(String),
    /// Starting with this.
    Prefix(String),
}

/// Where a route sends requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteAction {
    /// Virtual nodes with relative weights.
    pub weighted_targets: Vec<WeightedTarget>,
}

/// A virtual node and its share of a route's traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeightedTarget {
    /// The target node.
    pub virtual_node: Spanned<String>,
    /// Its weight (0-100; a route's weights add up to 100).
    pub weight: Spanned<u32>,
}

impl Mesh {
    /// Load and validate a mesh file.
    pub fn load(path: &Path) -> Result<Mesh, InputError> {
        let mesh: Mesh = source::load(path)?;
        mesh.validate(path)?;
        Ok(mesh)
    }

    /// Reject what App Mesh would reject, naming the place in `path`.
    pub fn validate(&self, path: &Path) -> Result<(), InputError> {
        let mut nodes = BTreeSet::new();
        for node in &self.virtual_nodes {
            if !nodes.insert(node.name.as_str()) {
                return Err(InputError::spanned(
                    path,
                    &node.name,
                    format!("duplicate virtual node `{}`", *node.name),
                ));
            }
            if node.listeners.len() > 1 {
                return Err(InputError::spanned(
                    path,
                    &node.name,
                    format!(
                        "virtual node `{}` has {} listeners; expected at most one",
                        *node.name,
                        node.listeners.len()
                    ),
                ));
            }
            let mut ports = BTreeSet::new();
            for l in &node.listeners {
                if l.protocol.as_str() != "http" {
                    return Err(InputError::spanned(
                        path,
                        &l.protocol,
                        format!("unsupported protocol `{}`; expected `http`", *l.protocol),
                    ));
                }
                if !ports.insert(l.port) {
                    return Err(InputError::spanned(
                        path,
                        &node.name,
                        format!("duplicate listener port {} on `{}`", l.port, *node.name),
                    ));
                }
            }
        }
        let routers: BTreeSet<&str> = self
            .virtual_routers
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        let services: BTreeSet<&str> = self
            .virtual_services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        for node in &self.virtual_nodes {
            for backend in &node.backends {
                if !services.contains(backend.as_str()) {
                    return Err(InputError::spanned(
                        path,
                        backend,
                        format!(
                            "backend `{}` names no virtual service; expected one of: {}",
                            **backend,
                            join(&services)
                        ),
                    ));
                }
            }
        }
        for service in &self.virtual_services {
            match &service.provider {
                Provider::VirtualNode(n) if !nodes.contains(n.as_str()) => {
                    return Err(InputError::spanned(
                        path,
                        n,
                        format!(
                            "unknown virtual node `{}`; expected one of: {}",
                            **n,
                            join(&nodes)
                        ),
                    ));
                }
                Provider::VirtualRouter(r) if !routers.contains(r.as_str()) => {
                    return Err(InputError::spanned(
                        path,
                        r,
                        format!(
                            "unknown virtual router `{}`; expected one of: {}",
                            **r,
                            join(&routers)
                        ),
                    ));
                }
                _ => {}
            }
        }
        for router in &self.virtual_routers {
            let mut route_names = BTreeSet::new();
            for route in &router.routes {
                if !route_names.insert(route.name.as_str()) {
                    return Err(InputError::spanned(
                        path,
                        &route.name,
                        format!("duplicate route `{}` in `{}`", *route.name, *router.name),
                    ));
                }
                let mut sum = 0;
                for target in &route.http_route.action.weighted_targets {
                    if !nodes.contains(target.virtual_node.as_str()) {
                        return Err(InputError::spanned(
                            path,
                            &target.virtual_node,
                            format!(
                                "unknown virtual node `{}`; expected one of: {}",
                                *target.virtual_node,
                                join(&nodes)
                            ),
                        ));
                    }
                    if *target.weight > 100 {
                        return Err(InputError::spanned(
                            path,
                            &target.weight,
                            format!("expected a weight from 0 to 100, found {}", *target.weight),
                        ));
                    }
                    sum += *target.weight;
                }
                if let Some(p) = &route.priority
                    && **p > 1000
                {
                    return Err(InputError::spanned(
                        path,
                        p,
                        format!("expected a priority from 0 to 1000, found {}", **p),
                    ));
                }
                if let Some(retry) = &route.http_route.retry_policy {
                    for event in &retry.http_retry_events {
                        if !RETRY_EVENTS.iter().any(|(name, _)| *name == event.as_str()) {
                            let known: Vec<&str> = RETRY_EVENTS.iter().map(|(n, _)| *n).collect();
                            return Err(InputError::spanned(
                                path,
                                event,
                                format!(
                                    "unknown retry event `{}`; expected one of: {}",
                                    **event,
                                    known.join(", ")
                                ),
                            ));
                        }
                    }
                }
                if sum != 100 {
                    return Err(InputError::spanned(
                        path,
                        &route.name,
                        format!(
                            "weights of route `{}` add up to {sum}; expected 100",
                            *route.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The virtual node called `name`.
    pub fn node(&self, name: &str) -> Option<&VirtualNode> {
        self.virtual_nodes.iter().find(|n| n.name.as_str() == name)
    }

    /// The virtual router called `name`.
    pub fn router(&self, name: &str) -> Option<&VirtualRouter> {
        self.virtual_routers
            .iter()
            .find(|r| r.name.as_str() == name)
    }

    /// The Envoy node id App Mesh gives a virtual node.
    pub fn node_id(&self, node: &str) -> String {
        format!("mesh/{}/virtualNode/{}", *self.mesh.name, node)
    }
}

/// `a, b, c` for error messages.
pub fn join<'a>(names: impl IntoIterator<Item = &'a &'a str>) -> String {
    names.into_iter().copied().collect::<Vec<_>>().join(", ")
}
