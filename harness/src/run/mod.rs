//! Carrying out a plan: bring the topology up, carry out its schedule through the
//! backend's actuators while the observers sample every Envoy, take everything down,
//! judge the timeline and write the reports.
//!
//! [`interpreter`] is the one loop that carries a [`Schedule`] out; [`binary`] finds the
//! `tether` executable that plays the control plane, fault proxy and services; [`console`]
//! prints progress; [`folder`] keeps the run's inputs (suite, mesh, schedule) beside its
//! timeline and judges a folder again; [`soak`] judges a soak cycle by cycle as it runs.

pub mod binary;
pub mod console;
pub mod folder;
pub mod interpreter;
pub mod soak;

use crate::backend::load::{HarnessLoad, Progress};
use crate::backend::{Backend, BackendOptions, RunningTopology};
use crate::checks::{self, Verdict};
use crate::envoy::provision;
use crate::observe::ObserverCost;
use crate::plan::{LinkKind, Plan, Schedule};
use crate::report::{self, Judged};
use crate::result::RunInfo;
use crate::timeline::{Event, Timeline};
use anyhow::{Context, Result, anyhow};
use console::Console;
use interpreter::Actuators;
use soak::SoakWatch;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// A stop condition (`stop_when`) ended the run early; the reports say which.
    pub const STOPPED: i32 = 5;
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
    /// The `tether` executable that plays control plane, fault proxy and services
    /// (default: `$TETHER_BIN`, this executable when it is `tether`, or `tether` on
    /// `PATH`; see [`binary::locate`]).
    pub tether_bin: Option<PathBuf>,
    /// Seed for anything random (recorded in reports).
    pub seed: u64,
    /// Print progress to stderr.
    pub progress: bool,
    /// Cancelled to stop the run early (Ctrl-C); everything is still taken down.
    pub interrupt: CancellationToken,
    /// Where the parts run.
    pub backend: Backend,
    /// A deployment tether did not start, run against instead of a backend.
    pub target: Option<Arc<crate::target::Target>>,
    /// Which fault proxy a `link: proxy` suite uses on the process backend.
    pub fault_proxy: crate::faults::FaultProxyChoice,
}

impl RunOptions {
    /// Options that write the reports to `report_dir` and leave the rest as [`Default`]
    /// has them.
    pub fn new(report_dir: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            report_dir: report_dir.into(),
            ..RunOptions::default()
        }
    }
}

impl Default for RunOptions {
    /// Reports in `reports/run`, Envoy and `tether` found as the command line finds
    /// them, seed 1, progress on stderr, the process backend, no target, the fault
    /// proxy chosen as `--fault-proxy auto` does.
    fn default() -> RunOptions {
        RunOptions {
            report_dir: PathBuf::from("reports/run"),
            envoy_bin: None,
            tether_bin: None,
            seed: 1,
            progress: true,
            interrupt: CancellationToken::new(),
            backend: Backend::Process,
            target: None,
            fault_proxy: crate::faults::FaultProxyChoice::Auto,
        }
    }
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
    /// Set when a stop condition ended the run early: which, and what it saw.
    pub stopped: Option<String>,
}

