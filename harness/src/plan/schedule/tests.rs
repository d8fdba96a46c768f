//! Flapping outages and the order of changes, drawn with no process at all (the bundled
//! suites' schedules are checked in `harness/tests/schedule.rs`).

use super::*;
use crate::mesh::Mesh;
use crate::plan::{Images, LinkKind, LoadPlan, XdsSettings};
use std::path::Path;

#[test]
fn outages_never_start_after_their_phase() {
    // A cycle longer than the phase: the one outage is cut at the phase's end.
    let cut = outages(
        Link::Xds,
        (Duration::from_secs(10), Duration::from_secs(1), false),
        0,
        Duration::ZERO,
        Duration::from_secs(5),
    );
    assert_eq!(cut, [(Duration::ZERO, Duration::from_secs(1))]);
    for seed in 0..50 {
        for (down, up) in outages(
            Link::Xds,
            (Duration::from_secs(10), Duration::from_secs(1), true),
            seed,
            Duration::ZERO,
            Duration::from_secs(5),
        ) {
            assert!(down < Duration::from_secs(5) && up <= Duration::from_secs(5));
        }
    }
}

/// A plan with one phase of `changes` and nothing else.
fn with_changes(changes: Vec<(Duration, Change)>) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meshes/outpost-basic.yaml");
    let mesh = Mesh::load(&path).unwrap();
    Plan {
        suite_path: path.clone(),
        suite_text: String::new(),
        name: "changes".into(),
        mesh_path: path,
        mesh,
        sites: Default::default(),
        link: LinkKind::Proxy,
        link_span: None,
        xds: XdsSettings::default(),
        xds_per_node: Default::default(),
        xds_forced: false,
        load: LoadPlan {
            through: "client".into(),
            service: "svc".into(),
            rate: 1,
            timeout: Duration::from_secs(1),
            generator: crate::plan::Generator::HotPath,
            journeys: None,
        },
        phases: vec![PlannedPhase {
            name: "only".into(),
            start: Duration::ZERO,
            duration: Duration::from_secs(10),
            faults: Vec::new(),
            changes,
            control_plane_down: false,
            overhead: None,
            containers: Vec::new(),
            draws: Default::default(),
        }],
        checks: Vec::new(),
        observe: Default::default(),
        expect_failing: Vec::new(),
        expect_stopped: false,
        images: Images::default(),
        soak: None,
    }
}

#[test]
fn changes_keep_their_written_order_each_after_the_one_before() {
    let add = |name: &str| Change::AddEndpoints {
        virtual_node: name.into(),
    };
    let plan = with_changes(vec![
        (Duration::from_secs(5), add("first")),
        (Duration::from_secs(2), add("second")),
        (Duration::from_secs(7), add("third")),
    ]);
    let changes: Vec<(u64, String)> = Schedule::of(&plan, 1)
        .operations
        .iter()
        .filter_map(|t| match &t.op {
            Operation::MeshChange { change, .. } => {
                Some((t.at.as_millis() as u64, change.describe()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            (5_000, "register the endpoints of first".to_string()),
            (5_000, "register the endpoints of second".to_string()),
            (7_000, "register the endpoints of third".to_string()),
        ]
    );
}
