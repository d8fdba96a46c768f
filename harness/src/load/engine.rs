//! The generator's loop, built from three parts that compose instead of one loop per
//! combination:
//!
//! - [`Stop`]: after a duration, or after a number of requests;
//! - [`Pace`]: closed (each worker sends its next request when the last answers) or
//!   open (request `k` is due at `k / rate` on a fixed schedule);
//! - the latency correction that goes with the pace: an open-loop request's latency is
//!   measured from its *intended* send time (as wrk2 does), so a stall shows up as
//!   latency instead of being hidden (no coordinated omission); a closed-loop request's
//!   from when it was sent.
//!
//! Workers are `connections x streams` tasks (one stream per HTTP/1.1 connection). In
//! the open loop, worker `w` takes requests `w, w + W, w + 2W, ...` of the schedule. Each
//! worker keeps its own per-second records and hands a second to the aggregator once it
//! has moved past it, so seconds stream out (to a suite's timeline) as they complete.

use super::connection::{Protocol, Sender, Target};
use super::record::{ErrorKind, Second, histogram};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// When the generator stops sending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this long.
    Duration(Duration),
    /// After this many requests.
    Requests(u64),
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as answers come: each worker sends its next request when the last answers.
    Closed,
    /// A constant rate from a schedule, latency measured from each intended send time.
    Open {
        /// Requests per second, all workers together.
        rate: f64,
    },
}

/// One generator run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where requests go.
    pub target: Target,
    /// The protocol.
    pub protocol: Protocol,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection (h2c, gRPC); 1 for HTTP/1.1.
    pub streams: usize,
    /// Closed or open loop.
    pub pace: Pace,
    /// When to stop.
    pub stop: Stop,
    /// Each request fails as a timeout after this.
    pub timeout: Duration,
}

impl Config {
    /// Workers: connections x streams (HTTP/1.1 carries one request at a time).
    fn workers(&self) -> usize {
        let streams = if self.protocol.multiplexed() {
            self.streams.max(1)
        } else {
            1
        };
        self.connections.max(1) * streams
    }
}

/// A second of results, numbered from `origin` (see [`run`]), as it completes.
pub type SecondSink = mpsc::UnboundedSender<(u64, Second)>;

/// What a whole run did.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Every second merged.
    pub all: Second,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// The generator's own scheduling delay per request (open loop), in microseconds:
    /// how late a request went out after both its intended time and its worker being
    /// free. Large values mean the generator, not the target, fell behind.
    pub lag: Histogram<u64>,
    /// How late the last request went out after its intended time (open loop): how far
    /// the run fell behind its schedule, whoever was to blame.
    pub behind: Duration,
    /// Requests the schedule asked for that were never sent (stopped or cancelled).
    pub unsent: u64,
}

/// Run `config` until it stops or `cancel` fires. Seconds are numbered from `origin`
/// (the start of a suite's timeline, say) and go to `seconds` as they complete; the
/// returned totals cover the whole run.
pub async fn run(
    config: Config,
    origin: Instant,
    seconds: Option<SecondSink>,
    cancel: CancellationToken,
) -> Totals {
    let workers = config.workers();
    let streams = workers / config.connections.max(1);
    let start = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    let aggregator = tokio::spawn(aggregate(rx, workers, seconds));
    let shared = Arc::new(Shared {
        config,
        start,
        origin,
        next: AtomicU64::new(0),
        cancel,
    });
    let mut tasks = Vec::with_capacity(workers);
    for connection in 0..shared.config.connections.max(1) {
        // Workers on one h2 connection share its sender (cloned per stream).
        let slot = Arc::new(tokio::sync::Mutex::new(None::<Sender>));
        for stream in 0..streams {
            let index = (connection * streams + stream) as u64;
            let (shared, slot, tx) = (shared.clone(), slot.clone(), tx.clone());
            tasks.push(tokio::spawn(worker(
                shared,
                index,
                workers as u64,
                slot,
                tx,
            )));
        }
    }
    drop(tx);
    let mut lag = histogram();
    let mut behind = Duration::ZERO;
    for task in tasks {
        if let Ok(done) = task.await {
            let _ = lag.add(&done.lag);
            behind = behind.max(done.behind);
        }
    }
    let elapsed = start.elapsed();
    let all = aggregator.await.unwrap_or_default();
    let unsent = match (shared.config.pace, shared.config.stop) {
        (Pace::Open { rate }, Stop::Duration(d)) => {
            ((d.as_secs_f64() * rate).ceil() as u64).saturating_sub(all.sent)
        }
        (_, Stop::Requests(n)) => n.saturating_sub(all.sent),
        (Pace::Closed, Stop::Duration(_)) => 0,
    };
    Totals {
        all,
        elapsed,
        lag,
        behind,
        unsent,
    }
}

/// What every worker reads.
struct Shared {
    config: Config,
    start: Instant,
    origin: Instant,
    /// The next request number (closed loop with a request count).
    next: AtomicU64,
    cancel: CancellationToken,
}

/// What a worker hands the aggregator: the seconds before `watermark` it is done with.
struct Report {
    worker: usize,
    watermark: u64,
    seconds: Vec<(u64, Second)>,
}

/// What a worker leaves when it stops.
struct WorkerDone {
    lag: Histogram<u64>,
    behind: Duration,
}

