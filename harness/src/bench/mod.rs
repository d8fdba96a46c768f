//! `tether bench`: tether's closed-loop generator against wrk, in one run, on the same
//! footing: each tool pinned to core 0, the target (nginx, or Envoy proxying to nginx)
//! pinned to core 1, the same connections and duration, repeated. It reports requests
//! per second and CPU milliseconds per 1,000 requests of each tool, and the ratio
//! tether / wrk with its spread. A benchmark, not a test: `cargo test` never runs it.
//! `tether bench fault-proxy` measures the fault proxy instead ([`fault_proxy`]), and
//! `tether bench observer` what a run's sampling costs the Envoy it samples ([`observer`]).

pub mod fault_proxy;
pub mod observer;

use crate::envoy::provision::{self, on_path};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Length of each measurement.
    pub duration: Duration,
    /// Measurements per (tool, target, connections).
    pub repeat: usize,
    /// Connection counts.
    pub connections: Vec<usize>,
    /// Where the figures go (JSON).
    pub out: PathBuf,
    /// Envoy binary (default: found or installed as `tether run` does).
    pub envoy_bin: Option<PathBuf>,
}

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

/// CPU time, split.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    user: Duration,
    sys: Duration,
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

/// A target started in a process group of its own, the whole group killed when dropped
/// (nginx's workers outlive a killed master otherwise).
struct Guard(Child);

impl Guard {
    fn spawn(command: &mut Command, what: &str) -> Result<Guard> {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; it makes the target die with the bench
        // (killed by a signal, Drop does not run).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        Ok(Guard(child))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this guard's child leads.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// CPU time of the waited-for children of this process so far.
fn children_cpu() -> Cpu {
    // SAFETY: getrusage fills the struct we pass.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Cpu {
        user: tv(u.ru_utime),
        sys: tv(u.ru_stime),
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Wait until something listens on `addr`.
fn wait_listening(addr: SocketAddr, what: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        if std::time::Instant::now() > deadline {
            bail!("{what} did not listen on {addr} within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Start nginx (one worker, pinned to core 1) answering `ok` on `port`.
fn start_nginx(nginx: &Path, dir: &Path, port: u16) -> Result<Guard> {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n\
               server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000; location / {{ return 200 \"ok\"; }} }}\n}}\n",
            d = dir.display()
        ),
    )?;
    let guard = Guard::spawn(
        Command::new("taskset")
            .args(["-c", "1"])
            .arg(nginx)
            .args(["-p", &dir.display().to_string(), "-c"])
            .arg(&conf),
        "nginx",
    )?;
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), "nginx")?;
    Ok(guard)
}

/// Start Envoy (one worker, pinned to core 1) proxying `port` to nginx on `upstream`;
/// gives its admin address too.
fn start_envoy(envoy: &Path, dir: &Path, port: u16, upstream: u16) -> Result<(Guard, SocketAddr)> {
    let admin = free_port()?;
    let file = envoy_config(dir, admin, port, upstream)?;
    let guard = Guard::spawn(
        Command::new("taskset")
            .args(["-c", "1"])
            .arg(envoy)
            .arg("-c")
            .arg(&file)
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--log-level",
                "error",
            ]),
        "Envoy",
    )?;
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), "Envoy")?;
    Ok((guard, SocketAddr::from(([127, 0, 0, 1], admin))))
}

