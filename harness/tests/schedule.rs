//! The schedules of the bundled suites, computed with no process at all: the same plan
//! and seed give the same operations, in the order and at the times the suite says.

mod common;

use tether::plan::{Action, Disruption, Operation, Part, Plan, Schedule, Timed};

fn plan(suite: &str) -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(suite);
    tether::suite::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn ms(t: &Timed) -> u64 {
    t.at.as_millis() as u64
}

/// (time in ms, operation as text) of every operation.
fn lines(schedule: &Schedule) -> Vec<(u64, String)> {
    schedule
        .operations
        .iter()
        .map(|t| (ms(t), t.op.to_string()))
        .collect()
}

fn a_partition_is_put_on_and_off_at_its_phase_boundaries() {
    let schedule = Schedule::of(&plan("suites/outpost-partition.yaml"), 7);
    let expected = [
        (0, "start the load for 29s"),
        (0, "phase baseline starts (5s)"),
        (5_000, "phase baseline ends"),
        (5_000, "phase partition starts (12s)"),
        (5_000, "on:  blackhole on xds"),
        (
            10_000,
            "mesh change: route svc-router/split weights svc-v1=0 svc-v2=100",
        ),
        (17_000, "off: blackhole on xds"),
        (17_000, "phase partition ends"),
        (17_000, "phase heal starts (12s)"),
        (29_000, "phase heal ends"),
    ];
    let expected: Vec<(u64, String)> = expected.iter().map(|(t, s)| (*t, s.to_string())).collect();
    assert_eq!(lines(&schedule), expected);
}

fn the_same_seed_draws_the_same_flapping_and_another_seed_another() {
    let plan = plan("suites/link-flapping.yaml");
    let (a, b, other) = (
        Schedule::of(&plan, 7),
        Schedule::of(&plan, 7),
        Schedule::of(&plan, 8),
    );
    assert_eq!(a, b);
    assert_eq!(a.render(), b.render());
    assert_ne!(a.operations, other.operations);
    // Every outage of the 16 s phase (every 4 s, down 1.5 s) lies inside its cycle and
    // inside the phase, and comes off before the next one goes on.
    let outages: Vec<(u64, u64)> = a
        .operations
        .chunks(1)
        .filter_map(|t| match &t[0].op {
            Operation::On {
                disruption: Disruption::Link { flapping: true, .. },
            } => Some(ms(&t[0])),
            _ => None,
        })
        .zip(a.operations.iter().filter_map(|t| match &t.op {
            Operation::Off {
                disruption: Disruption::Link { flapping: true, .. },
            } => Some(ms(t)),
            _ => None,
        }))
        .collect();
    assert_eq!(outages.len(), 4, "{outages:?}");
    let phase = (3_000u64, 19_000u64);
    for (i, (down, up)) in outages.iter().enumerate() {
        let cycle = phase.0 + 4_000 * i as u64;
        assert!((cycle..=cycle + 2_500).contains(down), "{outages:?}");
        assert_eq!(*up, (down + 1_500).min(phase.1), "{outages:?}");
    }
    // Operations never go back in time.
    assert!(a.operations.windows(2).all(|w| w[0].at <= w[1].at));
}

fn the_control_plane_goes_down_with_its_phase_and_comes_back_with_the_next() {
    let schedule = Schedule::of(&plan("suites/control-plane-restart.yaml"), 1);
    let cp: Vec<(u64, &Operation)> = schedule
        .operations
        .iter()
        .filter(|t| {
            matches!(
                &t.op,
                Operation::On {
                    disruption: Disruption::ControlPlaneDown
                } | Operation::Off {
                    disruption: Disruption::ControlPlaneDown
                }
            )
        })
        .map(|t| (ms(t), &t.op))
        .collect();
    assert_eq!(cp.len(), 2, "{cp:?}");
    assert_eq!((cp[0].0, cp[1].0), (4_000, 12_000));
    assert!(matches!(cp[0].1, Operation::On { .. }));
    // A negative control whose last phase keeps it down never brings it back.
    let down = Schedule::of(&plan("suites/negative/control-plane-stays-down.yaml"), 1);
    let offs = down
        .operations
        .iter()
        .filter(|t| {
            matches!(
                &t.op,
                Operation::Off {
                    disruption: Disruption::ControlPlaneDown
                }
            )
        })
        .count();
    assert_eq!(offs, 0);
}

