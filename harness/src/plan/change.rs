//! Mesh changes a suite (or a test) can make while the mesh runs.
//!
//! [`Change`] is every change the control plane accepts on its admin API and persists:
//! route weights, adding and removing routes, a route's timeout and retry policy, and
//! a virtual node's endpoints leaving and joining service discovery.

use crate::mesh::Mesh;
use crate::mesh::model::{
    HeaderMatch, HttpMatch, HttpRoute, Protocol, Provider, RETRY_EVENTS, RetryPolicy, Route,
    RouteAction, RouteTimeout, VirtualRouter, WeightedTarget,
};
use crate::source::Duration;
use marked_yaml::{Span, Spanned};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every change the control plane accepts, as JSON on `POST /changes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Set the weights of a route's targets (virtual node -> weight, adding up to 100).
    SetRouteWeights {
        /// The virtual router.
        router: String,
        /// The route in it.
        route: String,
        /// New weight per virtual node.
        weights: BTreeMap<String, u32>,
    },
    /// Add a route to a virtual router.
    AddRoute {
        /// The virtual router.
        router: String,
        /// The new route.
        route: NewRoute,
    },
    /// Remove a route from a virtual router.
    RemoveRoute {
        /// The virtual router.
        router: String,
        /// The route to remove.
        route: String,
    },
    /// Set a route's per-request timeout (`None`: back to App Mesh's 15 s).
    SetRouteTimeout {
        /// The virtual router.
        router: String,
        /// The route in it.
        route: String,
        /// The whole request, retries included, in ms (at least 1).
        per_request_ms: Option<u64>,
    },
    /// Set a route's retry policy (`None`: no retries).
    SetRetryPolicy {
        /// The virtual router.
        router: String,
        /// The route in it.
        route: String,
        /// The new policy.
        retry: Option<NewRetryPolicy>,
    },
    /// Deregister a virtual node's endpoints: its callers keep the cluster but get no
    /// endpoint for it (as when its instances leave Cloud Map).
    RemoveEndpoints {
        /// The virtual node.
        virtual_node: String,
    },
    /// Register a virtual node's endpoints again.
    AddEndpoints {
        /// The virtual node.
        virtual_node: String,
    },
}

/// A route to add, in plain JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRoute {
    /// Name, unique in the router.
    pub name: String,
    /// Priority 0-1000 (lowest first); none: after every route with one.
    #[serde(default)]
    pub priority: Option<u32>,
    /// Path prefix, starting with `/`.
    pub prefix: String,
    /// Headers requests must carry, as in the mesh file (`{"name": .., "match": {"exact": ..}}`).
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// Weight per target virtual node, adding up to 100.
    pub targets: BTreeMap<String, u32>,
    /// The whole request, retries included, in ms.
    #[serde(default)]
    pub per_request_ms: Option<u64>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<NewRetryPolicy>,
}

/// A retry policy, in plain JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRetryPolicy {
    /// Retries after the first try.
    pub max_retries: u32,
    /// Timeout of each try, in ms (at least 1).
    pub per_retry_timeout_ms: u64,
    /// Retry events (`server-error`, `gateway-error`, `client-error`, `stream-error`).
    pub http_retry_events: Vec<String>,
}

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(Span::new_blank(), value)
}

fn millis(ms: u64, what: &str) -> Result<Duration, String> {
    if ms == 0 {
        return Err(format!("{what} is 0 ms; expected at least 1"));
    }
    Ok(Duration(std::time::Duration::from_millis(ms)))
}

impl NewRetryPolicy {
    fn to_model(&self) -> Result<RetryPolicy, String> {
        for event in &self.http_retry_events {
            if !RETRY_EVENTS.iter().any(|(name, _)| name == event) {
                let known: Vec<&str> = RETRY_EVENTS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown retry event `{event}`; expected one of: {}",
                    known.join(", ")
                ));
            }
        }
        if self.http_retry_events.is_empty() {
            return Err("http_retry_events is empty; expected at least one event".into());
        }
        Ok(RetryPolicy {
            max_retries: self.max_retries,
            per_retry_timeout: millis(self.per_retry_timeout_ms, "per_retry_timeout_ms")?,
            http_retry_events: self
                .http_retry_events
                .iter()
                .cloned()
                .map(spanned)
                .collect(),
            grpc_retry_events: Vec::new(),
            tcp_retry_events: Vec::new(),
        })
    }
}

/// Weights per node, checked against the mesh: known nodes, 0-100 each, adding up to 100.
fn check_weights(mesh: &Mesh, weights: &BTreeMap<String, u32>) -> Result<(), String> {
    if let Some(node) = weights.keys().find(|n| mesh.node(n).is_none()) {
        let nodes: Vec<&str> = mesh.virtual_nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(format!(
            "unknown virtual node `{node}`; expected one of: {}",
            nodes.join(", ")
        ));
    }
    if let Some((node, w)) = weights.iter().find(|(_, w)| **w > 100) {
        return Err(format!("weight of `{node}` is {w}; expected 0 to 100"));
    }
    let sum: u32 = weights.values().sum();
    if sum != 100 {
        return Err(format!("weights add up to {sum}; expected 100"));
    }
    Ok(())
}

impl NewRoute {
    /// The route as a route of kind `protocol` (`http` or `http2`).
    fn to_model(&self, mesh: &Mesh, protocol: Protocol) -> Result<Route, String> {
        if self.name.trim().is_empty() {
            return Err("the route has no name".into());
        }
        if !self.prefix.starts_with('/') {
            return Err(format!(
                "prefix `{}` of route `{}` does not start with `/`",
                self.prefix, self.name
            ));
        }
        if let Some(p) = self.priority.filter(|p| *p > 1000) {
            return Err(format!(
                "priority {p} of route `{}`; expected 0 to 1000",
                self.name
            ));
        }
        if let Some(h) = self.headers.iter().find(|h| h.name.trim().is_empty()) {
            return Err(format!(
                "a header match of route `{}` has no name (match {:?})",
                self.name, h.matcher
            ));
        }
        if self.targets.is_empty() {
            return Err(format!("route `{}` has no targets", self.name));
        }
        check_weights(mesh, &self.targets)?;
        let route = HttpRoute {
            matcher: HttpMatch {
                prefix: Some(spanned(self.prefix.clone())),
                headers: self.headers.clone(),
                ..Default::default()
            },
            action: RouteAction {
                weighted_targets: self
                    .targets
                    .iter()
                    .map(|(node, w)| WeightedTarget {
                        virtual_node: spanned(node.clone()),
                        weight: spanned(*w),
                    })
                    .collect(),
            },
            timeout: self
                .per_request_ms
                .map(|ms| millis(ms, "per_request_ms"))
                .transpose()?
                .map(|per_request| RouteTimeout {
                    per_request: Some(per_request),
                    idle: None,
                }),
            retry_policy: self.retry.as_ref().map(|r| r.to_model()).transpose()?,
        };
        let (http_route, http2_route) = match protocol {
            Protocol::Http => (Some(route), None),
            Protocol::Http2 => (None, Some(route)),
            other => {
                return Err(format!(
                    "add_route adds HTTP routes; the router listens for {other}"
                ));
            }
        };
        Ok(Route {
            name: spanned(self.name.clone()),
            priority: self.priority.map(spanned),
            http_route,
            http2_route,
            grpc_route: None,
            tcp_route: None,
        })
    }
}

/// The virtual router called `name`, or an error naming the routers there are.
fn router_mut<'a>(mesh: &'a mut Mesh, name: &str) -> Result<&'a mut VirtualRouter, String> {
    let known: Vec<String> = mesh
        .virtual_routers
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    mesh.virtual_routers
        .iter_mut()
        .find(|r| r.name.as_str() == name)
        .ok_or_else(|| {
            format!(
                "unknown virtual router `{name}`; expected one of: {}",
                known.join(", ")
            )
        })
}

/// The route `route` of `router`, or an error naming the routes there are.
fn route_mut<'a>(router: &'a mut VirtualRouter, route: &str) -> Result<&'a mut Route, String> {
    let known: Vec<String> = router.routes.iter().map(|r| r.name.to_string()).collect();
    let router_name = router.name.to_string();
    router
        .routes
        .iter_mut()
        .find(|r| r.name.as_str() == route)
        .ok_or_else(|| {
            format!(
                "unknown route `{route}` in `{router_name}`; expected one of: {}",
                known.join(", ")
            )
        })
}

/// A route's timeout and retry policy, or an error for a TCP route, which has neither.
fn request_policy(
    route: &mut Route,
) -> Result<(&mut Option<RouteTimeout>, &mut Option<RetryPolicy>), String> {
    let name = route.name.to_string();
    route.request_policy_mut().ok_or_else(|| {
        format!("route `{name}` is a TCP route; it has no request timeout or retries")
    })
}

impl Change {
    /// Every change kind, as a suite (and the change API) names it.
    pub const KINDS: [&'static str; 7] = [
        "set_route_weights",
        "add_route",
        "remove_route",
        "set_route_timeout",
        "set_retry_policy",
        "remove_endpoints",
        "add_endpoints",
    ];

    /// This change's kind, as a suite names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::SetRouteWeights { .. } => Self::KINDS[0],
            Change::AddRoute { .. } => Self::KINDS[1],
            Change::RemoveRoute { .. } => Self::KINDS[2],
            Change::SetRouteTimeout { .. } => Self::KINDS[3],
            Change::SetRetryPolicy { .. } => Self::KINDS[4],
            Change::RemoveEndpoints { .. } => Self::KINDS[5],
            Change::AddEndpoints { .. } => Self::KINDS[6],
        }
    }

    /// The virtual router the change is about, if it is about one.
    pub fn router(&self) -> Option<&str> {
        match self {
            Change::SetRouteWeights { router, .. }
            | Change::AddRoute { router, .. }
            | Change::RemoveRoute { router, .. }
            | Change::SetRouteTimeout { router, .. }
            | Change::SetRetryPolicy { router, .. } => Some(router),
            Change::RemoveEndpoints { .. } | Change::AddEndpoints { .. } => None,
        }
    }

    /// The virtual node the change sends the most traffic to, if it routes traffic.
    pub fn dominant_target(&self) -> Option<String> {
        match self {
            Change::SetRouteWeights { weights, .. } => weights
                .iter()
                .max_by_key(|(_, w)| **w)
                .map(|(n, _)| n.clone()),
            _ => None,
        }
    }

    /// The change in words, for reports.
    pub fn describe(&self) -> String {
        match self {
            Change::SetRouteWeights {
                router,
                route,
                weights,
            } => {
                let w: Vec<String> = weights.iter().map(|(n, w)| format!("{n}={w}")).collect();
                format!("route {router}/{route} weights {}", w.join(" "))
            }
            Change::AddRoute { router, route } => {
                format!(
                    "add route {router}/{} (prefix {})",
                    route.name, route.prefix
                )
            }
            Change::RemoveRoute { router, route } => format!("remove route {router}/{route}"),
            Change::SetRouteTimeout {
                router,
                route,
                per_request_ms,
            } => match per_request_ms {
                Some(ms) => format!("route {router}/{route} timeout {ms} ms"),
                None => format!("route {router}/{route} timeout back to the default"),
            },
            Change::SetRetryPolicy {
                router,
                route,
                retry,
            } => match retry {
                Some(r) => format!(
                    "route {router}/{route} retries {} x {} ms on {}",
                    r.max_retries,
                    r.per_retry_timeout_ms,
                    r.http_retry_events.join(",")
                ),
                None => format!("route {router}/{route} no retries"),
            },
            Change::RemoveEndpoints { virtual_node } => {
                format!("deregister the endpoints of {virtual_node}")
            }
            Change::AddEndpoints { virtual_node } => {
                format!("register the endpoints of {virtual_node}")
            }
        }
    }

    /// The virtual nodes and gateways whose Envoys' config the change alters: those that
    /// call a virtual service the changed router provides, or that leads to the node
    /// whose endpoints change.
    pub fn affects(&self, mesh: &Mesh) -> Vec<String> {
        let services: Vec<&str> = mesh
            .virtual_services
            .iter()
            .filter(|s| match (&s.provider, self) {
                (
                    Provider::VirtualNode(n),
                    Change::RemoveEndpoints { virtual_node }
                    | Change::AddEndpoints { virtual_node },
                ) => n.as_str() == virtual_node,
                (
                    Provider::VirtualRouter(r),
                    Change::RemoveEndpoints { virtual_node }
                    | Change::AddEndpoints { virtual_node },
                ) => mesh.router(r).is_some_and(|r| {
                    r.routes
                        .iter()
                        .filter_map(|route| route.action())
                        .flat_map(|a| &a.weighted_targets)
                        .any(|t| t.virtual_node.as_str() == virtual_node)
                }),
                (Provider::VirtualRouter(r), _) => Some(r.as_str()) == self.router(),
                (Provider::VirtualNode(_), _) => false,
            })
            .map(|s| s.name.as_str())
            .collect();
        let nodes = mesh
            .virtual_nodes
            .iter()
            .filter(|n| n.backends.iter().any(|b| services.contains(&b.as_str())))
            .map(|n| n.name.to_string());
        let gateways = mesh
            .virtual_gateways
            .iter()
            .filter(|g| {
                mesh.routes_of_gateway(&g.name).any(|r| {
                    r.kind().is_some_and(|(_, _, a)| {
                        services.contains(&a.target.virtual_service.virtual_service_name.as_str())
                    })
                })
            })
            .map(|g| g.name.to_string());
        nodes.chain(gateways).collect()
    }

    /// Apply the change to `mesh`, or say why it cannot be; a refused change leaves
    /// `mesh` as it was.
    pub fn apply(&self, mesh: &mut Mesh) -> Result<(), String> {
        match self {
            Change::SetRouteWeights {
                router,
                route,
                weights,
            } => {
                if let Some((node, w)) = weights.iter().find(|(_, w)| **w > 100) {
                    return Err(format!("weight of `{node}` is {w}; expected 0 to 100"));
                }
                let sum: u32 = weights.values().sum();
                if sum != 100 {
                    return Err(format!("weights add up to {sum}; expected 100"));
                }
                let rt = route_mut(router_mut(mesh, router)?, route)?;
                let Some(action) = rt.action_mut() else {
                    return Err(format!("route `{route}` has no action"));
                };
                let targets = &mut action.weighted_targets;
                for node in weights.keys() {
                    if !targets.iter().any(|t| t.virtual_node.as_str() == node) {
                        return Err(format!("route `{route}` has no target `{node}`"));
                    }
                }
                for t in targets.iter_mut() {
                    t.weight = Spanned::new(
                        *t.weight.span(),
                        weights.get(t.virtual_node.as_str()).copied().unwrap_or(0),
                    );
                }
                Ok(())
            }
            Change::AddRoute { router, route } => {
                let protocol = router_mut(mesh, router)?
                    .listeners
                    .first()
                    .map(|l| *l.protocol)
                    .unwrap_or(Protocol::Http);
                let new = route.to_model(mesh, protocol)?;
                let r = router_mut(mesh, router)?;
                if r.routes.iter().any(|x| x.name.as_str() == route.name) {
                    return Err(format!(
                        "router `{router}` already has a route `{}`",
                        route.name
                    ));
                }
                r.routes.push(new);
                Ok(())
            }
            Change::RemoveRoute { router, route } => {
                let r = router_mut(mesh, router)?;
                route_mut(r, route)?;
                r.routes.retain(|x| x.name.as_str() != route);
                Ok(())
            }
            Change::SetRouteTimeout {
                router,
                route,
                per_request_ms,
            } => {
                let timeout = per_request_ms
                    .map(|ms| millis(ms, "per_request_ms"))
                    .transpose()?;
                let rt = route_mut(router_mut(mesh, router)?, route)?;
                let (current, _) = request_policy(rt)?;
                let idle = current.as_ref().and_then(|t| t.idle);
                *current = (timeout.is_some() || idle.is_some()).then_some(RouteTimeout {
                    per_request: timeout,
                    idle,
                });
                Ok(())
            }
            Change::SetRetryPolicy {
                router,
                route,
                retry,
            } => {
                let policy = retry.as_ref().map(|r| r.to_model()).transpose()?;
                let rt = route_mut(router_mut(mesh, router)?, route)?;
                *request_policy(rt)?.1 = policy;
                Ok(())
            }
            Change::RemoveEndpoints { virtual_node } | Change::AddEndpoints { virtual_node } => {
                let known: Vec<String> = mesh
                    .virtual_nodes
                    .iter()
                    .map(|n| n.name.to_string())
                    .collect();
                let Some(node) = mesh
                    .virtual_nodes
                    .iter_mut()
                    .find(|n| n.name.as_str() == virtual_node)
                else {
                    return Err(format!(
                        "unknown virtual node `{virtual_node}`; expected one of: {}",
                        known.join(", ")
                    ));
                };
                if node.listeners.is_empty() {
                    return Err(format!(
                        "virtual node `{virtual_node}` has no endpoints: it has no listener"
                    ));
                }
                if node.service_discovery.is_some() {
                    return Err(format!(
                        "virtual node `{virtual_node}` is found through DNS; its endpoints are DNS's, not the control plane's"
                    ));
                }
                node.deregistered = matches!(self, Change::RemoveEndpoints { .. });
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn mesh() -> Mesh {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meshes/outpost-basic.yaml");
        Mesh::load(&path).unwrap()
    }

    fn change(value: serde_json::Value) -> Change {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn add(route: serde_json::Value) -> Change {
        change(json!({"add_route": {"router": "svc-router", "route": route}}))
    }

    fn route_names(mesh: &Mesh) -> Vec<String> {
        mesh.router("svc-router")
            .unwrap()
            .routes
            .iter()
            .map(|r| r.name.to_string())
            .collect()
    }

    #[test]
    fn routes_are_added_and_removed() {
        let mut m = mesh();
        add(json!({
            "name": "beta", "priority": 0, "prefix": "/beta",
            "headers": [{"name": "x-beta", "match": {"regex": "on|yes"}}],
            "targets": {"svc-v2": 100}, "per_request_ms": 500,
            "retry": {"max_retries": 2, "per_retry_timeout_ms": 100, "http_retry_events": ["server-error"]}
        }))
        .apply(&mut m)
        .unwrap();
        assert_eq!(route_names(&m), ["split", "beta"]);
        let beta = m.router("svc-router").unwrap().routes[1]
            .http_route
            .clone()
            .unwrap();
        assert_eq!(
            beta.timeout.unwrap().per_request.unwrap().0.as_millis(),
            500
        );
        assert_eq!(beta.retry_policy.unwrap().max_retries, 2);
        change(json!({"remove_route": {"router": "svc-router", "route": "beta"}}))
            .apply(&mut m)
            .unwrap();
        assert_eq!(route_names(&m), ["split"]);
    }

    #[test]
    fn a_bad_change_says_what_is_wrong() {
        let ok = json!({"name": "beta", "prefix": "/beta", "targets": {"svc-v2": 100}});
        let with = |key: &str, value: serde_json::Value| {
            let mut r = ok.clone();
            r[key] = value;
            add(r)
        };
        let cases = [
            (
                with("name", json!("split")),
                "router `svc-router` already has a route `split`",
            ),
            (
                with("prefix", json!("beta")),
                "prefix `beta` of route `beta` does not start with `/`",
            ),
            (
                with("priority", json!(1001)),
                "priority 1001 of route `beta`; expected 0 to 1000",
            ),
            (with("targets", json!({})), "route `beta` has no targets"),
            (
                with("targets", json!({"svc-v9": 100})),
                "unknown virtual node `svc-v9`; expected one of: client, svc-v1, svc-v2",
            ),
            (
                with("targets", json!({"svc-v1": 50, "svc-v2": 40})),
                "weights add up to 90; expected 100",
            ),
            (
                with("per_request_ms", json!(0)),
                "per_request_ms is 0 ms; expected at least 1",
            ),
            (
                with(
                    "retry",
                    json!({"max_retries": 1, "per_retry_timeout_ms": 10, "http_retry_events": ["boom"]}),
                ),
                "unknown retry event `boom`; expected one of: server-error, gateway-error, client-error, stream-error",
            ),
            (
                change(json!({"add_route": {"router": "nope", "route": ok}})),
                "unknown virtual router `nope`; expected one of: svc-router",
            ),
            (
                change(json!({"remove_route": {"router": "svc-router", "route": "gone"}})),
                "unknown route `gone` in `svc-router`; expected one of: split",
            ),
            (
                change(
                    json!({"set_route_timeout": {"router": "svc-router", "route": "split", "per_request_ms": 0}}),
                ),
                "per_request_ms is 0 ms; expected at least 1",
            ),
        ];
        for (c, expected) in cases {
            let mut m = mesh();
            assert_eq!(c.apply(&mut m), Err(expected.to_string()), "{c:?}");
            assert_eq!(route_names(&m), ["split"], "{c:?} left the mesh as it was");
        }
        let unknown_field = serde_json::from_value::<Change>(
            json!({"add_route": {"router": "r", "route": {"name": "b", "prefix": "/", "targets": {}, "colour": 1}}}),
        );
        assert!(
            unknown_field
                .unwrap_err()
                .to_string()
                .contains("unknown field `colour`")
        );
    }

    #[test]
    fn timeouts_and_retries_are_set_and_cleared() {
        let mut m = mesh();
        let route = |m: &Mesh| {
            m.router("svc-router").unwrap().routes[0]
                .http_route
                .clone()
                .unwrap()
        };
        change(json!({"set_route_timeout": {"router": "svc-router", "route": "split", "per_request_ms": 250}}))
            .apply(&mut m)
            .unwrap();
        assert_eq!(
            route(&m)
                .timeout
                .unwrap()
                .per_request
                .unwrap()
                .0
                .as_millis(),
            250
        );
        change(json!({"set_retry_policy": {"router": "svc-router", "route": "split",
            "retry": {"max_retries": 3, "per_retry_timeout_ms": 100, "http_retry_events": ["gateway-error"]}}}))
            .apply(&mut m)
            .unwrap();
        assert_eq!(route(&m).retry_policy.unwrap().max_retries, 3);
        change(json!({"set_route_timeout": {"router": "svc-router", "route": "split", "per_request_ms": null}}))
            .apply(&mut m)
            .unwrap();
        change(
            json!({"set_retry_policy": {"router": "svc-router", "route": "split", "retry": null}}),
        )
        .apply(&mut m)
        .unwrap();
        assert!(route(&m).timeout.is_none() && route(&m).retry_policy.is_none());
        assert_eq!(
            Change::RemoveRoute {
                router: "svc-router".into(),
                route: "split".into()
            }
            .affects(&m),
            ["client"]
        );
    }
}
