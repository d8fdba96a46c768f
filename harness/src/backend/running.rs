//! A topology up and running, whichever backend brought it up: where the harness reaches
//! every part, and the actuators the interpreter calls. The process and Docker backends
//! are peers under it: each provides its [`Parts`] (what it started, how it kills and
//! restarts the control plane, what container faults it can make).

use super::actuators::LinkActuator;
use super::actuators::{ContainerActuator, ControlPlaneActuator};
use crate::control_plane::admin::ChangeClient;
use crate::envoy::AdminClient;
use crate::plan::{Action, Change, Part};
use crate::topology::Placement;
use anyhow::Result;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What a backend started: it kills and restarts the control plane, makes container
/// faults, and stops everything at the end.
#[async_trait]
pub trait Parts: Send + Sync {
    /// Kill the control plane (SIGKILL).
    async fn kill_control_plane(&self) -> Result<()>;
    /// Start the control plane again and wait until it serves.
    async fn restart_control_plane(&self) -> Result<()>;
    /// Put a container fault on (`on`) or take it off; says what was done.
    async fn container_fault(&self, part: &Part, action: Action, on: bool) -> Result<Vec<String>>;
    /// Make a mesh change some other way than the control plane's change API (a
    /// target's command); the version it made, or empty.
    async fn change(&self, change: &Change) -> Result<String> {
        anyhow::bail!("no way to make a `{}` change", change.kind())
    }
    /// Stop and remove everything it started.
    async fn shutdown(self: Box<Self>);
}

/// The topology, up and running.
pub struct RunningTopology {
    /// Where the harness reaches every node: its processes' addresses, or on Docker
    /// the ports its containers publish on the host's loopback.
    pub placement: Placement,
    /// The control plane's admin API (none for a target's foreign control plane).
    pub control_plane_admin: Option<SocketAddr>,
    /// Admin clients of the Envoys, by virtual node.
    pub envoys: BTreeMap<String, AdminClient>,
    /// Its change API; without one, changes go through the [`Parts`].
    changes: Option<ChangeClient>,
    /// Declared before `links`, so on drop the parts stop before a packet link's
    /// namespaces are deleted.
    parts: Box<dyn Parts>,
    /// The links between the sites, and how faults are put on them.
    pub links: Box<dyn LinkActuator>,
    /// A control plane on another machine: its clock minus ours and the uncertainty, µs.
    pub clock_offset: Option<(i64, u64)>,
}

impl std::fmt::Debug for RunningTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTopology")
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}

impl RunningTopology {
    /// The topology a backend brought up.
    pub fn new(
        placement: Placement,
        control_plane_admin: Option<SocketAddr>,
        envoys: BTreeMap<String, AdminClient>,
        links: Box<dyn LinkActuator>,
        parts: Box<dyn Parts>,
    ) -> RunningTopology {
        RunningTopology {
            placement,
            changes: control_plane_admin.map(ChangeClient::new),
            control_plane_admin,
            envoys,
            parts,
            links,
            clock_offset: None,
        }
    }

    /// Ask for mesh changes through `changes` instead (a control plane on another
    /// machine, whose API wants credentials).
    pub fn with_changes(mut self, changes: ChangeClient) -> RunningTopology {
        self.changes = Some(changes);
        self
    }

    /// The control plane's admin API, with the credentials it needs (none for a
    /// target's foreign control plane).
    pub fn control_plane_api(&self) -> Option<ChangeClient> {
        self.changes.clone()
    }

    /// The egress listener of `node`'s sidecar (where local callers and the load send).
    pub fn egress_of(&self, node: &str) -> Option<SocketAddr> {
        self.placement.nodes.get(node).map(|n| n.egress)
    }

    /// Stop everything: child processes get SIGTERM (SIGKILL after a grace period),
    /// containers are removed, then networks and namespaces.
    pub async fn shutdown(self) {
        self.parts.shutdown().await;
        drop(self.links);
    }
}

#[async_trait]
impl ControlPlaneActuator for RunningTopology {
    async fn kill(&self) -> Result<()> {
        self.parts.kill_control_plane().await
    }

    async fn restart(&self) -> Result<()> {
        self.parts.restart_control_plane().await
    }

    async fn change(&self, change: &Change) -> Result<String> {
        match &self.changes {
            Some(api) => api.change(change).await.map(|v| v.to_string()),
            None => self.parts.change(change).await,
        }
    }
}

#[async_trait]
impl ContainerActuator for RunningTopology {
    async fn apply(&self, part: &Part, action: Action) -> Result<Vec<String>> {
        self.parts.container_fault(part, action, true).await
    }

    async fn remove(&self, part: &Part, action: Action) -> Result<Vec<String>> {
        self.parts.container_fault(part, action, false).await
    }
}
