//! `tether bench`: tether's generator against wrk, in one run, on the same footing: each
//! tool pinned to core 0, the target (nginx, or Envoy proxying to nginx) pinned to core
//! 1, the same connections and duration, repeated. Closed loop at each connection count:
//! requests per second and CPU milliseconds per 1,000 requests of each tool, and the
//! ratio tether / wrk with its spread. Open loop at each rate ([`open`]): tether's
//! response time, service time and lag beside the target's true answer time. Both tools
//! send the same request ([`WRK_SAME_REQUEST`]); the CPUs are held out of their sleep
//! states while it measures ([`idle`]); the limits the generator is held to are judged
//! at the end ([`limits`]). A benchmark, not a test: `cargo test` never runs it.
//! `tether bench fault-proxy` measures the fault proxy instead ([`fault_proxy`]), and
//! `tether bench observer` what a run's sampling costs the Envoy it samples ([`observer`]).

pub mod fault_proxy;
pub mod idle;
pub mod limits;
pub mod observer;
pub mod open;
mod targets;

use crate::envoy::provision::{self, on_path};
use anyhow::{Context, Result, bail};
use open::OpenRow;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use targets::{Cpu, free_port, pinned, spread, start_envoy, start_nginx, wrk_rps};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Length of each measurement.
    pub duration: Duration,
    /// Measurements per (tool, target, connections).
    pub repeat: usize,
    /// Closed loop: a measurement alternates wrk and tether in slices this long (whole
    /// seconds, at least one), so a drift of the machine's speed over seconds, which on a
    /// shared virtual machine is larger than the difference measured, falls on both.
    pub slice: Duration,
    /// Connection counts (closed loop).
    pub connections: Vec<usize>,
    /// Requests per second (open loop).
    pub rates: Vec<f64>,
    /// tether's connections in the open loop.
    pub open_connections: usize,
    /// Where the figures go (JSON).
    pub out: PathBuf,
    /// Envoy binary (default: found or installed as `tether run` does).
    pub envoy_bin: Option<PathBuf>,
    /// How the CPUs idle while it measures.
    pub cpu_idle: idle::CpuIdle,
}

/// wrk's arguments that make its request the one tether sends (tether names itself in a
/// `User-Agent`; wrk sends none), so that the target does the same work for both.
pub const WRK_SAME_REQUEST: [&str; 2] = ["-H", "User-Agent: tether"];

/// One measurement of one tool.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Requests per second.
    pub requests_per_second: f64,
    /// CPU milliseconds the tool used per 1,000 requests.
    pub cpu_ms_per_1000: f64,
    /// Of which in user space (the tool's own code and libraries)...
    pub user_ms_per_1000: f64,
    /// ... and in the kernel (sockets, TCP, loopback): where the time goes.
    pub sys_ms_per_1000: f64,
}

impl Sample {
    fn new(requests_per_second: f64, requests: f64, cpu: Cpu) -> Sample {
        let per_1000 = |d: Duration| d.as_secs_f64() * 1e6 / requests.max(1.0);
        Sample {
            requests_per_second,
            cpu_ms_per_1000: per_1000(cpu.user + cpu.sys),
            user_ms_per_1000: per_1000(cpu.user),
            sys_ms_per_1000: per_1000(cpu.sys),
        }
    }
}

/// The figures for one (target, connections).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `nginx` or `envoy->nginx`.
    pub target: String,
    /// Connections.
    pub connections: usize,
    /// wrk's measurements.
    pub wrk: Vec<Sample>,
    /// tether's measurements.
    pub tether: Vec<Sample>,
    /// tether / wrk requests per second, per repetition.
    pub ratios: Vec<f64>,
}

/// What `tether bench` measured (`bench/results.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// How the CPUs idled while it measured.
    pub cpu_idle: String,
    /// Closed loop, tether against wrk.
    pub closed: Vec<Row>,
    /// Open loop, tether's latencies beside the target's.
    pub open: Vec<OpenRow>,
    /// The limits the generator is held to, judged from the figures above.
    pub limits: Vec<limits::Limit>,
}

