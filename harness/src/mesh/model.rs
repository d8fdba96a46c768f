//! The App Mesh-shaped resource model, as written in `fixtures/meshes/*.yaml`.

use crate::suite::source::{self, Duration, InputError};
use marked_yaml::Spanned;
use serde::{Deserialize, Serialize};
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
    /// Virtual gateways: standalone Envoys that let traffic into the mesh.
    #[serde(default)]
    pub virtual_gateways: Vec<VirtualGateway>,
    /// Gateway routes: which virtual service a gateway sends a request to.
    #[serde(default)]
    pub gateway_routes: Vec<GatewayRoute>,
}

/// The mesh resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshSpec {
    /// Mesh name; part of every Envoy node id (`mesh/<mesh>/virtualNode/<node>`).
    pub name: Spanned<String>,
    /// What the sidecars may call besides the mesh's virtual services.
    #[serde(default)]
    pub egress_filter: Option<EgressFilter>,
}

/// The mesh's egress filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgressFilter {
    /// `DROP_ALL` (the default: only virtual services) or `ALLOW_ALL` (any host, passed
    /// through to where the caller asked).
    #[serde(rename = "type")]
    pub kind: Spanned<EgressFilterType>,
}

/// The kinds of egress filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EgressFilterType {
    /// Only the virtual services a node names as backends.
    DropAll,
    /// Also any other host, passed through to its original address.
    AllowAll,
}

/// A listener's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1.
    Http,
    /// HTTP/2 (cleartext, h2c).
    Http2,
    /// gRPC over HTTP/2.
    Grpc,
    /// Plain TCP, proxied byte for byte.
    Tcp,
}

impl Protocol {
    /// The name used in the mesh file and in App Mesh's Envoy resource names.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::Tcp => "tcp",
        }
    }

    /// Does the sidecar speak HTTP/2 to the app and to other sidecars for it?
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A listener port and protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Listener {
    /// Port the service listens on.
    pub port: u16,
    /// Protocol: `http`, `http2`, `grpc` or `tcp`.
    pub protocol: Spanned<Protocol>,
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
    /// Timeouts of requests (or connections, for `tcp`) the listener takes in.
    #[serde(default)]
    pub timeout: Option<ListenerTimeout>,
}

/// A listener's connection pool: one entry, named after the listener's protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionPool {
    /// Limits for an `http` listener.
    #[serde(default)]
    pub http: Option<HttpConnectionPool>,
    /// Limits for an `http2` listener.
    #[serde(default)]
    pub http2: Option<StreamPool>,
    /// Limits for a `grpc` listener.
    #[serde(default)]
    pub grpc: Option<StreamPool>,
    /// Limits for a `tcp` listener.
    #[serde(default)]
    pub tcp: Option<TcpConnectionPool>,
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

/// Stream limits for an HTTP/2 or gRPC listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StreamPool {
    /// Requests in flight to the local app at most (at least 1).
    pub max_requests: Spanned<u32>,
}

/// Connection limits for a TCP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpConnectionPool {
    /// Connections to the local app at most (at least 1).
    pub max_connections: Spanned<u32>,
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
    /// `http` or `http2` (a GET of `path` must answer 2xx) or `tcp` (a connection must open).
    pub protocol: Spanned<Protocol>,
    /// Path to GET (required for `http` and `http2`).
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

/// A listener's timeouts: one entry, named after the listener's protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTimeout {
    /// Timeouts of an `http` listener.
    #[serde(default)]
    pub http: Option<RouteTimeout>,
    /// Timeouts of an `http2` listener.
    #[serde(default)]
    pub http2: Option<RouteTimeout>,
    /// Timeouts of a `grpc` listener.
    #[serde(default)]
    pub grpc: Option<RouteTimeout>,
    /// Timeouts of a `tcp` listener.
    #[serde(default)]
    pub tcp: Option<TcpTimeout>,
}

