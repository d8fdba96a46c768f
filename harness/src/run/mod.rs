//! Carrying out a plan: bring the topology up, drive load and sample Envoys for the whole
//! run, step through the phases (faults on and off, mesh changes at their times), take
//! everything down, judge the timeline and write the reports.
//!
//! This is the only place that knows the order of a run; each step lives in its module.
//! [`folder`] keeps the run's inputs beside its timeline and judges a folder again.

pub mod folder;

use crate::backend::{BackendOptions, RunningTopology};
use crate::checks::{self, Verdict};
use crate::control_plane::Change;
use crate::envoy::provision;
use crate::report::{self, RunInfo};
use crate::suite::{ContainerFault, Fault, Generator, Plan};
use crate::timeline::{Event, Timeline};
use crate::topology::Site;
use crate::{load, observe};
use anyhow::{Context, Result, anyhow};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Exit codes of `tether run`, also what [`Outcome::exit_code`] gives.
pub mod exit {
    /// Every check passed.
    pub const PASSED: i32 = 0;
    /// A check failed (or could not judge).
    pub const FAILED: i32 = 1;
    /// Bad input or usage.
    pub const BAD_INPUT: i32 = 2;
    /// The environment could not bring the topology up.
    pub const ENVIRONMENT: i32 = 3;
    /// `tether load`: the figures are invalid (the generator, not the target, was the
    /// limit).
    pub const INVALID: i32 = 4;
    /// The run was interrupted (Ctrl-C).
    pub const INTERRUPTED: i32 = 130;
}

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the reports go.
    pub report_dir: PathBuf,
    /// Envoy binary to use (else found or installed, see [`provision`]).
    pub envoy_bin: Option<PathBuf>,
    /// The `tether` binary that plays control plane, fault proxy and service (default:
    /// this executable).
    pub tether_bin: Option<PathBuf>,
    /// Seed for anything random (recorded in reports).
    pub seed: u64,
    /// Print progress to stderr.
    pub progress: bool,
    /// Cancelled to stop the run early (Ctrl-C); everything is still taken down.
    pub interrupt: CancellationToken,
    /// Where the parts run.
    pub backend: crate::backend::Backend,
}

/// What a run ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// One verdict per check, in suite order.
    pub verdicts: Vec<Verdict>,
    /// The folder holding the reports.
    pub report_dir: PathBuf,
    /// Set when the run was interrupted before all phases ran.
    pub interrupted: bool,
}

impl Outcome {
    /// Did every check pass (and the run complete)?
    pub fn passed(&self) -> bool {
        !self.interrupted && self.verdicts.iter().all(Verdict::passed)
    }

    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.passed() {
            exit::PASSED
        } else {
            exit::FAILED
        }
    }

    /// The verdict of the check called `name`.
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.name == name)
    }
}

/// Why a run could not produce verdicts: the topology could not be brought up.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct EnvironmentError(pub anyhow::Error);

fn progress(opts: &RunOptions, timeline: &Timeline, msg: &str) {
    if opts.progress {
        eprintln!("[{:>6.1}s] {msg}", timeline.elapsed_ms() as f64 / 1000.0);
    }
}

