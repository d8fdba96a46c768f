//! Mesh changes a suite can make while the mesh runs.

use crate::mesh::Mesh;
use marked_yaml::Spanned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A change to the mesh.
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
}

impl Change {
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
        }
    }

    /// The virtual nodes whose sidecars' config the change alters: those that call a
    /// virtual service the changed router provides.
    pub fn affects(&self, mesh: &Mesh) -> Vec<String> {
        match self {
            Change::SetRouteWeights { router, .. } => {
                let services: Vec<&str> = mesh
                    .virtual_services
                    .iter()
                    .filter(|s| matches!(&s.provider, crate::mesh::model::Provider::VirtualRouter(r) if r.as_str() == router))
                    .map(|s| s.name.as_str())
                    .collect();
                mesh.virtual_nodes
                    .iter()
                    .filter(|n| n.backends.iter().any(|b| services.contains(&b.as_str())))
                    .map(|n| n.name.to_string())
                    .collect()
            }
        }
    }

    /// Apply the change to `mesh`, or say why it cannot be.
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
                let r = mesh
                    .virtual_routers
                    .iter_mut()
                    .find(|r| r.name.as_str() == router)
                    .ok_or_else(|| format!("unknown virtual router `{router}`"))?;
                let rt = r
                    .routes
                    .iter_mut()
                    .find(|r| r.name.as_str() == route)
                    .ok_or_else(|| format!("unknown route `{route}` in `{router}`"))?;
                let targets = &mut rt.http_route.action.weighted_targets;
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
        }
    }
}
