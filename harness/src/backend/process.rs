//! The process backend: control plane, fault proxy, sample services and Envoys as child
//! processes on 127.0.0.1, with every cross-site connection through the fault proxy.
//!
//! Children die with the harness: each is killed when its handle drops (success, failure,
//! panic) and, through `PR_SET_PDEATHSIG`, when the harness itself is killed.

use crate::control_plane::XdsLogLine;
use crate::envoy::{AdminClient, EnvoyBinary, bootstrap};
use crate::faults::client::ToxiproxyClient;
use crate::suite::Plan;
use crate::timeline::{Event, Timeline};
use crate::topology::{Placement, Site};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
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
}

/// A child process the topology owns.
struct Managed {
    name: String,
    child: Child,
}

/// The topology, up and running.
pub struct RunningTopology {
    /// Addresses of every node's processes.
    pub placement: Placement,
    /// The fault proxy's API.
    pub faults: ToxiproxyClient,
    /// Fault proxy proxies per link name (`xds`, `data`).
    pub links: BTreeMap<String, Vec<String>>,
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
}

/// The command line and log of the control plane, kept to restart it.
#[derive(Debug, Clone, Default)]
struct ControlPlaneCommand {
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    health: String,
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

/// Free loopback ports, reserved together so they differ from each other.
///
/// They are taken below the kernel's ephemeral range (`ip_local_port_range`), so that no
/// outgoing connection on the machine can be given one as its source port between now and
/// the moment the child that owns it binds it.
fn free_ports(n: usize) -> Result<Vec<u16>> {
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
fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
    piped_stdout: bool,
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
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the child when
    // the thread that spawned it exits, so nothing outlives the harness.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
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

async fn http_ok(url: &str) -> bool {
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
        let logs = opts.work_dir.join("logs");
        std::fs::create_dir_all(&logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        let deadline = Instant::now() + opts.ready_timeout;
        // Addresses for everything, decided up front.
        let ports = free_ports(4 + Placement::addresses_needed(&plan.mesh, &plan.sites))?;
        let (xds_addr, cp_admin, fault_api, xds_link) = (
            loopback(ports[0]),
            loopback(ports[1]),
            loopback(ports[2]),
            loopback(ports[3]),
        );
        let mut topo = RunningTopology {
            placement: Placement::default(),
            faults: ToxiproxyClient::new(&format!("http://{fault_api}"))?,
            links: BTreeMap::new(),
            control_plane_admin: cp_admin,
            envoys: BTreeMap::new(),
            children: Vec::new(),
            log_readers: Vec::new(),
            control_plane: ControlPlaneCommand::default(),
            timeline: timeline.clone(),
        };
        // On any error below, `topo` drops and kills what already started.
        topo.placement = Placement::assign(
            &plan.mesh,
            &plan.sites,
            &mut ports[4..].iter().map(|p| loopback(*p)),
        );

        // The fault proxy, and one proxy per cross-site connection.
        let log = logs.join("fault-proxy.log");
        let mut fp = spawn(
            "fault proxy",
            &opts.tether_bin,
            &[
                "fault-proxy".into(),
                "--listen".into(),
                fault_api.to_string(),
            ],
            &log,
            false,
        )?;
        let probe = topo.faults.clone();
        wait_until("fault proxy", &mut fp, deadline, &log, || {
            let c = probe.clone();
            async move { c.version().await.is_ok() }
        })
        .await?;
        topo.children.push(fp);
        topo.faults
            .create_proxy("xds", &xds_link.to_string(), &xds_addr.to_string())
            .await
            .map_err(|e| anyhow!("cannot create the xds link proxy: {e}"))?;
        topo.links.insert("xds".into(), vec!["xds".into()]);
        for (name, node) in &topo.placement.nodes {
            if let (Some(remote), Some(ingress)) = (node.remote_ingress, node.ingress) {
                let proxy = format!("data-{name}");
                topo.faults
                    .create_proxy(&proxy, &remote.to_string(), &ingress.to_string())
                    .await
                    .map_err(|e| anyhow!("cannot create the data link proxy {proxy}: {e}"))?;
                topo.links.entry("data".into()).or_default().push(proxy);
            }
        }

        // The control plane, in the region: its log lines go onto the timeline.
        let placement_file = opts.work_dir.join("placement.json");
        std::fs::write(&placement_file, serde_json::to_vec_pretty(&topo.placement)?)?;
        let mut args = vec![
            "control-plane".into(),
            "--mesh".into(),
            plan.mesh_path.display().to_string(),
            "--placement".into(),
            placement_file.display().to_string(),
            "--xds-listen".into(),
            xds_addr.to_string(),
            "--admin-listen".into(),
            cp_admin.to_string(),
        ];
        args.extend([
            "--state".into(),
            opts.work_dir
                .join("control-plane-state.json")
                .display()
                .to_string(),
        ]);
        topo.control_plane = ControlPlaneCommand {
            program: opts.tether_bin.clone(),
            args,
            log: logs.join("control-plane.log"),
            health: format!("http://{cp_admin}/healthz"),
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
                ];
                let mut svc = spawn(
                    &format!("service {name}"),
                    &opts.tether_bin,
                    &args,
                    &log,
                    false,
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
            let config = bootstrap::bootstrap(
                &plan.mesh.node_id(name),
                node.admin,
                xds,
                &plan.xds_for(name),
            );
            let config_file = opts.work_dir.join(format!("envoy-{name}.json"));
            std::fs::write(&config_file, serde_json::to_vec_pretty(&config)?)?;
            let log = logs.join(format!("envoy-{name}.log"));
            let args = vec![
                "-c".into(),
                config_file.display().to_string(),
                "--disable-hot-restart".into(),
                "--concurrency".into(),
                "1".into(),
                "--log-level".into(),
                "warn".into(),
            ];
            let envoy = spawn(
                &format!("envoy {name}"),
                &opts.envoy.path,
                &args,
                &log,
                false,
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

    /// Start the control plane (again) and wait until it serves; its log lines go onto
    /// the timeline.
    async fn start_control_plane(&mut self, deadline: Instant) -> Result<()> {
        let cmd = self.control_plane.clone();
        let mut cp = spawn(CONTROL_PLANE, &cmd.program, &cmd.args, &cmd.log, true)?;
        if let Some(stdout) = cp.child.stdout.take() {
            let timeline = self.timeline.clone();
            self.log_readers.push(tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(l) = serde_json::from_str::<XdsLogLine>(&line) {
                        timeline.record_at_unix(
                            l.unix_ms,
                            Event::Xds {
                                node: l.node,
                                type_name: l.type_name,
                                xds: l.xds,
                                version: l.version,
                                error: l.error,
                            },
                        );
                    }
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
        self.start_control_plane(Instant::now() + Duration::from_secs(30))
            .await
    }

    /// The outpost sidecar the load enters through: its egress listener.
    pub fn egress_of(&self, node: &str) -> Option<SocketAddr> {
        self.placement.nodes.get(node).map(|n| n.egress)
    }

    /// Stop every child: SIGTERM, then SIGKILL for any still running after a grace period.
    pub async fn shutdown(mut self) {
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
