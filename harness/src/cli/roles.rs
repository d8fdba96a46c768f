//! The parts of a run the `tether` binary plays as child processes.

use crate::control_plane::{self, ControlPlane};
use crate::faults::populate::parse_proxy_list;
use crate::faults::server::{ServeOptions, serve_with};
use crate::mesh::Mesh;
use crate::run::exit;
use crate::topology::Placement;
use clap::Subcommand;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A part tether plays in a run.
#[derive(Debug, Subcommand)]
pub enum Role {
    /// Serve xDS (ADS) for a mesh; print every push/ACK/NACK as a JSON line on stdout.
    #[command(name = "control-plane")]
    ControlPlane {
        /// The mesh file.
        #[arg(long)]
        mesh: PathBuf,
        /// Where every node's processes listen (JSON written by the backend).
        #[arg(long)]
        placement: PathBuf,
        /// The ADS gRPC address.
        #[arg(long)]
        xds_listen: SocketAddr,
        /// The admin (change API) address.
        #[arg(long)]
        admin_listen: SocketAddr,
        /// Persist version and changes here, and resume from it on start (restarts).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Run the Toxiproxy-compatible fault proxy API (a drop-in for toxiproxy-server: its
    /// single-dash flags `-host`, `-port`, `-config`, `-seed`, `-version` work too, and
    /// `GET /metrics` serves each proxy's bytes and connections in Prometheus text).
    #[command(name = "fault-proxy")]
    FaultProxy {
        /// Host (address or name) for the API to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port for the API to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8474)]
        port: u16,
        /// API address, like 127.0.0.1:8474; overrides --host and --port.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Seed for the toxics' randomness (jitter, toxicity); random when not given.
        #[arg(long)]
        seed: Option<u64>,
        /// JSON file with an array of proxies to create at start, as `POST /populate` takes.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the version (as Toxiproxy's API reports it) and exit.
        #[arg(long)]
        version: bool,
        /// Accepted as toxiproxy-server takes it: `/metrics` is always served.
        #[arg(long)]
        proxy_metrics: bool,
        /// Accepted as toxiproxy-server takes it (tether has no Go runtime to report).
        #[arg(long)]
        runtime_metrics: bool,
    },
    /// Run the sample HTTP service, answering with its name.
    Service {
        /// The name it answers with.
        #[arg(long)]
        name: String,
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Its sidecar's egress listener, for `call=` requests to other services.
        #[arg(long)]
        egress: Option<SocketAddr>,
    },
    /// Play goose user journeys through a sidecar: print one JSON line per step.
    Journeys {
        /// The sidecar egress the requests enter through.
        #[arg(long)]
        egress: SocketAddr,
        /// The front virtual service.
        #[arg(long)]
        front: String,
        /// The back virtual service the front calls.
        #[arg(long)]
        back: String,
        /// Concurrent users.
        #[arg(long, default_value_t = 4)]
        users: usize,
        /// How long the users run.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
    },
}

/// Cancelled on SIGTERM or Ctrl-C.
pub(super) fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        }
        t.cancel();
    });
    token
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, i32> {
    TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("error: cannot listen on {addr}: {e}");
        exit::ENVIRONMENT
    })
}

/// Play `role` until told to stop; returns the exit code.
pub async fn run(role: Role) -> i32 {
    let shutdown = shutdown_on_signal();
    let result = match role {
        Role::ControlPlane {
            mesh,
            placement,
            xds_listen,
            admin_listen,
            state,
        } => control_plane_role(mesh, placement, xds_listen, admin_listen, state, shutdown).await,
        Role::FaultProxy { version: true, .. } => {
            println!("tether fault-proxy {}", crate::faults::server::VERSION);
            Ok(())
        }
        Role::FaultProxy {
            host,
            port,
            listen,
            seed,
            config,
            ..
        } => fault_proxy_role(&host, port, listen, seed, config, shutdown).await,
        Role::Journeys {
            egress,
            front,
            back,
            users,
            duration,
        } => {
            let spec = crate::journeys::JourneySpec {
                egress,
                front,
                back,
                users,
                duration,
            };
            return journeys(spec).await;
        }
        Role::Service {
            name,
            listen,
            egress,
        } => match bind(listen).await {
            Ok(listener) => {
                crate::service::serve(name, egress, listener, shutdown).await;
                Ok(())
            }
            Err(code) => Err(code),
        },
    };
    result.err().unwrap_or(exit::PASSED)
}

/// `tether journeys`: goose installs its own Ctrl-C handler, so it gets a process (and no
/// tether signal handling) of its own.
pub async fn journeys(spec: crate::journeys::JourneySpec) -> i32 {
    match crate::journeys::play(spec).await {
        Ok(()) => exit::PASSED,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::ENVIRONMENT
        }
    }
}

/// Where the fault proxy's API listens: `listen` if given, else `host`:`port`.
async fn fault_proxy_addr(
    host: &str,
    port: u16,
    listen: Option<SocketAddr>,
) -> Result<SocketAddr, i32> {
    if let Some(listen) = listen {
        return Ok(listen);
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let resolved = tokio::net::lookup_host((host, port)).await;
    match resolved.map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => {
            eprintln!("error: --host {host}: no address");
            Err(exit::BAD_INPUT)
        }
        Err(e) => {
            eprintln!("error: --host {host}: {e}");
            Err(exit::BAD_INPUT)
        }
    }
}

