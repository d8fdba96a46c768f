//! A plan brought up as containers: the region and the outpost as two Docker networks,
//! the fault proxy on both carrying every cross-site connection, the control plane on
//! the region's, and per virtual node an Envoy container and a sample-service container
//! on its site's network.
//!
//! Every container gets a fixed address on its network (the networks are made with
//! subnets of their own for that), so the placement, the bootstraps and the control
//! plane's config are decided before anything starts, as on the process backend: the
//! endpoints the control plane hands out are addresses, as App Mesh's EDS are. Each
//! container is also known on its networks by the part it plays (`control-plane`,
//! `fault-proxy`, `sidecar-<node>`, `service-<node>`). The harness reaches admin
//! endpoints, the fault proxy's API and load targets through ports published on the
//! host's loopback (chosen free before each container is made and bound explicitly,
//! so a restarted or reconnected container gets the same ones), so it needs no route
//! into the networks. The run folder's `work/` is mounted into every
//! container at the same path (bootstraps, placement, the control plane's state);
//! each container's output is copied into `work/logs/`, the control plane's also onto
//! the timeline. Containers and networks carry [`MANAGED_LABEL`] and
//! [`RUN_LABEL`] (the harness's pid), so a run removes what a killed run left.

use super::images::{ImageSpec, ensure};
use super::{MANAGED_LABEL, engine, named_image};
use crate::backend::BackendOptions;
use crate::backend::process::{
    control_plane_args, create_link_proxies, envoy_args, free_ports, http_ok,
};
use crate::control_plane::XdsLogLine;
use crate::envoy::AdminClient;
use crate::faults::client::ToxiproxyClient;
use crate::faults::container::{Action, ContainerFault, Part};
use crate::suite::Plan;
use crate::timeline::Timeline;
use crate::topology::{Placement, Role, Site};
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testcontainers::bollard::Docker;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, NetworkingConfig,
    PortBinding,
};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};

/// The label naming the process (pid) of the harness that made a container or network.
pub const RUN_LABEL: &str = "io.tether.run";

/// Ports inside containers (each container has an address of its own).
const ADMIN_PORT: u16 = 9901;
const EGRESS_PORT: u16 = 15001;
const INGRESS_PORT: u16 = 15000;
const TCP_EGRESS_BASE: u16 = 15100;
const APP_PORT: u16 = 8080;
const XDS_PORT: u16 = 18000;
const CP_ADMIN_PORT: u16 = 18001;
const FAULT_API_PORT: u16 = 8474;
/// The fault proxy's data-link listeners: one per serving node, from here up.
const REMOTE_INGRESS_BASE: u16 = 20000;