/// Write Envoy's bootstrap and its listener, route and cluster as xDS files, so that it
/// serves versioned dynamic resources as a sidecar does (what the observer reads) with
/// the same data path as static ones. Returns the bootstrap's path.
fn envoy_config(dir: &Path, admin: u16, port: u16, upstream: u16) -> Result<PathBuf> {
    let source = |name: &str| {
        let path = dir.join(format!("envoy-{name}.json"));
        let source = serde_json::json!({ "path_config_source": { "path": path }, "resource_api_version": "V3" });
        (path, source)
    };
    let (lds, lds_source) = source("lds");
    let (cds, cds_source) = source("cds");
    let (rds, rds_source) = source("rds");
    let typed = |kind: &str, mut resource: serde_json::Value| {
        resource["@type"] = format!("type.googleapis.com/envoy.config.{kind}").into();
        serde_json::json!({ "version_info": "1", "resources": [resource] })
    };
    let listener = typed(
        "listener.v3.Listener",
        serde_json::json!({
            "name": "bench",
            "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
            "filter_chains": [{ "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "bench",
                    "rds": { "route_config_name": "bench", "config_source": rds_source },
                    "http_filters": [{ "name": "envoy.filters.http.router",
                        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }]
                }
            }] }]
        }),
    );
    let route = typed(
        "route.v3.RouteConfiguration",
        serde_json::json!({
            "name": "bench",
            "virtual_hosts": [{ "name": "all", "domains": ["*"],
                "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "nginx" } }] }]
        }),
    );
    let cluster = typed(
        "cluster.v3.Cluster",
        serde_json::json!({
            "name": "nginx",
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": { "cluster_name": "nginx", "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": upstream } } } }] }] }
        }),
    );
    let bootstrap = serde_json::json!({
        "node": { "id": "bench", "cluster": "bench" },
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": admin } } },
        "dynamic_resources": { "lds_config": lds_source, "cds_config": cds_source }
    });
    let file = dir.join("envoy-bench.json");
    for (path, value) in [
        (&lds, listener),
        (&rds, route),
        (&cds, cluster),
        (&file, bootstrap),
    ] {
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)?;
    }
    Ok(file)
}

/// Run `program args` pinned to core 0, and return its stdout and the CPU it used.
fn pinned(program: &Path, args: &[String]) -> Result<(String, Cpu)> {
    let before = children_cpu();
    let out = Command::new("taskset")
        .args(["-c", "0"])
        .arg(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let after = children_cpu();
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        Cpu {
            user: after.user.saturating_sub(before.user),
            sys: after.sys.saturating_sub(before.sys),
        },
    ))
}

/// wrk's `Requests/sec:` figure.
fn wrk_rps(output: &str) -> Result<f64> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output:\n{output}"))
}

/// Median and spread of `values`.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Run the benchmark, print the table, write the figures to `options.out`.
pub fn run(options: &Options) -> Result<Vec<Row>> {
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
    let dir = std::env::temp_dir().join(format!("tether-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(options, &wrk, &nginx, &envoy.path, &tether, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let rows = result?;
    println!("{}", table(&rows));
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.out, serde_json::to_vec_pretty(&rows)?)
        .with_context(|| format!("cannot write {}", options.out.display()))?;
    println!("figures: {}", options.out.display());
    Ok(rows)
}

/// Start the targets in `dir` and measure both tools against each.
fn measure(
    options: &Options,
    wrk: &Path,
    nginx: &Path,
    envoy: &Path,
    tether: &Path,
    dir: &Path,
) -> Result<Vec<Row>> {
    let (nginx_port, envoy_port) = (free_port()?, free_port()?);
    let _nginx = start_nginx(nginx, dir, nginx_port)?;
    let (_envoy, _) = start_envoy(envoy, dir, envoy_port, nginx_port)?;
    let secs = options.duration.as_secs().max(1);
    let mut rows = Vec::new();
    for (target, port) in [("nginx", nginx_port), ("envoy->nginx", envoy_port)] {
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
                let (out, cpu) = pinned(
                    wrk,
                    &[
                        "-t1".into(),
                        format!("-c{connections}"),
                        format!("-d{secs}s"),
                        url.clone(),
                    ],
                )?;
                let rps = wrk_rps(&out)?;
                let wrk_sample = Sample::new(rps, rps * secs as f64, cpu);
                let (out, cpu) = pinned(
                    tether,
                    &[
                        "load".into(),
                        url.clone(),
                        "-c".into(),
                        connections.to_string(),
                        "-d".into(),
                        format!("{secs}s"),
                        "--json".into(),
                    ],
                )?;
                let report: crate::timeline::LoadRun = serde_json::from_str(&out)
                    .with_context(|| format!("tether load gave no figures:\n{out}"))?;
                let tether_sample =
                    Sample::new(report.requests_per_second, report.requests as f64, cpu);
                row.ratios
                    .push(tether_sample.requests_per_second / wrk_sample.requests_per_second);
                row.wrk.push(wrk_sample);
                row.tether.push(tether_sample);
            }
            rows.push(row);
        }
    }
    Ok(rows)
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
