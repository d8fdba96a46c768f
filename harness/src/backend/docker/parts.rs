//! The containers of one run on the Docker engine: created with a fixed address on their
//! site's network and ports published on the host's loopback, their output copied into
//! the work folder (the control plane's also onto the timeline), disconnected, paused
//! or restarted for a container fault, and removed at the end, even after a panic.

use super::topology::CP_ADMIN_PORT;
use crate::backend::running::Parts;
use crate::backend::{free_ports, http_ok};
use crate::control_plane::XdsLogLine;
use crate::plan::{Action, Part};
use crate::timeline::Timeline;
use crate::topology::Placement;
use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testcontainers::bollard::Docker;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkConnectRequest,
    NetworkDisconnectRequest, NetworkingConfig, PortBinding,
};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder,
};

/// The containers and networks of one run.
pub struct DockerParts {
    pub(super) docker: Docker,
    /// Networks made, region first.
    pub(super) networks: Vec<String>,
    /// Containers started, in start order.
    pub(super) containers: Vec<String>,
    /// Every part's container (the control plane's also while it is down), to
    /// disconnect, pause or restart it.
    pub(super) specs: BTreeMap<Part, ContainerSpec>,
    /// Containers paused now (unpaused before they are removed).
    pub(super) paused: BTreeSet<String>,
    pub(super) logs: PathBuf,
    /// The run's work folder, mounted into every container at the same path.
    pub(super) work: String,
    /// The labels of every container and network of the run.
    pub(super) labels: HashMap<String, String>,
    pub(super) timeline: Timeline,
    /// Copy each container's output into its log file (and the control plane's onto
    /// the timeline); each ends when its container stops.
    pub(super) log_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What one container runs.
#[derive(Debug, Clone)]
pub(super) struct ContainerSpec {
    /// The part it plays.
    pub(super) part: Part,
    pub(super) name: String,
    pub(super) image: String,
    pub(super) args: Vec<String>,
    /// (network, address) pairs; the first is where it is created.
    pub(super) networks: Vec<(String, Ipv4Addr)>,
    /// Its output also goes onto the timeline as xDS events.
    pub(super) xds_log: bool,
    /// Ports published on the host's loopback, for the harness: (port inside, port on
    /// the host). The host ports are chosen before the container is made and bound
    /// explicitly, so a restart or a reconnect to its network gets them back.
    pub(super) publish: Vec<(u16, u16)>,
    /// Environment variables (`NAME=value`).
    pub(super) env: Vec<String>,
}

/// `inside` ports paired with free ports on the host's loopback.
pub(super) fn publish(inside: &[u16]) -> Result<Vec<(u16, u16)>> {
    let host = free_ports(inside.len())?;
    Ok(inside.iter().copied().zip(host).collect())
}

/// A container's settings on a network: its fixed address there, and the part it
/// plays as a name the network's DNS answers (`control-plane`, `sidecar-client`, ...).
fn endpoint(ip: Ipv4Addr, part: &Part) -> EndpointSettings {
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        aliases: Some(vec![part.to_string().replace('/', "-")]),
        ..Default::default()
    }
}

