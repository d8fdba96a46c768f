//! The process backend: control plane, fault proxy, sample services and Envoys as child
//! processes on 127.0.0.1, with every cross-site connection through the fault proxy; or,
//! with a packet link, each site's processes in its own network namespace, the two joined
//! by a veth pair (and each reachable from the harness by one of its own).
//!
//! Children die with the harness: each is killed when its handle drops (success, failure,
//! panic) and, through `PR_SET_PDEATHSIG`, when the harness itself is killed.

use super::docker::topology::DockerParts;
use super::links::Links;
use crate::control_plane::XdsLogLine;
use crate::envoy::{AdminClient, EnvoyBinary, bootstrap};
use crate::faults::client::ToxiproxyClient;
use crate::faults::packet::{self, PacketLink};
use crate::suite::{LinkKind, Plan};
use crate::timeline::Timeline;
use crate::topology::{Placement, Site};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// What the process backend needs besides the plan.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// The `tether` binary, which also plays control plane, fault proxy and service.
    pub tether_bin: PathBuf,
    /// The Envoy binary.
    pub envoy: EnvoyBinary,
    /// Where configs and logs of the children go.
    pub work_dir: PathBuf,
    /// How long bring-up may take before it counts as an environment failure.
    pub ready_timeout: Duration,
    /// The fault proxy to run (proxy links on processes; the Docker backend runs
    /// tether's own, or the Toxiproxy image a suite names).
    pub fault_proxy: crate::faults::FaultProxy,
    /// Processes or containers.
    pub backend: super::Backend,
}

/// A child process the topology owns.
struct Managed {
    name: String,
    child: Child,
}

/// The topology, up and running.
pub struct RunningTopology {
    /// Where the harness reaches every node: its processes' addresses, or on Docker
    /// the ports its containers publish on the host's loopback.
    pub placement: Placement,
    /// The control plane's admin API.
    pub control_plane_admin: SocketAddr,
    /// Admin clients of the Envoys, by virtual node.
    pub envoys: BTreeMap<String, AdminClient>,
    children: Vec<Managed>,
    /// Copy the control plane's log onto the timeline; each ends when its process exits.
    log_readers: Vec<tokio::task::JoinHandle<()>>,
    /// How to (re)start the control plane.
    control_plane: ControlPlaneCommand,
    timeline: Timeline,
    /// The links between the sites. Declared after `children`, so on drop the children
    /// are killed before a packet link's namespaces are deleted.
    pub links: Links,
    /// On the Docker backend: the containers and networks (no `children` then); locked
    /// to disconnect, pause or restart one while a phase runs.
    docker: Option<tokio::sync::Mutex<DockerParts>>,
}

/// The command line and log of the control plane, kept to restart it.
#[derive(Debug, Clone, Default)]
struct ControlPlaneCommand {
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    health: String,
    /// The region's network namespace, with a packet link.
    netns: Option<String>,
}

/// The name the control plane's process has among the children.
const CONTROL_PLANE: &str = "control plane";

impl std::fmt::Debug for RunningTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTopology")
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}

/// A packet link for this run, reachable from the harness, after deleting the
/// namespaces of runs that were killed before they could.
fn packet_sites() -> Result<(PacketLink, packet::SiteAddresses)> {
    let _ = packet::cleanup_stale(NAMESPACE_ROOT);
    let link = PacketLink::create(&packet::unique_prefix(NAMESPACE_ROOT))
        .context("a packet link needs network namespaces")?;
    let sites = link
        .reach_from_host()
        .context("cannot reach the packet link's namespaces from the harness")?;
    Ok((link, sites))
}

/// The start of the name of every network namespace a run makes.
pub const NAMESPACE_ROOT: &str = "tether";

