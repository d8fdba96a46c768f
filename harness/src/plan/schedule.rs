//! The schedule: a plan and a seed as the ordered list of timed operations a run carries
//! out, computed before anything starts.
//!
//! It is a value: the same plan and seed give the same operations every time, so it can be
//! printed (`tether validate --schedule`), written into the run folder, tested without a
//! single process, and repeated. The interpreter (`run`) carries it out, one operation
//! after another, each at its time (or as soon as the one before it is done).
//!
//! Within a phase the order is: the phase starts; the control plane goes down or comes
//! back; an overhead measurement starts; the phase's link faults, then its held container
//! faults, are put on; restarts, flapping outages and mesh changes follow at their times;
//! then the held container faults (last first) and the link faults come off, and the
//! phase ends before the next one starts.

use super::{
    Change, Disruption, Fault, Link, PhaseDraws, Plan, PlannedPhase, Rng, Soak, SoakLength,
};
use serde::{Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// One thing a run does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// Start tether's open-loop generator through the outpost for `duration`.
    StartLoad {
        /// How long it runs.
        #[serde(serialize_with = "millis", rename = "duration_ms")]
        duration: Duration,
    },
    /// Start the goose user journeys for `duration`.
    StartJourneys {
        /// How long they run.
        #[serde(serialize_with = "millis", rename = "duration_ms")]
        duration: Duration,
    },
    /// A phase begins.
    PhaseStart {
        /// Its name.
        phase: String,
        /// How long it lasts.
        #[serde(serialize_with = "millis", rename = "duration_ms")]
        duration: Duration,
    },
    /// A soak's cycle begins.
    CycleStart {
        /// Its number, from 1.
        cycle: u32,
        /// What it drew, a line each.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        draws: Vec<String>,
    },
    /// A soak's cycle is over (its last phase ended).
    CycleEnd {
        /// Its number.
        cycle: u32,
    },
    /// A phase is over.
    PhaseEnd {
        /// Its name.
        phase: String,
    },
    /// Put a disruption on.
    On {
        /// Which.
        #[serde(flatten)]
        disruption: Disruption,
    },
    /// Take a disruption off.
    Off {
        /// Which.
        #[serde(flatten)]
        disruption: Disruption,
    },
    /// Ask the control plane for a mesh change.
    MeshChange {
        /// The change.
        change: Change,
        /// The placed virtual nodes whose sidecars' config it alters.
        affects: Vec<String>,
        /// The virtual node it sends the most traffic to, if it routes traffic.
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    /// Measure a sidecar's overhead: closed-loop load for `each` straight at the node's
    /// app, then for `each` through its sidecar.
    MeasureOverhead {
        /// The virtual node.
        node: String,
        /// Connections of the closed loop.
        connections: usize,
        /// Length of each half.
        #[serde(serialize_with = "millis", rename = "each_ms")]
        each: Duration,
    },
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// An operation at its time, from the start of the first phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timed {
    /// When.
    #[serde(serialize_with = "millis", rename = "at_ms")]
    pub at: Duration,
    /// What.
    #[serde(flatten)]
    pub op: Operation,
}

/// Every operation of a run, in the order they are carried out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// The suite.
    pub suite: String,
    /// The seed it was drawn with.
    pub seed: u64,
    /// The operations, in order (their times never decrease).
    pub operations: Vec<Timed>,
}

impl Schedule {
    /// The schedule of `plan` drawn with `seed`.
    pub fn of(plan: &Plan, seed: u64) -> Schedule {
        let (phases, total) = match &plan.soak {
            Some(soak) => cycles(plan, soak, seed),
            None => once(plan, seed),
        };
        let mut operations = Vec::new();
        let at_start = |op| Timed {
            at: Duration::ZERO,
            op,
        };
        if plan.load.generator.hot_path() {
            operations.push(at_start(Operation::StartLoad { duration: total }));
        }
        if plan.load.generator.goose() && plan.load.journeys.is_some() {
            operations.push(at_start(Operation::StartJourneys { duration: total }));
        }
        let mut control_plane_down = false;
        for placed in phases {
            match placed {
                Placed::Phase(phase, cycle) => {
                    // Each cycle's flapping draws its own outages.
                    let seed = seed ^ u64::from(cycle).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    operations.extend(phase_operations(plan, &phase, control_plane_down, seed));
                    control_plane_down = phase.control_plane_down;
                }
                Placed::Mark(timed) => operations.push(timed),
            }
        }
        Schedule {
            suite: plan.name().to_string(),
            seed,
            operations,
        }
    }

    /// How many cycles it has (0 for a run that is not a soak).
    pub fn cycles(&self) -> u32 {
        self.operations
            .iter()
            .filter(|t| matches!(t.op, Operation::CycleStart { .. }))
            .count() as u32
    }

