//! The topology: which virtual node runs on which site, and at which addresses.
//!
//! The backend decides the addresses before it starts anything and hands the same
//! [`Placement`] to the control plane, so every Envoy is told where its peers are.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The two sites of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    /// The edge rack.
    Outpost,
    /// The cloud region, where the control plane lives.
    Region,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Site::Outpost => "outpost",
            Site::Region => "region",
        })
    }
}

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
}

/// Every node's placement, by virtual node name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Placement by virtual node name.
    pub nodes: BTreeMap<String, NodePlacement>,
}

impl Placement {
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