/// Free loopback ports, reserved together so they differ from each other.
///
/// They are taken below the kernel's ephemeral range (`ip_local_port_range`), so that no
/// outgoing connection on the machine can be given one as its source port between now and
/// the moment the child that owns it binds it.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_000 + 2 * n as u16));
    let span = (high - low) as u64;
    // Start somewhere different for every run so parallel runs rarely probe the same
    // ports; within this process (tests bring up topologies side by side), never hand
    // out a port twice.
    static GIVEN: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let seed = std::process::id() as u64 * 7919 + crate::timeline::now_unix_ms();
    let mut held = Vec::with_capacity(n);
    for i in 0..span {
        if held.len() == n {
            break;
        }
        let port = low + ((seed + i * 13) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    given.extend(
        held.iter()
            .filter_map(|l| Some(l.local_addr().ok()?.port())),
    );
    if held.len() < n {
        bail!("cannot find {n} free loopback ports between {low} and {high}");
    }
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The environment variable every child of a run carries: the run's work folder, so a
/// leftover process can be traced to the run that started it.
pub const RUN_MARKER: &str = "TETHER_RUN_DIR";

/// Start `program args` with its output in `log` (inside `<work dir>/logs/`), killed when dropped or when we die.
/// With `netns`, the child runs in that network namespace.
fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
    piped_stdout: bool,
    netns: Option<&str>,
) -> Result<Managed> {
    let work_dir = log
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    // Appended to, so a restarted part keeps the log of its earlier life.
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot create {}", log.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env(RUN_MARKER, work_dir)
        .stdin(Stdio::null())
        .stderr(log_file.try_clone()?)
        .kill_on_drop(true);
    if piped_stdout {
        cmd.stdout(Stdio::piped());
    } else {
        cmd.stdout(log_file);
    }
    let namespace = netns
        .map(|ns| {
            let path = Path::new(packet::NETNS_DIR).join(ns);
            std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))
        })
        .transpose()?;
    // SAFETY: prctl and setns are async-signal-safe system calls. prctl asks the kernel
    // to kill the child when the thread that spawned it exits, so nothing outlives the
    // harness; setns moves the child into its site's namespace (the file stays open in
    // the closure until the child is started).
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Some(ns) = &namespace
                && libc::setns(std::os::fd::AsRawFd::as_raw_fd(ns), libc::CLONE_NEWNET) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {name} ({})", program.display()))?;
    Ok(Managed {
        name: name.to_string(),
        child,
    })
}

/// Wait until `probe` says yes, the child is still alive, and the deadline has not passed.
async fn wait_until<F, Fut>(
    what: &str,
    child: &mut Managed,
    deadline: Instant,
    log: &Path,
    mut probe: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if let Some(status) = child.child.try_wait()? {
            bail!(
                "{what} exited during start-up ({status}); see {}",
                log.display()
            );
        }
        if probe().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} was not ready in time; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// On a fault proxy: the `xds` proxy (`xds_link` to the control plane at `xds_addr`)
/// and a `data-<node>` proxy per node the other site reaches; the proxies by link name.
pub(crate) async fn create_link_proxies(
    api: &ToxiproxyClient,
    placement: &Placement,
    xds_link: SocketAddr,
    xds_addr: SocketAddr,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut proxies = BTreeMap::new();
    api.create_proxy("xds", &xds_link.to_string(), &xds_addr.to_string())
        .await
        .map_err(|e| anyhow!("cannot create the xds link proxy: {e}"))?;
    proxies.insert("xds".to_string(), vec!["xds".to_string()]);
    for (name, node) in &placement.nodes {
        if let (Some(remote), Some(ingress)) = (node.remote_ingress, node.ingress) {
            let proxy = format!("data-{name}");
            api.create_proxy(&proxy, &remote.to_string(), &ingress.to_string())
                .await
                .map_err(|e| anyhow!("cannot create the data link proxy {proxy}: {e}"))?;
            proxies
                .entry("data".to_string())
                .or_insert_with(Vec::new)
                .push(proxy);
        }
    }
    Ok(proxies)
}