/// Waits until `probe` says yes, failing at `deadline`.
pub(super) async fn wait_for<F, Fut>(
    what: &str,
    container: &str,
    deadline: Instant,
    mut probe: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if probe().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{what} (container {container}) was not ready in time; see its log in work/logs/"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl DockerParts {
    /// Creates and starts `spec`'s container with the work folder mounted, and copies
    /// its output into `logs/<name>.log`.
    pub(super) async fn start(&mut self, spec: &ContainerSpec) -> Result<()> {
        let (first_net, first_ip) = spec
            .networks
            .first()
            .context("a container needs a network")?;
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.args.clone()),
            env: Some(spec.env.clone()),
            labels: Some(self.labels.clone()),
            exposed_ports: Some(
                spec.publish
                    .iter()
                    .map(|(p, _)| format!("{p}/tcp"))
                    .collect(),
            ),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("{0}:{0}", self.work)]),
                network_mode: Some(first_net.clone()),
                port_bindings: Some(
                    spec.publish
                        .iter()
                        .map(|(inside, host)| {
                            let binding = PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some(host.to_string()),
                            };
                            (format!("{inside}/tcp"), Some(vec![binding]))
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    first_net.clone(),
                    endpoint(*first_ip, &spec.part),
                )])),
            }),
            ..Default::default()
        };
        self.docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::new()
                        .name(&spec.name)
                        .build(),
                ),
                body,
            )
            .await
            .with_context(|| format!("cannot create container {}", spec.name))?;
        self.containers.push(spec.name.clone());
        for (net, ip) in spec.networks.iter().skip(1) {
            self.docker
                .connect_network(
                    net,
                    NetworkConnectRequest {
                        container: spec.name.clone(),
                        endpoint_config: Some(endpoint(*ip, &spec.part)),
                    },
                )
                .await
                .with_context(|| format!("cannot connect {} to {net}", spec.name))?;
        }
        self.docker
            .start_container(&spec.name, None)
            .await
            .with_context(|| format!("cannot start container {}", spec.name))?;
        self.specs.insert(spec.part.clone(), spec.clone());
        self.follow_logs(spec);
        Ok(())
    }

    /// Where the harness reaches `port` of `part`'s container: its published port on
    /// the host's loopback.
    pub(super) fn mapped(&self, part: &Part, port: u16) -> Result<SocketAddr> {
        self.specs
            .get(part)
            .and_then(|s| s.publish.iter().find(|(inside, _)| *inside == port))
            .map(|(_, host)| SocketAddr::from((Ipv4Addr::LOCALHOST, *host)))
            .with_context(|| format!("{part} publishes no port {port}"))
    }

    /// `placement` with each address the harness dials (admin, egress, ingress, app,
    /// TCP egress) replaced by its published port on the host's loopback.
    pub(super) fn host_view(&self, placement: &Placement) -> Result<Placement> {
        let mut view = placement.clone();
        for (name, node) in &mut view.nodes {
            let sidecar = Part::Sidecar(name.clone());
            node.admin = self.mapped(&sidecar, node.admin.port())?;
            node.egress = self.mapped(&sidecar, node.egress.port())?;
            if let Some(ingress) = &mut node.ingress {
                *ingress = self.mapped(&sidecar, ingress.port())?;
            }
            for addr in node.tcp_egress.values_mut() {
                *addr = self.mapped(&sidecar, addr.port())?;
            }
            if let Some(app) = &mut node.app {
                *app = self.mapped(&Part::Service(name.clone()), app.port())?;
            }
        }
        Ok(view)
    }

    /// Puts a container fault on (`on`) or takes it off: a disconnect or pause is
    /// undone when taken off; a restart kills the container when put on and starts it
    /// again when taken off. Says what was done.
    pub async fn container_fault(
        &mut self,
        part: &Part,
        action: Action,
        on: bool,
    ) -> Result<Vec<String>> {
        let spec = self
            .specs
            .get(part)
            .cloned()
            .with_context(|| format!("no container plays {part}"))?;
        let name = spec.name.clone();
        match (action, on) {
            (Action::Disconnect, _) => {
                // The fault proxy leaves the outpost's network (its second): the region
                // side, and its API, stay up.
                let skip = usize::from(*part == Part::FaultProxy);
                let mut done = Vec::new();
                for (net, ip) in spec.networks.iter().skip(skip) {
                    if on {
                        let request = NetworkDisconnectRequest {
                            container: name.clone(),
                            force: Some(true),
                        };
                        self.docker
                            .disconnect_network(net, request)
                            .await
                            .with_context(|| format!("cannot disconnect {name} from {net}"))?;
                        done.push(format!("{name} disconnected from {net} ({ip})"));
                    } else {
                        let request = NetworkConnectRequest {
                            container: name.clone(),
                            endpoint_config: Some(endpoint(*ip, &spec.part)),
                        };
                        self.docker
                            .connect_network(net, request)
                            .await
                            .with_context(|| format!("cannot connect {name} to {net} again"))?;
                        done.push(format!("{name} connected to {net} again ({ip})"));
                    }
                }
                Ok(done)
            }
            (Action::Pause, true) => {
                self.docker
                    .pause_container(&name)
                    .await
                    .with_context(|| format!("cannot pause {name}"))?;
                self.paused.insert(name.clone());
                Ok(vec![format!("{name} paused")])
            }
            (Action::Pause, false) => {
                self.docker
                    .unpause_container(&name)
                    .await
                    .with_context(|| format!("cannot unpause {name}"))?;
                self.paused.remove(&name);
                Ok(vec![format!("{name} unpaused")])
            }
            (Action::Restart, true) => {
                self.remove(&name).await?;
                Ok(vec![format!("{name} killed (SIGKILL)")])
            }
            (Action::Restart, false) => {
                match part {
                    Part::ControlPlane => self.restart_control_plane().await?,
                    _ => self.start(&spec).await?,
                }
                Ok(vec![format!("{name} started again")])
            }
        }
    }

    /// Kills a container (SIGKILL) and removes it.
    async fn remove(&mut self, name: &str) -> Result<()> {
        if self.paused.remove(name) {
            let _ = self.docker.unpause_container(name).await;
        }
        self.docker
            .kill_container(
                name,
                Some(KillContainerOptionsBuilder::new().signal("SIGKILL").build()),
            )
            .await
            .with_context(|| format!("cannot kill {name}"))?;
        let _ = self
            .docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        self.containers.retain(|c| c != name);
        Ok(())
    }

    /// Copies the container's output into its log file, and the control plane's xDS
    /// lines onto the timeline.
    fn follow_logs(&mut self, spec: &ContainerSpec) {
        let docker = self.docker.clone();
        let name = spec.name.clone();
        let path = self.logs.join(format!("{}.log", spec.name));
        let timeline = spec.xds_log.then(|| self.timeline.clone());
        self.log_tasks.push(tokio::spawn(async move {
            let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            else {
                return;
            };
            let mut stream = docker.logs(
                &name,
                Some(
                    LogsOptionsBuilder::new()
                        .follow(true)
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            );
            let mut pending = Vec::new();
            while let Some(Ok(output)) = stream.next().await {
                let (bytes, stdout) = match &output {
                    LogOutput::StdOut { message } => (message, true),
                    LogOutput::StdErr { message } | LogOutput::Console { message } => {
                        (message, false)
                    }
                    LogOutput::StdIn { .. } => continue,
                };
                let _ = file.write_all(bytes);
                let Some(timeline) = timeline.as_ref().filter(|_| stdout) else {
                    continue;
                };
                pending.extend_from_slice(bytes);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    XdsLogLine::record(&line, timeline, 0);
                }
            }
        }));
    }

    /// Starts the control plane (again) and waits until it serves.
    pub(super) async fn start_control_plane(&mut self, deadline: Instant) -> Result<()> {
        let spec = self
            .specs
            .get(&Part::ControlPlane)
            .context("no control plane to start")?
            .clone();
        self.start(&spec).await?;
        let health = format!(
            "http://{}/healthz",
            self.mapped(&Part::ControlPlane, CP_ADMIN_PORT)?
        );
        wait_for("the control plane", &spec.name, deadline, || {
            let url = health.clone();
            async move { http_ok(&url).await }
        })
        .await
    }

    /// Kills the control plane's container (SIGKILL), as a crash in the region would.
    pub async fn kill_control_plane(&mut self) -> Result<()> {
        let name = self
            .specs
            .get(&Part::ControlPlane)
            .context("no control plane to kill")?
            .name
            .clone();
        self.remove(&name)
            .await
            .context("cannot kill the control plane's container")
    }

    /// Starts the control plane again; it resumes from the state it persisted.
    pub async fn restart_control_plane(&mut self) -> Result<()> {
        self.start_control_plane(Instant::now() + Duration::from_secs(30))
            .await
    }

    /// Removes every container (stopping it at once) and then the networks; waits for
    /// their output to be copied.
    pub async fn shutdown(mut self) {
        for name in std::mem::take(&mut self.paused) {
            let _ = self.docker.unpause_container(&name).await;
        }
        for name in self.containers.drain(..).rev() {
            let _ = self
                .docker
                .remove_container(
                    &name,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
        }
        for reader in self.log_tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        for name in self.networks.drain(..) {
            let _ = self.docker.remove_network(&name).await;
        }
    }
}