impl Outcome {
    /// Did every check pass (and the run complete)?
    pub fn passed(&self) -> bool {
        !self.interrupted && self.stopped.is_none() && self.verdicts.iter().all(Verdict::passed)
    }

    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.stopped.is_some() {
            exit::STOPPED
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

/// Run `plan` end to end and write its reports.
pub async fn run(plan: &Plan, opts: &RunOptions) -> Result<Outcome, EnvironmentError> {
    let wall = Instant::now();
    let env = |e: anyhow::Error| EnvironmentError(e);
    // Before anything is written or started: a run with no `tether` for its roles.
    let tether_bin = binary::locate(opts.tether_bin.as_deref()).map_err(env)?;
    std::fs::create_dir_all(&opts.report_dir)
        .with_context(|| format!("cannot create report folder {}", opts.report_dir.display()))
        .map_err(env)?;
    let timeline = Timeline::new();
    timeline
        .stream_to(&opts.report_dir.join(folder::TIMELINE))
        .context("cannot write the timeline")
        .map_err(env)?;
    let schedule = Schedule::of(plan, opts.seed);
    // The folder holds the suite, the mesh, the schedule and what is known of the run
    // from the start, so `tether report` can judge it again even if this process is
    // killed.
    let mut info = run_info(plan, opts);
    folder::write_inputs(&opts.report_dir, plan, &schedule, &mut info)
        .context("cannot keep the suite, mesh and schedule in the report folder")
        .map_err(env)?;
    let mut console = Console::new(opts.progress, &timeline, plan.load.timeout);
    let backend = backend_options(plan, opts, tether_bin, &mut info, &console)
        .await
        .map_err(env)?;
    // Stopped by a stop condition, or by Ctrl-C through `opts.interrupt`.
    let stop = opts.interrupt.child_token();
    let shared_info = Arc::new(std::sync::Mutex::new(info.clone()));
    let watch = plan.soak.is_some().then(|| {
        console = console.clone().per_cycle();
        let folder = (opts.report_dir.clone(), shared_info.clone());
        let ctx = checks_context(plan, &info);
        SoakWatch::start(plan, &schedule, &ctx, &timeline, folder, &console, &stop)
    });
    let up = tokio::select! {
        up = RunningTopology::up(plan, &backend, &timeline) => up,
        _ = opts.interrupt.cancelled() => Err(anyhow!("interrupted during bring-up")),
    };
    // Interrupted during bring-up: what started is already stopped; still report.
    let topo = match up {
        Ok(topo) => Some(topo),
        Err(_) if opts.interrupt.is_cancelled() => None,
        Err(e) => return Err(env(e)),
    };
    let result = match &topo {
        Some(topo) => {
            console.line(&format!(
                "topology up in {:.1}s",
                wall.elapsed().as_secs_f64()
            ));
            if let (Some(target), Some((offset, within))) = (&mut info.target, topo.clock_offset) {
                (target.clock_offset_us, target.clock_uncertainty_us) =
                    (Some(offset), Some(within));
                console.line(&format!(
                    "control plane's clock: {:+.1} ms against ours, within ±{:.1} ms",
                    offset as f64 / 1000.0,
                    within as f64 / 1000.0
                ));
                *shared_info.lock().unwrap_or_else(|e| e.into_inner()) = info.clone();
            }
            let run = Drive {
                plan,
                report_dir: &opts.report_dir,
                backend: &backend,
                schedule: &schedule,
                timeline: &timeline,
                console: &console,
                stop: &stop,
                xds_log: !checks_context(plan, &info).judge_from_envoys,
            };
            let (result, cost) = run.drive(topo).await;
            if let Some(cost) = cost {
                console.line(&format!("observer: {}", cost.describe()));
                info.observer = Some(cost);
            }
            result
        }
        None => Ok(()),
    };
    if let Some(topo) = topo {
        topo.shutdown().await;
    }
    let interrupted = opts.interrupt.is_cancelled();
    timeline.record(Event::RunEnded {
        reason: match (&result, interrupted, stop.is_cancelled()) {
            (_, true, _) => "interrupted".into(),
            (Err(e), _, _) => format!("error: {e:#}"),
            (Ok(()), false, true) => "stopped".into(),
            _ => "completed".into(),
        },
    });
    info.duration_s = wall.elapsed().as_secs_f64();
    info.interrupted = interrupted;
    let (verdicts, stopped) = match watch {
        Some(watch) => {
            let judgement = watch.finish().await;
            info.stopped = judgement.stopped.clone();
            let (summary, verdicts) = (judgement.judge.summary(), judgement.judge.verdicts());
            write_reports(opts, &info, &verdicts, Judged::Soak(&summary)).map_err(env)?;
            (verdicts, judgement.stopped)
        }
        None => {
            let entries = timeline.entries();
            let verdicts = checks::evaluate(&plan.checks, &checks_context(plan, &info), &entries);
            write_reports(opts, &info, &verdicts, Judged::Run(&entries)).map_err(env)?;
            (verdicts, None)
        }
    };
    result.map_err(env)?;
    Ok(Outcome {
        verdicts,
        report_dir: opts.report_dir.clone(),
        interrupted,
        stopped,
    })
}

/// `run.json` and the reports, at the end of a run.
fn write_reports(
    opts: &RunOptions,
    info: &RunInfo,
    verdicts: &[Verdict],
    judged: Judged<'_>,
) -> Result<()> {
    folder::write_info(&opts.report_dir, info).context("cannot write run.json")?;
    report::write_all(&opts.report_dir, info, verdicts, judged).context("cannot write the reports")
}

/// `run.json`'s `target.control_plane` for a target's foreign control plane.
const FOREIGN: &str = "foreign";

/// What is known of the run before it starts.
fn run_info(plan: &Plan, opts: &RunOptions) -> RunInfo {
    RunInfo {
        suite: plan.name().to_string(),
        suite_path: plan.suite_path.display().to_string(),
        suite_text: plan.suite_text.clone(),
        mesh_text: String::new(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_s: 0.0,
        seed: opts.seed,
        envoy_version: "unknown".into(),
        backend: match &opts.target {
            Some(target) => format!("target {}", target.name),
            None => opts.backend.name().into(),
        },
        target: opts.target.as_ref().map(|t| crate::result::TargetInfo {
            name: t.name.clone(),
            path: t.path.display().to_string(),
            control_plane: if t.follows_log() { "tether" } else { FOREIGN }.into(),
            digest: t.digest.clone(),
            ..Default::default()
        }),
        xds: plan.xds_description(),
        fault_proxy: "unknown".into(),
        tether_version: crate::result::TETHER_VERSION.into(),
        git_revision: crate::result::GIT_REVISION.into(),
        machine: crate::result::Machine::this(),
        observer: None,
        interrupted: false,
        incomplete: false,
        stopped: None,
    }
}

/// Finds (or installs) Envoy and says what the run brings up; the backend's options.
async fn backend_options(
    plan: &Plan,
    opts: &RunOptions,
    tether_bin: PathBuf,
    info: &mut RunInfo,
    console: &Console,
) -> Result<BackendOptions> {
    let flag = opts.envoy_bin.clone();
    let envoy = tokio::task::spawn_blocking(move || provision::find_or_install(flag.as_deref()))
        .await
        .map_err(|e| anyhow!("Envoy provisioning crashed: {e}"))??;
    info.envoy_version = match (&opts.target, &plan.images.envoy) {
        // The Envoy under test is the target's, not the provisioned binary.
        (Some(target), _) => target_envoy_version(plan, target).await,
        // Or the suite's image.
        (None, Some(image)) if opts.backend == Backend::Docker => format!("image {}", **image),
        _ => envoy.version().unwrap_or_else(|e| format!("unknown ({e})")),
    };
    let fault_proxy = crate::faults::FaultProxy::choose(opts.fault_proxy)?;
    let (links, proxy) = match &opts.target {
        Some(target) => (target.describe_links(), "the target's".to_string()),
        None => describe_links(plan, opts, &fault_proxy),
    };
    info.fault_proxy = proxy;
    folder::write_info(&opts.report_dir, info).context("cannot write run.json")?;
    console.line(&format!(
        "suite {}: bringing up {} Envoys (virtual nodes and gateways) with Envoy {}",
        plan.name(),
        plan.sites.len(),
        info.envoy_version
    ));
    console.line(&format!("links: {links}"));
    Ok(BackendOptions {
        tether_bin,
        envoy,
        work_dir: opts.report_dir.join("work"),
        ready_timeout: Duration::from_secs(60),
        fault_proxy,
        backend: opts.backend,
        target: opts.target.clone(),
    })
}

/// The Envoy version the target's load sidecar reports.
async fn target_envoy_version(plan: &Plan, target: &crate::target::Target) -> String {
    let node = &plan.load.through;
    let Some(sidecar) = target.sidecars.get(node) else {
        return "unknown".into();
    };
    match crate::envoy::AdminClient::at(sidecar.admin.as_str())
        .server_version()
        .await
    {
        Some(version) => format!("{version} (as the target's `{node}` reports it)"),
        None => format!("unknown (the target's `{node}` did not say)"),
    }
}

/// How the sites are joined, in words, and which fault proxy carries the links.
fn describe_links(
    plan: &Plan,
    opts: &RunOptions,
    fault_proxy: &crate::faults::FaultProxy,
) -> (String, String) {
    match (plan.link, opts.backend) {
        (LinkKind::Proxy, Backend::Docker) => {
            let proxy = match &plan.images.fault_proxy {
                Some(image) => format!("Toxiproxy (image {})", **image),
                None => "tether's own Toxiproxy-compatible server (image)".into(),
            };
            let envoy = match &plan.images.envoy {
                Some(image) => format!("; Envoy from {}", **image),
                None => String::new(),
            };
            let links = format!(
                "containers on a region and an outpost Docker network; every cross-site connection through {proxy}, a container on both{envoy}"
            );
            (links, proxy)
        }
        (LinkKind::Proxy, _) => (
            format!("every cross-site connection through {fault_proxy}"),
            fault_proxy.to_string(),
        ),
        (LinkKind::Packet, _) => (
            "packet link: the sites in two network namespaces".into(),
            "none (packet link)".into(),
        ),
    }
}

/// What the checks need to know about a run besides its timeline: from its plan, and
/// from `info` whether its control plane's xDS log is on the timeline (not for a target's
/// foreign control plane).
fn checks_context(plan: &Plan, info: &RunInfo) -> checks::Context {
    checks::Context {
        judge_from_envoys: info
            .target
            .as_ref()
            .is_some_and(|t| t.control_plane == FOREIGN),
        outpost_nodes: plan.outpost_nodes(),
        load_through: plan.load.through.clone(),
        warm_up_ms: plan
            .soak
            .as_ref()
            .map_or(0, |s| s.warm_up.as_millis() as u64),
    }
}

/// A run being carried out: what it needs besides its topology.
struct Drive<'a> {
    plan: &'a Plan,
    /// The run folder (sidecar dumps go into it).
    report_dir: &'a std::path::Path,
    backend: &'a BackendOptions,
    schedule: &'a Schedule,
    timeline: &'a Timeline,
    console: &'a Console,
    stop: &'a CancellationToken,
    /// The control plane's xDS log is on the timeline (it is tether's own).
    xds_log: bool,
}

impl Drive<'_> {
    /// The observers for the whole run, and the schedule carried out through the
    /// topology's actuators.
    async fn drive(&self, topo: &RunningTopology) -> (Result<()>, Option<ObserverCost>) {
        let observing = self.stop.child_token();
        // The sidecars the checks read (or what the suite's `observe:` asks for).
        let sampled = self.plan.sampled_sidecars(self.xds_log);
        let sampler = crate::observe::spawn_sampler(
            &topo.envoys,
            &sampled,
            self.plan
                .observe
                .every
                .unwrap_or_else(|| crate::observe::period_for(sampled.len())),
            self.timeline.clone(),
            observing.clone(),
        );
        let memory = tokio::spawn(crate::observe::sample_memory(
            topo.control_plane_api(),
            Duration::from_secs(1),
            self.timeline.clone(),
            observing.clone(),
        ));
        let result = match &sampler {
            Ok(_) => self.carry_out(topo).await,
            Err(e) => Err(anyhow!("cannot start the observer's thread: {e}")),
        };
        observing.cancel();
        let _ = memory.await;
        let cost = match sampler {
            Ok(thread) => tokio::task::spawn_blocking(move || thread.join().ok())
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        }
        .map(|cost| ObserverCost {
            asked: self.plan.observe.sidecars,
            ..cost
        });
        self.console.finish().await;
        (result, cost)
    }

    /// The schedule carried out through the topology's actuators, with the load and the
    /// sidecar dumps it drives.
    async fn carry_out(&self, topo: &RunningTopology) -> Result<()> {
        let progress: Progress = {
            let console = self.console.clone();
            Arc::new(move |line: &str| console.line(line))
        };
        let load = HarnessLoad::new(
            self.plan,
            &topo.placement,
            (
                self.backend.tether_bin.clone(),
                self.backend.work_dir.clone(),
            ),
            self.timeline,
            self.stop,
            progress,
        )?;
        let dumps = crate::observe::dumps::SidecarDumps::new(
            topo.envoys.clone(),
            Some(self.plan.load.through.as_str()),
            self.report_dir,
            self.timeline,
        );
        let actuators = Actuators {
            links: topo.links.as_ref(),
            containers: topo,
            control_plane: topo,
            load: &load,
            dumps: Some(&dumps),
        };
        let result = interpreter::carry_out(
            self.schedule,
            &actuators,
            self.timeline,
            self.stop,
            self.console,
        )
        .await;
        // Every phase's dumps are written while the sidecars are still up.
        dumps.finish().await;
        result
    }
}
