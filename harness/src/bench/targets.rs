//! The processes a benchmark measures and the tools it runs: nginx and Envoy pinned to
//! core 1, a tool pinned to core 0 with the CPU it used, each process group killed when
//! its guard drops.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// CPU time, split.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Cpu {
    pub(super) user: Duration,
    pub(super) sys: Duration,
}

/// A target started in a process group of its own, the whole group killed when dropped
/// (nginx's workers outlive a killed master otherwise).
pub(super) struct Guard(pub(super) Child);

impl Guard {
    pub(super) fn spawn(command: &mut Command, what: &str) -> Result<Guard> {
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
pub(super) fn children_cpu() -> Cpu {
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

pub(super) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Wait until something listens on `addr`.
pub(super) fn wait_listening(addr: SocketAddr, what: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        if std::time::Instant::now() > deadline {
            bail!("{what} did not listen on {addr} within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Start nginx (one process, pinned to core 1) answering `ok` on `port`. With no master
/// process the one process that serves is the one started, so it dies with the bench
/// (a master killed by a signal leaves its workers running).
pub(super) fn start_nginx(nginx: &Path, dir: &Path, port: u16) -> Result<Guard> {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "master_process off;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
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
pub(super) fn start_envoy(
    envoy: &Path,
    dir: &Path,
    port: u16,
    upstream: u16,
) -> Result<(Guard, SocketAddr)> {
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
pub(super) fn pinned(program: &Path, args: &[String]) -> Result<(String, Cpu)> {
    use std::os::unix::process::CommandExt;
    let before = children_cpu();
    let mut command = Command::new("taskset");
    // SAFETY: prctl is async-signal-safe; the tool dies with the bench.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let out = command
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
pub(super) fn wrk_rps(output: &str) -> Result<f64> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output:\n{output}"))
}

/// Median and spread of `values`.
pub(super) fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// The median of wrk's `--latency` distribution (its `50%` line), in microseconds.
pub(super) fn wrk_p50_us(output: &str) -> Result<f64> {
    let value = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))
        .map(str::trim)
        .with_context(|| format!("no 50% line in wrk's --latency output:\n{output}"))?;
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("wrk's median `{value}` is not a number"))?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => bail!("wrk's median `{value}` has an unknown unit"),
    };
    Ok(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_median_in_any_unit() {
        let out = "  Latency Distribution\n     50%   84.00us\n     75%   95.00us\n";
        assert_eq!(wrk_p50_us(out).unwrap(), 84.0);
        assert_eq!(wrk_p50_us("     50%    1.25ms\n").unwrap(), 1250.0);
        assert!(wrk_p50_us("Requests/sec: 1").is_err());
    }
}
