//! The App Mesh-shaped resource model, as written in `fixtures/meshes/*.yaml`.

use crate::suite::source::{self, Duration, InputError};
use marked_yaml::Spanned;
use serde::{Deserialize, Serialize};
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
    /// Limits on the sidecar's connections to the local app (App Mesh: the listener's
    /// connection pool, i.e. circuit breakers on the node's ingress cluster).
    #[serde(default)]
    pub connection_pool: Option<ConnectionPool>,
    /// Passive health checking by the *callers*: their egress clusters for this node
    /// eject an endpoint that keeps answering 5xx.
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
    /// Active health checking of the local app by this node's sidecar.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Timeouts of requests the listener takes in.
    #[serde(default)]
    pub timeout: Option<ListenerTimeout>,
}

/// A listener's connection pool, per protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionPool {
    /// Limits for an HTTP listener.
    pub http: HttpConnectionPool,
}

/// Connection limits for an HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpConnectionPool {
    /// Connections to the local app at most (at least 1).
    pub max_connections: Spanned<u32>,
    /// Requests waiting for a connection at most (at least 1; Envoy's 1024 when unset).
    #[serde(default)]
    pub max_pending_requests: Option<Spanned<u32>>,
}

/// When callers eject an endpoint of this node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Consecutive 5xx answers that eject an endpoint (at least 1).
    pub max_server_errors: Spanned<u32>,
    /// How often ejections are evaluated (more than 0).
    pub interval: Spanned<Duration>,
    /// How long an endpoint stays out the first time (more than 0; grows with each ejection).
    pub base_ejection_duration: Spanned<Duration>,
    /// Share of the endpoints that may be out at once, 0-100 (at least one may always be).
    pub max_ejection_percent: Spanned<u32>,
}

/// Active health check of the local app, with App Mesh's names and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    /// `http` (a GET of `path` must answer 2xx) or `tcp` (a connection must open).
    pub protocol: Spanned<String>,
    /// Path to GET (required for `http`).
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// Time between checks, 5000-300000 ms.
    pub interval_millis: Spanned<u64>,
    /// Time a check may take, 2000-60000 ms.
    pub timeout_millis: Spanned<u64>,
    /// Passing checks that make an unhealthy app healthy, 2-10.
    pub healthy_threshold: Spanned<u32>,
    /// Failing checks that make a healthy app unhealthy, 2-10.
    pub unhealthy_threshold: Spanned<u32>,
}

/// A listener's timeouts, per protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTimeout {
    /// Timeouts of an HTTP listener.
    pub http: RouteTimeout,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// How its value must look.
    #[serde(rename = "match")]
    pub matcher: HeaderValueMatch,
}

/// How a header's value must look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum HeaderValueMatch {
    /// Exactly this.
    Exact(String),
    /// Starting with this.
    Prefix(String),
    /// Ending with this.
    Suffix(String),
    /// Matching this RE2 regular expression (checked by Envoy, not here, as in App Mesh).
    Regex(String),
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
                validate_listener(path, l)?;
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

