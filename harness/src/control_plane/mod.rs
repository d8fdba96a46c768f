//! The reference control plane: an ADS (state-of-the-world) server for real Envoys.
//!
//! It serves each Envoy the resources its virtual node gets (see [`crate::mesh`]), keyed by
//! the node id App Mesh uses, accepts mesh changes while it runs ([`Change`]), and logs
//! every push, ACK and NACK with the time it happened ([`XdsLogLine`]), so propagation is
//! on the timeline.

pub mod admin;
pub mod ads;
pub mod delta;
pub mod resources;
pub mod service;
pub mod translate;

pub use crate::plan::Change;

use crate::mesh::Mesh;
use crate::timeline::{XdsKind, now_unix_ms};
use crate::topology::Placement;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};
use translate::{Resources, translate};

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

impl XdsLogLine {
    /// Puts the line on `timeline` at the time it happened, if `line` is one (the
    /// control plane's other output is ignored). `clock_offset_ms` is the control
    /// plane's clock minus the harness's (0 on the same machine).
    pub fn record(line: &[u8], timeline: &crate::timeline::Timeline, clock_offset_ms: i64) {
        if let Ok(l) = serde_json::from_slice::<XdsLogLine>(line) {
            timeline.record_at_unix(
                l.unix_ms.saturating_add_signed(-clock_offset_ms),
                crate::timeline::Event::Xds {
                    node: l.node,
                    type_name: l.type_name,
                    xds: l.xds,
                    version: l.version,
                    error: l.error,
                },
            );
        }
    }
}

/// How many log lines a `GET /log` follower may fall behind before it misses some.
pub const LOG_FOLLOWER_BUFFER: usize = 65_536;

/// The mesh the control plane serves, and its version.
#[derive(Clone)]
pub struct ControlPlane {
    state: Arc<Mutex<State>>,
    version_tx: Arc<watch::Sender<u64>>,
    log: mpsc::UnboundedSender<XdsLogLine>,
    /// The same log lines for `GET /log` followers (a harness on another machine).
    tap: broadcast::Sender<XdsLogLine>,
}

struct State {
    /// Shared with the streams translating it, so none holds the lock while it does.
    mesh: Arc<Mesh>,
    placement: Arc<Placement>,
    version: u64,
    /// Every change applied since the mesh file, in order.
    changes: Vec<Change>,
    /// Where the version and changes are persisted, so a restarted control plane resumes
    /// from them instead of serving the mesh file's state at version 1.
    state_file: Option<PathBuf>,
}