/// Run the benchmark, print the table, write the figures to `options.out`.
pub fn run(options: &Options) -> Result<Results> {
    let need = |name: &str| {
        on_path(name).with_context(|| {
            format!("`{name}` is not on PATH; install it (Debian: apt-get install wrk nginx-light util-linux)")
        })
    };
    let (wrk, nginx) = (need("wrk")?, need("nginx")?);
    need("taskset")?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if cores < 2 {
        bail!(
            "the benchmark pins the tools and the target to different cores; this machine has {cores}"
        );
    }
    let envoy = provision::find_or_install(options.envoy_bin.as_deref())
        .context("the benchmark needs Envoy")?;
    let tether = std::env::current_exe().context("cannot find the tether executable")?;
    remove_stale_folders();
    let dir = std::env::temp_dir().join(format!("{FOLDER}{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let hold = idle::IdleHold::new(options.cpu_idle);
    eprintln!("bench: CPUs idle {}", hold.described);
    let result = measure(options, &wrk, &nginx, &envoy.path, &tether, &dir);
    drop(hold.file);
    let _ = std::fs::remove_dir_all(&dir);
    let mut rows = result?;
    rows.cpu_idle = hold.described;
    rows.limits = limits::judge(&rows.closed, &rows.open);
    println!("CPUs idle {}", rows.cpu_idle);
    println!("{}", table(&rows.closed));
    println!("{}", open::table(&rows.open));
    println!("{}", limits::table(&rows.limits));
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.out, serde_json::to_vec_pretty(&rows)?)
        .with_context(|| format!("cannot write {}", options.out.display()))?;
    println!("figures: {}", options.out.display());
    Ok(rows)
}

/// A bench's working folder in the temporary folder: this and its process id.
const FOLDER: &str = "tether-bench-";

/// Remove the working folders of benches that were killed (their process is gone): a
/// signal skips the removal at the end of [`run`]. The processes they ran died with them.
fn remove_stale_folders() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(FOLDER)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Start the targets in `dir` and measure both tools against each.
fn measure(
    options: &Options,
    wrk: &Path,
    nginx: &Path,
    envoy: &Path,
    tether: &Path,
    dir: &Path,
) -> Result<Results> {
    let (nginx_port, envoy_port) = (free_port()?, free_port()?);
    let _nginx = start_nginx(nginx, dir, nginx_port)?;
    let (_envoy, _) = start_envoy(envoy, dir, envoy_port, nginx_port)?;
    let mut results = Results {
        cpu_idle: String::new(),
        closed: Vec::new(),
        open: Vec::new(),
        limits: Vec::new(),
    };
    for (target, port) in [("nginx", nginx_port), ("envoy->nginx", envoy_port)] {
        results
            .closed
            .extend(closed(options, wrk, tether, target, port)?);
        for &rate in &options.rates {
            let mut row = OpenRow {
                target: target.into(),
                rate,
                connections: options.open_connections,
                rounds: Vec::new(),
            };
            for round in 0..options.repeat {
                eprintln!(
                    "bench: {target}, open loop at {rate} requests/s, round {}/{}",
                    round + 1,
                    options.repeat
                );
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                row.rounds.push(open::round(
                    wrk,
                    tether,
                    addr,
                    rate,
                    options.open_connections,
                    options.duration,
                )?);
            }
            results.open.push(row);
        }
    }
    Ok(results)
}

/// The closed-loop rows of one target: wrk and tether in turn, at each connection count.
fn closed(
    options: &Options,
    wrk: &Path,
    tether: &Path,
    target: &str,
    port: u16,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let url = format!("http://127.0.0.1:{port}/");
    for &connections in &options.connections {
        let mut row = Row {
            target: target.into(),
            connections,
            wrk: Vec::new(),
            tether: Vec::new(),
            ratios: Vec::new(),
        };
        for round in 0..options.repeat {
            eprintln!(
                "bench: {target}, {connections} connections, round {}/{}",
                round + 1,
                options.repeat
            );
            let (wrk_sample, tether_sample) =
                closed_round(options, wrk, tether, &url, connections)?;
            row.ratios
                .push(tether_sample.requests_per_second / wrk_sample.requests_per_second);
            row.wrk.push(wrk_sample);
            row.tether.push(tether_sample);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// One closed-loop measurement of each tool: `duration` of each, in alternating slices.
fn closed_round(
    options: &Options,
    wrk: &Path,
    tether: &Path,
    url: &str,
    connections: usize,
) -> Result<(Sample, Sample)> {
    let secs = options.duration.as_secs().max(1);
    let slice = options.slice.as_secs().clamp(1, secs);
    let (mut wrk_total, mut tether_total) = (Tally::default(), Tally::default());
    let mut left = secs;
    while left > 0 {
        let this = slice.min(left);
        left -= this;
        let (out, cpu) = pinned(
            wrk,
            &[
                "-t1".into(),
                format!("-c{connections}"),
                format!("-d{this}s"),
                WRK_SAME_REQUEST[0].into(),
                WRK_SAME_REQUEST[1].into(),
                url.to_string(),
            ],
        )?;
        wrk_total.add(wrk_rps(&out)? * this as f64, this as f64, cpu);
        let (out, cpu) = pinned(
            tether,
            &[
                "load".into(),
                url.to_string(),
                "-c".into(),
                connections.to_string(),
                "-d".into(),
                format!("{this}s"),
                "--json".into(),
            ],
        )?;
        let report: crate::timeline::LoadRun = serde_json::from_str(&out)
            .with_context(|| format!("tether load gave no figures:\n{out}"))?;
        tether_total.add(report.requests as f64, report.elapsed_s, cpu);
    }
    Ok((wrk_total.sample(), tether_total.sample()))
}

/// One tool's slices of a measurement, added up.
#[derive(Default)]
struct Tally {
    requests: f64,
    seconds: f64,
    cpu: Cpu,
}

impl Tally {
    fn add(&mut self, requests: f64, seconds: f64, cpu: Cpu) {
        self.requests += requests;
        self.seconds += seconds;
        self.cpu.user += cpu.user;
        self.cpu.sys += cpu.sys;
    }

    fn sample(&self) -> Sample {
        Sample::new(
            self.requests / self.seconds.max(1e-9),
            self.requests,
            self.cpu,
        )
    }
}

/// The rows as a table: medians with [min-max].
fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "target        conns  wrk req/s               tether req/s            tether/wrk          CPU ms/1k req, user+sys (wrk | tether)\n",
    );
    for r in rows {
        let rps =
            |s: &[Sample]| spread(&s.iter().map(|x| x.requests_per_second).collect::<Vec<_>>());
        let cpu = |s: &[Sample]| {
            let median = |f: fn(&Sample) -> f64| spread(&s.iter().map(f).collect::<Vec<_>>()).0;
            format!(
                "{:.1}+{:.1}",
                median(|x| x.user_ms_per_1000),
                median(|x| x.sys_ms_per_1000)
            )
        };
        let (w, wl, wh) = rps(&r.wrk);
        let (t, tl, th) = rps(&r.tether);
        let (q, ql, qh) = spread(&r.ratios);
        out.push_str(&format!(
            "{:<13} {:>5}  {w:>7.0} [{wl:.0}-{wh:.0}]  {t:>7.0} [{tl:.0}-{th:.0}]  {q:.2} [{ql:.2}-{qh:.2}]  {} | {}\n",
            r.target,
            r.connections,
            cpu(&r.wrk),
            cpu(&r.tether)
        ));
    }
    out
}
