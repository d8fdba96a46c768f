//! Waiting until an instant to the microsecond, inside tokio.
//!
//! tokio's own timer has millisecond ticks (its wheel, and `epoll_wait`'s timeout), so a
//! request due at 10.3 ms leaves at 11 ms or later: the open loop's schedule would carry
//! the timer's lateness into every latency it measures from an intended send time. A
//! [`Pacer`] is a Linux `timerfd` (nanosecond resolution, no timer slack) registered with
//! tokio's reactor: the runtime's thread sleeps in `epoll_wait` as usual and wakes when the
//! timer's file descriptor becomes readable, at the instant asked for. One pacer is armed
//! again and again, so a worker pays no allocation or timer-wheel entry per request.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// A reusable timer with microsecond precision.
pub struct Pacer {
    /// The timerfd, or `None` where the kernel gave none (tokio's timer then).
    fd: Option<AsyncFd<OwnedFd>>,
    /// When spinning: how early to wake before an instant, learnt from how late the
    /// kernel's wake-ups have been (see [`Pacer::spin_until`]).
    margin: Duration,
    /// The most it may wake early.
    max_margin: Duration,
    /// Time spent spinning so far.
    spun: Duration,
}

/// The margin tracks this quantile of the kernel's wake-up lateness.
const MARGIN_QUANTILE: f64 = 0.9;
/// How far one wake-up moves the margin (up by 90% of it when late, down by 10% when
/// not): about a hundred wake-ups to learn a new machine's lateness.
const MARGIN_STEP: Duration = Duration::from_micros(4);

/// How long something done `rate` times a second may spin each time to spend at most
/// `share` of a core: `share / rate`, and at most 500 µs.
pub fn spin_budget(share: f64, rate: f64) -> Duration {
    Duration::from_secs_f64((share.clamp(0.0, 1.0) / rate.max(1e-9)).min(0.000_5))
}

impl Pacer {
    /// A new pacer; falls back to tokio's millisecond timer if no timerfd can be made.
    pub fn new() -> Pacer {
        let fd = timerfd().ok().and_then(|fd| {
            // SAFETY: an OwnedFd stays open, on the same descriptor, for as long as it
            // is owned, and the AsyncFd owns it.
            unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
        });
        Pacer {
            fd,
            margin: Duration::ZERO,
            max_margin: Duration::ZERO,
            spun: Duration::ZERO,
        }
    }

    /// Let [`Pacer::spin_until`] spend up to `share` of a core spinning when it wakes
    /// `rate` times a second (it wakes early by at most `share / rate`, and 500 µs).
    pub fn spinning(mut self, share: f64, rate: f64) -> Pacer {
        self.max_margin = spin_budget(share, rate);
        self.margin = self.max_margin / 2;
        self
    }

    /// How long it has spun in all (CPU it burnt on purpose, not work).
    pub fn spun(&self) -> Duration {
        self.spun
    }

    /// Does it wait to the microsecond (a timerfd), or to tokio's millisecond?
    pub fn precise(&self) -> bool {
        self.fd.is_some()
    }

    /// Return at `due` to within a few microseconds: sleep until a margin before it, then
    /// spin, yielding to the runtime between clock reads (so the thread's other tasks,
    /// and its reactor, keep running). The margin follows the 90th percentile of the
    /// kernel's wake-up lateness, within what [`Pacer::spinning`] allows; with none
    /// allowed it is [`Pacer::sleep_until`].
    pub async fn spin_until(&mut self, due: Instant) {
        if self.max_margin.is_zero() {
            return self.sleep_until(due).await;
        }
        let early = due.checked_sub(self.margin).unwrap_or(due);
        let woke = if early > Instant::now() {
            self.sleep_until(early).await;
            let woke = Instant::now();
            let late = woke.saturating_duration_since(early);
            self.margin = if late > self.margin {
                (self.margin + MARGIN_STEP.mul_f64(MARGIN_QUANTILE)).min(self.max_margin)
            } else {
                self.margin
                    .saturating_sub(MARGIN_STEP.mul_f64(1.0 - MARGIN_QUANTILE))
            };
            woke
        } else {
            Instant::now()
        };
        let mut now = woke;
        while now < due {
            tokio::task::yield_now().await;
            now = Instant::now();
        }
        self.spun += now.saturating_duration_since(woke);
    }

    /// Return at `due` (at once if it has passed), as promptly as the kernel wakes.
    pub async fn sleep_until(&mut self, due: Instant) {
        let Some(fd) = &self.fd else {
            return tokio::time::sleep_until(due).await;
        };
        let wait = due.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return;
        }
        if arm(fd.get_ref(), wait).is_err() {
            return tokio::time::sleep_until(due).await;
        }
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return tokio::time::sleep_until(due).await;
            };
            // The timer has fired once it reads its expiry count; a readiness left over
            // from before it was armed again reads nothing (EAGAIN) and is cleared.
            let mut count = [0u8; 8];
            match ready.try_io(|fd| read(fd.get_ref(), &mut count)) {
                Ok(_) => return,
                Err(_would_block) => continue,
            }
        }
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

/// A non-blocking monotonic timerfd.
fn timerfd() -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create has no memory preconditions; a non-negative result is a
    // new descriptor this process owns.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arm `fd` to fire once, `after` from now (relative: `Instant` and the timer share
/// CLOCK_MONOTONIC, and the one clock read is the only error).
fn arm(fd: &OwnedFd, after: Duration) -> io::Result<()> {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: after.as_secs() as libc::time_t,
            // Never all zero, which would disarm the timer instead.
            tv_nsec: after.subsec_nanos().max(1) as libc::c_long,
        },
    };
    // SAFETY: `spec` is a valid itimerspec; a null old value is allowed.
    let rc = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Read the timer's expiry count (EAGAIN when it has not fired).
fn read(fd: &OwnedFd, count: &mut [u8; 8]) -> io::Result<usize> {
    // SAFETY: `count` is 8 writable bytes, what a timerfd read needs.
    let n = unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_within_a_fraction_of_a_millisecond_of_the_instant() {
        let mut pacer = Pacer::new();
        assert!(pacer.precise(), "this kernel has timerfd");
        let mut late = Vec::new();
        for i in 0..50u64 {
            let due = Instant::now() + Duration::from_micros(300 + 37 * i);
            pacer.sleep_until(due).await;
            let now = Instant::now();
            assert!(now >= due, "never early");
            late.push((now - due).as_micros());
        }
        late.sort();
        // tokio's timer would be ~0.5-1 ms late at the median; the bound is generous for
        // a loaded CI machine.
        assert!(late[late.len() / 2] < 400, "late by (µs, sorted) {late:?}");
    }

    #[tokio::test]
    async fn spinning_keeps_the_instant_to_a_few_microseconds() {
        let mut pacer = Pacer::new().spinning(0.5, 1000.0);
        let mut late = Vec::new();
        for i in 0..200u64 {
            let due = Instant::now() + Duration::from_micros(700 + 3 * i);
            pacer.spin_until(due).await;
            late.push((Instant::now() - due).as_micros());
        }
        late.sort();
        assert!(late[late.len() / 2] < 200, "late by (µs, sorted) {late:?}");
        assert!(pacer.spun() > Duration::ZERO, "it spun");
        assert!(pacer.margin <= pacer.max_margin);
    }

    #[tokio::test]
    async fn an_instant_that_has_passed_returns_at_once() {
        let mut pacer = Pacer::new();
        let start = Instant::now();
        pacer.sleep_until(start - Duration::from_millis(5)).await;
        pacer.sleep_until(start).await;
        assert!(start.elapsed() < Duration::from_millis(50));
    }
}
