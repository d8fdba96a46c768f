//! The run's seconds, shared by its workers, and the open loop's tickets.
//!
//! Every worker records each finished request straight into the second of its intended
//! send time, in one map for the whole run (a few seconds are open at a time, however
//! many workers there are). A second is passed on, complete, once no worker can still
//! record into it: each busy worker has a mark (the second of the request it is on) and,
//! in the open loop, so do the tickets not yet taken (the next one's second). Taking a
//! ticket and moving a worker's mark happen under the same lock, so a second is never
//! passed on while a request due in it is between the queue and a worker.

use super::SecondSink;
use crate::load::record::{ErrorKind, Second, Timing};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The open loop's schedule: ticket `k` is due at `start + k / rate`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// When ticket 0 is due.
    pub start: Instant,
    /// Requests per second.
    pub rate: f64,
}

impl Schedule {
    /// When ticket `k` is due.
    pub fn due(&self, k: u64) -> Instant {
        self.start + Duration::from_secs_f64(k as f64 / self.rate)
    }
}

/// The seconds being recorded, and the tickets released but not yet taken.
pub struct Seconds {
    inner: Mutex<Inner>,
    /// One permit per released ticket (and one per worker when the schedule ends).
    permits: Semaphore,
    origin: Instant,
    schedule: Option<Schedule>,
}

struct Inner {
    open: BTreeMap<u64, Second>,
    /// Per worker: the second of the request it is on; `u64::MAX` while idle or done.
    marks: Vec<u64>,
    /// Tickets released and taken (open loop).
    released: u64,
    taken: u64,
    /// The schedule has released its last ticket.
    ended: bool,
    /// Every second before this one has been passed on.
    passed: u64,
    all: Second,
    sink: Option<SecondSink>,
}

impl Seconds {
    /// Seconds numbered from `origin`, for `workers` workers; `schedule` in the open loop.
    pub fn new(
        workers: usize,
        origin: Instant,
        schedule: Option<Schedule>,
        sink: Option<SecondSink>,
    ) -> Seconds {
        Seconds {
            inner: Mutex::new(Inner {
                open: BTreeMap::new(),
                marks: vec![u64::MAX; workers],
                released: 0,
                taken: 0,
                ended: false,
                passed: 0,
                all: Second::default(),
                sink,
            }),
            permits: Semaphore::new(0),
            origin,
            schedule,
        }
    }