/// Run `plan` end to end and write its reports.
pub async fn run(plan: &Plan, opts: &RunOptions) -> Result<Outcome, EnvironmentError> {
    let started = chrono::Utc::now();
    let wall = Instant::now();
    std::fs::create_dir_all(&opts.report_dir)
        .with_context(|| format!("cannot create report folder {}", opts.report_dir.display()))
        .map_err(EnvironmentError)?;
    let timeline = Timeline::new();
    timeline
        .stream_to(&opts.report_dir.join(folder::TIMELINE))
        .context("cannot write the timeline")
        .map_err(EnvironmentError)?;
    // The folder holds the suite, the mesh and what is known of the run from the start, so
    // `tether report` can judge it again even if this process is killed.
    let mut info = RunInfo {
        suite: plan.name().to_string(),
        suite_path: plan.suite_path.display().to_string(),
        suite_text: plan.suite_text.clone(),
        mesh_text: String::new(),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_s: 0.0,
        seed: opts.seed,
        envoy_version: "unknown".into(),
        backend: opts.backend.name().into(),
        tether_version: report::TETHER_VERSION.into(),
        git_revision: report::GIT_REVISION.into(),
        machine: report::Machine::this(),
        interrupted: false,
        incomplete: false,
    };
    folder::write_inputs(&opts.report_dir, plan, &mut info)
        .context("cannot keep the suite and mesh in the report folder")
        .map_err(EnvironmentError)?;

    let flag = opts.envoy_bin.clone();
    let envoy = tokio::task::spawn_blocking(move || provision::find_or_install(flag.as_deref()))
        .await
        .map_err(|e| EnvironmentError(anyhow!("Envoy provisioning crashed: {e}")))?
        .map_err(EnvironmentError)?;
    let named_envoy = plan.suite.images.as_ref().and_then(|i| i.envoy.as_ref());
    let envoy_version = match named_envoy {
        // The Envoy under test is the suite's image, not the provisioned binary.
        Some(image) if opts.backend == crate::backend::Backend::Docker => {
            format!("image {}", **image)
        }
        _ => envoy.version().unwrap_or_else(|e| format!("unknown ({e})")),
    };
    info.envoy_version = envoy_version.clone();
    folder::write_info(&opts.report_dir, &info)
        .context("cannot write run.json")
        .map_err(EnvironmentError)?;
    let tether_bin = tether_bin(opts).map_err(EnvironmentError)?;
    progress(
        opts,
        &timeline,
        &format!(
            "suite {}: bringing up {} Envoys (virtual nodes and gateways) with Envoy {envoy_version}",
            plan.name(),
            plan.sites.len()
        ),
    );
    let fault_proxy = crate::faults::FaultProxy::find();
    let links = match (plan.link, opts.backend) {
        (crate::suite::LinkKind::Proxy, crate::backend::Backend::Docker) => {
            let named = plan.suite.images.as_ref();
            let fault_proxy = match named.and_then(|i| i.fault_proxy.as_ref()) {
                Some(image) => format!("Toxiproxy ({})", **image),
                None => "tether's fault proxy".into(),
            };
            let envoy = match named.and_then(|i| i.envoy.as_ref()) {
                Some(image) => format!("; Envoy from {}", **image),
                None => String::new(),
            };
            format!(
                "containers on a region and an outpost Docker network; every cross-site connection through {fault_proxy}, a container on both{envoy}"
            )
        }
        (crate::suite::LinkKind::Proxy, _) => {
            format!("every cross-site connection through {fault_proxy}")
        }
        (crate::suite::LinkKind::Packet, _) => {
            "packet link: the sites in two network namespaces".into()
        }
    };
    progress(opts, &timeline, &format!("links: {links}"));
    let backend = BackendOptions {
        tether_bin,
        envoy,
        work_dir: opts.report_dir.join("work"),
        ready_timeout: Duration::from_secs(60),
        fault_proxy,
        backend: opts.backend,
    };
    let up = tokio::select! {
        up = RunningTopology::up(plan, &backend, &timeline) => up,
        _ = opts.interrupt.cancelled() => Err(anyhow!("interrupted during bring-up")),
    };
    // Interrupted during bring-up: what started is already stopped; still report.
    let topo = match up {
        Ok(topo) => Some(topo),
        Err(_) if opts.interrupt.is_cancelled() => None,
        Err(e) => return Err(EnvironmentError(e)),
    };
    let mut topo = topo;
    let result = match &mut topo {
        Some(topo) => {
            progress(
                opts,
                &timeline,
                &format!("topology up in {:.1}s", wall.elapsed().as_secs_f64()),
            );
            drive(plan, opts, topo, &timeline).await
        }
        None => Ok(()),
    };
    if let Some(topo) = topo {
        topo.shutdown().await;
    }
    let interrupted = opts.interrupt.is_cancelled();
    timeline.record(Event::RunEnded {
        reason: match (&result, interrupted) {
            (_, true) => "interrupted".into(),
            (Err(e), _) => format!("error: {e:#}"),
            _ => "completed".into(),
        },
    });
    let entries = timeline.entries();
    let verdicts = checks::evaluate(&plan.suite.checks, &checks_context(plan), &entries);
    info.duration_s = wall.elapsed().as_secs_f64();
    info.interrupted = interrupted;
    folder::write_info(&opts.report_dir, &info)
        .context("cannot write run.json")
        .map_err(EnvironmentError)?;
    report::write_all(&opts.report_dir, &info, &verdicts, &entries)
        .context("cannot write the reports")
        .map_err(EnvironmentError)?;
    result.map_err(EnvironmentError)?;
    Ok(Outcome {
        verdicts,
        report_dir: opts.report_dir.clone(),
        interrupted,
    })
}

