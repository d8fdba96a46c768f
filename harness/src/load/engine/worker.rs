//! One worker: a connection (or one stream of an h2 connection) sending one request at a
//! time, in the closed loop as soon as the last one answers, in the open loop whenever it
//! takes a ticket. Per request it reads the clock twice (sent, answered), takes the
//! shared seconds' lock to record, and arms no timer: its [`Timeout`] is one timer moved
//! only when it fires. In the open loop it may spin briefly while the answer is on its
//! way (see [`Timeout::run`]), so the service time it reads is the target's and not its
//! own thread's wake-up from sleep.

use super::{Pace, Shared};
use crate::load::connection::{Protocol, Sender};
use crate::load::record::{ErrorKind, Timing};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The h2 connection the streams of one slot share.
pub(super) type Slot = Arc<tokio::sync::Mutex<Option<Sender>>>;

/// What a worker reports when it stops.
#[derive(Default)]
pub(super) struct Done {
    /// How late its last request left after its intended time (open loop).
    pub behind: Duration,
    /// How long it spun waiting for answers (CPU burnt on purpose, not work).
    pub spun: Duration,
}

/// Send requests until the run stops.
pub(super) async fn run(shared: Arc<Shared>, index: usize, slot: Slot) -> Done {
    let c = &shared.config;
    let spin = match c.pace {
        // Half the spin share; the pacer has the other half.
        Pace::Open { rate } => crate::load::pacer::spin_budget(c.spin.clamp(0.0, 1.0) / 2.0, rate),
        Pace::Closed => Duration::ZERO,
    };
    let mut spun = Duration::ZERO;
    let mut own: Option<Sender> = None;
    let mut served_by = String::new();
    let mut timeout = Timeout::new(c.timeout);
    let mut behind = Duration::ZERO;
    let mut free_at = Instant::now();
    // The second this worker last told the seconds it is on (closed loop).
    let mut on_second = None;
    loop {
        let (intended, sent) = match c.pace {
            Pace::Open { .. } => {
                let ticket = tokio::select! {
                    _ = shared.cancel.cancelled() => None,
                    ticket = shared.seconds.take(index) => ticket,
                };
                let Some(intended) = ticket else { break };
                let sent = Instant::now();
                if shared.over(sent) {
                    break;
                }
                (Some(intended), sent)
            }
            Pace::Closed => match shared.next_closed(index, &mut on_second) {
                Some(sent) => (None, sent),
                None => break,
            },
        };
        let lag = intended.map(|intended| {
            behind = sent.saturating_duration_since(intended);
            sent.saturating_duration_since(intended.max(free_at))
        });
        let intended = intended.unwrap_or(sent);
        let request = one(c, &mut own, &slot, &mut served_by);
        let result = timeout
            .run(sent, spin, request)
            .await
            .unwrap_or(Err(ErrorKind::Timeout));
        free_at = Instant::now();
        spun += (free_at - sent).min(spin);
        let timing = Timing {
            response_us: (free_at - intended).as_micros() as u64,
            service_us: (free_at - sent).as_micros() as u64,
            lag_us: lag.map(|l| l.as_micros() as u64),
        };
        let by = (!served_by.is_empty()).then_some(served_by.as_str());
        shared.seconds.record(intended, timing, result.map(|_| by));
    }
    shared.seconds.done(index);
    Done { behind, spun }
}

/// One request on this worker's connection, connecting first when it has none.
async fn one(
    c: &super::Config,
    own: &mut Option<Sender>,
    slot: &Slot,
    served_by: &mut String,
) -> Result<(), ErrorKind> {
    let mut sender = match c.protocol {
        Protocol::Http1 => match own.take().filter(Sender::is_open) {
            Some(sender) => sender,
            None => Sender::connect(&c.target, c.protocol, c.timeout).await?,
        },
        // One connection per slot, shared by its streams: the first worker to find it
        // gone makes the next one while the others wait.
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
    let result = sender.request(&c.target, c.protocol, served_by).await;
    // An answer, even an error status, leaves the connection ready for the next request;
    // a reset (or a timeout, which drops this future) does not.
    if c.protocol == Protocol::Http1 && result != Err(ErrorKind::Reset) {
        *own = Some(sender);
    }
    result
}

/// A worker's request timeout: one timer, armed at some earlier request's deadline and
/// moved to the current one only when it fires, so a request answered in time costs no
/// timer operation (a timer per request costs two trips through tokio's timer wheel).
struct Timeout {
    limit: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl Timeout {
    fn new(limit: Duration) -> Timeout {
        Timeout {
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
        }
    }

    /// `work`'s output, or `None` if it is not done `limit` after `started`. For the
    /// first `spin` after `started` it is polled between yields to the runtime instead of
    /// left to wake this task: a yield lets the reactor look for events without sleeping
    /// (`epoll_wait` with no timeout), so an answer is read as soon as it arrives rather
    /// than after the kernel wakes an idle thread, tens of microseconds later.
    async fn run<F: Future>(
        &mut self,
        started: Instant,
        spin: Duration,
        work: F,
    ) -> Option<F::Output> {
        let deadline = started + self.limit;
        let mut work = std::pin::pin!(work);
        if !spin.is_zero() {
            let until = started + spin;
            loop {
                let polled = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
                if let Poll::Ready(out) = polled {
                    return Some(out);
                }
                if Instant::now() >= until {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        // Deadlines only move later, so the timer is never set later than this one.
        loop {
            tokio::select! {
                biased;
                out = &mut work => return Some(out),
                _ = &mut self.sleep => {
                    if self.sleep.deadline() >= deadline {
                        return None;
                    }
                    self.sleep.as_mut().reset(deadline);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_timeout_fires_at_each_requests_own_deadline() {
        let mut timeout = Timeout::new(Duration::from_secs(2));
        let start = Instant::now();
        // Fast requests leave the timer where it is.
        for _ in 0..3 {
            let out = timeout
                .run(
                    Instant::now(),
                    Duration::ZERO,
                    tokio::time::sleep(Duration::from_millis(500)),
                )
                .await;
            assert_eq!(out, Some(()));
        }
        assert_eq!(timeout.sleep.deadline(), start + Duration::from_secs(2));
        // A request started at 1.5 s that never answers times out at 3.5 s, not at 2 s.
        let began = Instant::now();
        let out = timeout
            .run(began, Duration::ZERO, std::future::pending::<()>())
            .await;
        assert_eq!(out, None);
        assert_eq!(Instant::now(), began + Duration::from_secs(2));
        // The next one gets its own full two seconds.
        let began = Instant::now();
        let out = timeout
            .run(
                began,
                Duration::ZERO,
                tokio::time::sleep(Duration::from_millis(1900)),
            )
            .await;
        assert_eq!(out, Some(()));
    }
}
