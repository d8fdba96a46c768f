//! The open-loop points of `tether bench`: tether at a fixed rate, beside two answers to
//! "how long does the target really take?" measured in the same round:
//!
//! - `wrk -t1 -c1 --latency`'s median: the target's answer time when it is kept busy
//!   (closed loop, one request after another);
//! - a *probe* at the same rate: one connection on a thread that spins until each
//!   request is due and spins reading its answer, so it has no timer, no event loop and
//!   no wake-up from sleep between it and the socket. What it
//!   measures is what the target takes at that rate, with no generator lateness at all:
//!   a target that idles between requests (at 100 requests/s it does, for 10 ms) answers
//!   more slowly than one kept busy, and that difference is the target's, not tether's.

use super::targets::{pinned, wrk_p50_us};
use crate::load::connection::Target;
use crate::load::http1::request_bytes;
use crate::timeline::LoadRun;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// One round of one open-loop point.
#[derive(Debug, Clone, Serialize)]
pub struct OpenSample {
    /// `wrk -t1 -c1` median latency (µs): the target kept busy.
    pub wrk_c1_p50_us: f64,
    /// The probe's median (µs): the target at this rate, measured with no generator lag.
    pub probe_p50_us: f64,
    /// tether's median response time, from each intended send time (µs).
    pub response_p50_us: f64,
    /// tether's median service time, from each actual send (µs).
    pub service_p50_us: f64,
    /// tether's median lag: how late it sent (µs).
    pub lag_p50_us: f64,
    /// tether's 99th percentile lag (µs).
    pub lag_p99_us: f64,
    /// Requests per second tether achieved.
    pub requests_per_second: f64,
    /// Did tether's saturation guard find the run valid?
    pub valid: bool,
}

/// The figures for one (target, rate).
#[derive(Debug, Clone, Serialize)]
pub struct OpenRow {
    /// `nginx` or `envoy->nginx`.
    pub target: String,
    /// Requests per second asked for.
    pub rate: f64,
    /// tether's connections.
    pub connections: usize,
    /// One per round.
    pub rounds: Vec<OpenSample>,
}

/// One round at `rate` against `url` (nginx or Envoy at `addr`): wrk -c1, the probe,
/// then tether, each for `duration`, each pinned to core 0.
pub(super) fn round(
    wrk: &Path,
    tether: &Path,
    addr: SocketAddr,
    rate: f64,
    connections: usize,
    duration: Duration,
) -> Result<OpenSample> {
    let url = format!("http://{addr}/");
    let secs = duration.as_secs().max(1);
    let (out, _) = pinned(
        wrk,
        &[
            "-t1".into(),
            "-c1".into(),
            format!("-d{secs}s"),
            "--latency".into(),
            super::WRK_SAME_REQUEST[0].into(),
            super::WRK_SAME_REQUEST[1].into(),
            url.clone(),
        ],
    )?;
    let wrk_c1_p50_us = wrk_p50_us(&out)?;
    let probe_p50_us = probe(addr, rate, duration)?;
    let (out, _) = pinned(
        tether,
        &[
            "load".into(),
            url,
            "-c".into(),
            connections.to_string(),
            "-R".into(),
            rate.to_string(),
            "-d".into(),
            format!("{secs}s"),
            "--json".into(),
        ],
    )?;
    let run: LoadRun = serde_json::from_str(&out)
        .with_context(|| format!("tether load gave no figures:\n{out}"))?;
    Ok(OpenSample {
        wrk_c1_p50_us,
        probe_p50_us,
        response_p50_us: run.response.p50_us as f64,
        service_p50_us: run.service.p50_us as f64,
        lag_p50_us: run.lag.p50_us as f64,
        lag_p99_us: run.lag.p99_us as f64,
        requests_per_second: run.requests_per_second,
        valid: run.valid,
    })
}

/// The probe: `rate` requests a second for `duration` on one non-blocking connection,
/// from a thread pinned to core 0 that spins until each is due and spins reading its
/// answer; returns the median time from each write to the end of its answer, in
/// microseconds.
fn probe(addr: SocketAddr, rate: f64, duration: Duration) -> Result<f64> {
    std::thread::spawn(move || {
        pin_to_core(0);
        let mut stream = TcpStream::connect(addr).context("the probe cannot connect")?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let request = request_bytes(&Target::new(addr, addr.to_string(), "/"));
        let mut buf = vec![0u8; 16 * 1024];
        let mut took = Vec::new();
        let start = Instant::now();
        let count = (rate * duration.as_secs_f64()) as u64;
        for k in 0..count {
            let due = start + Duration::from_secs_f64(k as f64 / rate);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            let sent = Instant::now();
            stream.write_all(&request)?;
            read_answer(&mut stream, &mut buf)?;
            took.push(sent.elapsed().as_micros() as u64);
        }
        took.sort_unstable();
        match took.get(took.len() / 2) {
            Some(p50) => Ok(*p50 as f64),
            None => bail!("the probe sent nothing"),
        }
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the probe panicked"))?
}

/// Read one whole answer (a head with `Content-Length`) from a non-blocking stream,
/// spinning while nothing has arrived, for at most two seconds.
fn read_answer(stream: &mut TcpStream, buf: &mut [u8]) -> Result<()> {
    let mut filled = 0;
    let give_up = Instant::now() + Duration::from_secs(2);
    loop {
        let n = match stream.read(&mut buf[filled..]) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > give_up {
                    bail!("the target did not answer the probe within 2 s");
                }
                std::hint::spin_loop();
                continue;
            }
            read => read?,
        };
        if n == 0 {
            bail!("the target closed the probe's connection");
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(&buf[..filled])? {
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .context("the target's answer has no Content-Length")?;
            if filled >= head + length {
                return Ok(());
            }
        }
    }
}

/// Pin the calling thread to `core`.
fn pin_to_core(core: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity(0, ...)
    // act on it and on the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The open-loop rows as a table: medians over rounds.
pub(super) fn table(rows: &[OpenRow]) -> String {
    let mut out = String::from(
        "target          rate  wrk -c1 p50  probe p50  tether response p50  service p50  lag p50 (p99)  valid\n",
    );
    for r in rows {
        let median = |f: fn(&OpenSample) -> f64| {
            super::targets::spread(&r.rounds.iter().map(f).collect::<Vec<_>>()).0
        };
        let valid = r.rounds.iter().filter(|s| s.valid).count();
        out.push_str(&format!(
            "{:<13} {:>6}  {:>8.0} µs  {:>6.0} µs  {:>16.0} µs  {:>8.0} µs  {:>4.0} µs ({:.0})  {valid}/{}\n",
            r.target,
            r.rate,
            median(|s| s.wrk_c1_p50_us),
            median(|s| s.probe_p50_us),
            median(|s| s.response_p50_us),
            median(|s| s.service_p50_us),
            median(|s| s.lag_p50_us),
            median(|s| s.lag_p99_us),
            r.rounds.len()
        ));
    }
    out
}
