//! One direction of a relayed connection: read, apply the stream's toxics, write.

use super::active::{Active, Decisions};
use super::counters::{Counters, StreamCounters};
use super::schedule::Schedule;
use super::{HELD_BYTES, Rules, SplitMix64};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// The read buffer of a direction, as Go's `io.Copy` and Toxiproxy use.
const RELAY_BUFFER_BYTES: usize = 32 * 1024;
/// Reads go on into what is left of the buffer until less than this is left.
const MIN_READ_BYTES: usize = 4 * 1024;

/// How one direction of a relayed connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PumpEnd {
    /// Its source closed or failed, or its destination failed; the destination
    /// was shut down for writing. The other direction goes on.
    Closed,
    /// A `timeout` or `limit_data` toxic closes the whole connection.
    Close,
    /// A `reset_peer` toxic fired: the whole connection must be reset.
    Reset,
}

/// One direction of a connection and the rules it follows.
pub(super) struct Direction<'a> {
    /// True for client to server.
    upstream: bool,
    rules: watch::Receiver<Rules>,
    /// The proxy's generator, for toxicity decisions.
    rng: &'a Mutex<SplitMix64>,
    /// This direction's own sequence, for jitter and slice sizes.
    draws: SplitMix64,
    /// Its bytes, counted as they pass.
    counters: &'a StreamCounters,
}

impl<'a> Direction<'a> {
    /// The `upstream` (or downstream) direction of a connection.
    pub fn new(
        upstream: bool,
        rules: &watch::Receiver<Rules>,
        rng: &'a Mutex<SplitMix64>,
        draws: SplitMix64,
        counters: &'a Counters,
    ) -> Self {
        Direction {
            upstream,
            rules: rules.clone(),
            rng,
            draws,
            counters: counters.stream(upstream),
        }
    }

    /// What the current rules do to this direction.
    fn active(&mut self, decisions: &mut Decisions) -> Active {
        let rules = self.rules.borrow_and_update();
        decisions.active(&rules, self.upstream, self.rng, Instant::now())
    }
}

/// A piece of data waiting to be written.
struct Held {
    data: Bytes,
    /// When it may be written.
    due: Instant,
    /// The timing generation it was scheduled in: once that changes, it goes at once.
    generation: u64,
}