/// What the checks need to know about a plan besides its timeline.
fn checks_context(plan: &Plan) -> checks::Context {
    checks::Context {
        outpost_nodes: plan
            .sites
            .iter()
            .filter(|(_, s)| **s == Site::Outpost)
            .map(|(n, _)| n.clone())
            .collect(),
        load_through: plan.suite.load.through.to_string(),
    }
}

/// Load and observers for the whole run, phases one after another.
async fn drive(
    plan: &Plan,
    opts: &RunOptions,
    topo: &mut RunningTopology,
    timeline: &Timeline,
) -> Result<()> {
    let stop = opts.interrupt.child_token();
    let load_timeout = plan
        .suite
        .load
        .timeout
        .map(|t| t.0)
        .unwrap_or(Duration::from_secs(1));
    let load_spec = load::LoadSpec {
        target: topo
            .egress_of(&plan.suite.load.through)
            .context("load node has no sidecar")?,
        host: plan.suite.load.service.to_string(),
        rate: *plan.suite.load.rate,
        duration: plan.total_duration(),
        timeout: load_timeout,
    };
    let observer = tokio::spawn(observe::sample_envoys(
        topo.envoys.clone(),
        // Each sample reads every Envoy's config dump: sample a large fleet less often.
        Duration::from_millis((25 * topo.envoys.len() as u64).max(250)),
        timeline.clone(),
        stop.clone(),
    ));
    let generator = plan
        .suite
        .load
        .generator
        .as_ref()
        .map(|g| **g)
        .unwrap_or_default();
    let load = matches!(generator, Generator::HotPath | Generator::Both)
        .then(|| tokio::spawn(load::run(load_spec.clone(), timeline.clone(), stop.clone())));
    let journeys = match (&plan.suite.load.journeys, generator) {
        (Some(j), Generator::Goose | Generator::Both) => {
            let spec = crate::journeys::JourneySpec {
                egress: load_spec.target,
                front: load_spec.host.clone(),
                back: j.calls.to_string(),
                users: j.users.as_ref().map(|u| **u).unwrap_or(4),
                duration: load_spec.duration,
            };
            let (tether, work_dir) = (tether_bin(opts)?, opts.report_dir.join("work"));
            let (timeline, stop) = (timeline.clone(), stop.clone());
            Some(tokio::spawn(async move {
                crate::journeys::drive(
                    &tether,
                    &spec,
                    (crate::backend::process::RUN_MARKER, &work_dir),
                    timeline,
                    stop,
                )
                .await
            }))
        }
        _ => None,
    };
    let mut result = Ok(());
    let mut summaries = Vec::new();
    let run_start = tokio::time::Instant::now();
    let mut control_plane_down = false;
    for phase in &plan.phases {
        tokio::select! {
            _ = tokio::time::sleep_until(run_start + phase.start) => {}
            _ = stop.cancelled() => break,
        }
        timeline.record(Event::PhaseStarted {
            phase: phase.name.clone(),
            duration_ms: phase.duration.as_millis() as u64,
        });
        progress(
            opts,
            timeline,
            &format!(
                "phase {} ({}s){}",
                phase.name,
                phase.duration.as_secs_f64(),
                describe_faults(phase)
            ),
        );
        // The control plane goes down, or comes back, as the phase starts.
        if phase.control_plane_down != control_plane_down {
            let changed = if phase.control_plane_down {
                topo.kill_control_plane().await
            } else {
                topo.restart_control_plane()
                    .await
                    .context("cannot restart the control plane")
            };
            if let Err(e) = changed {
                result = Err(e);
                break;
            }
            control_plane_down = phase.control_plane_down;
            let (link, fault) = ("control_plane".to_string(), "killed".to_string());
            timeline.record(if control_plane_down {
                Event::FaultApplied {
                    link,
                    fault,
                    applied: Vec::new(),
                }
            } else {
                Event::FaultRemoved { link, fault }
            });
            if !control_plane_down {
                progress(opts, timeline, "control plane restarted");
            }
        }
        let overhead = phase.overhead.clone().map(|(node, connections)| {
            let (topo_node, mesh) = (topo.placement.nodes.get(&node).cloned(), &plan.mesh);
            let protocol = mesh
                .node(&node)
                .and_then(|n| n.listeners.first())
                .map(|l| *l.protocol);
            let (opts, timeline, stop) = (opts.clone(), timeline.clone(), stop.clone());
            let half = phase.duration / 2 - Duration::from_millis(250);
            tokio::spawn(async move {
                let measured = match topo_node {
                    Some(placed) => {
                        measure_overhead(&opts, &node, &placed, protocol, connections, half, &stop)
                            .await
                    }
                    None => Err(anyhow!("`{node}` is not placed")),
                };
                match measured {
                    Ok((direct, proxied)) => {
                        progress(
                            &opts,
                            &timeline,
                            &format!(
                                "  proxy overhead of {node}: {:.0} requests/s direct, {:.0} through its sidecar",
                                direct.requests_per_second, proxied.requests_per_second
                            ),
                        );
                        timeline.record(Event::ProxyOverhead {
                            node,
                            direct: Box::new(direct),
                            proxied: Box::new(proxied),
                        });
                    }
                    Err(e) => progress(
                        &opts,
                        &timeline,
                        &format!("  proxy overhead of {node} not measured: {e:#}"),
                    ),
                }
            })
        });
        if let Err(e) = run_phase(plan, phase, run_start, topo, timeline, opts, &stop).await {
            result = Err(e);
            break;
        }
        if let Some(task) = overhead {
            let _ = task.await;
        }
        // A phase's last requests are on the timeline once they are answered or time out.
        let (opts, timeline, phase) = (opts.clone(), timeline.clone(), phase.clone());
        summaries.push(tokio::spawn(async move {
            tokio::time::sleep(load_timeout + Duration::from_millis(3000)).await;
            summarize_phase(&opts, &timeline, &phase);
        }));
    }
    if result.is_err() {
        // A phase could not be carried out: stop the load now rather than at its end.
        stop.cancel();
    }
    if let Some(load) = load {
        let _ = load.await;
    }
    if let Some(journeys) = journeys
        && let Ok(Err(e)) = journeys.await
    {
        progress(opts, timeline, &format!("journeys: {e:#}"));
    }
    stop.cancel();
    let _ = observer.await;
    for s in summaries {
        let _ = s.await;
    }
    result
}

