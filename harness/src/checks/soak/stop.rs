//! Stop conditions, watched as the run records: the outpost's load succeeding below a
//! ratio for too many seconds on end (as AWS FIS stops an experiment on an alarm), or
//! too many failed cycles.

use crate::plan::StopWhen;
use crate::timeline::{Entry, Event};

/// Watches a run's entries for its stop conditions.
#[derive(Debug, Clone)]
pub struct StopWatch {
    when: StopWhen,
    /// Seconds of load below the ratio on end, and when the first of them was.
    low: (u64, u64),
}

impl StopWatch {
    /// A watch of `when`.
    pub fn new(when: &StopWhen) -> StopWatch {
        StopWatch {
            when: when.clone(),
            low: (0, 0),
        }
    }

    /// Take one entry; gives the reason to stop when one holds now.
    pub fn entry(&mut self, entry: &Entry) -> Option<String> {
        let below = self.when.success_below?;
        let Event::LoadSecond(s) = &entry.event else {
            return None;
        };
        if s.sent == 0 {
            return None;
        }
        let ratio = s.ok as f64 / s.sent as f64;
        if ratio >= below.ratio {
            self.low = (0, 0);
            return None;
        }
        if self.low.0 == 0 {
            self.low.1 = entry.t_ms;
        }
        self.low.0 += 1;
        (self.low.0 >= below.seconds).then(|| {
            format!(
                "outpost success below {:.0}% for {} s from {:.1} s",
                below.ratio * 100.0,
                self.low.0,
                self.low.1 as f64 / 1000.0
            )
        })
    }

    /// Gives the reason to stop when `failed` cycles have failed.
    pub fn cycles(&self, failed: u32) -> Option<String> {
        let most = self.when.failed_cycles?;
        (failed >= most)
            .then(|| format!("{failed} cycles failed (stop_when: failed_cycles {most})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SuccessBelow;
    use crate::timeline::LoadSecond;

    fn second(t_ms: u64, ok: u64) -> Entry {
        Entry {
            t_ms,
            event: Event::LoadSecond(LoadSecond {
                sent: 10,
                ok,
                ..LoadSecond::default()
            }),
        }
    }

    #[test]
    fn trips_only_after_enough_low_seconds_on_end_and_on_failed_cycles() {
        let when = StopWhen {
            success_below: Some(SuccessBelow {
                ratio: 0.5,
                seconds: 3,
            }),
            failed_cycles: Some(2),
        };
        let mut watch = StopWatch::new(&when);
        assert_eq!(watch.entry(&second(0, 1)), None);
        assert_eq!(watch.entry(&second(1_000, 1)), None);
        assert_eq!(watch.entry(&second(2_000, 9)), None, "a good second resets");
        assert_eq!(watch.entry(&second(3_000, 0)), None);
        assert_eq!(watch.entry(&second(4_000, 0)), None);
        let reason = watch.entry(&second(5_000, 4)).unwrap();
        assert!(reason.contains("below 50% for 3 s from 3.0 s"), "{reason}");
        assert_eq!(watch.cycles(1), None);
        assert!(watch.cycles(2).unwrap().contains("2 cycles failed"));
        let never = StopWatch::new(&StopWhen::default());
        assert_eq!(never.cycles(100), None);
    }
}