async fn worker(
    shared: Arc<Shared>,
    index: u64,
    workers: u64,
    slot: Arc<tokio::sync::Mutex<Option<Sender>>>,
    reports: mpsc::UnboundedSender<Report>,
) -> WorkerDone {
    let c = &shared.config;
    let mut own: Option<Sender> = None;
    let mut local: BTreeMap<u64, Second> = BTreeMap::new();
    let mut lag = histogram();
    let mut behind = Duration::ZERO;
    let mut served_by = String::new();
    let mut free_at = Instant::now();
    let interval = match c.pace {
        Pace::Open { rate } => Some(Duration::from_secs_f64(1.0 / rate.max(1e-9))),
        Pace::Closed => None,
    };
    let end = match c.stop {
        Stop::Duration(d) => Some(shared.start + d),
        Stop::Requests(_) => None,
    };
    let mut k = index;
    loop {
        // Which request is next, and when it is due.
        let intended = match interval {
            Some(interval) => {
                if let Stop::Requests(n) = c.stop
                    && k >= n
                {
                    break;
                }
                let due = shared.start + interval.mul_f64(k as f64);
                // At the end of the duration, what is still due is left unsent (and
                // counted), however far behind the schedule the run is.
                if end.is_some_and(|end| due >= end || Instant::now() >= end) {
                    break;
                }
                tokio::select! {
                    _ = shared.cancel.cancelled() => break,
                    _ = tokio::time::sleep_until(due) => {}
                }
                k += workers;
                due
            }
            None => {
                if let Stop::Requests(n) = c.stop
                    && shared.next.fetch_add(1, Ordering::Relaxed) >= n
                {
                    break;
                }
                let now = Instant::now();
                if end.is_some_and(|end| now >= end) || shared.cancel.is_cancelled() {
                    break;
                }
                now
            }
        };
        let sent = Instant::now();
        if interval.is_some() {
            let _ = lag.record((sent - intended.max(free_at)).as_micros() as u64);
            behind = sent - intended;
        }
        let second = (intended.saturating_duration_since(shared.origin)).as_secs();
        // Hand over the seconds this worker has moved past.
        if local.first_key_value().is_some_and(|(s, _)| *s < second) {
            let seconds = split_before(&mut local, second);
            let _ = reports.send(Report {
                worker: index as usize,
                watermark: second,
                seconds,
            });
        }
        let result = tokio::time::timeout(c.timeout, async {
            let sender = match c.protocol {
                Protocol::Http1 => match own.take().filter(Sender::is_open) {
                    Some(sender) => sender,
                    None => Sender::connect(&c.target, c.protocol, c.timeout).await?,
                },
                // One connection per slot, shared by its streams: the first worker to
                // find it gone makes the next one while the others wait.
                _ => {
                    let mut shared = slot.lock().await;
                    if !shared.as_ref().is_some_and(Sender::is_open) {
                        *shared = Some(Sender::connect(&c.target, c.protocol, c.timeout).await?);
                    }
                    shared
                        .as_ref()
                        .and_then(Sender::another_stream)
                        .ok_or(ErrorKind::Connect)?
                }
            };
            let mut sender = sender;
            let result = sender.request(&c.target, c.protocol, &mut served_by).await;
            // An answer, even an error status, leaves the connection ready for the next
            // request; a reset (or a timeout, which drops this future) does not.
            if c.protocol == Protocol::Http1 && result != Err(ErrorKind::Reset) {
                own = Some(sender);
            }
            result
        })
        .await
        .unwrap_or(Err(ErrorKind::Timeout));
        free_at = Instant::now();
        let latency = free_at - if interval.is_some() { intended } else { sent };
        let by = (!served_by.is_empty()).then_some(served_by.as_str());
        local
            .entry(second)
            .or_default()
            .record(latency.as_micros() as u64, result.map(|_| by));
    }
    let _ = reports.send(Report {
        worker: index as usize,
        watermark: u64::MAX,
        seconds: std::mem::take(&mut local).into_iter().collect(),
    });
    WorkerDone { lag, behind }
}

/// Take the seconds before `second` out of `local`.
fn split_before(local: &mut BTreeMap<u64, Second>, second: u64) -> Vec<(u64, Second)> {
    let later = local.split_off(&second);
    std::mem::replace(local, later).into_iter().collect()
}

/// Merge the workers' seconds; pass each second on once every worker is past it.
/// Returns every second merged.
async fn aggregate(
    mut rx: mpsc::UnboundedReceiver<Report>,
    workers: usize,
    sink: Option<SecondSink>,
) -> Second {
    // Each worker's watermark: it is done with every second before it.
    let mut marks = vec![0u64; workers];
    let mut merged: BTreeMap<u64, Second> = BTreeMap::new();
    let mut all = Second::default();
    while let Some(report) = rx.recv().await {
        for (s, second) in &report.seconds {
            all.merge(second);
            merged.entry(*s).or_default().merge(second);
        }
        if let Some(mark) = marks.get_mut(report.worker) {
            *mark = report.watermark;
        }
        let low = marks.iter().copied().min().unwrap_or(0);
        while let Some(entry) = merged.first_entry() {
            if *entry.key() >= low {
                break;
            }
            let (s, second) = entry.remove_entry();
            if let Some(sink) = &sink {
                let _ = sink.send((s, second));
            }
        }
    }
    // Every worker has stopped: what is left is complete.
    for (s, second) in merged {
        if let Some(sink) = &sink {
            let _ = sink.send((s, second));
        }
    }
    all
}