/// Check a listener's connection pool, outlier detection, health check and timeout
/// against App Mesh's limits.
fn validate_listener(path: &Path, l: &Listener) -> Result<(), InputError> {
    let range = |v: &Spanned<u64>, what: &str, low: u64, high: u64| {
        if **v < low || **v > high {
            Err(InputError::spanned(
                path,
                v,
                format!("expected {what} from {low} to {high}, found {}", **v),
            ))
        } else {
            Ok(())
        }
    };
    let widen = |v: &Spanned<u32>| Spanned::new(*v.span(), u64::from(**v));
    if let Some(pool) = &l.connection_pool {
        range(
            &widen(&pool.http.max_connections),
            "maxConnections",
            1,
            u64::from(u32::MAX),
        )?;
        if let Some(p) = &pool.http.max_pending_requests {
            range(&widen(p), "maxPendingRequests", 1, u64::from(u32::MAX))?;
        }
    }
    if let Some(od) = &l.outlier_detection {
        range(
            &widen(&od.max_server_errors),
            "maxServerErrors",
            1,
            u64::from(u32::MAX),
        )?;
        range(
            &widen(&od.max_ejection_percent),
            "maxEjectionPercent",
            0,
            100,
        )?;
        for (d, what) in [
            (&od.interval, "interval"),
            (&od.base_ejection_duration, "baseEjectionDuration"),
        ] {
            if d.0.is_zero() {
                return Err(InputError::spanned(
                    path,
                    d,
                    format!("expected a {what} longer than 0s"),
                ));
            }
        }
    }
    if let Some(hc) = &l.health_check {
        match hc.protocol.as_str() {
            "http" => {
                if !hc.path.as_ref().is_some_and(|p| p.starts_with('/')) {
                    return Err(InputError::spanned(
                        path,
                        hc.path.as_ref().unwrap_or(&hc.protocol),
                        "an http health check needs a `path` starting with `/`",
                    ));
                }
            }
            "tcp" => {}
            other => {
                return Err(InputError::spanned(
                    path,
                    &hc.protocol,
                    format!(
                        "unsupported health check protocol `{other}`; expected `http` or `tcp`"
                    ),
                ));
            }
        }
        range(&hc.interval_millis, "intervalMillis", 5_000, 300_000)?;
        range(&hc.timeout_millis, "timeoutMillis", 2_000, 60_000)?;
        range(&widen(&hc.healthy_threshold), "healthyThreshold", 2, 10)?;
        range(&widen(&hc.unhealthy_threshold), "unhealthyThreshold", 2, 10)?;
    }
    Ok(())
}

/// `a, b, c` for error messages.
pub fn join<'a>(names: impl IntoIterator<Item = &'a &'a str>) -> String {
    names.into_iter().copied().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error `validate` gives for a one-node mesh whose listener has `extra` keys.
    fn listener_error(extra: &str) -> String {
        let text = format!(
            "mesh: {{ name: m }}\nvirtualNodes:\n  - name: n\n    listeners:\n      - port: 8080\n{extra}"
        );
        let path = Path::new("m.yaml");
        let mesh: Mesh = source::parse(path, &text).unwrap_or_else(|e| panic!("{e}"));
        mesh.validate(path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn listener_features_outside_app_mesh_limits_are_rejected_where_written() {
        let hc = |interval: u64, path: &str| {
            format!(
                "        healthCheck: {{ protocol: http, {path} intervalMillis: {interval}, timeoutMillis: 2000, healthyThreshold: 2, unhealthyThreshold: 2 }}\n"
            )
        };
        assert_eq!(listener_error(&hc(5000, "path: /ping,")), "");
        let e = listener_error(&hc(1000, "path: /ping,"));
        assert!(
            e.starts_with("m.yaml:6:")
                && e.contains("intervalMillis from 5000 to 300000, found 1000"),
            "{e}"
        );
        let e = listener_error(&hc(5000, ""));
        assert!(e.contains("needs a `path`"), "{e}");
        let e = listener_error(
            "        outlierDetection: { maxServerErrors: 3, interval: 0s, baseEjectionDuration: 1s, maxEjectionPercent: 10 }\n",
        );
        assert!(e.contains("interval longer than 0s"), "{e}");
        let e = listener_error(
            "        outlierDetection: { maxServerErrors: 3, interval: 1s, baseEjectionDuration: 1s, maxEjectionPercent: 101 }\n",
        );
        assert!(
            e.contains("maxEjectionPercent from 0 to 100, found 101"),
            "{e}"
        );
        let e = listener_error("        connectionPool: { http: { maxConnections: 0 } }\n");
        assert!(
            e.starts_with("m.yaml:6:") && e.contains("maxConnections from 1"),
            "{e}"
        );
    }
}
