//! A soak's timeline cut into its cycles as it is recorded (or read back), so each cycle
//! can be judged on its own and then forgotten.
//!
//! Entries come in the order they were recorded, not quite in time order (a second of
//! load is recorded once its last request answered, an ACK once the control plane's log
//! was read), so a cycle is handed out only once an entry at least `grace` past its end
//! has come, or when the stream ends. With its own entries it carries the last entries
//! before it that checks look back at: each sidecar's last sample, the last push, ACK and
//! NACK of each type to each sidecar, and the last mesh change. What is held is one
//! cycle and that carry, whatever the length of the run.

use super::{Entry, Event, XdsKind};
use std::collections::BTreeMap;

/// One cycle's entries, with the carry from before it, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    /// Its number, from 1.
    pub cycle: u32,
    /// When it started (ms since the run began).
    pub start_ms: u64,
    /// When it ended.
    pub end_ms: u64,
    /// What it drew.
    pub draws: Vec<String>,
    /// The entries, in time order.
    pub entries: Vec<Entry>,
}

/// What a carried entry is the last of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Sample(String),
    Xds(String, String, u8),
    Change,
}

/// A cycle started and not handed out yet.
struct Open {
    cycle: u32,
    start_ms: u64,
    end_ms: Option<u64>,
    draws: Vec<String>,
    entries: Vec<Entry>,
}

/// Cuts a stream of entries into cycles.
pub struct Cycles {
    grace_ms: u64,
    carry: BTreeMap<Key, Entry>,
    open: Vec<Open>,
}

impl Cycles {
    /// A cutter that hands a cycle out once an entry `grace_ms` past its end came.
    pub fn new(grace_ms: u64) -> Cycles {
        Cycles {
            grace_ms,
            carry: BTreeMap::new(),
            open: Vec::new(),
        }
    }

    /// Take the next entry; gives the cycles it completes.
    pub fn push(&mut self, entry: Entry) -> Vec<Cycle> {
        let t = entry.t_ms;
        match &entry.event {
            Event::CycleStarted { cycle, draws } => self.open.push(Open {
                cycle: *cycle,
                start_ms: t,
                end_ms: None,
                draws: draws.clone(),
                entries: Vec::new(),
            }),
            Event::CycleEnded { cycle } => {
                if let Some(open) = self.open.iter_mut().find(|o| o.cycle == *cycle) {
                    open.end_ms = Some(t);
                }
            }
            _ => {}
        }
        let home = self
            .open
            .iter_mut()
            .rev()
            .find(|o| t >= o.start_ms && o.end_ms.is_none_or(|end| t < end));
        match home {
            Some(open) => open.entries.push(entry),
            // Before the first cycle (a warm-up), or too late for its own.
            None => self.remember(entry),
        }
        let mut done = Vec::new();
        while let Some(first) = self.open.first() {
            match first.end_ms {
                Some(end) if t >= end + self.grace_ms => {
                    let open = self.open.remove(0);
                    done.push(self.close(open));
                }
                _ => break,
            }
        }
        done
    }

    /// The stream is over: every cycle that ended, handed out (one still running when the
    /// run was killed is left out).
    pub fn finish(mut self) -> Vec<Cycle> {
        let open = std::mem::take(&mut self.open);
        open.into_iter()
            .filter(|o| o.end_ms.is_some())
            .map(|o| self.close(o))
            .collect()
    }

    /// A cycle with the carry from before it; its own entries become the carry.
    fn close(&mut self, open: Open) -> Cycle {
        let mut entries: Vec<Entry> = self.carry.values().cloned().collect();
        let own = open.entries;
        for e in &own {
            self.remember(e.clone());
        }
        entries.extend(own);
        entries.sort_by_key(|e| e.t_ms);
        Cycle {
            cycle: open.cycle,
            start_ms: open.start_ms,
            end_ms: open.end_ms.unwrap_or(open.start_ms),
            draws: open.draws,
            entries,
        }
    }

    /// Keep `entry` if a check may look back at it from a later cycle.
    fn remember(&mut self, entry: Entry) {
        let key = match &entry.event {
            Event::EnvoySample { node, .. } => Key::Sample(node.clone()),
            Event::Xds {
                node,
                type_name,
                xds,
                ..
            } => {
                let kind = match xds {
                    XdsKind::Request => 0,
                    XdsKind::Push => 1,
                    XdsKind::Ack => 2,
                    XdsKind::Nack => 3,
                };
                Key::Xds(node.clone(), type_name.clone(), kind)
            }
            Event::MeshChange { .. } => Key::Change,
            _ => return,
        };
        match self.carry.get(&key) {
            Some(kept) if kept.t_ms > entry.t_ms => {}
            _ => {
                self.carry.insert(key, entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_ms: u64, event: Event) -> Entry {
        Entry { t_ms, event }
    }

    fn change(t_ms: u64, version: &str) -> Entry {
        at(
            t_ms,
            Event::MeshChange {
                description: "weights".into(),
                version: version.into(),
                target: None,
                affects: Vec::new(),
            },
        )
    }

    fn ended(t_ms: u64) -> Entry {
        at(
            t_ms,
            Event::RunEnded {
                reason: "completed".into(),
            },
        )
    }

    #[test]
    fn cycles_come_out_after_their_grace_with_what_came_before_them() {
        let mut cut = Cycles::new(1_000);
        let start = |t, cycle| {
            at(
                t,
                Event::CycleStarted {
                    cycle,
                    draws: vec![],
                },
            )
        };
        let end = |t, cycle| at(t, Event::CycleEnded { cycle });
        let mut out = Vec::new();
        for e in [
            change(500, "2"),
            start(1_000, 1),
            change(2_000, "3"),
            end(5_000, 1),
            start(5_000, 2),
            // Recorded late, but in cycle 1's window: still cycle 1's.
            change(4_900, "4"),
            ended(5_500),
        ] {
            out.extend(cut.push(e));
        }
        assert!(out.is_empty(), "within the grace nothing is handed out");
        out.extend(cut.push(ended(6_000)));
        assert_eq!(out.len(), 1);
        let versions = |c: &Cycle| -> Vec<String> {
            c.entries
                .iter()
                .filter_map(|e| match &e.event {
                    Event::MeshChange { version, .. } => Some(version.clone()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            (out[0].cycle, out[0].start_ms, out[0].end_ms),
            (1, 1_000, 5_000)
        );
        assert_eq!(versions(&out[0]), ["2", "3", "4"]);
        out.extend(cut.push(end(9_000, 2)));
        let last = cut.finish();
        assert_eq!(last.len(), 1);
        assert_eq!(versions(&last[0]), ["4"], "carries only the last change");
    }

    #[test]
    fn a_cycle_that_never_ended_is_left_out() {
        let mut cut = Cycles::new(1_000);
        cut.push(at(
            0,
            Event::CycleStarted {
                cycle: 1,
                draws: vec![],
            },
        ));
        cut.push(change(10, "2"));
        assert!(cut.finish().is_empty());
    }
}