    /// The second of the timeline an instant falls in.
    pub fn second_of(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_secs()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Worker `w` starts a request due in `second` (closed loop; once per second).
    pub fn start(&self, w: usize, second: u64) {
        let mut inner = self.lock();
        if inner.marks[w] != second {
            inner.marks[w] = second;
            self.pass_on(&mut inner);
        }
    }

    /// Open loop: release `n` more tickets to the workers.
    pub fn release(&self, n: u64) {
        self.lock().released += n;
        self.permits.add_permits(n as usize);
    }

    /// Open loop: the schedule is over; wake every idle worker so it can stop.
    pub fn end_schedule(&self) {
        let workers = {
            let mut inner = self.lock();
            inner.ended = true;
            inner.marks.len()
        };
        self.permits.add_permits(workers);
    }

    /// Open loop: worker `w` waits for the next ticket and takes it; `None` once the
    /// schedule has ended and every ticket is taken.
    pub async fn take(&self, w: usize) -> Option<Instant> {
        let schedule = self.schedule?;
        self.idle(w);
        let permit = self.permits.acquire().await.ok()?;
        permit.forget();
        let mut inner = self.lock();
        if inner.taken >= inner.released {
            // A wake-up at the end of the schedule: pass it on to the next idle worker.
            debug_assert!(inner.ended);
            drop(inner);
            self.permits.add_permits(1);
            return None;
        }
        let k = inner.taken;
        inner.taken += 1;
        let intended = schedule.due(k);
        inner.marks[w] = self.second_of(intended);
        self.pass_on(&mut inner);
        Some(intended)
    }

    /// Worker `w` is between requests (it records into no second).
    fn idle(&self, w: usize) {
        let mut inner = self.lock();
        if inner.marks[w] != u64::MAX {
            inner.marks[w] = u64::MAX;
            self.pass_on(&mut inner);
        }
    }

    /// Worker `w` has stopped.
    pub fn done(&self, w: usize) {
        self.idle(w);
    }

    /// Count a finished request in the second of its intended send time.
    pub fn record(
        &self,
        intended: Instant,
        timing: Timing,
        result: Result<Option<&str>, ErrorKind>,
    ) {
        let second = self.second_of(intended);
        self.lock()
            .open
            .entry(second)
            .or_default()
            .record(timing, result);
    }

    /// Pass on every second no worker (and no untaken ticket) can still record into.
    fn pass_on(&self, inner: &mut Inner) {
        let mut low = inner.marks.iter().copied().min().unwrap_or(u64::MAX);
        if let Some(schedule) = self.schedule
            && !(inner.ended && inner.taken >= inner.released)
        {
            low = low.min(self.second_of(schedule.due(inner.taken)));
        }
        if low <= inner.passed {
            return;
        }
        inner.passed = low;
        let later = inner.open.split_off(&low);
        for (s, second) in std::mem::replace(&mut inner.open, later) {
            inner.all.merge(&second);
            if let Some(sink) = &inner.sink {
                let _ = sink.send((s, second));
            }
        }
    }

    /// Every worker has stopped: pass on what is left and return the whole run merged.
    pub fn finish(&self) -> Second {
        let mut inner = self.lock();
        inner.marks.iter_mut().for_each(|m| *m = u64::MAX);
        inner.ended = true;
        inner.taken = inner.released;
        self.pass_on(&mut inner);
        std::mem::take(&mut inner.all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn timing(us: u64) -> Timing {
        Timing {
            response_us: us,
            service_us: us,
            lag_us: None,
        }
    }

    #[tokio::test]
    async fn a_second_is_passed_on_only_once_no_worker_can_record_into_it() {
        let origin = Instant::now();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let seconds = Seconds::new(2, origin, None, Some(tx));
        let at = |s: u64| origin + Duration::from_millis(s * 1000 + 10);
        seconds.start(0, 0);
        seconds.start(1, 0);
        seconds.record(at(0), timing(5), Ok(None));
        // Worker 0 moves on; worker 1 is still on second 0.
        seconds.start(0, 1);
        assert!(rx.try_recv().is_err());
        seconds.record(at(0), timing(7), Ok(None));
        seconds.start(1, 2);
        let (s, second) = rx.try_recv().expect("second 0 is complete");
        assert_eq!((s, second.sent), (0, 2));
        seconds.record(at(1), timing(9), Err(ErrorKind::Timeout));
        seconds.done(0);
        seconds.done(1);
        let (s, second) = rx.try_recv().expect("second 1 is complete");
        assert_eq!((s, second.sent, second.ok), (1, 1, 0));
        assert_eq!(seconds.finish().sent, 3);
    }

    #[tokio::test]
    async fn an_untaken_ticket_holds_its_second_back() {
        let origin = Instant::now();
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Two tickets a second: ticket k is due in second k / 2.
        let schedule = Schedule {
            start: origin,
            rate: 2.0,
        };
        let seconds = Seconds::new(1, origin, Some(schedule), Some(tx));
        seconds.release(3);
        for _ in 0..2 {
            let intended = seconds.take(0).await.expect("a ticket");
            seconds.record(intended, timing(1), Ok(None));
        }
        // Ticket 2 (second 1) is released but not taken: second 0 is complete.
        let intended = seconds.take(0).await.expect("ticket 2");
        assert_eq!(rx.try_recv().map(|(s, x)| (s, x.sent)).ok(), Some((0, 2)));
        seconds.record(intended, timing(1), Ok(None));
        seconds.end_schedule();
        assert_eq!(seconds.take(0).await, None, "the schedule is over");
        assert_eq!(rx.try_recv().map(|(s, x)| (s, x.sent)).ok(), Some((1, 1)));
        assert_eq!(seconds.finish().sent, 3);
    }
}