/// The flags `toxiproxy-server` takes, which Go writes with one dash (`-port 8474`,
/// `-config=proxies.json`).
const TOXIPROXY_FLAGS: [&str; 7] = [
    "host",
    "port",
    "config",
    "seed",
    "version",
    "proxy-metrics",
    "runtime-metrics",
];

/// `tether fault-proxy` with toxiproxy-server's single-dash flags rewritten to the
/// double dash (so a command line written for one runs the other); any other command
/// line is returned as it is.
pub(super) fn toxiproxy_flags(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    if args.get(1).is_none_or(|a| a != "fault-proxy") {
        return args;
    }
    args.into_iter()
        .map(|arg| {
            let Some(text) = arg.to_str() else { return arg };
            let Some(flag) = text.strip_prefix('-').filter(|f| !f.starts_with('-')) else {
                return arg;
            };
            let name = flag.split_once('=').map_or(flag, |(name, _)| name);
            if TOXIPROXY_FLAGS.contains(&name) {
                format!("--{flag}").into()
            } else {
                arg
            }
        })
        .collect()
}

async fn fault_proxy_role(
    host: &str,
    port: u16,
    listen: Option<SocketAddr>,
    seed: Option<u64>,
    config: Option<PathBuf>,
    shutdown: CancellationToken,
) -> Result<(), i32> {
    let proxies = match &config {
        Some(path) => std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|json| parse_proxy_list(&json))
            .map_err(|e| {
                eprintln!("error: {}: {e}", path.display());
                exit::BAD_INPUT
            })?,
        None => Vec::new(),
    };
    let listener = bind(fault_proxy_addr(host, port, listen).await?).await?;
    let addr = listener.local_addr().map_err(|e| {
        eprintln!("error: cannot read the API address: {e}");
        exit::ENVIRONMENT
    })?;
    let from_config = match &config {
        Some(path) => format!(", {} proxies from {}", proxies.len(), path.display()),
        None => String::new(),
    };
    let seeded = seed.map(|s| format!(", seed {s}")).unwrap_or_default();
    eprintln!("tether fault proxy: Toxiproxy API on http://{addr}{from_config}{seeded}");
    let options = ServeOptions { seed, proxies };
    serve_with(listener, shutdown, options).await.map_err(|e| {
        eprintln!("error: {e:#}");
        exit::ENVIRONMENT
    })
}

async fn control_plane_role(
    mesh: PathBuf,
    placement: PathBuf,
    xds_listen: SocketAddr,
    admin_listen: SocketAddr,
    state: Option<PathBuf>,
    shutdown: CancellationToken,
) -> Result<(), i32> {
    let mesh = Mesh::load(&mesh).map_err(|e| {
        eprintln!("error: {e}");
        exit::BAD_INPUT
    })?;
    let placement: Placement = std::fs::read(&placement)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| {
            eprintln!("error: {}: {e}", placement.display());
            exit::BAD_INPUT
        })?;
    let (log_tx, mut log_rx) = tokio::sync::mpsc::unbounded_channel();
    let cp = ControlPlane::new(mesh, placement, log_tx);
    if let Some(state) = state {
        cp.persist_to(&state).map_err(|e| {
            eprintln!("error: cannot resume the control plane's state: {e}");
            exit::BAD_INPUT
        })?;
    }
    // Log lines go to stdout, one JSON object per line, for the harness to put on its timeline.
    tokio::spawn(async move {
        use std::io::Write;
        while let Some(line) = log_rx.recv().await {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut out, &line);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
    });
    let admin = bind(admin_listen).await?;
    tokio::spawn(control_plane::admin::serve(
        cp.clone(),
        admin,
        shutdown.clone(),
    ));
    let grpc = tonic::transport::Server::builder()
        // Reap streams whose Envoy went silent (a blackholed link), as App Mesh's 10 s / 20 s.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .add_service(control_plane::service::service(cp))
        .serve_with_shutdown(xds_listen, shutdown.cancelled_owned());
    grpc.await.map_err(|e| {
        eprintln!("error: xDS server on {xds_listen}: {e}");
        exit::ENVIRONMENT
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(args: &[&str]) -> Vec<String> {
        toxiproxy_flags(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn toxiproxy_servers_single_dash_flags_become_double() {
        assert_eq!(
            rewritten(&[
                "tether",
                "fault-proxy",
                "-host",
                "0.0.0.0",
                "-port=8475",
                "-version"
            ]),
            [
                "tether",
                "fault-proxy",
                "--host",
                "0.0.0.0",
                "--port=8475",
                "--version"
            ]
        );
        assert_eq!(
            rewritten(&["tether", "fault-proxy", "--seed", "3", "-config", "p.json"]),
            ["tether", "fault-proxy", "--seed", "3", "--config", "p.json"]
        );
        // Other commands, and flags toxiproxy-server has not, are left alone.
        assert_eq!(
            rewritten(&["tether", "load", "-c", "4"]),
            ["tether", "load", "-c", "4"]
        );
        assert_eq!(
            rewritten(&["tether", "fault-proxy", "-h", "-listen"]),
            ["tether", "fault-proxy", "-h", "-listen"]
        );
    }
}
