//! Virtual nodes: their listeners (with pools, outlier detection, health checks and
//! timeouts), how their instances are found, and the virtual services they provide.

use super::*;
use crate::source::Duration;
use marked_yaml::Spanned;
use serde::Deserialize;

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
    /// This node stands for this many numbered copies of itself (`client` with `fleet:
    /// 500` is `client-001` to `client-500`); see [`crate::mesh::Mesh::fleet`].
    #[serde(default)]
    pub fleet: Option<Spanned<u32>>,
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
