//! The topology: which virtual node runs on which site, and at which addresses.
//!
//! The backend decides the addresses before it starts anything and hands the same
//! [`Placement`] to the control plane, so every Envoy is told where its peers are.

use crate::mesh::Mesh;
use crate::mesh::model::Protocol;
pub use crate::plan::Site;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Where one virtual node's processes listen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodePlacement {
    /// The site it runs on.
    pub site: Site,
    /// The sidecar's ingress listener (nodes with listeners only).
    pub ingress: Option<SocketAddr>,
    /// The sidecar's egress listener, which local callers (and the load) send to.
    pub egress: SocketAddr,
    /// The sidecar's admin endpoint.
    pub admin: SocketAddr,
    /// The sample service behind the sidecar (nodes with listeners only).
    pub app: Option<SocketAddr>,
    /// How the other site reaches the ingress: through the fault proxy of a data link.
    pub remote_ingress: Option<SocketAddr>,
    /// An egress listener per TCP virtual service the node calls (a TCP connection names
    /// no host, so each gets its own port).
    #[serde(default)]
    pub tcp_egress: BTreeMap<String, SocketAddr>,
    /// A virtual gateway's second listener: its gateway routes hand requests there, and
    /// it routes them to the virtual services as a sidecar's egress would. (A gateway's
    /// own listener, where requests come in, is its `egress`.)
    #[serde(default)]
    pub gateway_hop: Option<SocketAddr>,
}

/// What an address is for, when [`Placement::assign`] asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The Envoy's admin endpoint.
    Admin,
    /// The Envoy's egress listener (a gateway's own listener).
    Egress,
    /// The Envoy's ingress listener (a gateway's hop).
    Ingress,
    /// The sample service behind the Envoy.
    App,
    /// Where the other site reaches the ingress (through a fault proxy).
    RemoteIngress,
    /// The egress listener of the `n`th TCP virtual service the node calls.
    TcpEgress(usize),
}

/// Every node's placement, by virtual node name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Placement by virtual node name.
    pub nodes: BTreeMap<String, NodePlacement>,
}

impl Placement {
    /// The addresses [`Placement::assign`] takes for `sites`.
    pub fn addresses_needed(mesh: &Mesh, sites: &BTreeMap<String, Site>) -> usize {
        sites.keys().map(|n| 5 + tcp_backends(mesh, n).len()).sum()
    }

    /// Place every virtual node and gateway of `sites`, taking each address from
    /// `addr(node, site, role)`: each Envoy gets an admin and an egress address; a node
    /// with a listener an ingress, an app and, when cross-site connections go through a
    /// fault proxy (`proxied`), a remote ingress (else the other site dials the ingress
    /// itself); a gateway its hop; a TCP backend its own egress. Every address is asked
    /// for, in that order, whether the node uses it or not.
    pub fn assign(
        mesh: &Mesh,
        sites: &BTreeMap<String, Site>,
        mut addr: impl FnMut(&str, Site, Role) -> SocketAddr,
        proxied: bool,
    ) -> Placement {
        let mut placement = Placement::default();
        for (name, site) in sites {
            let mut next = |role| addr(name, *site, role);
            let (admin, egress, a, b) = (
                next(Role::Admin),
                next(Role::Egress),
                next(Role::Ingress),
                next(Role::App),
            );
            let c = if proxied {
                next(Role::RemoteIngress)
            } else {
                a
            };
            let serves = mesh.node(name).is_some_and(|n| !n.listeners.is_empty());
            let gateway = mesh.gateway(name).is_some();
            let tcp_egress = tcp_backends(mesh, name)
                .into_iter()
                .enumerate()
                .map(|(i, s)| (s, next(Role::TcpEgress(i))))
                .collect();
            placement.nodes.insert(
                name.clone(),
                NodePlacement {
                    site: *site,
                    admin,
                    egress,
                    ingress: serves.then_some(a),
                    app: serves.then_some(b),
                    remote_ingress: serves.then_some(c),
                    tcp_egress,
                    gateway_hop: gateway.then_some(a),
                },
            );
        }
        placement
    }

    /// The address the sidecar of `from` uses to reach the ingress of `to`: direct on
    /// the same site, through the data link's fault proxy across sites.
    pub fn endpoint_from(&self, from: &str, to: &str) -> Option<SocketAddr> {
        let from = self.nodes.get(from)?;
        let to = self.nodes.get(to)?;
        if from.site == to.site {
            to.ingress
        } else {
            to.remote_ingress
        }
    }
}

/// The TCP virtual services a virtual node calls.
fn tcp_backends(mesh: &Mesh, node: &str) -> Vec<String> {
    mesh.node(node)
        .map(|n| {
            n.backends
                .iter()
                .filter(|b| {
                    mesh.service_listener(b)
                        .is_some_and(|(_, p)| p == Protocol::Tcp)
                })
                .map(|b| b.to_string())
                .collect()
        })
        .unwrap_or_default()
}