/// How a virtual node's instances are found.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceDiscovery {
    /// Callers resolve this DNS name (at the node's listener port) instead of getting
    /// endpoints from the control plane.
    pub dns: DnsDiscovery,
}

/// DNS service discovery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DnsDiscovery {
    /// The name callers' sidecars resolve, e.g. `svc-v1.outpost.internal`.
    pub hostname: Spanned<String>,
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
    /// How callers find its instances: endpoints pushed by the control plane (EDS) when
    /// unset, or a DNS name.
    #[serde(default)]
    pub service_discovery: Option<ServiceDiscovery>,
    /// Set by the change API, never in a file: the node's instances are deregistered,
    /// so callers get no endpoints for it.
    #[serde(skip)]
    pub deregistered: bool,
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

/// A virtual gateway: a standalone Envoy at the edge of the mesh (ingress into the
/// outpost); its gateway routes send requests on to virtual services.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualGateway {
    /// Name, unique among virtual nodes and gateways.
    pub name: Spanned<String>,
    /// The port and protocol (`http`, `http2` or `grpc`) it takes requests on (exactly one).
    pub listeners: Vec<RouterListener>,
}

/// A gateway route: requests a gateway takes, and the virtual service they go to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayRoute {
    /// Name, unique in its gateway.
    pub name: Spanned<String>,
    /// The gateway it belongs to.
    pub virtual_gateway: Spanned<String>,
    /// Tried from the lowest number up (0-1000); routes without one come last.
    #[serde(default)]
    pub priority: Option<Spanned<u32>>,
    /// An HTTP/1.1 gateway route.
    #[serde(default)]
    pub http_route: Option<GatewayHttpRoute>,
    /// An HTTP/2 gateway route.
    #[serde(default)]
    pub http2_route: Option<GatewayHttpRoute>,
    /// A gRPC gateway route.
    #[serde(default)]
    pub grpc_route: Option<GatewayGrpcRoute>,
}

/// An HTTP gateway route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayHttpRoute {
    /// What requests it takes (`prefix` or `path`, method, headers, hostname).
    #[serde(rename = "match")]
    pub matcher: HttpMatch,
    /// Where they go.
    pub action: GatewayAction,
}

/// A gRPC gateway route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayGrpcRoute {
    /// What calls it takes.
    #[serde(rename = "match")]
    pub matcher: GrpcMatch,
    /// Where they go.
    pub action: GatewayAction,
}

/// A gateway route's target and rewrites.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayAction {
    /// The virtual service.
    pub target: GatewayTarget,
    /// How the request is rewritten on its way (HTTP routes).
    #[serde(default)]
    pub rewrite: Option<GatewayRewrite>,
}

/// A gateway route's target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayTarget {
    /// The virtual service requests go to.
    pub virtual_service: GatewayService,
}

/// A virtual service named by a gateway route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayService {
    /// Its name.
    pub virtual_service_name: Spanned<String>,
}

/// Rewrites of a gateway route. By default (as in App Mesh) the matched prefix becomes
/// `/` and the host becomes the target virtual service's name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayRewrite {
    /// The matched prefix.
    #[serde(default)]
    pub prefix: Option<PrefixRewrite>,
    /// The host.
    #[serde(default)]
    pub hostname: Option<HostnameRewrite>,
}

/// What the matched prefix becomes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrefixRewrite {
    /// `ENABLED` (the prefix becomes `/`) or `DISABLED` (the path is kept).
    #[serde(default)]
    pub default_prefix: Option<Toggle>,
    /// The prefix becomes this instead.
    #[serde(default)]
    pub value: Option<Spanned<String>>,
}

/// What the host becomes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostnameRewrite {
    /// `ENABLED` (the target virtual service's name) or `DISABLED` (kept).
    pub default_target_hostname: Toggle,
}

/// App Mesh's on/off switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Toggle {
    /// On.
    Enabled,
    /// Off.
    Disabled,
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