/// The containers and networks of one run.
pub struct DockerParts {
    docker: Docker,
    /// Networks made, region first.
    networks: Vec<String>,
    /// Containers started, in start order.
    containers: Vec<String>,
    /// Every part's container (the control plane's also while it is down), to
    /// disconnect, pause or restart it.
    specs: BTreeMap<Part, ContainerSpec>,
    /// Containers paused now (unpaused before they are removed).
    paused: BTreeSet<String>,
    logs: PathBuf,
    /// The run's work folder, mounted into every container at the same path.
    work: String,
    /// The labels of every container and network of the run.
    labels: HashMap<String, String>,
    timeline: Timeline,
    /// Copy each container's output into its log file (and the control plane's onto
    /// the timeline); each ends when its container stops.
    log_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What one container runs.
#[derive(Debug, Clone)]
struct ContainerSpec {
    /// The part it plays.
    part: Part,
    name: String,
    image: String,
    args: Vec<String>,
    /// (network, address) pairs; the first is where it is created.
    networks: Vec<(String, Ipv4Addr)>,
    /// Its output also goes onto the timeline as xDS events.
    xds_log: bool,
    /// Ports published on the host's loopback, for the harness: (port inside, port on
    /// the host). The host ports are chosen before the container is made and bound
    /// explicitly, so a restart or a reconnect to its network gets them back.
    publish: Vec<(u16, u16)>,
    /// Environment variables (`NAME=value`).
    env: Vec<String>,
}

/// `inside` ports paired with free ports on the host's loopback.
fn publish(inside: &[u16]) -> Result<Vec<(u16, u16)>> {
    let host = free_ports(inside.len())?;
    Ok(inside.iter().copied().zip(host).collect())
}

/// Two /24 subnets (region, outpost) no other network uses, as networks made with them.
async fn make_networks(
    docker: &Docker,
    prefix: &str,
    labels: &HashMap<String, String>,
) -> Result<[(String, [u8; 3]); 2]> {
    let mut made: Vec<(String, [u8; 3])> = Vec::new();
    let start = (std::process::id() % 200) as u8;
    for attempt in 0..200u8 {
        if made.len() == 2 {
            break;
        }
        let third = start.wrapping_add(attempt.wrapping_mul(7)) % 250;
        let base = [10, 213, third];
        // Numbered so the region's sorts first: the engine publishes a container's
        // ports on its first network by name, and the fault proxy's API must stay
        // reachable while the proxy is cut off the outpost's.
        let site = if made.is_empty() {
            "1-region"
        } else {
            "2-outpost"
        };
        let name = format!("{prefix}-{site}");
        let created = docker
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels.clone()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(format!("10.213.{third}.0/24")),
                        gateway: Some(format!("10.213.{third}.1")),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        match created {
            Ok(_) => made.push((name, base)),
            // Taken by another network: try the next subnet.
            Err(e) if e.to_string().contains("overlap") => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create network {name}")),
        }
    }
    match <[(String, [u8; 3]); 2]>::try_from(made) {
        Ok(both) => Ok(both),
        Err(made) => {
            for (name, _) in made {
                let _ = docker.remove_network(&name).await;
            }
            bail!("no free 10.213.x.0/24 subnet for the run's networks")
        }
    }
}

/// Removes containers and networks whose harness process is gone (killed runs).
async fn remove_stale(docker: &Docker) {
    let filters = HashMap::from([("label", vec![RUN_LABEL.to_string()])]);
    let alive = |labels: Option<&HashMap<String, String>>| {
        labels
            .and_then(|l| l.get(RUN_LABEL))
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    };
    if let Ok(containers) = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
    {
        for c in containers.iter().filter(|c| !alive(c.labels.as_ref())) {
            if let Some(id) = &c.id {
                let _ = docker
                    .remove_container(
                        id,
                        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                    )
                    .await;
            }
        }
    }
    if let Ok(networks) = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
    {
        for n in networks.iter().filter(|n| !alive(n.labels.as_ref())) {
            if let Some(name) = &n.name {
                let _ = docker.remove_network(name).await;
            }
        }
    }
}

/// What [`up`] brought up, for [`crate::backend::RunningTopology`].
pub struct Up {
    /// Every node's addresses as the harness reaches them (published ports).
    pub placement: Placement,
    /// The control plane's admin API (published port).
    pub control_plane_admin: SocketAddr,
    /// Admin clients of the Envoys, by virtual node.
    pub envoys: BTreeMap<String, AdminClient>,
    /// The fault proxy's API.
    pub fault_api: ToxiproxyClient,
    /// The fault proxies by link name (`xds`, `data`).
    pub proxies: BTreeMap<String, Vec<String>>,
}

/// The images a run uses, by reference.
struct Images {
    /// tether's: control plane, sample services, and the fault proxy unless named.
    tether: String,
    /// Envoy: built from the provisioned binary, or the suite's.
    envoy: String,
    /// A Toxiproxy image the suite names.
    toxiproxy: Option<String>,
    /// The Envoy containers' environment: an official image's entrypoint runs Envoy
    /// as uid 101 unless told otherwise, and the bootstraps are the harness's files.
    envoy_env: Vec<String>,
}

/// The images, built or found; the ones the suite names are found or pulled.
async fn images(plan: &Plan, opts: &BackendOptions) -> Result<Images> {
    let named = plan.suite.images.as_ref();
    let tether = ensure(&ImageSpec::tether(&opts.tether_bin)).await?;
    let (envoy, envoy_env) = match named.and_then(|i| i.envoy.as_ref()) {
        Some(name) => (named_image(name).await?, vec!["ENVOY_UID=0".to_string()]),
        None => (
            ensure(&ImageSpec::envoy(&opts.envoy.path))
                .await?
                .reference(),
            Vec::new(),
        ),
    };
    let toxiproxy = match named.and_then(|i| i.fault_proxy.as_ref()) {
        Some(name) => Some(named_image(name).await?),
        None => None,
    };
    Ok(Images {
        tether: tether.reference(),
        envoy,
        toxiproxy,
        envoy_env,
    })
}

/// `base.host`.
fn ip(base: [u8; 3], host: u8) -> Ipv4Addr {
    Ipv4Addr::new(base[0], base[1], base[2], host)
}

/// Brings `plan` up on Docker. On error, what already started is removed.
pub async fn up(
    plan: &Plan,
    opts: &BackendOptions,
    timeline: &Timeline,
) -> Result<(Up, DockerParts)> {
    let docker = engine()?;
    remove_stale(&docker).await;
    let deadline = Instant::now() + opts.ready_timeout;
    let logs = opts.work_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let images = images(plan, opts).await?;
    let prefix = format!(
        "tether-{}-{}",
        std::process::id(),
        crate::timeline::now_unix_ms() % 100_000
    );
    let labels = HashMap::from([
        (MANAGED_LABEL.to_string(), "true".to_string()),
        (RUN_LABEL.to_string(), std::process::id().to_string()),
    ]);
    let [region, outpost] = make_networks(&docker, &prefix, &labels).await?;
    let mut parts = DockerParts {
        docker,
        networks: vec![region.0.clone(), outpost.0.clone()],
        containers: Vec::new(),
        specs: BTreeMap::new(),
        paused: BTreeSet::new(),
        logs,
        work: opts.work_dir.display().to_string(),
        labels,
        timeline: timeline.clone(),
        log_tasks: Vec::new(),
    };
    let sites = Sites { region, outpost };
    match bring_up(plan, opts, &mut parts, &prefix, deadline, &images, &sites).await {
        Ok(up) => Ok((up, parts)),
        Err(e) => {
            parts.shutdown().await;
            Err(e)
        }
    }
}

/// The two networks: (name, first three octets).
struct Sites {
    region: (String, [u8; 3]),
    outpost: (String, [u8; 3]),
}

impl Sites {
    fn of(&self, site: Site) -> &(String, [u8; 3]) {
        match site {
            Site::Region => &self.region,
            Site::Outpost => &self.outpost,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn bring_up(
    plan: &Plan,
    opts: &BackendOptions,
    parts: &mut DockerParts,
    prefix: &str,
    deadline: Instant,
    images: &Images,
    sites: &Sites,
) -> Result<Up> {
    // Fixed addresses: .2 the fault proxy (on both networks), .3 the control plane,
    // then per node an Envoy and its app.
    let fault_proxy = |site: Site| ip(sites.of(site).1, 2);
    let cp_ip = ip(sites.region.1, 3);
    let mut hosts: BTreeMap<&str, (Ipv4Addr, Ipv4Addr, u16)> = BTreeMap::new();
    let mut next_host = [10u8, 10u8];
    for (index, (name, site)) in plan.sites.iter().enumerate() {
        let slot = &mut next_host[usize::from(*site == Site::Outpost)];
        if *slot > 250 {
            bail!("the Docker backend places at most 120 virtual nodes per site");
        }
        let base = sites.of(*site).1;
        hosts.insert(
            name,
            (
                ip(base, *slot),
                ip(base, *slot + 1),
                REMOTE_INGRESS_BASE + index as u16,
            ),
        );
        *slot += 2;
    }
    let placement = Placement::assign(
        &plan.mesh,
        &plan.sites,
        |node, site, role| {
            let (envoy, app, remote) = hosts[node];
            match role {
                Role::Admin => SocketAddr::from((envoy, ADMIN_PORT)),
                Role::Egress => SocketAddr::from((envoy, EGRESS_PORT)),
                Role::Ingress => SocketAddr::from((envoy, INGRESS_PORT)),
                Role::App => SocketAddr::from((app, APP_PORT)),
                // The other site dials the fault proxy's address on its own network.
                Role::RemoteIngress => {
                    let other = if site == Site::Outpost {
                        Site::Region
                    } else {
                        Site::Outpost
                    };
                    SocketAddr::from((fault_proxy(other), remote))
                }
                Role::TcpEgress(i) => SocketAddr::from((envoy, TCP_EGRESS_BASE + i as u16)),
            }
        },
        true,
    );

    // The fault proxy, on both networks.
    let (image, args) = match &images.toxiproxy {
        Some(toxiproxy) => (
            toxiproxy.clone(),
            vec!["-host=0.0.0.0".into(), format!("-port={FAULT_API_PORT}")],
        ),
        None => (
            images.tether.clone(),
            vec![
                "fault-proxy".into(),
                "--host".into(),
                "0.0.0.0".into(),
                "--port".into(),
                FAULT_API_PORT.to_string(),
            ],
        ),
    };
    let fp = ContainerSpec {
        part: Part::FaultProxy,
        name: format!("{prefix}-fault-proxy"),
        image,
        args,
        networks: vec![
            (sites.region.0.clone(), fault_proxy(Site::Region)),
            (sites.outpost.0.clone(), fault_proxy(Site::Outpost)),
        ],
        xds_log: false,
        publish: publish(&[FAULT_API_PORT])?,
        env: Vec::new(),
    };
    parts.start(&fp).await?;
    let fault_api_addr = parts.mapped(&Part::FaultProxy, FAULT_API_PORT)?;
    let api = ToxiproxyClient::new(&format!("http://{fault_api_addr}"))?;
    wait_for("the fault proxy", &fp.name, deadline, || {
        let api = api.clone();
        async move { api.version().await.is_ok() }
    })
    .await?;
    let xds_addr = SocketAddr::from((cp_ip, XDS_PORT));
    let xds_link = SocketAddr::from((fault_proxy(Site::Outpost), XDS_PORT));
    let proxies = create_link_proxies(&api, &placement, xds_link, xds_addr).await?;

    // The control plane, in the region.
    let mesh_file = opts.work_dir.join("mesh.yaml");
    std::fs::copy(&plan.mesh_path, &mesh_file).with_context(|| {
        format!(
            "cannot copy {} into the work folder",
            plan.mesh_path.display()
        )
    })?;
    let placement_file = opts.work_dir.join("placement.json");
    std::fs::write(&placement_file, serde_json::to_vec_pretty(&placement)?)?;
    let control_plane = ContainerSpec {
        part: Part::ControlPlane,
        name: format!("{prefix}-control-plane"),
        image: images.tether.clone(),
        args: control_plane_args(
            &mesh_file,
            &placement_file,
            &opts.work_dir,
            xds_addr,
            SocketAddr::from((cp_ip, CP_ADMIN_PORT)),
        ),
        networks: vec![(sites.region.0.clone(), cp_ip)],
        xds_log: true,
        publish: publish(&[CP_ADMIN_PORT])?,
        env: Vec::new(),
    };
    parts.specs.insert(Part::ControlPlane, control_plane);
    parts.start_control_plane(deadline).await?;
    let cp_admin = parts.mapped(&Part::ControlPlane, CP_ADMIN_PORT)?;

    // Sample services, then their sidecars.
    for (name, node) in &placement.nodes {
        let Some(app) = node.app else { continue };
        let spec = ContainerSpec {
            part: Part::Service(name.clone()),
            name: format!("{prefix}-service-{name}"),
            image: images.tether.clone(),
            args: vec![
                "service".into(),
                "--name".into(),
                name.clone(),
                "--listen".into(),
                app.to_string(),
                "--egress".into(),
                node.egress.to_string(),
            ],
            networks: vec![(sites.of(node.site).0.clone(), hosts[name.as_str()].1)],
            xds_log: false,
            publish: publish(&[app.port()])?,
            env: Vec::new(),
        };
        parts.start(&spec).await?;
        let url = format!("http://{}/healthz", parts.mapped(&spec.part, app.port())?);
        wait_for(&format!("service {name}"), &spec.name, deadline, || {
            let url = url.clone();
            async move { http_ok(&url).await }
        })
        .await?;
    }
    let mut envoys = BTreeMap::new();
    for (name, node) in &placement.nodes {
        let xds = if node.site == Site::Outpost {
            xds_link
        } else {
            xds_addr
        };
        let spec = ContainerSpec {
            part: Part::Sidecar(name.clone()),
            name: format!("{prefix}-envoy-{name}"),
            image: images.envoy.clone(),
            args: envoy_args(plan, &opts.work_dir, name, node.admin, xds)?,
            networks: vec![(sites.of(node.site).0.clone(), hosts[name.as_str()].0)],
            xds_log: false,
            publish: publish(
                &[Some(node.admin), Some(node.egress), node.ingress]
                    .into_iter()
                    .flatten()
                    .chain(node.tcp_egress.values().copied())
                    .map(|a| a.port())
                    .collect::<Vec<_>>(),
            )?,
            env: images.envoy_env.clone(),
        };
        parts.start(&spec).await?;
        let admin = parts.mapped(&spec.part, node.admin.port())?;
        envoys.insert(name.clone(), (spec.name, AdminClient::new(admin)));
    }
    let mut ready = BTreeMap::new();
    for (name, (container, admin)) in envoys {
        let probe = admin.clone();
        wait_for(&format!("envoy {name}"), &container, deadline, || {
            let a = probe.clone();
            async move { a.ready().await }
        })
        .await?;
        ready.insert(name, admin);
    }
    Ok(Up {
        placement: parts.host_view(&placement)?,
        control_plane_admin: cp_admin,
        envoys: ready,
        fault_api: api,
        proxies,
    })
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
async fn wait_for<F, Fut>(
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
    async fn start(&mut self, spec: &ContainerSpec) -> Result<()> {
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
    fn mapped(&self, part: &Part, port: u16) -> Result<SocketAddr> {
        self.specs
            .get(part)
            .and_then(|s| s.publish.iter().find(|(inside, _)| *inside == port))
            .map(|(_, host)| SocketAddr::from((Ipv4Addr::LOCALHOST, *host)))
            .with_context(|| format!("{part} publishes no port {port}"))
    }

    /// `placement` with each address the harness dials (admin, egress, ingress, app,
    /// TCP egress) replaced by its published port on the host's loopback.
    fn host_view(&self, placement: &Placement) -> Result<Placement> {
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
        fault: &ContainerFault,
        on: bool,
    ) -> Result<Vec<String>> {
        let spec = self
            .specs
            .get(&fault.part)
            .cloned()
            .with_context(|| format!("no container plays {}", fault.part))?;
        let name = spec.name.clone();
        match (fault.action, on) {
            (Action::Disconnect, _) => {
                // The fault proxy leaves the outpost's network (its second): the region
                // side, and its API, stay up.
                let skip = usize::from(fault.part == Part::FaultProxy);
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
                match fault.part {
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
                    XdsLogLine::record(&line, timeline);
                }
            }
        }));
    }

    /// Starts the control plane (again) and waits until it serves.
    async fn start_control_plane(&mut self, deadline: Instant) -> Result<()> {
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
