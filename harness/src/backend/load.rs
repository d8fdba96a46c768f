//! The load driver of a run: tether's open-loop generator, goose journeys and proxy
//! overhead measurements, all driven from the harness to the addresses of a running
//! topology; each records its own results on the timeline.

use super::actuators::LoadDriver;
use super::process::RUN_MARKER;
use crate::journeys::JourneySpec;
use crate::load::LoadSpec;
use crate::mesh::model::Protocol;
use crate::plan::Plan;
use crate::timeline::{Event, LoadRun, Timeline};
use crate::topology::{NodePlacement, Placement};
use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where progress lines go (`tether run` prints them on stderr).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Drives a plan's load from the harness.
pub struct HarnessLoad {
    plan: Plan,
    placement: Placement,
    egress: SocketAddr,
    tether: PathBuf,
    work_dir: PathBuf,
    timeline: Timeline,
    stop: CancellationToken,
    progress: Progress,
}

impl HarnessLoad {
    /// The load of `plan` into the topology placed at `placement`, with `tether` running
    /// journeys and overhead measurements as child processes (marked with `work_dir`);
    /// everything ends early when `stop` is cancelled.
    pub fn new(
        plan: &Plan,
        placement: &Placement,
        (tether, work_dir): (PathBuf, PathBuf),
        timeline: &Timeline,
        stop: &CancellationToken,
        progress: Progress,
    ) -> Result<HarnessLoad> {
        let egress = placement
            .nodes
            .get(&plan.load.through)
            .map(|n| n.egress)
            .context("load node has no sidecar")?;
        Ok(HarnessLoad {
            plan: plan.clone(),
            placement: placement.clone(),
            egress,
            tether,
            work_dir,
            timeline: timeline.clone(),
            stop: stop.clone(),
            progress,
        })
    }
}

#[async_trait]
impl LoadDriver for HarnessLoad {
    async fn start_load(&self, duration: Duration) -> Result<JoinHandle<()>> {
        let spec = LoadSpec {
            target: self.egress,
            host: self.plan.load.service.clone(),
            rate: self.plan.load.rate,
            duration,
            timeout: self.plan.load.timeout,
        };
        Ok(tokio::spawn(crate::load::run(
            spec,
            self.timeline.clone(),
            self.stop.clone(),
        )))
    }

    async fn start_journeys(&self, duration: Duration) -> Result<JoinHandle<()>> {
        let journeys = self.plan.load.journeys.as_ref().context("no journeys")?;
        let spec = JourneySpec {
            egress: self.egress,
            front: self.plan.load.service.clone(),
            back: journeys.calls.clone(),
            users: journeys.users,
            duration,
        };
        let (tether, work_dir) = (self.tether.clone(), self.work_dir.clone());
        let (timeline, stop, progress) = (
            self.timeline.clone(),
            self.stop.clone(),
            self.progress.clone(),
        );
        Ok(tokio::spawn(async move {
            let marker = (RUN_MARKER, work_dir.as_path());
            if let Err(e) = crate::journeys::drive(&tether, &spec, marker, timeline, stop).await {
                progress(&format!("journeys: {e:#}"));
            }
        }))
    }

    async fn measure_overhead(
        &self,
        node: &str,
        connections: usize,
        each: Duration,
    ) -> Result<JoinHandle<()>> {
        let placed = self
            .placement
            .nodes
            .get(node)
            .cloned()
            .ok_or_else(|| anyhow!("`{node}` is not placed"))?;
        let protocol = self
            .plan
            .mesh
            .node(node)
            .and_then(|n| n.listeners.first())
            .map(|l| *l.protocol);
        let measure = Overhead {
            tether: self.tether.clone(),
            work_dir: self.work_dir.clone(),
            connections,
            each,
        };
        let (node, timeline, stop, progress) = (
            node.to_string(),
            self.timeline.clone(),
            self.stop.clone(),
            self.progress.clone(),
        );
        Ok(tokio::spawn(async move {
            match measure.run(&node, &placed, protocol, &stop).await {
                Ok((direct, proxied)) => {
                    progress(&format!(
                        "  proxy overhead of {node}: {:.0} requests/s direct, {:.0} through its sidecar",
                        direct.requests_per_second, proxied.requests_per_second
                    ));
                    timeline.record(Event::ProxyOverhead {
                        node,
                        direct: Box::new(direct),
                        proxied: Box::new(proxied),
                    });
                }
                Err(e) => progress(&format!("  proxy overhead of {node} not measured: {e:#}")),
            }
        }))
    }
}

/// A proxy-overhead measurement: closed-loop load for `each` straight at a node's app,
/// then for `each` through its sidecar's ingress, each by a `tether load` child process
/// (whose saturation guard judges its own figures).
struct Overhead {
    tether: PathBuf,
    work_dir: PathBuf,
    connections: usize,
    each: Duration,
}

impl Overhead {
    async fn run(
        &self,
        node: &str,
        placed: &NodePlacement,
        protocol: Option<Protocol>,
        stop: &CancellationToken,
    ) -> Result<(LoadRun, LoadRun)> {
        let (app, ingress) = placed
            .app
            .zip(placed.ingress)
            .with_context(|| format!("`{node}` has no app and ingress"))?;
        let (protocol, path) = match protocol {
            Some(Protocol::Http2) => ("h2c", "/"),
            Some(Protocol::Grpc) => ("grpc", "/demo.Echo/Say"),
            _ => ("http1", "/"),
        };
        let direct = self
            .load(&format!("http://{app}{path}"), protocol, stop)
            .await?;
        let proxied = self
            .load(&format!("http://{ingress}{path}"), protocol, stop)
            .await?;
        Ok((direct, proxied))
    }

    /// One `tether load --json` run against `url`.
    async fn load(&self, url: &str, protocol: &str, stop: &CancellationToken) -> Result<LoadRun> {
        let mut cmd = tokio::process::Command::new(&self.tether);
        cmd.args(["load", url, "--protocol", protocol])
            .args(["-c", &self.connections.to_string()])
            .args(["-d", &format!("{}ms", self.each.as_millis()), "--json"])
            .env(RUN_MARKER, &self.work_dir)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = tokio::select! {
            out = cmd.output() => out.context("cannot run `tether load`")?,
            _ = stop.cancelled() => bail!("interrupted"),
        };
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "`tether load` gave no figures (exit {:?})",
                out.status.code()
            )
        })
    }
}