    /// How long it runs.
    pub fn duration(&self) -> Duration {
        self.operations.last().map_or(Duration::ZERO, |t| t.at)
    }

    /// The schedule as text, one operation a line.
    pub fn render(&self) -> String {
        let end = self.operations.last().map_or(Duration::ZERO, |t| t.at);
        let mut text = format!(
            "schedule of {} (seed {}): {} operations over {}\n",
            self.suite,
            self.seed,
            self.operations.len(),
            humantime::format_duration(end)
        );
        for timed in &self.operations {
            text.push_str(&format!("{:>9.3}s  {}\n", timed.at.as_secs_f64(), timed.op));
        }
        text
    }
}

/// A phase placed on the run's clock (with the cycle it belongs to, 0 for none), or a
/// cycle's start or end.
enum Placed {
    Phase(PlannedPhase, u32),
    Mark(Timed),
}

/// A run's phases, each run once, with what they draw drawn from `seed`; and how long
/// they take together.
fn once(plan: &Plan, seed: u64) -> (Vec<Placed>, Duration) {
    let (phases, _, end) = draw_phases(plan, Duration::ZERO, &mut Rng::new(seed, "soak"));
    let placed = phases.into_iter().map(|p| Placed::Phase(p, 0)).collect();
    (placed, end)
}

/// The plan's phases drawn from `rng`, one after another from `start`: the phases, a line
/// per draw, and where the last one ends.
fn draw_phases(
    plan: &Plan,
    start: Duration,
    rng: &mut Rng,
) -> (Vec<PlannedPhase>, Vec<String>, Duration) {
    let (mut phases, mut draws, mut end) = (Vec::new(), Vec::new(), start);
    for phase in &plan.phases {
        let (drawn, said) = phase.drawn(end, rng);
        end += drawn.duration;
        draws.extend(said);
        phases.push(drawn);
    }
    (phases, draws, end)
}

/// A soak's phases: the warm-up, then whole cycles, each drawn from `seed`; and how long
/// they take together.
fn cycles(plan: &Plan, soak: &Soak, seed: u64) -> (Vec<Placed>, Duration) {
    let mut rng = Rng::new(seed, "soak");
    let mut placed = Vec::new();
    let mut t = Duration::ZERO;
    if !soak.warm_up.is_zero() {
        placed.push(Placed::Phase(warm_up(soak.warm_up), 0));
        t = soak.warm_up;
    }
    for cycle in 1.. {
        let (phases, draws, end) = draw_phases(plan, t, &mut rng);
        let fits = match soak.length {
            SoakLength::Cycles(n) => cycle <= n,
            // Whole cycles only, and at least one.
            SoakLength::For(d) => cycle == 1 || end <= d,
        };
        if !fits {
            break;
        }
        let mark = |at, op| Placed::Mark(Timed { at, op });
        placed.push(mark(t, Operation::CycleStart { cycle, draws }));
        placed.extend(phases.into_iter().map(|p| Placed::Phase(p, cycle)));
        placed.push(mark(end, Operation::CycleEnd { cycle }));
        t = end;
    }
    (placed, t)
}

/// The phase before a soak's first cycle: load only.
fn warm_up(duration: Duration) -> PlannedPhase {
    PlannedPhase {
        name: "warm-up".into(),
        start: Duration::ZERO,
        duration,
        faults: Vec::new(),
        changes: Vec::new(),
        control_plane_down: false,
        overhead: None,
        containers: Vec::new(),
        draws: PhaseDraws::default(),
    }
}

