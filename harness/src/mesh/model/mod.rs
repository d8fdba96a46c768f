//! The App Mesh-shaped resource model, as written in `fixtures/meshes/*.yaml`: the mesh
//! and its lookups here, virtual nodes and services in [`node`], routers and routes in
//! [`routes`], gateways in [`gateway`].

mod gateway;
mod node;
mod routes;

pub use gateway::*;
pub use node::*;
pub use routes::*;

use crate::source::{self, InputError};
use marked_yaml::Spanned;
use serde::Deserialize;
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
    /// Each fleet's name and its members, in order (see `fleet:` on a virtual node).
    #[serde(skip)]
    pub fleets: std::collections::BTreeMap<String, Vec<String>>,
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

impl Mesh {
    /// Load and validate a mesh file.
    pub fn load(path: &Path) -> Result<Mesh, InputError> {
        let mut mesh: Mesh = source::load(path)?;
        mesh.expand_fleets(path)?;
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
