//! Backends bring a [`Plan`] up as a [`RunningTopology`] and take it down, and provide
//! the [`actuators`] the interpreter calls: the process backend runs every part as a
//! child process, on 127.0.0.1 or in its site's network namespace ([`process`]); the
//! Docker backend runs every part as a container on its site's Docker network
//! ([`docker`]). A backend never runs phases.
//!
//! A third kind, [`target`], brings nothing up: it attaches to a deployment tether did
//! not start, through the addresses and actuators a target file names.
//!
//! [`commands`] builds the command lines of the four parts for both; [`links`] makes
//! link faults; [`load`] drives load from the harness.

pub mod actuators;
pub mod commands;
pub mod docker;
pub mod links;
pub mod load;
pub mod process;
pub mod running;
pub mod target;

pub use running::{Parts, RunningTopology};

use crate::envoy::EnvoyBinary;
use crate::plan::{LinkKind, Plan};
use crate::source::InputError;
use crate::timeline::Timeline;
use anyhow::{Result, bail};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

/// Where a run's parts run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// Child processes of tether.
    #[default]
    Process,
    /// Containers on two Docker networks, from images built on this machine (or
    /// official ones a suite names).
    Docker,
}

impl Backend {
    /// The name a user types (`process`, `docker`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Process => "process",
            Backend::Docker => "docker",
        }
    }
}

/// What a backend needs besides the plan.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// The `tether` binary, which also plays control plane, fault proxy and service.
    pub tether_bin: PathBuf,
    /// The Envoy binary.
    pub envoy: EnvoyBinary,
    /// Where configs and logs of the parts go.
    pub work_dir: PathBuf,
    /// How long bring-up may take before it counts as an environment failure.
    pub ready_timeout: Duration,
    /// The fault proxy to run (proxy links on processes; the Docker backend runs
    /// tether's own, or the Toxiproxy image a suite names).
    pub fault_proxy: crate::faults::FaultProxy,
    /// Processes or containers.
    pub backend: Backend,
    /// A deployment tether did not start: attached to instead of brought up.
    pub target: Option<std::sync::Arc<crate::target::Target>>,
}

impl RunningTopology {
    /// Bring `plan` up on the backend `opts` names. Control-plane log lines are recorded
    /// on `timeline` as they come. On error, what already started is stopped.
    pub async fn up(
        plan: &Plan,
        opts: &BackendOptions,
        timeline: &Timeline,
    ) -> Result<RunningTopology> {
        if let Some(target) = &opts.target {
            let run_dir = opts.work_dir.parent().unwrap_or(&opts.work_dir);
            return target::attach(plan, target, run_dir, timeline).await;
        }
        check(plan, opts.backend)?;
        match opts.backend {
            Backend::Process => process::up(plan, opts, timeline).await,
            Backend::Docker => docker::topology::up(plan, opts, timeline).await,
        }
    }
}

/// Whether `backend` can run `plan`: a packet link needs processes in network
/// namespaces, container faults need containers. The error names the line.
pub fn check(plan: &Plan, backend: Backend) -> Result<(), InputError> {
    let path = &plan.suite_path;
    match backend {
        Backend::Docker => match plan.link_span {
            Some(span) if plan.link == LinkKind::Packet => Err(InputError::at(
                path,
                &span,
                "`link: packet` runs on the process backend only; the Docker backend joins its sites through the fault proxy",
            )),
            _ => Ok(()),
        },
        Backend::Process => {
            let first = plan.phases.iter().flat_map(|p| &p.containers).next();
            match first {
                Some(fault) => Err(InputError::at(
                    path,
                    &fault.span,
                    format!(
                        "`{}: {}` is a container fault: run this suite with `--backend docker`",
                        fault.action.as_str(),
                        fault.part
                    ),
                )),
                None => Ok(()),
            }
        }
    }
}

/// Free loopback ports, reserved together so they differ from each other.
///
/// They are taken below the kernel's ephemeral range (`ip_local_port_range`), so that no
/// outgoing connection on the machine can be given one as its source port between now and
/// the moment the part that owns it binds it.
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
