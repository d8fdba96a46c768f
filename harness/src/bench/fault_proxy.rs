//! `tether bench fault-proxy`: what the fault proxy costs a TCP stream.
//!
//! Starts `<proxy-bin> fault-proxy --listen 127.0.0.1:<port>` as a child
//! process (by default this tether binary; any other, e.g. an older tether,
//! can be compared), creates one proxy in front of a loopback echo/sink server
//! run here, and measures, on one connection each:
//! - bulk throughput: 64 KiB frames for the duration into a sink, which
//!   answers with the byte count after the last frame (marked in its first
//!   byte, so no half-close is needed: not every proxy passes one on);
//! - a request/response loop: 64-byte messages to an echo, one at a time
//!   (round trips per second, p50 and p99 round trip);
//!
//! directly (the reference), through the proxy with no toxic, and through it
//! with a `latency` toxic on both streams. Each is repeated; the table shows
//! the median and the range. Every loop is bounded in count and time, all
//! traffic stays on loopback, and the child is killed when the benchmark ends,
//! also on error. A benchmark, not a test: `cargo test` never runs it.

use super::targets::{Guard, free_port, spread};
use crate::faults::client::{DOWNSTREAM, Toxic, ToxiproxyClient, UPSTREAM};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Bytes per write of the bulk transfer.
const BULK_WRITE_BYTES: usize = 64 * 1024;
/// Bytes per request (and answer) of the request/response loop.
const MESSAGE_BYTES: usize = 64;
/// The request/response loop stops after this many round trips at the latest.
const MAX_ROUND_TRIPS: usize = 2_000_000;
/// Extra time a measurement may take past its duration before it fails.
const GRACE: Duration = Duration::from_secs(30);
/// The first byte of a connection to the target: sink, or echo.
const SINK: u8 = b'S';
const ECHO: u8 = b'E';
/// The first byte of a bulk frame: more follow, or it is the last.
const MORE: u8 = 0;
const LAST: u8 = 1;

/// What to measure (`tether bench fault-proxy`).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The binary whose `fault-proxy` is measured (default: this tether).
    #[arg(long)]
    pub proxy_bin: Option<PathBuf>,
    /// Length of each measurement.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Measurements per path and kind.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// The latency toxic put on both streams for the third path.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Where the figures go (JSON).
    #[arg(long, default_value = "bench/fault-proxy.json")]
    pub out: PathBuf,
}

/// One measurement of one path.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Bulk transfer, megabytes (10^6 bytes) per second.
    pub throughput_mb_s: f64,
    /// Request/response round trips per second.
    pub round_trips_per_s: f64,
    /// Median round trip, microseconds.
    pub p50_us: f64,
    /// 99th percentile round trip, microseconds.
    pub p99_us: f64,
}

/// The measurements of one path.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `direct`, `proxy`, or `proxy + latency`.
    pub path: String,
    /// One per repetition.
    pub samples: Vec<Sample>,
}

/// What the benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The binary measured.
    pub proxy_bin: PathBuf,
    /// Seconds per measurement.
    pub duration_s: f64,
    /// The latency toxic, milliseconds on each stream.
    pub latency_ms: f64,
    /// The paths measured.
    pub rows: Vec<Row>,
}

/// Runs the benchmark, prints the table, writes the figures to `options.out`.
///
/// Blocks: the target and the client share one thread of their own, so the
/// figures do not depend on how a multi-threaded runtime spreads them.
pub fn run(options: &Options) -> Result<Report> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the benchmark's runtime")?
        .block_on(measure_all(options))
}

/// [`run`], on its runtime.
async fn measure_all(options: &Options) -> Result<Report> {
    if options.repeat == 0 || options.duration.is_zero() {
        bail!("--repeat and --duration must be above 0");
    }
    let proxy_bin = match &options.proxy_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("cannot find the tether executable")?,
    };
    let target = start_target().await?;
    let api_port = free_port()?;
    // Killed (its whole process group) when dropped, on every way out of here.
    let _child = Guard::spawn(
        Command::new(&proxy_bin).args([
            "fault-proxy",
            "--listen",
            &format!("127.0.0.1:{api_port}"),
        ]),
        "the fault proxy",
    )?;
    let api_addr = SocketAddr::from(([127, 0, 0, 1], api_port));
    wait_listening(api_addr).await?;
    let api = ToxiproxyClient::new(&format!("http://{api_addr}"))?;
    let proxy = api
        .create_proxy("bench", "127.0.0.1:0", &target.to_string())
        .await?;
    let through: SocketAddr = proxy.listen.parse().context("the proxy's listen address")?;

    let latency_ms = options.latency.as_millis() as u64;
    let paths = [
        ("direct", target, false),
        ("proxy", through, false),
        ("proxy + latency", through, true),
    ];
    let mut rows: Vec<Row> = paths
        .iter()
        .map(|(path, _, _)| Row {
            path: (*path).to_owned(),
            samples: Vec::new(),
        })
        .collect();
    for round in 0..options.repeat {
        for (row, (path, addr, lagged)) in rows.iter_mut().zip(paths) {
            eprintln!("bench: {path}, round {}/{}", round + 1, options.repeat);
            if lagged {
                for (name, stream) in [("lag_up", UPSTREAM), ("lag_down", DOWNSTREAM)] {
                    api.add_toxic("bench", &Toxic::latency(name, stream, latency_ms, 0))
                        .await?;
                }
            }
            let measured = measure(addr, options.duration).await;
            if lagged {
                api.reset().await?;
            }
            row.samples
                .push(measured.with_context(|| format!("measuring {path}"))?);
        }
    }

    let report = Report {
        proxy_bin,
        duration_s: options.duration.as_secs_f64(),
        latency_ms: options.latency.as_secs_f64() * 1000.0,
        rows,
    };
    println!("{}", table(&report));
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", options.out.display()))?;
    println!("figures: {}", options.out.display());
    Ok(report)
}

