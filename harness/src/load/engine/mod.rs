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
//! Workers are `connections x streams` tasks (one stream per HTTP/1.1 connection)
//! ([`worker`]). In the open loop one task keeps the schedule: it sleeps to the
//! microsecond ([`Pacer`]) until the next request is due, then releases every request due
//! by then as a ticket carrying its own intended time; an idle worker takes it. Each
//! request is recorded in the second of its intended time, in one map shared by the
//! workers ([`seconds`]), and seconds stream out (to a suite's timeline) as they complete.
//! Each request records its response time (from the intended time), its service time
//! (from the actual send) and the generator's own lag.

mod blocking;
mod seconds;
mod worker;

use super::connection::{Protocol, Target};
use super::pacer::Pacer;
use super::record::Second;
use seconds::{Schedule, Seconds};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
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
    /// Open loop: the share of a core the generator may spend spinning, half to keep the
    /// schedule to the microsecond (0: wake on the kernel's timer alone, tens to a
    /// hundred microseconds late on a virtual machine; see [`Pacer::spin_until`]), half
    /// to read each answer as it arrives (see `worker`).
    pub spin: f64,
    /// Closed-loop HTTP/1.1 only: each connection on a thread of its own with blocking
    /// reads ([`blocking`]), the fastest path when there are no more connections than
    /// cores; otherwise (and for every other pace and protocol) async workers on the
    /// caller's runtime.
    pub blocking: bool,
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

    /// Does each worker get a thread of its own (see [`Config::blocking`])?
    fn on_threads(&self) -> bool {
        self.blocking && self.pace == Pace::Closed && self.protocol == Protocol::Http1
    }
}

/// A second of results, numbered from `origin` (see [`run`]), as it completes.
pub type SecondSink = mpsc::UnboundedSender<(u64, Second)>;

/// What a whole run did.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Every second merged (its `lag` is the generator's own delay per request, open
    /// loop: how late a request went out after both its intended time and a worker being
    /// free for it; large values mean the generator, not the target, fell behind).
    pub all: Second,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// How late the last request went out after its intended time (open loop): how far
    /// the run fell behind its schedule, whoever was to blame.
    pub behind: Duration,
    /// Requests the schedule asked for that were never sent (stopped or cancelled).
    pub unsent: u64,
    /// CPU time the pacer and the workers spent spinning on purpose (open loop).
    pub spun: Duration,
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
    let schedule = match config.pace {
        Pace::Open { rate } => Some(Schedule {
            start,
            rate: rate.max(1e-9),
        }),
        Pace::Closed => None,
    };
    let shared = Arc::new(Shared {
        seconds: Seconds::new(workers, origin, schedule, seconds),
        config,
        start,
        next: AtomicU64::new(0),
        cancel,
    });
    let scheduler = schedule.map(|schedule| tokio::spawn(keep(shared.clone(), schedule)));
    let mut tasks = Vec::with_capacity(workers);
    if shared.config.on_threads() {
        for index in 0..workers {
            let shared = shared.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                blocking::run(shared, index);
                worker::Done::default()
            }));
        }
    } else {
        for connection in 0..shared.config.connections.max(1) {
            // Workers on one h2 connection share its sender (cloned per stream).
            let slot = Arc::new(tokio::sync::Mutex::new(None));
            for stream in 0..streams {
                let index = connection * streams + stream;
                tasks.push(tokio::spawn(worker::run(
                    shared.clone(),
                    index,
                    slot.clone(),
                )));
            }
        }
    }
    let mut behind = Duration::ZERO;
    let mut spun = Duration::ZERO;
    for task in tasks {
        if let Ok(done) = task.await {
            behind = behind.max(done.behind);
            spun += done.spun;
        }
    }
    // The schedule is over (or cancelled) once every worker has stopped.
    if let Some(scheduler) = scheduler {
        spun += scheduler.await.unwrap_or_default();
    }
    let elapsed = start.elapsed();
    let all = shared.seconds.finish();
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
        behind,
        unsent,
        spun,
    }
}

/// What every worker reads.
struct Shared {
    config: Config,
    start: Instant,
    /// The seconds, and the open loop's tickets.
    seconds: Seconds,
    /// The next request number (closed loop with a request count).
    next: AtomicU64,
    cancel: CancellationToken,
}

impl Shared {
    /// When sending stops (with a duration).
    fn end(&self) -> Option<Instant> {
        match self.config.stop {
            Stop::Duration(d) => Some(self.start + d),
            Stop::Requests(_) => None,
        }
    }

    /// Is sending over at `now` (the duration is up, or the run is cancelled)? What is
    /// still due then is left unsent (and counted), however far behind the schedule.
    fn over(&self, now: Instant) -> bool {
        self.end().is_some_and(|end| now >= end) || self.cancel.is_cancelled()
    }

    /// The closed loop's next request for worker `index`: claimed against the request
    /// count, sent now unless sending is over, and the worker's mark moved to its second
    /// (`on_second` is the second it last told the seconds it is on). Returns when it is
    /// sent.
    fn next_closed(&self, index: usize, on_second: &mut Option<u64>) -> Option<Instant> {
        if let Stop::Requests(n) = self.config.stop
            && self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= n
        {
            return None;
        }
        let sent = Instant::now();
        if self.over(sent) {
            return None;
        }
        let second = self.seconds.second_of(sent);
        if *on_second != Some(second) {
            self.seconds.start(index, second);
            *on_second = Some(second);
        }
        Some(sent)
    }
}

/// The open loop's clock: sleep until the next request is due, then release every
/// request due by now (one wake-up can release many at high rates), until the schedule
/// is over or the run is cancelled. Returns how long it spun.
async fn keep(shared: Arc<Shared>, schedule: Schedule) -> Duration {
    let mut pacer = Pacer::new().spinning(shared.config.spin / 2.0, schedule.rate);
    let limit = match shared.config.stop {
        Stop::Requests(n) => n,
        Stop::Duration(_) => u64::MAX,
    };
    let end = shared.end();
    let mut k = 0u64;
    while k < limit {
        let due = schedule.due(k);
        if end.is_some_and(|end| due >= end) {
            break;
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = pacer.spin_until(due) => {}
        }
        let now = Instant::now();
        let first = k;
        // Everything due by now goes at once, each ticket with its own intended time.
        while k < limit && schedule.due(k) <= now && end.is_none_or(|end| schedule.due(k) < end) {
            k += 1;
        }
        shared.seconds.release(k - first);
    }
    shared.seconds.end_schedule();
    pacer.spun()
}
