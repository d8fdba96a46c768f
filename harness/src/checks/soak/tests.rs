//! The soak judge on hand-built cycles: per-cycle verdicts, counts, distributions, and a
//! cycle that breaks a check failing the soak.

use super::*;
use crate::timeline::cycles::Cycles;
use crate::timeline::{Event, LoadSecond};
use marked_yaml::{Span, Spanned};

fn flows() -> Check {
    Check::OutpostTrafficFlows {
        phase: Spanned::new(Span::new_blank(), "partition".into()),
        min_success_ratio: Spanned::new(Span::new_blank(), 0.9),
    }
}

fn at(t_ms: u64, event: Event) -> Entry {
    Entry { t_ms, event }
}

/// Cycle `k` (10 s from `start`): its partition phase with 5 seconds of load, `ok` of
/// every 10 requests answered.
fn cycle(k: u32, start: u64, ok: u64) -> Vec<Entry> {
    let mut entries = vec![
        at(
            start,
            Event::CycleStarted {
                cycle: k,
                draws: vec![format!("partition: {k}")],
            },
        ),
        at(
            start,
            Event::PhaseStarted {
                phase: "partition".into(),
                duration_ms: 10_000,
            },
        ),
    ];
    for s in 0..5 {
        entries.push(at(
            start + s * 1000,
            Event::LoadSecond(LoadSecond {
                sent: 10,
                ok,
                ..LoadSecond::default()
            }),
        ));
    }
    entries.push(at(start + 10_000, Event::CycleEnded { cycle: k }));
    entries
}

/// Judge cycles as a run hands them out.
fn judged(oks: &[u64]) -> SoakJudge {
    let mut judge = SoakJudge::new(&[flows()], &Context::default(), oks.len() as u32);
    let mut cut = Cycles::new(0);
    let entries = oks
        .iter()
        .enumerate()
        .flat_map(|(i, ok)| cycle(i as u32 + 1, i as u64 * 10_000, *ok));
    for e in entries {
        judge.observe(&e);
        for c in cut.push(e) {
            judge.cycle(&c);
        }
    }
    for c in cut.finish() {
        judge.cycle(&c);
    }
    judge
}

#[test]
fn a_soak_passes_when_every_cycle_passes_with_its_figures_over_cycles() {
    let judge = judged(&[10, 10, 10]);
    let verdicts = judge.verdicts();
    assert_eq!(
        verdicts[0].outcome,
        Outcome::Passed,
        "{}",
        verdicts[0].detail
    );
    assert!(verdicts[0].detail.contains("passed in 3 of 3 cycles"));
    let summary = judge.summary();
    assert_eq!((summary.cycles_planned, summary.cycles_judged), (3, 3));
    assert_eq!(summary.checks[0].passed, 3);
    let ratio = summary
        .figures
        .iter()
        .find(|f| f.name == "success_ratio")
        .unwrap();
    assert_eq!((ratio.cycles, ratio.min, ratio.max), (3, 1.0, 1.0));
    assert_eq!(summary.cycles[1].draws, ["partition: 2"]);
    assert_eq!(summary.minutes[0].requests, 150);
}

#[test]
fn one_cycle_that_breaks_the_property_fails_the_soak_and_is_named() {
    let judge = judged(&[10, 2, 10, 5]);
    let verdicts = judge.verdicts();
    assert_eq!(verdicts[0].outcome, Outcome::Failed);
    assert!(
        verdicts[0].detail.contains("failed in cycle 2, 4"),
        "{}",
        verdicts[0].detail
    );
    assert_eq!(judge.failed_cycles(), 2);
    let summary = judge.summary();
    assert_eq!(summary.checks[0].failed_cycles, [2, 4]);
    assert!(!summary.cycles[1].passed);
    assert_eq!(
        summary.cycles[1].not_passed[0].name,
        "outpost_traffic_flows"
    );
    let ratio = summary
        .figures
        .iter()
        .find(|f| f.name == "success_ratio")
        .unwrap();
    assert_eq!((ratio.min, ratio.p50, ratio.max), (0.2, 0.5, 1.0));
    // The verdict's figure is the worst cycle's.
    let m = verdicts[0].measurement("success_ratio").unwrap();
    assert_eq!(m.value, 0.2, "the smallest share over cycles");
}

#[test]
fn no_finished_cycle_cannot_pass() {
    let judge = SoakJudge::new(&[flows()], &Context::default(), 3);
    assert_eq!(judge.verdicts()[0].outcome, Outcome::Unknown);
}

#[test]
fn a_check_used_in_two_phases_keeps_its_figures_apart() {
    let other = Check::OutpostTrafficFlows {
        phase: Spanned::new(Span::new_blank(), "heal".into()),
        min_success_ratio: Spanned::new(Span::new_blank(), 0.9),
    };
    let mut judge = SoakJudge::new(&[flows(), other], &Context::default(), 1);
    let mut cut = Cycles::new(0);
    for e in cycle(1, 0, 10) {
        for c in cut.push(e) {
            judge.cycle(&c);
        }
    }
    for c in cut.finish() {
        judge.cycle(&c);
    }
    let names: Vec<String> = judge
        .summary()
        .figures
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert!(
        names.contains(&"success_ratio@partition".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"success_ratio".to_string()), "{names:?}");
    // The phase that never ran cannot be judged: unknown, not passed.
    assert_eq!(judge.verdicts()[1].outcome, Outcome::Unknown);
}