/// The arguments of `tether control-plane`, its state kept in `work_dir`.
pub(crate) fn control_plane_args(
    mesh: &Path,
    placement_file: &Path,
    work_dir: &Path,
    xds_addr: SocketAddr,
    admin: SocketAddr,
) -> Vec<String> {
    vec![
        "control-plane".into(),
        "--mesh".into(),
        mesh.display().to_string(),
        "--placement".into(),
        placement_file.display().to_string(),
        "--xds-listen".into(),
        xds_addr.to_string(),
        "--admin-listen".into(),
        admin.to_string(),
        "--state".into(),
        work_dir
            .join("control-plane-state.json")
            .display()
            .to_string(),
    ]
}

/// Writes the bootstrap of `node`'s Envoy (admin at `admin`, the control plane at
/// `xds`) into `work_dir`; the arguments Envoy starts with.
pub(crate) fn envoy_args(
    plan: &Plan,
    work_dir: &Path,
    node: &str,
    admin: SocketAddr,
    xds: SocketAddr,
) -> Result<Vec<String>> {
    let config = bootstrap::bootstrap(&plan.mesh.node_id(node), admin, xds, &plan.xds_for(node));
    let config_file = work_dir.join(format!("envoy-{node}.json"));
    std::fs::write(&config_file, serde_json::to_vec_pretty(&config)?)?;
    Ok(vec![
        "-c".into(),
        config_file.display().to_string(),
        "--disable-hot-restart".into(),
        "--concurrency".into(),
        "1".into(),
        "--log-level".into(),
        "warn".into(),
    ])
}

/// Whether `url` answers a GET with a 2xx status within half a second.
pub(crate) async fn http_ok(url: &str) -> bool {
    match reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_millis(500))
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