impl Drop for DockerParts {
    /// After a panic or an early return `shutdown` did not run: remove what is left
    /// with the `docker` CLI (a destructor cannot wait on the engine's API).
    fn drop(&mut self) {
        if !self.paused.is_empty() {
            let _ = std::process::Command::new("docker")
                .arg("unpause")
                .args(&self.paused)
                .output();
        }
        if !self.containers.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f"])
                .args(&self.containers)
                .output();
        }
        for network in &self.networks {
            let _ = std::process::Command::new("docker")
                .args(["network", "rm", network])
                .output();
        }
    }
}

/// The run's containers as the [`Parts`] of a running topology (locked while one is
/// disconnected, paused or restarted).
pub(super) struct Containers(pub tokio::sync::Mutex<DockerParts>);

#[async_trait]
impl Parts for Containers {
    async fn kill_control_plane(&self) -> Result<()> {
        self.0.lock().await.kill_control_plane().await
    }

    async fn restart_control_plane(&self) -> Result<()> {
        self.0.lock().await.restart_control_plane().await
    }

    async fn container_fault(&self, part: &Part, action: Action, on: bool) -> Result<Vec<String>> {
        self.0.lock().await.container_fault(part, action, on).await
    }

    async fn shutdown(self: Box<Self>) {
        self.0.into_inner().shutdown().await;
    }
}