/// Closed-loop load for `half` straight at `node`'s app, then for `half` through its
/// sidecar's ingress, each by a `tether load` child process (whose saturation guard
/// judges its own figures).
async fn measure_overhead(
    opts: &RunOptions,
    node: &str,
    placed: &crate::topology::NodePlacement,
    protocol: Option<crate::mesh::model::Protocol>,
    connections: usize,
    half: Duration,
    stop: &CancellationToken,
) -> Result<(crate::timeline::LoadRun, crate::timeline::LoadRun)> {
    use crate::mesh::model::Protocol as Listener;
    let (app, ingress) = placed
        .app
        .zip(placed.ingress)
        .with_context(|| format!("`{node}` has no app and ingress"))?;
    let (protocol, path) = match protocol {
        Some(Listener::Http2) => ("h2c", "/"),
        Some(Listener::Grpc) => ("grpc", "/demo.Echo/Say"),
        _ => ("http1", "/"),
    };
    let tether = tether_bin(opts)?;
    let work_dir = opts.report_dir.join("work");
    let mut runs = Vec::new();
    for addr in [app, ingress] {
        let mut cmd = tokio::process::Command::new(&tether);
        cmd.args([
            "load",
            &format!("http://{addr}{path}"),
            "--protocol",
            protocol,
        ])
        .args(["-c", &connections.to_string()])
        .args(["-d", &format!("{}ms", half.as_millis()), "--json"])
        .env(crate::backend::process::RUN_MARKER, &work_dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
        let out = tokio::select! {
            out = cmd.output() => out.context("cannot run `tether load`")?,
            _ = stop.cancelled() => anyhow::bail!("interrupted"),
        };
        let run: crate::timeline::LoadRun =
            serde_json::from_slice(&out.stdout).with_context(|| {
                format!(
                    "`tether load` gave no figures (exit {:?})",
                    out.status.code()
                )
            })?;
        runs.push(run);
    }
    let proxied = runs.pop().context("no run through the sidecar")?;
    let direct = runs.pop().context("no direct run")?;
    Ok((direct, proxied))
}

/// The `tether` binary: the one asked for, or this one.
fn tether_bin(opts: &RunOptions) -> Result<PathBuf> {
    match &opts.tether_bin {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().context("cannot find the tether executable"),
    }
}

fn describe_faults(phase: &crate::suite::PlannedPhase) -> String {
    let mut text: String = phase
        .faults
        .iter()
        .map(|(l, f)| format!(", {f} on link {l}"))
        .collect();
    if phase.control_plane_down {
        text.push_str(", control plane down");
    }
    for fault in &phase.containers {
        text.push_str(&format!(", {fault}"));
    }
    text
}

/// Faults on for the phase, changes at their times, faults off at its end.
async fn run_phase(
    plan: &Plan,
    phase: &crate::suite::PlannedPhase,
    run_start: tokio::time::Instant,
    topo: &RunningTopology,
    timeline: &Timeline,
    opts: &RunOptions,
    stop: &CancellationToken,
) -> Result<()> {
    let static_faults: Vec<&(String, Fault)> = phase
        .faults
        .iter()
        .filter(|(_, f)| !matches!(f, Fault::Flapping { .. }))
        .collect();
    for (link, fault) in &static_faults {
        let applied = apply_fault(topo, link, fault, true).await?;
        timeline.record(Event::FaultApplied {
            link: link.clone(),
            fault: fault.to_string(),
            applied,
        });
    }
    let held: Vec<&ContainerFault> = phase
        .containers
        .iter()
        .filter(|c| c.action.held())
        .collect();
    for fault in &held {
        container_fault(topo, fault, true, timeline).await?;
    }
    let phase_start = run_start + phase.start;
    let phase_end = phase_start + phase.duration;
    let restarts = async {
        for fault in phase.containers.iter().filter(|c| !c.action.held()) {
            tokio::select! {
                _ = tokio::time::sleep_until(phase_start + fault.at) => {}
                _ = stop.cancelled() => break,
            }
            // Killed, then started again: two events, the window between them.
            container_fault(topo, fault, true, timeline).await?;
            container_fault(topo, fault, false, timeline).await?;
            progress(opts, timeline, &format!("restarted {}", fault.part));
        }
        Ok::<(), anyhow::Error>(())
    };
    let flapping = phase.faults.iter().filter_map(|(link, f)| match f {
        Fault::Flapping {
            every,
            down_for,
            random,
        } => Some(flap(
            topo,
            link,
            (every.0, down_for.0, *random),
            opts.seed,
            phase_start,
            phase_end,
            timeline,
            stop,
        )),
        _ => None,
    });
    let changes = async {
        for (at, change) in &phase.changes {
            tokio::select! {
                _ = tokio::time::sleep_until(phase_start + *at) => {}
                _ = stop.cancelled() => break,
            }
            let version = push_change(topo, change).await?;
            timeline.record(Event::MeshChange {
                description: change.describe(),
                version: version.clone(),
                target: dominant_target(change),
                affects: change
                    .affects(&plan.mesh)
                    .into_iter()
                    .filter(|n| plan.sites.contains_key(n))
                    .collect(),
            });
            progress(
                opts,
                timeline,
                &format!("mesh change: {} (version {version})", change.describe()),
            );
        }
        tokio::select! {
            _ = tokio::time::sleep_until(phase_start + phase.duration) => {}
            _ = stop.cancelled() => {}
        }
        Ok::<(), anyhow::Error>(())
    };
    let (changed, flapped, restarted) =
        tokio::join!(changes, futures::future::try_join_all(flapping), restarts);
    changed?;
    flapped?;
    restarted?;
    for fault in held.iter().rev() {
        container_fault(topo, fault, false, timeline).await?;
    }
    for (link, fault) in &static_faults {
        apply_fault(topo, link, fault, false).await?;
        timeline.record(Event::FaultRemoved {
            link: link.clone(),
            fault: fault.to_string(),
        });
    }
    Ok(())
}

/// Puts a container fault on (`on`) or takes it off, and records that on the timeline.
async fn container_fault(
    topo: &RunningTopology,
    fault: &ContainerFault,
    on: bool,
    timeline: &Timeline,
) -> Result<()> {
    let (link, name) = (fault.part.to_string(), fault.action.as_str().to_string());
    let applied = topo.container_fault(fault, on).await?;
    timeline.record(if on {
        Event::FaultApplied {
            link,
            fault: name,
            applied,
        }
    } else {
        Event::FaultRemoved { link, fault: name }
    });
    Ok(())
}

fn summarize_phase(opts: &RunOptions, timeline: &Timeline, phase: &crate::suite::PlannedPhase) {
    if !opts.progress {
        return;
    }
    let entries = timeline.entries();
    let Some(figures) = checks::phase_figures(&entries)
        .into_iter()
        .find(|f| f.phase == phase.name)
    else {
        return;
    };
    let served: Vec<String> = figures
        .served_by
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let latency = figures.latency_ms.map_or_else(
        || "no answers".to_string(),
        |l| {
            format!(
                "latency p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms",
                l.p50, l.p99, l.p999
            )
        },
    );
    progress(
        opts,
        timeline,
        &format!(
            "  phase {} done: {}/{} requests ok ({:.1}%), {latency}; served by: {}",
            phase.name,
            figures.ok,
            figures.requests,
            figures.success_ratio() * 100.0,
            served.join(", ")
        ),
    );
}

/// The node a change sends the most traffic to.
fn dominant_target(change: &Change) -> Option<String> {
    match change {
        Change::SetRouteWeights { weights, .. } => weights
            .iter()
            .max_by_key(|(_, w)| **w)
            .map(|(n, _)| n.clone()),
        _ => None,
    }
}

async fn push_change(topo: &RunningTopology, change: &Change) -> Result<String> {
    let url = format!("http://{}/changes", topo.control_plane_admin);
    let response = reqwest::Client::new()
        .post(url)
        .json(change)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .context("cannot reach the control plane's admin API")?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("bad answer from the control plane")?;
    if !status.is_success() {
        return Err(anyhow!(
            "the control plane refused the change: {}",
            body["error"]
        ));
    }
    Ok(body["version"].to_string())
}

/// Put `fault` on (or take it off) `link`.
/// Put `fault` on (or take it off) `link`; says what was set (see [`crate::backend::links::Links::set`]).
async fn apply_fault(
    topo: &RunningTopology,
    link: &str,
    fault: &Fault,
    on: bool,
) -> Result<Vec<String>> {
    topo.links.set(link, fault, on).await
}

/// A flapping link: down for `down_for` once in every `every` from `start` until `end`,
/// each outage on the timeline. The link is up again when this returns.
#[allow(clippy::too_many_arguments)]
async fn flap(
    topo: &RunningTopology,
    link: &str,
    (every, down_for, random): (Duration, Duration, bool),
    seed: u64,
    start: tokio::time::Instant,
    end: tokio::time::Instant,
    timeline: &Timeline,
    stop: &CancellationToken,
) -> Result<()> {
    // splitmix64, seeded by the run's seed and the link, so a seed replays the same outages.
    let mut state = seed
        ^ link.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut cycle = start;
    while cycle + down_for <= end && !stop.is_cancelled() {
        let slack = (every - down_for).as_millis() as u64;
        let offset = if random {
            Duration::from_millis(next() % (slack + 1))
        } else {
            Duration::ZERO
        };
        tokio::select! {
            _ = tokio::time::sleep_until(cycle + offset) => {}
            _ = stop.cancelled() => break,
        }
        let applied = apply_fault(topo, link, &Fault::Down, true).await?;
        timeline.record(Event::FaultApplied {
            link: link.to_string(),
            fault: "down (flapping)".into(),
            applied,
        });
        tokio::select! {
            _ = tokio::time::sleep_until((cycle + offset + down_for).min(end)) => {}
            _ = stop.cancelled() => {}
        }
        apply_fault(topo, link, &Fault::Down, false).await?;
        timeline.record(Event::FaultRemoved {
            link: link.to_string(),
            fault: "down (flapping)".into(),
        });
        cycle += every;
    }
    Ok(())
}
