//! The interpreter against fake actuators, on tokio's paused clock: every operation is
//! carried out at its time, recorded when it was asked for, and whatever is still on when
//! a run stops or fails is taken off.

use super::*;
use crate::backend::actuators::{
    ContainerActuator, ControlPlaneActuator, LinkActuator, LoadDriver,
};
use crate::plan::{Change, Check, Fault, Link, Part, Plan};
use crate::timeline::{Entry, XdsKind};
use async_trait::async_trait;
use marked_yaml::{Span, Spanned};
use std::sync::Mutex;
use std::time::Duration;

fn plan(suite: &str) -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(suite);
    crate::suite::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Records every call with the time it was made; the control plane's change API takes
/// `change_takes`, and the sidecars in `acks` ACK a change `ack_after` into that call.
struct Fake {
    timeline: Timeline,
    calls: Mutex<Vec<(u64, String)>>,
    change_takes: Duration,
    ack_after: Duration,
    acks: Vec<String>,
    version: Mutex<u64>,
    refuse_changes: bool,
}

impl Fake {
    fn new(timeline: &Timeline) -> Fake {
        Fake {
            timeline: timeline.clone(),
            calls: Mutex::default(),
            change_takes: Duration::from_millis(40),
            ack_after: Duration::from_millis(5),
            acks: Vec::new(),
            version: Mutex::new(1),
            refuse_changes: false,
        }
    }

    fn call(&self, what: String) {
        let t = self.timeline.elapsed_ms();
        self.calls.lock().unwrap().push((t, what));
    }

