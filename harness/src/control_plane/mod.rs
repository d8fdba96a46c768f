//! The reference control plane: an ADS (state-of-the-world) server for real Envoys.
//!
//! It serves each Envoy the resources its virtual node gets (see [`crate::mesh`]), keyed by
//! the node id App Mesh uses, accepts mesh changes while it runs ([`Change`]), and logs
//! every push, ACK and NACK with the time it happened ([`XdsLogLine`]), so propagation is
//! on the timeline.

pub mod admin;
pub mod ads;
pub mod change;
pub mod delta;

pub use change::Change;

use crate::mesh::{Mesh, Resources, translate};
use crate::timeline::{XdsKind, now_unix_ms};
use crate::topology::Placement;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// One line of the control plane's log: an xDS request, push, ACK or NACK.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XdsLogLine {
    /// UNIX time in ms.
    pub unix_ms: u64,
    /// Envoy node id.
    pub node: String,
    /// Short type (`cds`, `eds`, `lds`, `rds`).
    pub type_name: String,
    /// Request, push, ACK or NACK.
    pub xds: XdsKind,
    /// Version pushed or acknowledged.
    pub version: String,
    /// Envoy's error text for a NACK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The mesh the control plane serves, and its version.
#[derive(Clone)]
pub struct ControlPlane {
    state: Arc<Mutex<State>>,
    version_tx: Arc<watch::Sender<u64>>,
    log: mpsc::UnboundedSender<XdsLogLine>,
}

struct State {
    mesh: Mesh,
    placement: Placement,
    version: u64,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// A control plane serving `mesh` at version 1; log lines go to `log`.
    pub fn new(mesh: Mesh, placement: Placement, log: mpsc::UnboundedSender<XdsLogLine>) -> Self {
        let (version_tx, _) = watch::channel(1);
        ControlPlane {
            state: Arc::new(Mutex::new(State {
                mesh,
                placement,
                version: 1,
            })),
            version_tx: Arc::new(version_tx),
            log,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current config version.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Be told when the version changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version_tx.subscribe()
    }

    /// Is `node_id` a placed virtual node of this mesh (`mesh/<mesh>/virtualNode/<name>`)?
    pub fn knows(&self, node_id: &str) -> bool {
        let state = self.lock();
        let prefix = format!("mesh/{}/virtualNode/", *state.mesh.mesh.name);
        node_id
            .strip_prefix(&prefix)
            .is_some_and(|n| state.mesh.node(n).is_some() && state.placement.nodes.contains_key(n))
    }

    /// The resources for the Envoy with this node id, and the version they belong to.
    pub fn snapshot(&self, node_id: &str) -> (u64, Resources) {
        let state = self.lock();
        let prefix = format!("mesh/{}/virtualNode/", *state.mesh.mesh.name);
        let resources = match node_id.strip_prefix(&prefix) {
            Some(node) => translate(&state.mesh, node, &state.placement),
            None => Resources::default(),
        };
        (state.version, resources)
    }

    /// Apply a mesh change and push it to every connected Envoy; returns the new version.
    pub fn apply(&self, change: &Change) -> Result<u64, String> {
        let version = {
            let mut state = self.lock();
            change.apply(&mut state.mesh)?;
            state.version += 1;
            state.version
        };
        self.version_tx.send_replace(version);
        Ok(version)
    }

    /// Record a request, push, ACK or NACK.
    pub fn log(
        &self,
        node: &str,
        type_name: &str,
        xds: XdsKind,
        version: &str,
        error: Option<String>,
    ) {
        let _ = self.log.send(XdsLogLine {
            unix_ms: now_unix_ms(),
            node: node.to_string(),
            type_name: type_name.to_string(),
            xds,
            version: version.to_string(),
            error,
        });
    }
}