impl GatewayRoute {
    /// The route's protocol, match and action, `None` unless exactly one kind is written.
    pub fn kind(&self) -> Option<(Protocol, GatewayMatch<'_>, &GatewayAction)> {
        let kinds = [
            self.http_route
                .as_ref()
                .map(|r| (Protocol::Http, GatewayMatch::Http(&r.matcher), &r.action)),
            self.http2_route
                .as_ref()
                .map(|r| (Protocol::Http2, GatewayMatch::Http(&r.matcher), &r.action)),
            self.grpc_route
                .as_ref()
                .map(|r| (Protocol::Grpc, GatewayMatch::Grpc(&r.matcher), &r.action)),
        ];
        let mut written = kinds.into_iter().flatten();
        match (written.next(), written.next()) {
            (Some(kind), None) => Some(kind),
            _ => None,
        }
    }
}

/// A gateway route's match, by kind.
#[derive(Debug, Clone, Copy)]
pub enum GatewayMatch<'a> {
    /// HTTP or HTTP/2.
    Http(&'a HttpMatch),
    /// gRPC.
    Grpc(&'a GrpcMatch),
}

impl Mesh {
    /// Load and validate a mesh file.
    pub fn load(path: &Path) -> Result<Mesh, InputError> {
        let mesh: Mesh = source::load(path)?;
        mesh.validate(path)?;
        Ok(mesh)
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

    /// The virtual gateway called `name`.
    pub fn gateway(&self, name: &str) -> Option<&VirtualGateway> {
        self.virtual_gateways
            .iter()
            .find(|g| g.name.as_str() == name)
    }

    /// The virtual service called `name`.
    pub fn service(&self, name: &str) -> Option<&VirtualService> {
        self.virtual_services
            .iter()
            .find(|s| s.name.as_str() == name)
    }

    /// The gateway routes of gateway `name`.
    pub fn routes_of_gateway<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a GatewayRoute> {
        self.gateway_routes
            .iter()
            .filter(move |r| r.virtual_gateway.as_str() == name)
    }

    /// The port and protocol a virtual service is called on: its router's listener, or
    /// its node's.
    pub fn service_listener(&self, service: &str) -> Option<(u16, Protocol)> {
        match &self.service(service)?.provider {
            Provider::VirtualNode(n) => self
                .node(n)?
                .listeners
                .first()
                .map(|l| (l.port, *l.protocol)),
            Provider::VirtualRouter(r) => self
                .router(r)?
                .listeners
                .first()
                .map(|l| (l.port, *l.protocol)),
        }
    }

    /// The Envoy node id App Mesh gives a virtual node (`mesh/<mesh>/virtualNode/<name>`)
    /// or a virtual gateway (`mesh/<mesh>/virtualGateway/<name>`).
    pub fn node_id(&self, name: &str) -> String {
        let kind = if self.gateway(name).is_some() {
            "virtualGateway"
        } else {
            "virtualNode"
        };
        format!("mesh/{}/{kind}/{name}", *self.mesh.name)
    }

    /// The virtual node or gateway an Envoy node id names, if it is one of this mesh's.
    pub fn member_of<'a>(&self, node_id: &'a str) -> Option<&'a str> {
        let rest = node_id
            .strip_prefix("mesh/")?
            .strip_prefix(self.mesh.name.as_str())?;
        if let Some(name) = rest.strip_prefix("/virtualNode/") {
            return self.node(name).map(|_| name);
        }
        let name = rest.strip_prefix("/virtualGateway/")?;
        self.gateway(name).map(|_| name)
    }

    /// Does `egressFilter` let sidecars call hosts outside the mesh?
    pub fn allows_all_egress(&self) -> bool {
        self.mesh
            .egress_filter
            .as_ref()
            .is_some_and(|f| *f.kind == EgressFilterType::AllowAll)
    }
}

/// `a, b, c` for error messages.
pub fn join<'a>(names: impl IntoIterator<Item = &'a &'a str>) -> String {
    names.into_iter().copied().collect::<Vec<_>>().join(", ")
}