/// What a control plane persists: enough to serve the same config after a restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PersistedState {
    /// The config version.
    pub version: u64,
    /// Changes applied on top of the mesh file, in order.
    pub changes: Vec<Change>,
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
                mesh: Arc::new(mesh),
                placement: Arc::new(placement),
                version: 1,
                changes: Vec::new(),
                state_file: None,
            })),
            version_tx: Arc::new(version_tx),
            log,
            tap: broadcast::channel(LOG_FOLLOWER_BUFFER).0,
        }
    }

    /// Persist state to `path` from now on, first resuming from it if it exists (a restart).
    pub fn persist_to(&self, path: &Path) -> Result<(), String> {
        let mut state = self.lock();
        if path.exists() {
            let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let saved: PersistedState =
                serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            for change in &saved.changes {
                change.apply(Arc::make_mut(&mut state.mesh))?;
            }
            state.version = saved.version;
            state.changes = saved.changes;
            self.version_tx.send_replace(state.version);
        }
        state.state_file = Some(path.to_path_buf());
        Ok(())
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

    /// Is `node_id` a placed virtual node or gateway of this mesh
    /// (`mesh/<mesh>/virtualNode/<name>`, `mesh/<mesh>/virtualGateway/<name>`)?
    pub fn knows(&self, node_id: &str) -> bool {
        let state = self.lock();
        state
            .mesh
            .member_of(node_id)
            .is_some_and(|n| state.placement.nodes.contains_key(n))
    }

    /// Admit a stream from `node_id`, or the status to refuse it with: an empty
    /// state-of-the-world answer would delete everything a node has, so a node the mesh
    /// does not know gets no answer at all.
    pub fn admit(&self, node_id: &str) -> Result<(), tonic::Status> {
        if self.knows(node_id) {
            Ok(())
        } else {
            Err(tonic::Status::not_found(format!(
                "no virtual node for node id `{node_id}`"
            )))
        }
    }

    /// The resources for the Envoy with this node id, and the version they belong to.
    /// Translated outside the lock: the streams of a fan-out translate side by side.
    pub fn snapshot(&self, node_id: &str) -> (u64, Resources) {
        let (version, mesh, placement) = {
            let state = self.lock();
            (state.version, state.mesh.clone(), state.placement.clone())
        };
        let resources = match mesh.member_of(node_id) {
            Some(name) => translate(&mesh, name, &placement),
            None => Resources::default(),
        };
        (version, resources)
    }

    /// Apply a mesh change and push it to every connected Envoy; returns the new version.
    pub fn apply(&self, change: &Change) -> Result<u64, String> {
        let version = {
            let mut state = self.lock();
            // Applied to a copy first, so a refused change leaves nothing half done.
            let mut mesh = Mesh::clone(&state.mesh);
            change.apply(&mut mesh)?;
            state.mesh = Arc::new(mesh);
            state.version += 1;
            state.changes.push(change.clone());
            if let Some(path) = &state.state_file {
                let saved = PersistedState {
                    version: state.version,
                    changes: state.changes.clone(),
                };
                // Written aside and renamed, so a kill mid-write leaves the last good state.
                let tmp = path.with_extension("tmp");
                let written = serde_json::to_vec(&saved)
                    .map_err(|e| e.to_string())
                    .and_then(|b| std::fs::write(&tmp, b).map_err(|e| e.to_string()))
                    .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
                written.map_err(|e| format!("cannot persist state to {}: {e}", path.display()))?;
            }
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
        let line = XdsLogLine {
            unix_ms: now_unix_ms(),
            node: node.to_string(),
            type_name: type_name.to_string(),
            xds,
            version: version.to_string(),
            error,
        };
        // Copied for `GET /log` followers only when there are some (a run on this
        // machine reads the log from stdout and has none).
        if self.tap.receiver_count() > 0 {
            let _ = self.tap.send(line.clone());
        }
        let _ = self.log.send(line);
    }

    /// Every log line from now on (`GET /log`); a follower that falls more than
    /// [`LOG_FOLLOWER_BUFFER`] lines behind is told how many it missed.
    pub fn follow_log(&self) -> broadcast::Receiver<XdsLogLine> {
        self.tap.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn control_plane() -> ControlPlane {
        let mesh =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meshes/outpost-basic.yaml");
        let (tx, _rx) = mpsc::unbounded_channel();
        ControlPlane::new(Mesh::load(&mesh).unwrap(), Placement::default(), tx)
    }

    fn weights(cp: &ControlPlane) -> Vec<u32> {
        let state = cp.lock();
        let route = &state.mesh.router("svc-router").unwrap().routes[0];
        route
            .action()
            .unwrap()
            .weighted_targets
            .iter()
            .map(|t| *t.weight)
            .collect()
    }

    #[test]
    fn a_restarted_control_plane_resumes_version_and_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let cp = control_plane();
        cp.persist_to(&file).unwrap();
        let change = Change::SetRouteWeights {
            router: "svc-router".into(),
            route: "split".into(),
            weights: BTreeMap::from([("svc-v1".into(), 0), ("svc-v2".into(), 100)]),
        };
        assert_eq!(cp.apply(&change), Ok(2));
        drop(cp);

        let restarted = control_plane();
        assert_eq!(
            (restarted.version(), weights(&restarted)),
            (1, vec![100, 0])
        );
        restarted.persist_to(&file).unwrap();
        assert_eq!(
            (restarted.version(), weights(&restarted)),
            (2, vec![0, 100])
        );
        assert_eq!(*restarted.subscribe().borrow(), 2);
    }

    #[test]
    fn a_refused_change_changes_nothing() {
        let cp = control_plane();
        let change = Change::SetRouteWeights {
            router: "svc-router".into(),
            route: "split".into(),
            weights: BTreeMap::from([("svc-v9".into(), 100)]),
        };
        assert!(cp.apply(&change).is_err());
        assert_eq!((cp.version(), weights(&cp)), (1, vec![100, 0]));
    }

    #[test]
    fn only_placed_nodes_of_this_mesh_are_admitted() {
        let mesh =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meshes/outpost-basic.yaml");
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut placement = Placement::default();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        placement.nodes.insert(
            "client".into(),
            crate::topology::NodePlacement {
                site: crate::topology::Site::Outpost,
                ingress: None,
                egress: addr,
                admin: addr,
                app: None,
                remote_ingress: None,
                tcp_egress: Default::default(),
                gateway_hop: None,
            },
        );
        let cp = ControlPlane::new(Mesh::load(&mesh).unwrap(), placement, tx);
        assert!(cp.admit("mesh/outpost/virtualNode/client").is_ok());
        for refused in [
            "mesh/outpost/virtualNode/svc-v1",
            "mesh/other/virtualNode/client",
            "client",
        ] {
            let status = cp.admit(refused).unwrap_err();
            assert_eq!(status.code(), tonic::Code::NotFound, "{refused}");
        }
    }
}