/// Both measurements on `addr`.
async fn measure(addr: SocketAddr, duration: Duration) -> Result<Sample> {
    let throughput_mb_s = bulk(addr, duration).await?;
    let (round_trips_per_s, p50_us, p99_us) = request_response(addr, duration).await?;
    Ok(Sample {
        throughput_mb_s,
        round_trips_per_s,
        p50_us,
        p99_us,
    })
}

/// Writes 64 KiB frames to the sink for `duration`, the last one marked, and
/// waits for its count: megabytes per second, until the count came back.
async fn bulk(addr: SocketAddr, duration: Duration) -> Result<f64> {
    let transfer = async {
        let mut conn = connect(addr, SINK).await?;
        let mut frame = vec![0x5a_u8; BULK_WRITE_BYTES];
        frame[0] = MORE;
        let started = Instant::now();
        while started.elapsed() < duration {
            conn.write_all(&frame).await?;
        }
        frame[0] = LAST;
        conn.write_all(&frame).await?;
        let received = conn.read_u64().await?;
        anyhow::Ok(received as f64 / started.elapsed().as_secs_f64() / 1e6)
    };
    tokio::time::timeout(duration + GRACE, transfer)
        .await
        .context("the bulk transfer did not finish in time")?
}

/// Round trips of 64-byte messages for `duration`: (per second, p50 µs, p99 µs).
async fn request_response(addr: SocketAddr, duration: Duration) -> Result<(f64, f64, f64)> {
    let exchange = async {
        let mut conn = connect(addr, ECHO).await?;
        let message = [0x42_u8; MESSAGE_BYTES];
        let mut answer = [0u8; MESSAGE_BYTES];
        let mut took = Vec::new();
        let started = Instant::now();
        while started.elapsed() < duration && took.len() < MAX_ROUND_TRIPS {
            let sent = Instant::now();
            conn.write_all(&message).await?;
            conn.read_exact(&mut answer).await?;
            took.push(sent.elapsed().as_secs_f64() * 1e6);
        }
        let per_second = took.len() as f64 / started.elapsed().as_secs_f64();
        if took.is_empty() {
            bail!("no round trip finished");
        }
        took.sort_by(f64::total_cmp);
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        anyhow::Ok((per_second, at(0.50), at(0.99)))
    };
    tokio::time::timeout(duration + GRACE, exchange)
        .await
        .context("the request/response loop did not finish in time")?
}

/// A connection to the target in `mode`, without Nagle delays.
async fn connect(addr: SocketAddr, mode: u8) -> Result<TcpStream> {
    let mut conn = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    conn.set_nodelay(true)?;
    conn.write_all(&[mode]).await?;
    Ok(conn)
}

/// The loopback target: a connection's first byte makes it a sink (counts
/// the frames it reads up to the last, then answers the byte count) or an echo.
async fn start_target() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve_target(conn));
        }
    });
    Ok(addr)
}

/// Serves one target connection until it closes (or its last frame).
async fn serve_target(mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mode = conn.read_u8().await?;
    if mode == SINK {
        let mut frame = vec![0u8; BULK_WRITE_BYTES];
        let mut received = 0u64;
        loop {
            conn.read_exact(&mut frame).await?;
            received += frame.len() as u64;
            if frame[0] == LAST {
                return conn.write_u64(received).await;
            }
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n]).await?;
    }
}

/// Waits until something listens on `addr` (20 s at most).
async fn wait_listening(addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("the fault proxy did not listen on {addr} within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The report as a table: medians with [min-max].
fn table(report: &Report) -> String {
    let mut out = format!(
        "fault proxy: {} ({} s per measurement, latency toxic {} ms each way)\n\
         path              bulk MB/s                round trips/s            p50 µs                   p99 µs\n",
        report.proxy_bin.display(),
        report.duration_s,
        report.latency_ms
    );
    for row in &report.rows {
        let cell = |f: fn(&Sample) -> f64| {
            let (median, low, high) = spread(&row.samples.iter().map(f).collect::<Vec<_>>());
            format!("{median:>9.1} [{low:.1}-{high:.1}]")
        };
        out.push_str(&format!(
            "{:<17} {:<24} {:<24} {:<24} {:<24}\n",
            row.path,
            cell(|s| s.throughput_mb_s),
            cell(|s| s.round_trips_per_s),
            cell(|s| s.p50_us),
            cell(|s| s.p99_us),
        ));
    }
    out
}
