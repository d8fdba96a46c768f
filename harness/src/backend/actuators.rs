//! Actuators: the small interfaces through which the interpreter changes the system under
//! test. A backend provides them; the interpreter (`run`) never knows which backend it
//! talks to, so a new backend adds actuators, not a new run loop.

use crate::plan::{Action, Change, Fault, Link, Part};
use anyhow::Result;
use async_trait::async_trait;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Puts faults on the links between the sites and takes them off: toxics through a
/// Toxiproxy API, or rules and queues on a packet link.
#[async_trait]
pub trait LinkActuator: Send + Sync {
    /// Put `fault` on `link`; says what was set, one line each.
    async fn apply(&self, link: Link, fault: &Fault) -> Result<Vec<String>>;
    /// Take `fault` off `link`.
    async fn remove(&self, link: Link, fault: &Fault) -> Result<()>;
}

/// A link actuator shared (the topology's, and its parts' for the final heal).
#[async_trait]
impl<T: LinkActuator + ?Sized> LinkActuator for std::sync::Arc<T> {
    async fn apply(&self, link: Link, fault: &Fault) -> Result<Vec<String>> {
        (**self).apply(link, fault).await
    }

    async fn remove(&self, link: Link, fault: &Fault) -> Result<()> {
        (**self).remove(link, fault).await
    }
}

/// Disconnects, pauses and restarts the parts' containers.
#[async_trait]
pub trait ContainerActuator: Send + Sync {
    /// Put the fault on (a restart kills the part); says what was done.
    async fn apply(&self, part: &Part, action: Action) -> Result<Vec<String>>;
    /// Take it off (a restart starts the part again); says what was done.
    async fn remove(&self, part: &Part, action: Action) -> Result<Vec<String>>;
}

/// Kills and restarts the control plane, and asks it for mesh changes.
#[async_trait]
pub trait ControlPlaneActuator: Send + Sync {
    /// Kill it (SIGKILL), as a crash in the region would.
    async fn kill(&self) -> Result<()>;
    /// Start it again; it resumes from the state it persisted.
    async fn restart(&self) -> Result<()>;
    /// Ask for a mesh change; the config version it made, as the control plane names it
    /// (empty when it does not say: a foreign control plane's command may not).
    async fn change(&self, change: &Change) -> Result<String>;
}

/// Starts the load and the measurements that run on their own; each runs until its
/// duration is up (or the run stops) and records its results on the timeline itself.
#[async_trait]
pub trait LoadDriver: Send + Sync {
    /// tether's open-loop generator through the outpost, for `duration`.
    async fn start_load(&self, duration: Duration) -> Result<JoinHandle<()>>;
    /// goose user journeys, for `duration`.
    async fn start_journeys(&self, duration: Duration) -> Result<JoinHandle<()>>;
    /// A proxy-overhead measurement of `node`'s sidecar: closed-loop load with
    /// `connections` for `each` straight at its app, then for `each` through it.
    async fn measure_overhead(
        &self,
        node: &str,
        connections: usize,
        each: Duration,
    ) -> Result<JoinHandle<()>>;
}