fn restarts_are_a_kill_and_a_start_at_their_time_between_held_faults() {
    let schedule = Schedule::of(&plan("suites/container-faults.yaml"), 1);
    let partition: Vec<(u64, String)> = lines(&schedule)
        .into_iter()
        .filter(|(t, _)| (4_000..=16_000).contains(t))
        .collect();
    let expected = [
        (4_000, "phase baseline ends"),
        (4_000, "phase partition starts (12s)"),
        (4_000, "on:  disconnect fault-proxy"),
        (7_000, "on:  restart sidecar/svc-v2"),
        (7_000, "off: restart sidecar/svc-v2"),
        (
            9_000,
            "mesh change: route svc-router/split weights svc-v1=0 svc-v2=100",
        ),
        (16_000, "off: disconnect fault-proxy"),
        (16_000, "phase partition ends"),
        (16_000, "phase heal starts (12s)"),
    ];
    let expected: Vec<(u64, String)> = expected.iter().map(|(t, s)| (*t, s.to_string())).collect();
    assert_eq!(partition, expected);
    let restart = Disruption::Container {
        part: Part::Sidecar("svc-v2".into()),
        action: Action::Restart,
    };
    assert_eq!(restart.restarted_sidecar(), Some("svc-v2"));
}

fn an_overhead_measurement_takes_each_half_of_its_phase_less_a_margin() {
    let schedule = Schedule::of(&plan("suites/proxy-overhead.yaml"), 1);
    let measure = schedule
        .operations
        .iter()
        .find_map(|t| match &t.op {
            Operation::MeasureOverhead {
                node,
                connections,
                each,
            } => Some((ms(t), node.as_str(), *connections, each.as_millis())),
            _ => None,
        })
        .expect("a measurement");
    assert_eq!(measure, (2_000, "svc-v1", 8, 4_750));
}

fn a_schedule_serializes_as_timed_operations() {
    let schedule = Schedule::of(&plan("suites/outpost-partition.yaml"), 7);
    let json = serde_json::to_value(&schedule).unwrap();
    assert_eq!(json["seed"], 7);
    assert_eq!(
        json["operations"][4],
        serde_json::json!({"at_ms": 5000, "op": "on", "link": "xds", "fault": "blackhole"})
    );
}

fn a_soak_draws_each_cycle_from_the_seed_and_the_same_seed_gives_the_same_schedule() {
    let soak = plan("suites/soak-quick.yaml");
    let (a, b, other) = (
        Schedule::of(&soak, 7),
        Schedule::of(&soak, 7),
        Schedule::of(&soak, 8),
    );
    assert_eq!(a, b);
    assert_ne!(a, other, "another seed draws other cycles");
    assert_eq!(a.cycles(), 3);
    let draws: Vec<&Vec<String>> = a
        .operations
        .iter()
        .filter_map(|t| match &t.op {
            Operation::CycleStart { draws, .. } => Some(draws),
            _ => None,
        })
        .collect();
    assert_eq!(draws.len(), 3);
    assert_ne!(draws[0], draws[1], "each cycle draws its own");
    // Every drawn partition is one the suite lists, within its range.
    for t in &a.operations {
        if let Operation::PhaseStart { phase, duration } = &t.op
            && phase == "partition"
        {
            assert!(
                (3_000..=5_000).contains(&duration.as_millis()),
                "{duration:?}"
            );
        }
    }
    // `--for` fits whole cycles; `--cycles` counts them.
    let mut longer = soak.clone();
    longer.set_soak_length(tether::plan::SoakLength::For(
        std::time::Duration::from_secs(60),
    ));
    let fitted = Schedule::of(&longer, 7);
    assert!(fitted.duration() <= std::time::Duration::from_secs(60));
    assert!(fitted.cycles() >= 3, "{}", fitted.cycles());
    let mut one = soak;
    one.set_soak_length(tether::plan::SoakLength::Cycles(1));
    assert_eq!(Schedule::of(&one, 7).cycles(), 1);
}

fn main() -> std::process::ExitCode {
    common::harness::main(vec![
        case!(a_partition_is_put_on_and_off_at_its_phase_boundaries),
        case!(the_same_seed_draws_the_same_flapping_and_another_seed_another),
        case!(the_control_plane_goes_down_with_its_phase_and_comes_back_with_the_next),
        case!(restarts_are_a_kill_and_a_start_at_their_time_between_held_faults),
        case!(an_overhead_measurement_takes_each_half_of_its_phase_less_a_margin),
        case!(a_schedule_serializes_as_timed_operations),
        case!(a_soak_draws_each_cycle_from_the_seed_and_the_same_seed_gives_the_same_schedule),
    ])
}