/// Copies `from` to `to` under the toxics of one direction, in one loop that
/// reads chunks, stamps each piece with when it is due, and writes them in
/// order once due (see the module docs for what each toxic does). Ends when
/// the source has closed and everything held is written (then `to` is shut
/// down for writing, `slow_close` after), when `to` fails, or when a toxic
/// closes or resets the connection.
pub(super) async fn pump<R, W>(from: &mut R, to: &mut W, mut direction: Direction<'_>) -> PumpEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(RELAY_BUFFER_BYTES);
    let mut decisions = Decisions::default();
    let mut active = direction.active(&mut decisions);
    let mut schedule = Schedule::new(&active.timing, Instant::now());
    // Bumped whenever the stream's timing toxics change: older pieces go at once.
    let mut generation = 0u64;
    let mut held: VecDeque<Held> = VecDeque::new();
    let mut held_bytes = 0usize;
    // Bytes read on this stream since the connection opened (for `limit_data`).
    let mut passed = 0u64;
    // Set when the source ended (for `slow_close`).
    let mut ended_at: Option<Instant> = None;
    // A `limit_data` toxic was met: close once what is held is written.
    let mut limit_reached = false;
    // A `reset_peer` toxic met data: reset the connection then.
    let mut reset_at: Option<Instant> = None;
    let mut watching = true;
    loop {
        if active.limit.is_some_and(|limit| passed >= limit) && !limit_reached {
            // Already past a limit that was just added.
            return PumpEnd::Close;
        }
        if held.is_empty() && limit_reached {
            return PumpEnd::Close;
        }
        let now = Instant::now();
        // The end of the stream is passed on once everything is written and
        // `slow_close` has passed.
        let finish_at = match ended_at {
            Some(ended) if held.is_empty() && reset_at.is_none() => {
                Some(ended.checked_add(active.slow_close).unwrap_or(ended))
            }
            _ => None,
        };
        if finish_at.is_some_and(|finish| finish <= now) {
            let _ = to.shutdown().await;
            return PumpEnd::Closed;
        }
        // The first piece goes out now if it is due or its timing toxics changed.
        let (head_ready, head_due) = match held.front() {
            Some(head) => (
                head.due <= now || head.generation != generation,
                Some(head.due),
            ),
            None => (false, None),
        };
        let wake_at = [
            head_due.filter(|_| !head_ready),
            finish_at,
            active.close_at,
            reset_at,
        ]
        .into_iter()
        .flatten()
        .min();
        let reading =
            ended_at.is_none() && !limit_reached && reset_at.is_none() && held_bytes < HELD_BYTES;
        if reading && buf.capacity() < MIN_READ_BYTES {
            // A fresh buffer; the old one is taken back if no held piece uses it.
            buf.reserve(RELAY_BUFFER_BYTES);
        }
        tokio::select! {
            // Rule changes first: the API answers once a change is published,
            // so data sent after that answer must meet the new rules.
            biased;
            changed = direction.rules.changed(), if watching => {
                if changed.is_err() {
                    // The proxy is stopping; its task ends the connection.
                    watching = false;
                    continue;
                }
                let next = direction.active(&mut decisions);
                // Decisions follow revisions, so the key says whether timing changed.
                if next.timing_key != active.timing_key {
                    generation += 1;
                    schedule = Schedule::new(&next.timing, Instant::now());
                }
                active = next;
            }
            written = write_head(to, held.front()), if head_ready => {
                let Ok(n) = written else { return PumpEnd::Closed };
                direction.counters.wrote(n);
                held_bytes -= n;
                if let Some(head) = held.front_mut() {
                    head.data.advance(n);
                    if head.data.is_empty() {
                        held.pop_front();
                    }
                }
            }
            () = sleep_until(wake_at), if wake_at.is_some() => {
                let now = Instant::now();
                if reset_at.is_some_and(|at| at <= now) {
                    return PumpEnd::Reset;
                }
                if active.close_at.is_some_and(|at| at <= now) {
                    return PumpEnd::Close;
                }
            }
            read = from.read_buf(&mut buf), if reading => {
                let n = match read {
                    Ok(0) | Err(_) => {
                        ended_at = Some(Instant::now());
                        continue;
                    }
                    Ok(n) => n,
                };
                direction.counters.read(n);
                // The pieces share the buffer's memory; the next read goes after them.
                let mut data = buf.split().freeze();
                let read_at = Instant::now();
                if let Some(timeout) = active.reset {
                    // The first data is dropped and nothing more is read.
                    reset_at = Some(read_at.checked_add(timeout).unwrap_or(read_at));
                    continue;
                }
                let before = passed;
                passed = passed.saturating_add(n as u64);
                if let Some(limit) = active.limit {
                    let allowed =
                        usize::try_from(limit.saturating_sub(before)).unwrap_or(usize::MAX);
                    if n >= allowed {
                        data.truncate(allowed);
                        limit_reached = true;
                    }
                }
                if active.drop || data.is_empty() {
                    continue;
                }
                for (data, due) in schedule.pieces(data, read_at, &mut direction.draws) {
                    held_bytes += data.len();
                    held.push_back(Held { data, due, generation });
                }
            }
        }
    }
}

/// Writes what is left of `head` (cancel safe: a write either happens or not).
async fn write_head<W>(to: &mut W, head: Option<&Held>) -> std::io::Result<usize>
where
    W: AsyncWrite + Unpin,
{
    match head {
        Some(head) => match to.write(&head.data).await? {
            0 => Err(std::io::ErrorKind::WriteZero.into()),
            n => Ok(n),
        },
        None => Ok(0),
    }
}

/// Sleeps until `at` (never returns without one).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
