//! Following a reference control plane on another machine: its clock offset against the
//! harness's, estimated the way NTP does from the shortest of several round trips, and
//! its `GET /log` stream put on the timeline with that offset taken off, so a fault
//! applied here and an ACK logged there are in the right order.

use crate::control_plane::XdsLogLine;
use crate::control_plane::admin::ChangeClient;
use crate::timeline::{Event, Timeline};
use anyhow::{Context, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Clock readings per estimate.
const READINGS: usize = 8;
/// How often the offset is measured again while the run goes on (clocks drift).
const REMEASURE: Duration = Duration::from_secs(60);

/// A clock offset: theirs minus ours, within `uncertainty_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    /// Their clock minus the harness's, µs.
    pub offset_us: i64,
    /// Half the best reading's round trip, µs.
    pub uncertainty_us: u64,
}

/// The offset from `(before, theirs, after)` readings: the one with the shortest round
/// trip, their time against the middle of it.
pub fn estimate(readings: &[(u64, u64, u64)]) -> Option<Offset> {
    readings
        .iter()
        .min_by_key(|(before, _, after)| after.saturating_sub(*before))
        .map(|&(before, theirs, after)| {
            let middle = before / 2 + after / 2 + (before % 2 + after % 2) / 2;
            Offset {
                offset_us: theirs as i64 - middle as i64,
                uncertainty_us: after.saturating_sub(before).div_ceil(2),
            }
        })
}

/// Measure the control plane's clock offset and put it on `timeline`.
async fn measure(client: &ChangeClient, timeline: &Timeline) -> Result<Offset> {
    let mut readings = Vec::with_capacity(READINGS);
    for _ in 0..READINGS {
        readings.push(client.clock().await?);
    }
    let offset = estimate(&readings).context("no clock reading")?;
    timeline.record(Event::ClockOffset {
        part: "control-plane".into(),
        offset_us: offset.offset_us,
        uncertainty_us: offset.uncertainty_us,
    });
    Ok(offset)
}

/// Measure the offset, open the log stream, and follow it onto `timeline` until `stop`
/// (reopening it if it breaks, measuring the offset again every minute).
pub async fn start(
    client: ChangeClient,
    timeline: Timeline,
    stop: CancellationToken,
) -> Result<(Offset, JoinHandle<()>)> {
    let offset = measure(&client, &timeline)
        .await
        .context("cannot read the control plane's clock (GET /clock)")?;
    let offset_ms = Arc::new(AtomicI64::new(offset.offset_us / 1000));
    let first = client
        .log()
        .await
        .context("cannot follow the control plane's log (GET /log)")?;
    let follow = {
        let (client, timeline, stop, offset_ms) = (
            client.clone(),
            timeline.clone(),
            stop.clone(),
            offset_ms.clone(),
        );
        async move {
            let mut stream = Some(first);
            while !stop.is_cancelled() {
                let response = match stream.take() {
                    Some(r) => Ok(r),
                    None => client.log().await,
                };
                match response {
                    Ok(r) => {
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = read_lines(r, &timeline, &offset_ms) => {}
                        }
                    }
                    Err(_) => {
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }
    };
    let remeasure = async move {
        let mut every = tokio::time::interval(REMEASURE);
        every.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {
                    if let Ok(o) = measure(&client, &timeline).await {
                        offset_ms.store(o.offset_us / 1000, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    let task = tokio::spawn(async move {
        tokio::join!(follow, remeasure);
    });
    Ok((offset, task))
}

/// Put every whole line of `response` on `timeline` until the stream ends.
async fn read_lines(mut response: reqwest::Response, timeline: &Timeline, offset_ms: &AtomicI64) {
    let mut pending: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            XdsLogLine::record(&line, timeline, offset_ms.load(Ordering::Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_round_trip_decides() {
        // Their clock is 5 s ahead; the second reading had the shortest round trip.
        let readings = [
            (1_000, 5_001_900, 3_000),
            (10_000, 5_010_200, 10_400),
            (20_000, 5_021_000, 21_000),
        ];
        let offset = estimate(&readings).unwrap();
        assert_eq!(offset.offset_us, 5_000_000);
        assert_eq!(offset.uncertainty_us, 200);
        // A clock behind ours gives a negative offset.
        let behind = estimate(&[(10_000, 7_000, 10_002)]).unwrap();
        assert_eq!(behind.offset_us, -3_001);
        assert!(estimate(&[]).is_none());
    }
}
