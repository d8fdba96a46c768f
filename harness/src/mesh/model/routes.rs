//! Virtual routers and their routes: matches, retry policies, timeouts and weighted
//! targets.

use super::*;
use crate::source::Duration;
use marked_yaml::Spanned;
use serde::{Deserialize, Serialize};

/// A virtual router and its routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualRouter {
    /// Name, unique in the mesh.
    pub name: Spanned<String>,
    /// The port and protocol it routes (exactly one).
    pub listeners: Vec<RouterListener>,
    /// Routes, tried by priority.
    pub routes: Vec<Route>,
}

/// A virtual router's or virtual gateway's listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouterListener {
    /// The port.
    pub port: u16,
    /// The protocol; a router's routes must be of this kind.
    pub protocol: Spanned<Protocol>,
}

/// One route of a virtual router: exactly one of the four kinds, matching the router's
/// listener protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// Name, unique in the router.
    pub name: Spanned<String>,
    /// Routes are tried from the lowest priority number up (0-1000); routes without one
    /// come last, in the order written.
    #[serde(default)]
    pub priority: Option<Spanned<u32>>,
    /// An HTTP/1.1 route.
    #[serde(default)]
    pub http_route: Option<HttpRoute>,
    /// An HTTP/2 route (same fields as an HTTP route).
    #[serde(default)]
    pub http2_route: Option<HttpRoute>,
    /// A gRPC route.
    #[serde(default)]
    pub grpc_route: Option<GrpcRoute>,
    /// A TCP route.
    #[serde(default)]
    pub tcp_route: Option<TcpRoute>,
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

/// A gRPC route: a match on service and method, and an action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcRoute {
    /// What calls it takes.
    #[serde(rename = "match")]
    pub matcher: GrpcMatch,
    /// Where they go.
    pub action: RouteAction,
    /// How long a call may take, all retries included.
    #[serde(default)]
    pub timeout: Option<RouteTimeout>,
    /// When and how often to retry.
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
}

/// Which gRPC calls a route takes (every call when empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcMatch {
    /// Fully qualified service, e.g. `shop.Cart`.
    #[serde(default)]
    pub service_name: Option<Spanned<String>>,
    /// Method of that service, e.g. `Add` (needs `serviceName`).
    #[serde(default)]
    pub method_name: Option<Spanned<String>>,
    /// Metadata (request headers) the call must carry.
    #[serde(default)]
    pub metadata: Vec<HeaderMatch>,
}

/// A TCP route: where connections go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpRoute {
    /// Where they go.
    pub action: RouteAction,
    /// How long a connection may stay idle.
    #[serde(default)]
    pub timeout: Option<TcpTimeout>,
}

/// A route's or HTTP listener's timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteTimeout {
    /// The whole request, retries included (`15s` when unset).
    #[serde(default)]
    pub per_request: Option<Duration>,
    /// How long a stream may stay without activity.
    #[serde(default)]
    pub idle: Option<Duration>,
}

/// A TCP timeout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpTimeout {
    /// How long a connection may stay without traffic before it is closed.
    pub idle: Duration,
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
    /// gRPC status codes that are retried (gRPC routes): `cancelled`,
    /// `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`.
    #[serde(default)]
    pub grpc_retry_events: Vec<Spanned<String>>,
    /// `connection-error` retries a failed connection (Envoy's `connect-failure`).
    #[serde(default)]
    pub tcp_retry_events: Vec<Spanned<String>>,
}

/// The retry events App Mesh knows, and Envoy's `retry_on` name for each.
pub const RETRY_EVENTS: [(&str, &str); 4] = [
    ("server-error", "5xx"),
    ("gateway-error", "gateway-error"),
    ("client-error", "retriable-status-codes"),
    ("stream-error", "refused-stream"),
];

/// The gRPC retry events App Mesh knows; Envoy's `retry_on` uses the same names.
pub const GRPC_RETRY_EVENTS: [&str; 5] = [
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Which requests a route takes: a `prefix` or a `path`, and optionally a method and
/// headers (and, in gateway routes only, a hostname).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpMatch {
    /// Path prefix, e.g. `/`.
    #[serde(default)]
    pub prefix: Option<Spanned<String>>,
    /// The whole path.
    #[serde(default)]
    pub path: Option<PathMatch>,
    /// HTTP method, e.g. `POST`.
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    /// Headers the request must carry.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// The request's host (gateway routes only).
    #[serde(default)]
    pub hostname: Option<HostnameMatch>,
}

/// A whole-path match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum PathMatch {
    /// Exactly this path.
    Exact(Spanned<String>),
    /// Matching this RE2 regular expression.
    Regex(Spanned<String>),
}

/// A gateway route's hostname match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum HostnameMatch {
    /// Exactly this host.
    Exact(Spanned<String>),
    /// Any host ending with this, e.g. `.example.com`.
    Suffix(Spanned<String>),
}

/// The HTTP methods a route may match.
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

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

/// A route of either kind a virtual router has, seen through what they share.
#[derive(Debug, Clone, Copy)]
pub enum RouteKind<'a> {
    /// `httpRoute` or `http2Route`.
    Http(Protocol, &'a HttpRoute),
    /// `grpcRoute`.
    Grpc(&'a GrpcRoute),
    /// `tcpRoute`.
    Tcp(&'a TcpRoute),
}

impl Route {
    /// The route's kind and body, `None` unless exactly one kind is written.
    pub fn kind(&self) -> Option<RouteKind<'_>> {
        let kinds = [
            self.http_route
                .as_ref()
                .map(|r| RouteKind::Http(Protocol::Http, r)),
            self.http2_route
                .as_ref()
                .map(|r| RouteKind::Http(Protocol::Http2, r)),
            self.grpc_route.as_ref().map(RouteKind::Grpc),
            self.tcp_route.as_ref().map(RouteKind::Tcp),
        ];
        let mut written = kinds.into_iter().flatten();
        match (written.next(), written.next()) {
            (Some(kind), None) => Some(kind),
            _ => None,
        }
    }

    /// The route's targets.
    pub fn action(&self) -> Option<&RouteAction> {
        Some(match self.kind()? {
            RouteKind::Http(_, r) => &r.action,
            RouteKind::Grpc(r) => &r.action,
            RouteKind::Tcp(r) => &r.action,
        })
    }

    /// The route's targets, to change them.
    pub fn action_mut(&mut self) -> Option<&mut RouteAction> {
        if let Some(r) = self.http_route.as_mut().or(self.http2_route.as_mut()) {
            return Some(&mut r.action);
        }
        if let Some(r) = self.grpc_route.as_mut() {
            return Some(&mut r.action);
        }
        self.tcp_route.as_mut().map(|r| &mut r.action)
    }

    /// The timeout and retry policy of an HTTP, HTTP/2 or gRPC route, to change them.
    pub fn request_policy_mut(
        &mut self,
    ) -> Option<(&mut Option<RouteTimeout>, &mut Option<RetryPolicy>)> {
        if let Some(r) = self.http_route.as_mut().or(self.http2_route.as_mut()) {
            return Some((&mut r.timeout, &mut r.retry_policy));
        }
        self.grpc_route
            .as_mut()
            .map(|r| (&mut r.timeout, &mut r.retry_policy))
    }
}
