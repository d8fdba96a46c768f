//! `tether load URL`: the generator on its own, as wrk is used, with its saturation
//! guard: when the generator's own CPU is saturated, or it fell behind its own schedule,
//! its figures are marked invalid instead of being reported as the target's limit.

use super::connection::{Protocol, Target};
use super::engine::{self, Config, Pace, Stop, Totals};
use crate::timeline::{LoadRun, Percentiles};
use anyhow::{Context, Result, bail};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What `tether load` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// `http://host:port/path`.
    pub url: String,
    /// The `Host`/`:authority` to send (default: a `Host` header's, else the URL's).
    pub host: Option<String>,
    /// Headers to send with every request (`-H`); a `Host` among them sets the
    /// authority, as with wrk.
    pub headers: Vec<(String, String)>,
    /// The protocol.
    pub protocol: Protocol,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection (h2c, gRPC).
    pub streams: usize,
    /// Stop after this long (default 10 s unless `requests` is given).
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    pub requests: Option<u64>,
    /// Open loop at this many requests per second; closed loop without it.
    pub rate: Option<f64>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Worker threads of the generator's runtime.
    pub threads: usize,
    /// The generator's own scheduling delay (p99) past which an open-loop run is invalid.
    pub max_lag: Duration,
    /// The share of the median response time the generator's median lag may take before
    /// an open-loop run is invalid (its response times would be mostly its own lateness).
    pub max_lag_share: f64,
    /// Open loop: the share of a core the pacer may spin to keep the schedule exact.
    pub spin: f64,
}

/// Below this median lag a run is never invalid for its lag's share: the schedule was
/// kept to within what the pacer promises, however fast the target answered.
const LAG_FLOOR_US: u64 = 50;

/// CPU time this process has used (user + system).
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF has no preconditions.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The last `Host` among `headers`, which sets the authority (as wrk's `-H 'Host: ...'`).
fn host_header(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .rev()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.clone())
}

/// Run the generator as `options` say, on a runtime of its own, and judge the run.
pub fn run(options: &Options) -> Result<LoadRun> {
    let uri: hyper::Uri = options
        .url
        .parse()
        .with_context(|| format!("`{}` is not a URL", options.url))?;
    if uri.scheme_str() != Some("http") {
        bail!(
            "`{}`: expected an http:// URL (h2c and gRPC are cleartext too)",
            options.url
        );
    }
    let authority = uri
        .authority()
        .with_context(|| format!("`{}` has no host", options.url))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(authority.host(), port))
        .with_context(|| format!("cannot resolve `{}`", authority.host()))?
        .next()
        .with_context(|| format!("`{}` resolves to no address", authority.host()))?;
    if options.connections == 0 || options.streams == 0 || options.threads == 0 {
        bail!("expected at least one connection, stream and thread");
    }
    if let Some(rate) = options.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        bail!("expected a rate above 0, found {rate}");
    }
    let stop = match (options.requests, options.duration) {
        (Some(n), _) => Stop::Requests(n),
        (None, Some(d)) => Stop::Duration(d),
        (None, None) => Stop::Duration(Duration::from_secs(10)),
    };
    let config = Config {
        target: Target {
            addr,
            authority: options
                .host
                .clone()
                .or_else(|| host_header(&options.headers))
                .unwrap_or_else(|| authority.to_string()),
            headers: options
                .headers
                .iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
                .cloned()
                .collect(),
            path: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "/".into()),
        },
        protocol: options.protocol,
        connections: options.connections,
        streams: options.streams,
        pace: match options.rate {
            Some(rate) => Pace::Open { rate },
            None => Pace::Closed,
        },
        stop,
        timeout: options.timeout,
        spin: options.spin,
        // A thread per connection when each has a core's share of its own.
        blocking: options.connections <= options.threads,
    };
    let runtime = if options.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
    }
    .context("cannot start the generator's runtime")?;
    let cpu_before = cpu_time();
    let totals = runtime.block_on(engine::run(
        config.clone(),
        Instant::now(),
        None,
        CancellationToken::new(),
    ));
    let cpu = cpu_time().saturating_sub(cpu_before);
    Ok(judge(&config, options, &totals, cpu))
}

