//! The interpreter: carries out a [`Schedule`] through a backend's actuators, one
//! operation after another, each at its time (or as soon as the one before it is done),
//! and records each on the timeline at the moment it was carried out or asked for, before
//! anything it causes.
//!
//! When a run is cut short (stopped, or an actuator failed) it takes off, last first,
//! whatever it put on and did not take off yet, before it returns. It waits for the load
//! it started.

use crate::backend::actuators::{
    ContainerActuator, ControlPlaneActuator, LinkActuator, LoadDriver,
};
use crate::plan::{Action, Disruption, Operation, Schedule, Timed};
use crate::run::console::Console;
use crate::timeline::{Event, LoadKind, Timeline};
use anyhow::{Context, Result};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The actuators a run's operations go through.
pub struct Actuators<'a> {
    /// Link faults.
    pub links: &'a dyn LinkActuator,
    /// Container faults.
    pub containers: &'a dyn ContainerActuator,
    /// The control plane: kill, restart, mesh changes.
    pub control_plane: &'a dyn ControlPlaneActuator,
    /// Load and measurements.
    pub load: &'a dyn LoadDriver,
    /// Saves every sidecar's admin state as each phase ends (none in tests).
    pub dumps: Option<&'a crate::observe::dumps::SidecarDumps>,
}

/// One run of the interpreter.
struct Interpreter<'a> {
    act: &'a Actuators<'a>,
    timeline: &'a Timeline,
    console: &'a Console,
    /// Disruptions on now, in the order they went on.
    on: Vec<Disruption>,
    /// Load and measurements started, to wait for at the end.
    running: Vec<JoinHandle<()>>,
}

/// Carry out `schedule` from now, until its end or until `stop` is cancelled; stops at
/// the first operation that fails (and cancels `stop`, so the load stops too).
pub async fn carry_out(
    schedule: &Schedule,
    act: &Actuators<'_>,
    timeline: &Timeline,
    stop: &CancellationToken,
    console: &Console,
) -> Result<()> {
    let start = tokio::time::Instant::now();
    let mut run = Interpreter {
        act,
        timeline,
        console,
        on: Vec::new(),
        running: Vec::new(),
    };
    let mut result = Ok(());
    for timed in &schedule.operations {
        tokio::select! {
            _ = tokio::time::sleep_until(start + timed.at) => {}
            _ = stop.cancelled() => break,
        }
        if let Err(e) = run.carry(timed).await {
            result = Err(e);
            // Stop the load now rather than at its end.
            stop.cancel();
            break;
        }
    }
    // A schedule carried out to its end leaves on only what it means to (a control plane
    // that stays down, for the backend's teardown); a run cut short heals the rest.
    let cut_short = result.is_err() || stop.is_cancelled();
    let healed = if cut_short {
        run.heal(result.is_ok()).await
    } else {
        Ok(())
    };
    for task in run.running.drain(..) {
        let _ = task.await;
    }
    result.and(healed)
}

