//! Virtual gateways and their gateway routes: what requests they take and where they
//! send them, with rewrites.

use super::*;
use marked_yaml::Spanned;
use serde::Deserialize;

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