/// The report of a run, with the saturation guard's verdict.
fn judge(config: &Config, options: &Options, totals: &Totals, cpu: Duration) -> LoadRun {
    let all = &totals.all;
    let elapsed = totals.elapsed.as_secs_f64().max(1e-9);
    // Spinning to keep the schedule is CPU burnt on purpose, not a sign of saturation.
    let working = cpu.saturating_sub(totals.spun);
    let cpu_share = working.as_secs_f64() / (elapsed * options.threads as f64);
    let lag = Percentiles::of(&all.lag);
    let mut invalid_because = Vec::new();
    if cpu_share >= 0.9 {
        invalid_because.push(format!(
            "the generator's CPU was saturated ({:.0}% of {} thread(s))",
            cpu_share * 100.0,
            options.threads
        ));
    }
    let open = matches!(config.pace, Pace::Open { .. });
    if open && lag.p99_us > options.max_lag.as_micros() as u64 {
        invalid_because.push(format!(
            "the generator's own scheduling was late: p99 {:.1} ms (bound {} ms)",
            lag.p99_us as f64 / 1000.0,
            options.max_lag.as_millis(),
        ));
    }
    let response = Percentiles::of(&all.response);
    if open
        && lag.p50_us > LAG_FLOOR_US
        && lag.p50_us as f64 > options.max_lag_share * response.p50_us as f64
    {
        invalid_because.push(format!(
            "the generator's own lag was {:.0}% of the median response time (p50 lag {} µs of {} µs; bound {:.0}%): the response times are mostly the generator's lateness",
            lag.p50_us as f64 * 100.0 / response.p50_us.max(1) as f64,
            lag.p50_us,
            response.p50_us,
            options.max_lag_share * 100.0
        ));
    }
    // Requests due in the last `max_lag` before the end may miss it by their lateness
    // alone; more left unsent means the schedule was not kept.
    let unsent_allowed = options.rate.map_or(0, |rate| {
        (rate * options.max_lag.as_secs_f64()).floor() as u64
    });
    if open && (totals.behind > options.max_lag || totals.unsent > unsent_allowed) {
        invalid_because.push(format!(
            "the generator fell behind its schedule: {} ms behind at the end, {} requests never sent (more connections or a lower rate)",
            totals.behind.as_millis(),
            totals.unsent
        ));
    }
    LoadRun {
        mode: if open { "open" } else { "closed" }.into(),
        protocol: config.protocol.as_str().into(),
        connections: config.connections,
        streams: if config.protocol.multiplexed() {
            config.streams
        } else {
            1
        },
        rate: options.rate,
        requests: all.sent,
        ok: all.ok,
        errors: all
            .errors
            .iter()
            .map(|(k, n)| (k.as_str().to_string(), *n))
            .collect(),
        unsent: totals.unsent,
        elapsed_s: elapsed,
        requests_per_second: all.sent as f64 / elapsed,
        response,
        service: Percentiles::of(all.service_time()),
        lag,
        behind_ms: if open {
            totals.behind.as_millis() as u64
        } else {
            0
        },
        cpu_s: cpu.as_secs_f64(),
        cpu_ms_per_1000: cpu.as_secs_f64() * 1000.0 / (all.sent.max(1) as f64 / 1000.0),
        cpu_share,
        valid: invalid_because.is_empty(),
        invalid_because,
    }
}

/// The figures as `tether load` prints them.
pub struct Printed<'a>(pub &'a LoadRun);

impl std::fmt::Display for Printed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |us: u64| us as f64 / 1000.0;
        write!(
            f,
            "{} loop, {}, {} connections x {} streams",
            self.0.mode, self.0.protocol, self.0.connections, self.0.streams
        )?;
        if let Some(rate) = self.0.rate {
            write!(f, ", {rate} requests/s asked")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "  {} requests in {:.2} s: {:.0} requests/s, {} ok, {} failed{}",
            self.0.requests,
            self.0.elapsed_s,
            self.0.requests_per_second,
            self.0.ok,
            self.0.requests - self.0.ok,
            if self.0.unsent > 0 {
                format!(", {} never sent", self.0.unsent)
            } else {
                String::new()
            }
        )?;
        for (kind, n) in &self.0.errors {
            writeln!(f, "    {kind}: {n}")?;
        }
        let line = |f: &mut std::fmt::Formatter<'_>, what: &str, l: &Percentiles| {
            writeln!(
                f,
                "  {what}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
                ms(l.p50_us),
                ms(l.p90_us),
                ms(l.p99_us),
                ms(l.p999_us),
                ms(l.max_us)
            )
        };
        if self.0.mode == "open" {
            line(f, "response time (from intended send)", &self.0.response)?;
            line(f, "service time (from actual send)  ", &self.0.service)?;
            writeln!(
                f,
                "  schedule: generator lag p50 {} µs, p99 {} µs; {} ms behind schedule at the end",
                self.0.lag.p50_us, self.0.lag.p99_us, self.0.behind_ms
            )?;
        } else {
            line(f, "latency", &self.0.response)?;
        }
        writeln!(
            f,
            "  generator CPU: {:.2} s ({:.2} ms per 1,000 requests, {:.0}% of its threads)",
            self.0.cpu_s,
            self.0.cpu_ms_per_1000,
            self.0.cpu_share * 100.0
        )?;
        if self.0.valid {
            writeln!(f, "VALID: the figures are the target's")
        } else {
            writeln!(
                f,
                "INVALID: the figures are the generator's limit, not the target's: {}",
                self.0.invalid_because.join("; ")
            )
        }
    }
}