    fn calls(&self) -> Vec<(u64, String)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl LinkActuator for Fake {
    async fn apply(&self, link: Link, fault: &Fault) -> anyhow::Result<Vec<String>> {
        self.call(format!("apply {fault} on {link}"));
        Ok(vec![format!("{link}: set")])
    }
    async fn remove(&self, link: Link, fault: &Fault) -> anyhow::Result<()> {
        self.call(format!("remove {fault} on {link}"));
        Ok(())
    }
}

#[async_trait]
impl ContainerActuator for Fake {
    async fn apply(&self, part: &Part, action: Action) -> anyhow::Result<Vec<String>> {
        self.call(format!("{} {part}", action.as_str()));
        Ok(vec![format!("{part} {}", action.as_str())])
    }
    async fn remove(&self, part: &Part, action: Action) -> anyhow::Result<Vec<String>> {
        self.call(format!("undo {} {part}", action.as_str()));
        Ok(Vec::new())
    }
}

#[async_trait]
impl ControlPlaneActuator for Fake {
    async fn kill(&self) -> anyhow::Result<()> {
        self.call("kill control plane".into());
        Ok(())
    }
    async fn restart(&self) -> anyhow::Result<()> {
        self.call("restart control plane".into());
        Ok(())
    }
    async fn change(&self, change: &Change) -> anyhow::Result<String> {
        self.call(format!("change: {}", change.describe()));
        if self.refuse_changes {
            anyhow::bail!("refused");
        }
        let version = {
            let mut v = self.version.lock().unwrap();
            *v += 1;
            *v
        };
        // The control plane pushes and the sidecars ACK before its answer arrives.
        tokio::time::sleep(self.ack_after).await;
        for node in &self.acks {
            self.timeline.record(Event::Xds {
                node: format!("mesh/demo/virtualNode/{node}"),
                type_name: "rds".into(),
                xds: XdsKind::Ack,
                version: version.to_string(),
                error: None,
            });
        }
        tokio::time::sleep(self.change_takes.saturating_sub(self.ack_after)).await;
        Ok(version.to_string())
    }
}

#[async_trait]
impl LoadDriver for Fake {
    async fn start_load(&self, duration: Duration) -> anyhow::Result<JoinHandle<()>> {
        self.call(format!("load for {}", duration.as_millis()));
        Ok(tokio::spawn(tokio::time::sleep(duration)))
    }
    async fn start_journeys(&self, duration: Duration) -> anyhow::Result<JoinHandle<()>> {
        self.call(format!("journeys for {}", duration.as_millis()));
        Ok(tokio::spawn(tokio::time::sleep(duration)))
    }
    async fn measure_overhead(
        &self,
        node: &str,
        _connections: usize,
        each: Duration,
    ) -> anyhow::Result<JoinHandle<()>> {
        self.call(format!("overhead of {node}"));
        Ok(tokio::spawn(tokio::time::sleep(each * 2)))
    }
}

async fn carry(fake: &Fake, schedule: &Schedule, stop: &CancellationToken) -> anyhow::Result<()> {
    let act = Actuators {
        links: fake,
        containers: fake,
        control_plane: fake,
        load: fake,
        dumps: None,
    };
    let console = Console::new(false, &fake.timeline, Duration::from_secs(1));
    carry_out(schedule, &act, &fake.timeline, stop, &console).await
}

/// (time, kind) of every entry that is not a sample.
fn recorded(timeline: &Timeline) -> Vec<(u64, String)> {
    timeline
        .entries()
        .into_iter()
        .map(|Entry { t_ms, event }| {
            let text = match event {
                Event::PhaseStarted { phase, .. } => format!("phase {phase}"),
                Event::PhaseEnded { phase } => format!("end {phase}"),
                Event::FaultApplied { disruption, .. } => format!("on {disruption}"),
                Event::FaultRemoved { disruption } => format!("off {disruption}"),
                Event::MeshChange { version, .. } => format!("change v{version}"),
                Event::LoadStarted { load, .. } => format!("load {load:?}"),
                Event::Xds { xds, version, .. } => format!("{xds:?} v{version}"),
                other => format!("{other:?}"),
            };
            (t_ms, text)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn every_operation_is_carried_out_and_recorded_at_its_time() {
    let timeline = Timeline::on_tokio_clock();
    let fake = Fake::new(&timeline);
    let schedule = Schedule::of(&plan("suites/outpost-partition.yaml"), 7);
    carry(&fake, &schedule, &CancellationToken::new())
        .await
        .unwrap();
    let expected: Vec<(u64, String)> = [
        (0, "load HotPath"),
        (0, "phase baseline"),
        (5_000, "end baseline"),
        (5_000, "phase partition"),
        (5_000, "on blackhole on xds"),
        (10_000, "change v2"),
        (17_000, "off blackhole on xds"),
        (17_000, "end partition"),
        (17_000, "phase heal"),
        (29_000, "end heal"),
    ]
    .iter()
    .map(|(t, s)| (*t, s.to_string()))
    .collect();
    assert_eq!(recorded(&timeline), expected);
    assert_eq!(
        fake.calls(),
        [
            (0, "load for 29000".to_string()),
            (5_000, "apply blackhole on xds".to_string()),
            (
                10_000,
                "change: route svc-router/split weights svc-v1=0 svc-v2=100".to_string()
            ),
            (17_000, "remove blackhole on xds".to_string()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_ack_that_lands_within_the_change_apis_round_trip_is_counted() {
    let timeline = Timeline::on_tokio_clock();
    let mut fake = Fake::new(&timeline);
    let schedule = Schedule::of(&plan("suites/propagation.yaml"), 7);
    // Every sidecar the changes affect ACKs each of them.
    fake.acks = schedule
        .operations
        .iter()
        .find_map(|t| match &t.op {
            Operation::MeshChange { affects, .. } => Some(affects.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(fake.acks.len(), 50);
    carry(&fake, &schedule, &CancellationToken::new())
        .await
        .unwrap();
    let entries = timeline.entries();
    // Each change is on the timeline when it was asked for, before the ACK it caused.
    let first_change = entries
        .iter()
        .find(|e| matches!(e.event, Event::MeshChange { .. }))
        .unwrap();
    let first_ack = entries
        .iter()
        .find(|e| matches!(e.event, Event::Xds { .. }))
        .unwrap();
    assert_eq!(first_change.t_ms, 5_000);
    assert_eq!(first_ack.t_ms, 5_005);
    let check = Check::Propagation {
        phase: Spanned::new(Span::new_blank(), "changes".to_string()),
        within: crate::source::Duration(Duration::from_secs(1)),
    };
    let ctx = crate::checks::Context::default();
    let verdict = &crate::checks::evaluate(&[check], &ctx, &entries)[0];
    assert!(verdict.passed(), "{verdict:#?}");
    assert_eq!(
        verdict.measurement("propagation_ms.max").unwrap().value,
        5.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_operation_stops_the_run_and_what_is_on_comes_off() {
    let timeline = Timeline::on_tokio_clock();
    let mut fake = Fake::new(&timeline);
    fake.refuse_changes = true;
    let schedule = Schedule::of(&plan("suites/container-faults.yaml"), 7);
    let stop = CancellationToken::new();
    let err = carry(&fake, &schedule, &stop).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err:#}");
    assert!(stop.is_cancelled(), "the load is told to stop");
    let calls: Vec<String> = fake.calls().into_iter().map(|(_, c)| c).collect();
    let refused = calls.iter().position(|c| c.starts_with("change")).unwrap();
    assert_eq!(
        calls[refused + 1..],
        ["undo disconnect fault-proxy".to_string()],
        "{calls:#?}"
    );
    assert_eq!(
        recorded(&timeline).last().unwrap().1,
        "off disconnect fault-proxy"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_run_takes_off_its_faults_and_leaves_a_killed_control_plane_to_teardown() {
    let timeline = Timeline::on_tokio_clock();
    let fake = Fake::new(&timeline);
    let stop = CancellationToken::new();
    // The control plane goes down at 4 s; stop at 6 s, while it is down.
    let schedule = Schedule::of(&plan("suites/control-plane-restart.yaml"), 7);
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            stop.cancel();
        })
    };
    carry(&fake, &schedule, &stop).await.unwrap();
    stopper.await.unwrap();
    let calls: Vec<String> = fake.calls().into_iter().map(|(_, c)| c).collect();
    assert_eq!(calls.last().unwrap(), "kill control plane", "{calls:#?}");
    assert!(
        !recorded(&timeline)
            .iter()
            .any(|(_, e)| e.starts_with("phase recovered"))
    );

    // A flapping link stopped during an outage is brought up again.
    let timeline = Timeline::on_tokio_clock();
    let fake = Fake::new(&timeline);
    let stop = CancellationToken::new();
    let schedule = Schedule::of(&plan("suites/negative/link-flapping-never-up.yaml"), 7);
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            stop.cancel();
        })
    };
    carry(&fake, &schedule, &stop).await.unwrap();
    stopper.await.unwrap();
    let calls: Vec<String> = fake.calls().into_iter().map(|(_, c)| c).collect();
    assert_eq!(calls.last().unwrap(), "remove down on xds", "{calls:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_schedule_carried_out_to_its_end_leaves_the_control_plane_as_its_last_phase_says() {
    let timeline = Timeline::on_tokio_clock();
    let fake = Fake::new(&timeline);
    let schedule = Schedule::of(&plan("suites/negative/control-plane-stays-down.yaml"), 7);
    carry(&fake, &schedule, &CancellationToken::new())
        .await
        .unwrap();
    let calls: Vec<String> = fake.calls().into_iter().map(|(_, c)| c).collect();
    assert!(
        calls.contains(&"kill control plane".to_string()),
        "{calls:#?}"
    );
    assert!(
        !calls.contains(&"restart control plane".to_string()),
        "{calls:#?}"
    );
}
