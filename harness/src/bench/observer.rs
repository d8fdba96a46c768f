//! `tether bench observer`: what a run's observer costs the Envoy it watches. wrk
//! (pinned to core 0) drives Envoy proxying to nginx (both pinned to core 1) with a closed
//! loop, in rounds that alternate between no sampling and the observer a run uses
//! ([`crate::observe::sample_envoys`]: filtered stats with the config
//! versions, and `/ready`, every 250 ms); the figure is throughput with sampling over
//! throughput without, per round.
//! Because that ratio is as noisy as any throughput (a few percent between rounds on a
//! small machine), it also measures the cost directly: the CPU time Envoy's threads
//! spend (`/proc/<pid>/task/*/schedstat`, in nanoseconds) while idle for the same time
//! without and with the observer, as a share of the one core Envoy is pinned to.

use super::targets::{free_port, pinned, spread, start_envoy, start_nginx, wrk_rps};
use crate::envoy::AdminClient;
use crate::envoy::provision::{self, on_path};
use crate::timeline::Timeline;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What to measure.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Length of each measurement.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Rounds (each one measurement without sampling and one with).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// wrk's connections.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// How often the observer samples (a run's: 250 ms).
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub period: Duration,
    /// Where the figures go (JSON).
    #[arg(long, default_value = "bench/observer.json")]
    pub out: PathBuf,
    /// Envoy binary (default: found or installed as `tether run` does).
    #[arg(long)]
    pub envoy_bin: Option<PathBuf>,
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct ObserverCost {
    /// Envoy -> nginx requests per second without sampling, per round.
    pub without: Vec<f64>,
    /// The same with the observer sampling, per round.
    pub with: Vec<f64>,
    /// with / without, per round.
    pub ratios: Vec<f64>,
    /// Samples the observer took in each sampled round.
    pub samples: Vec<usize>,
    /// Envoy's CPU time per second while idle without sampling, in ms.
    pub idle_cpu_ms_per_s: f64,
    /// The same with the observer sampling, in ms.
    pub sampled_cpu_ms_per_s: f64,
    /// What sampling adds, as a share of Envoy's core.
    pub sampling_core_share: f64,
}

/// Run the benchmark, print the figures, write them to `options.out`.
pub fn run(options: &Options) -> Result<ObserverCost> {
    let need = |name: &str| {
        on_path(name).with_context(|| {
            format!("`{name}` is not on PATH; install it (Debian: apt-get install wrk nginx-light util-linux)")
        })
    };
    let (wrk, nginx) = (need("wrk")?, need("nginx")?);
    need("taskset")?;
    let envoy = provision::find_or_install(options.envoy_bin.as_deref())
        .context("the benchmark needs Envoy")?;
    let dir = std::env::temp_dir().join(format!("tether-bench-observer-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (nginx_port, envoy_port) = (free_port()?, free_port()?);
    let cost = (|| -> Result<ObserverCost> {
        let _nginx = start_nginx(&nginx, &dir, nginx_port)?;
        let (envoy, admin) = start_envoy(&envoy.path, &dir, envoy_port, nginx_port)?;
        let mut cost = measure(options, &wrk, envoy_port, admin)?;
        idle_cost(options, envoy.0.id(), admin, &mut cost)?;
        Ok(cost)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let cost = cost?;
    let (median, low, high) = spread(&cost.ratios);
    println!(
        "observer every {}: Envoy -> nginx throughput with sampling / without = {median:.3} [{low:.3}-{high:.3}] over {} rounds ({:.0} vs {:.0} requests/s at the median)",
        humantime::format_duration(options.period),
        cost.ratios.len(),
        spread(&cost.with).0,
        spread(&cost.without).0,
    );
    println!(
        "Envoy's CPU while idle: {:.2} ms/s without sampling, {:.2} ms/s with it: sampling takes {:.3}% of its core",
        cost.idle_cpu_ms_per_s,
        cost.sampled_cpu_ms_per_s,
        cost.sampling_core_share * 100.0
    );
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.out, serde_json::to_vec_pretty(&cost)?)
        .with_context(|| format!("cannot write {}", options.out.display()))?;
    println!("figures: {}", options.out.display());
    Ok(cost)
}

/// Alternate rounds without and with the observer.
fn measure(
    options: &Options,
    wrk: &std::path::Path,
    port: u16,
    admin: std::net::SocketAddr,
) -> Result<ObserverCost> {
    let secs = options.duration.as_secs().max(1);
    let args = [
        "-t1".to_string(),
        format!("-c{}", options.connections),
        format!("-d{secs}s"),
        format!("http://127.0.0.1:{port}/"),
    ];
    let runtime = tokio::runtime::Runtime::new()?;
    let mut cost = ObserverCost {
        without: Vec::new(),
        with: Vec::new(),
        ratios: Vec::new(),
        samples: Vec::new(),
        idle_cpu_ms_per_s: 0.0,
        sampled_cpu_ms_per_s: 0.0,
        sampling_core_share: 0.0,
    };
    for round in 1..=options.repeat {
        eprintln!("bench observer: round {round}/{}", options.repeat);
        let (out, _) = pinned(wrk, &args)?;
        let without = wrk_rps(&out)?;
        let (timeline, stop) = (Timeline::new(), CancellationToken::new());
        let envoys = [("bench".to_string(), AdminClient::new(admin))].into();
        let observer = runtime.spawn(crate::observe::sample_envoys(
            envoys,
            options.period,
            timeline.clone(),
            stop.clone(),
        ));
        let (out, _) = pinned(wrk, &args)?;
        stop.cancel();
        let _ = runtime.block_on(observer);
        let with = wrk_rps(&out)?;
        cost.without.push(without);
        cost.with.push(with);
        cost.ratios.push(with / without);
        cost.samples.push(timeline.entries().len());
    }
    Ok(cost)
}

/// Envoy's CPU time idle for `options.duration` without, then with, the observer.
fn idle_cost(
    options: &Options,
    pid: u32,
    admin: std::net::SocketAddr,
    cost: &mut ObserverCost,
) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let secs = options.duration.as_secs_f64();
    let before = cpu_ns(pid)?;
    std::thread::sleep(options.duration);
    let idle = cpu_ns(pid)? - before;
    let (stop, envoys) = (
        CancellationToken::new(),
        [("bench".to_string(), AdminClient::new(admin))].into(),
    );
    let observer = runtime.spawn(crate::observe::sample_envoys(
        envoys,
        options.period,
        Timeline::new(),
        stop.clone(),
    ));
    let before = cpu_ns(pid)?;
    std::thread::sleep(options.duration);
    let sampled = cpu_ns(pid)? - before;
    stop.cancel();
    let _ = runtime.block_on(observer);
    cost.idle_cpu_ms_per_s = idle as f64 / 1e6 / secs;
    cost.sampled_cpu_ms_per_s = sampled as f64 / 1e6 / secs;
    cost.sampling_core_share = (sampled as f64 - idle as f64).max(0.0) / 1e9 / secs;
    Ok(())
}

/// Nanoseconds every thread of process `pid` has run on a CPU.
fn cpu_ns(pid: u32) -> Result<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("cannot read the threads of Envoy (pid {pid})"))?;
    let mut total = 0;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}