/// One phase's operations, in order; `was_down` says whether the control plane was down
/// in the phase before.
fn phase_operations(plan: &Plan, phase: &PlannedPhase, was_down: bool, seed: u64) -> Vec<Timed> {
    let (start, end) = (phase.start, phase.start + phase.duration);
    let at = |t: Duration, op| Timed { at: t, op };
    let on = |disruption| Operation::On { disruption };
    let off = |disruption| Operation::Off { disruption };
    let mut ops = vec![at(
        start,
        Operation::PhaseStart {
            phase: phase.name.clone(),
            duration: phase.duration,
        },
    )];
    if phase.control_plane_down != was_down {
        let change = if phase.control_plane_down { on } else { off };
        ops.push(at(start, change(Disruption::ControlPlaneDown)));
    }
    if let Some(overhead) = &phase.overhead {
        let each = (phase.duration / 2).saturating_sub(Duration::from_millis(250));
        ops.push(at(
            start,
            Operation::MeasureOverhead {
                node: overhead.node.clone(),
                connections: overhead.connections,
                each,
            },
        ));
    }
    let held_links: Vec<Disruption> = phase
        .faults
        .iter()
        .filter(|(_, f)| !matches!(f, Fault::Flapping { .. }))
        .map(|(link, fault)| Disruption::Link {
            link: *link,
            fault: fault.clone(),
            flapping: false,
        })
        .collect();
    let container = |f: &super::ContainerFault| Disruption::Container {
        part: f.part.clone(),
        action: f.action,
    };
    let held_containers: Vec<Disruption> = phase
        .containers
        .iter()
        .filter(|f| f.action.held())
        .map(container)
        .collect();
    ops.extend(held_links.iter().cloned().map(|d| at(start, on(d))));
    ops.extend(held_containers.iter().cloned().map(|d| at(start, on(d))));

    // Restarts, flapping outages and mesh changes at their times.
    let mut timed = Vec::new();
    for fault in phase.containers.iter().filter(|f| !f.action.held()) {
        // Killed, then started again: two operations, the window between them.
        timed.push(at(start + fault.at, on(container(fault))));
        timed.push(at(start + fault.at, off(container(fault))));
    }
    for (link, fault) in &phase.faults {
        if let Fault::Flapping {
            every,
            down_for,
            random,
        } = fault
        {
            let outage = Disruption::Link {
                link: *link,
                fault: Fault::Down,
                flapping: true,
            };
            for (down, up) in outages(*link, (every.0, down_for.0, *random), seed, start, end) {
                timed.push(at(down, on(outage.clone())));
                timed.push(at(up, off(outage.clone())));
            }
        }
    }
    // Changes apply in the order written, each on top of the ones before: one written
    // after a later one waits for it.
    let mut last_change = start;
    for (offset, change) in &phase.changes {
        last_change = last_change.max(start + *offset);
        let affects = change
            .affects(&plan.mesh)
            .into_iter()
            .filter(|n| plan.sites.contains_key(n))
            .collect();
        timed.push(at(
            last_change,
            Operation::MeshChange {
                change: change.clone(),
                affects,
                target: change.dominant_target(),
            },
        ));
    }
    // Stable: operations at the same time keep the order above.
    timed.sort_by_key(|t| t.at);
    ops.extend(timed);

    ops.extend(held_containers.into_iter().rev().map(|d| at(end, off(d))));
    ops.extend(held_links.into_iter().map(|d| at(end, off(d))));
    ops.push(at(
        end,
        Operation::PhaseEnd {
            phase: phase.name.clone(),
        },
    ));
    ops
}

/// A flapping link's outages from `start` to `end`: down for `down_for` once in every
/// `every`, at the start of each cycle or, with `random`, at a point drawn from the seed
/// and the link. Each outage is (down, up); none starts at or after `end`, and the last
/// is cut short at `end`.
fn outages(
    link: Link,
    (every, down_for, random): (Duration, Duration, bool),
    seed: u64,
    start: Duration,
    end: Duration,
) -> Vec<(Duration, Duration)> {
    // Seeded by the run's seed and the link, so a seed replays the same outages.
    let mut rng = Rng::new(seed, link.as_str());
    let mut next = move || rng.next_u64();
    let mut outages = Vec::new();
    let mut cycle = start;
    while cycle + down_for <= end && !every.is_zero() {
        let slack = every.saturating_sub(down_for).as_millis() as u64;
        let offset = if random {
            Duration::from_millis(next() % (slack + 1))
        } else {
            Duration::ZERO
        };
        let down = cycle + offset;
        if down >= end {
            break;
        }
        outages.push((down, (down + down_for).min(end)));
        cycle += every;
    }
    outages
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            Operation::StartLoad { duration } => write!(f, "start the load for {}", secs(duration)),
            Operation::StartJourneys { duration } => {
                write!(f, "start the goose journeys for {}", secs(duration))
            }
            Operation::PhaseStart { phase, duration } => {
                write!(f, "phase {phase} starts ({})", secs(duration))
            }
            Operation::PhaseEnd { phase } => write!(f, "phase {phase} ends"),
            Operation::CycleStart { cycle, draws } if draws.is_empty() => {
                write!(f, "cycle {cycle} starts")
            }
            Operation::CycleStart { cycle, draws } => {
                write!(f, "cycle {cycle} starts, drawn: {}", draws.join("; "))
            }
            Operation::CycleEnd { cycle } => write!(f, "cycle {cycle} ends"),
            Operation::On { disruption } => write!(f, "on:  {disruption}"),
            Operation::Off { disruption } => write!(f, "off: {disruption}"),
            Operation::MeshChange { change, .. } => {
                write!(f, "mesh change: {}", change.describe())
            }
            Operation::MeasureOverhead {
                node,
                connections,
                each,
            } => write!(
                f,
                "measure the overhead of {node}'s sidecar: {connections} connections, {} direct then {} through it",
                secs(each),
                secs(each)
            ),
        }
    }
}

#[cfg(test)]
mod tests;