impl RunningTopology {
    /// Bring `plan` up. Control-plane log lines are recorded on `timeline` as they come.
    pub async fn up(
        plan: &Plan,
        opts: &BackendOptions,
        timeline: &Timeline,
    ) -> Result<RunningTopology> {
        if opts.backend == super::Backend::Docker {
            return Self::up_on_docker(plan, opts, timeline).await;
        }
        let logs = opts.work_dir.join("logs");
        std::fs::create_dir_all(&logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        let deadline = Instant::now() + opts.ready_timeout;
        // Addresses for everything, decided up front.
        // How the sites are joined, and the address each site's processes listen on.
        let packet_link = match plan.link {
            LinkKind::Proxy => None,
            LinkKind::Packet => Some(packet_sites()?),
        };
        let addresses = packet_link.as_ref().map(|(_, sites)| *sites);
        let site_ip = |site: Site| match addresses {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(sites) if site == Site::Outpost => IpAddr::V4(sites.outpost),
            Some(sites) => IpAddr::V4(sites.region),
        };
        let namespaces = packet_link
            .as_ref()
            .map(|(link, _)| (link.outpost_ns().to_string(), link.region_ns().to_string()));
        let site_ns = |site: Site| {
            namespaces.clone().map(|(outpost, region)| match site {
                Site::Outpost => outpost,
                Site::Region => region,
            })
        };
        // Addresses for everything, decided up front.
        let ports = free_ports(4 + Placement::addresses_needed(&plan.mesh, &plan.sites))?;
        let mut next_port = ports.into_iter();
        let mut next = || next_port.next().expect("free_ports gave enough ports");
        let region = site_ip(Site::Region);
        let (xds_addr, cp_admin, fault_api) = (
            SocketAddr::new(region, next()),
            SocketAddr::new(region, next()),
            loopback(next()),
        );
        // Outpost sidecars reach the control plane across the link: through its fault
        // proxy, or across the wire to the region's address.
        let xds_link = match addresses {
            None => loopback(next()),
            Some(_) => xds_addr,
        };
        let placement = Placement::assign(
            &plan.mesh,
            &plan.sites,
            |_, site, _| SocketAddr::new(site_ip(site), next()),
            packet_link.is_none(),
        );
        let links = match packet_link {
            Some((link, _)) => Links::Packet {
                link,
                active: Default::default(),
            },
            None => Links::Proxy {
                api: ToxiproxyClient::new(&format!("http://{fault_api}"))?,
                proxies: BTreeMap::new(),
            },
        };
        let mut topo = RunningTopology {
            placement,
            control_plane_admin: cp_admin,
            envoys: BTreeMap::new(),
            children: Vec::new(),
            log_readers: Vec::new(),
            control_plane: ControlPlaneCommand::default(),
            timeline: timeline.clone(),
            links,
            docker: None,
        };
        // On any error below, `topo` drops and kills what already started.
        if let Links::Proxy { api, proxies } = &mut topo.links {
            // The fault proxy, and one proxy per cross-site connection.
            let log = logs.join("fault-proxy.log");
            let (program, args) = opts.fault_proxy.command(&opts.tether_bin, fault_api);
            let mut fp = spawn("fault proxy", &program, &args, &log, false, None)?;
            let probe = api.clone();
            wait_until("fault proxy", &mut fp, deadline, &log, || {
                let c = probe.clone();
                async move { c.version().await.is_ok() }
            })
            .await?;
            topo.children.push(fp);
            *proxies = create_link_proxies(api, &topo.placement, xds_link, xds_addr).await?;
        }

        // The control plane, in the region: its log lines go onto the timeline.
        let placement_file = opts.work_dir.join("placement.json");
        std::fs::write(&placement_file, serde_json::to_vec_pretty(&topo.placement)?)?;
        let args = control_plane_args(
            &plan.mesh_path,
            &placement_file,
            &opts.work_dir,
            xds_addr,
            cp_admin,
        );
        topo.control_plane = ControlPlaneCommand {
            program: opts.tether_bin.clone(),
            args,
            log: logs.join("control-plane.log"),
            health: format!("http://{cp_admin}/healthz"),
            netns: site_ns(Site::Region),
        };
        topo.start_control_plane(deadline).await?;

        // Sample services, then their sidecars.
        for (name, node) in topo.placement.nodes.clone() {
            if let Some(app) = node.app {
                let log = logs.join(format!("service-{name}.log"));
                let args = vec![
                    "service".into(),
                    "--name".into(),
                    name.clone(),
                    "--listen".into(),
                    app.to_string(),
                    "--egress".into(),
                    node.egress.to_string(),
                ];
                let mut svc = spawn(
                    &format!("service {name}"),
                    &opts.tether_bin,
                    &args,
                    &log,
                    false,
                    site_ns(node.site).as_deref(),
                )?;
                let url = format!("http://{app}/healthz");
                wait_until(&format!("service {name}"), &mut svc, deadline, &log, || {
                    http_ok(&url)
                })
                .await?;
                topo.children.push(svc);
            }
        }
        let mut starting = Vec::new();
        for (name, node) in &topo.placement.nodes {
            // Outpost sidecars reach the control plane across the link; region ones directly.
            let xds = if node.site == Site::Outpost {
                xds_link
            } else {
                xds_addr
            };
            let args = envoy_args(plan, &opts.work_dir, name, node.admin, xds)?;
            let log = logs.join(format!("envoy-{name}.log"));
            let envoy = spawn(
                &format!("envoy {name}"),
                &opts.envoy.path,
                &args,
                &log,
                false,
                site_ns(node.site).as_deref(),
            )?;
            starting.push((name.clone(), envoy, log, AdminClient::new(node.admin)));
        }
        for (name, mut envoy, log, admin) in starting {
            let probe = admin.clone();
            let result = wait_until(&format!("envoy {name}"), &mut envoy, deadline, &log, || {
                let a = probe.clone();
                async move { a.ready().await }
            })
            .await;
            topo.children.push(envoy);
            result?;
            topo.envoys.insert(name, admin);
        }
        Ok(topo)
    }

    /// Bring `plan` up as containers (see [`super::docker::topology`]).
    async fn up_on_docker(
        plan: &Plan,
        opts: &BackendOptions,
        timeline: &Timeline,
    ) -> Result<RunningTopology> {
        plan.check_backend(super::Backend::Docker)?;
        let (up, parts) = super::docker::topology::up(plan, opts, timeline).await?;
        Ok(RunningTopology {
            placement: up.placement,
            control_plane_admin: up.control_plane_admin,
            envoys: up.envoys,
            children: Vec::new(),
            log_readers: Vec::new(),
            control_plane: ControlPlaneCommand::default(),
            timeline: timeline.clone(),
            links: Links::Proxy {
                api: up.fault_api,
                proxies: up.proxies,
            },
            docker: Some(tokio::sync::Mutex::new(parts)),
        })
    }

    /// Start the control plane (again) and wait until it serves; its log lines go onto
    /// the timeline.
    async fn start_control_plane(&mut self, deadline: Instant) -> Result<()> {
        let cmd = self.control_plane.clone();
        let mut cp = spawn(
            CONTROL_PLANE,
            &cmd.program,
            &cmd.args,
            &cmd.log,
            true,
            cmd.netns.as_deref(),
        )?;
        if let Some(stdout) = cp.child.stdout.take() {
            let timeline = self.timeline.clone();
            self.log_readers.push(tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    XdsLogLine::record(line.as_bytes(), &timeline);
                }
            }));
        }
        let result = wait_until(CONTROL_PLANE, &mut cp, deadline, &cmd.log, || {
            http_ok(&cmd.health)
        })
        .await;
        self.children.push(cp);
        result
    }

    /// Kill the control plane with SIGKILL, as a crash in the region would.
    pub async fn kill_control_plane(&mut self) -> Result<()> {
        if let Some(docker) = &mut self.docker {
            return docker.get_mut().kill_control_plane().await;
        }
        let i = self
            .children
            .iter()
            .position(|m| m.name == CONTROL_PLANE)
            .context("the control plane is not running")?;
        let mut cp = self.children.remove(i);
        cp.child
            .kill()
            .await
            .context("cannot kill the control plane")?;
        Ok(())
    }

    /// Start the control plane again; it resumes from the state it persisted.
    pub async fn restart_control_plane(&mut self) -> Result<()> {
        if let Some(docker) = &mut self.docker {
            return docker.get_mut().restart_control_plane().await;
        }
        self.start_control_plane(Instant::now() + Duration::from_secs(30))
            .await
    }

    /// Puts a container fault on or takes it off (see
    /// [`DockerParts::container_fault`]); says what was done.
    pub async fn container_fault(
        &self,
        fault: &crate::faults::container::ContainerFault,
        on: bool,
    ) -> Result<Vec<String>> {
        match &self.docker {
            Some(docker) => docker.lock().await.container_fault(fault, on).await,
            None => bail!("`{fault}` is a container fault: it needs the Docker backend"),
        }
    }

    /// The outpost sidecar the load enters through: its egress listener.
    pub fn egress_of(&self, node: &str) -> Option<SocketAddr> {
        self.placement.nodes.get(node).map(|n| n.egress)
    }

    /// Stop every child: SIGTERM, then SIGKILL for any still running after a grace period.
    pub async fn shutdown(mut self) {
        if let Some(docker) = self.docker.take() {
            docker.into_inner().shutdown().await;
        }
        for m in &self.children {
            if let Some(pid) = m.child.id() {
                // SAFETY: sending a signal to a child we own; at worst it has already exited.
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            }
        }
        for m in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(3), m.child.wait())
                .await
                .is_err()
            {
                eprintln!("tether: {} did not stop on SIGTERM; killing it", m.name);
                let _ = m.child.kill().await;
            }
        }
        self.children.clear();
        // Every line the control plane wrote is on the timeline before anyone reads it.
        for reader in self.log_readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
    }
}