impl Interpreter<'_> {
    /// Carry out one operation and record it.
    async fn carry(&mut self, timed: &Timed) -> Result<()> {
        let act = self.act;
        let t_ms = self.timeline.elapsed_ms();
        match &timed.op {
            Operation::StartLoad { duration } => {
                let handle = act.load.start_load(*duration).await?;
                self.started(t_ms, handle, LoadKind::HotPath, *duration);
            }
            Operation::StartJourneys { duration } => {
                let handle = act.load.start_journeys(*duration).await?;
                self.started(t_ms, handle, LoadKind::Journeys, *duration);
            }
            Operation::MeasureOverhead {
                node,
                connections,
                each,
            } => {
                let handle = act.load.measure_overhead(node, *connections, *each).await?;
                let load = LoadKind::Overhead { node: node.clone() };
                self.started(t_ms, handle, load, *each * 2);
            }
            Operation::PhaseStart { phase, duration } => {
                self.timeline.record_at(
                    t_ms,
                    Event::PhaseStarted {
                        phase: phase.clone(),
                        duration_ms: duration.as_millis() as u64,
                    },
                );
                self.console.line(&timed.op.to_string());
            }
            Operation::CycleStart { cycle, draws } => {
                self.timeline.record_at(
                    t_ms,
                    Event::CycleStarted {
                        cycle: *cycle,
                        draws: draws.clone(),
                    },
                );
                self.console.line(&timed.op.to_string());
            }
            Operation::CycleEnd { cycle } => {
                self.timeline
                    .record_at(t_ms, Event::CycleEnded { cycle: *cycle });
            }
            Operation::PhaseEnd { phase } => {
                self.timeline.record_at(
                    t_ms,
                    Event::PhaseEnded {
                        phase: phase.clone(),
                    },
                );
                self.console.phase_ended(phase);
                if let Some(dumps) = self.act.dumps {
                    dumps.phase_ended(phase);
                }
            }
            Operation::On { disruption } => self.put_on(t_ms, disruption).await?,
            Operation::Off { disruption } => self.take_off(t_ms, disruption).await?,
            Operation::MeshChange {
                change,
                affects,
                target,
            } => {
                let version = act.control_plane.change(change).await?;
                self.console.line(&format!(
                    "mesh change: {} (version {version})",
                    change.describe()
                ));
                self.timeline.record_at(
                    t_ms,
                    Event::MeshChange {
                        description: change.describe(),
                        version,
                        target: target.clone(),
                        affects: affects.clone(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Load started at `t_ms`, running for `duration`: waited for at the end.
    fn started(&mut self, t_ms: u64, handle: JoinHandle<()>, load: LoadKind, duration: Duration) {
        self.running.push(handle);
        let duration_ms = duration.as_millis() as u64;
        self.timeline
            .record_at(t_ms, Event::LoadStarted { load, duration_ms });
    }

    /// Put `d` on, recording it at `t_ms` (when it was asked for).
    async fn put_on(&mut self, t_ms: u64, d: &Disruption) -> Result<()> {
        let act = self.act;
        let applied = match d {
            Disruption::Link { link, fault, .. } => act.links.apply(*link, fault).await?,
            Disruption::Container { part, action } => act.containers.apply(part, *action).await?,
            Disruption::ControlPlaneDown => {
                act.control_plane.kill().await?;
                Vec::new()
            }
        };
        self.on.push(d.clone());
        self.timeline.record_at(
            t_ms,
            Event::FaultApplied {
                disruption: d.clone(),
                applied,
                draw: d.draw(),
            },
        );
        if !matches!(
            d,
            Disruption::Container {
                action: Action::Restart,
                ..
            }
        ) {
            self.console.line(&format!("on:  {d}"));
        }
        Ok(())
    }

    /// Take `d` off, recording it at `t_ms` (when it was asked for).
    async fn take_off(&mut self, t_ms: u64, d: &Disruption) -> Result<()> {
        let act = self.act;
        match d {
            Disruption::Link { link, fault, .. } => act.links.remove(*link, fault).await?,
            Disruption::Container { part, action } => {
                act.containers.remove(part, *action).await?;
            }
            Disruption::ControlPlaneDown => act
                .control_plane
                .restart()
                .await
                .context("cannot restart the control plane")?,
        }
        if let Some(i) = self.on.iter().rposition(|on| on == d) {
            self.on.remove(i);
        }
        self.timeline.record_at(
            t_ms,
            Event::FaultRemoved {
                disruption: d.clone(),
            },
        );
        self.console.line(&match d {
            Disruption::Container {
                part,
                action: Action::Restart,
            } => format!("restarted {part}"),
            Disruption::ControlPlaneDown => "control plane restarted".to_string(),
            _ => format!("off: {d}"),
        });
        Ok(())
    }

    /// Take off, last first, every disruption still on; when `stopping` (interrupted,
    /// not failed), a killed control plane is left for the backend's teardown. Gives the
    /// first error.
    async fn heal(&mut self, stopping: bool) -> Result<()> {
        let mut first_error = Ok(());
        while let Some(d) = self.on.last().cloned() {
            if stopping && d == Disruption::ControlPlaneDown {
                self.on.pop();
                continue;
            }
            let t_ms = self.timeline.elapsed_ms();
            if let Err(e) = self.take_off(t_ms, &d).await {
                self.on.pop();
                if first_error.is_ok() {
                    first_error = Err(e.context(format!("cannot take off {d}")));
                }
            }
        }
        first_error
    }
}

#[cfg(test)]
mod tests;
