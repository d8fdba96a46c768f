//! Each check against a timeline where its property holds and one where it is broken
//! (the negative control), built by hand.

use super::super::{Context, Outcome, evaluate};
use crate::plan::observe::Scope;
use crate::plan::{Action, Check, Disruption, Part};
use crate::source::Duration;
use crate::timeline::{Entry, Event, LoadSecond, XdsKind};
use marked_yaml::{Span, Spanned};

fn s(text: &str) -> Spanned<String> {
    Spanned::new(Span::new_blank(), text.to_string())
}

fn secs(n: u64) -> Duration {
    Duration(std::time::Duration::from_secs(n))
}

fn ctx() -> Context {
    Context {
        outpost_nodes: vec!["client".into()],
        load_through: "client".into(),
        warm_up_ms: 0,
        judge_from_envoys: false,
    }
}

/// A partition from 10 s to 20 s, a change to version 2 (to `v2`) at 15 s, heal at 20 s.
struct Run {
    entries: Vec<Entry>,
}

impl Run {
    fn new() -> Self {
        let mut run = Run {
            entries: Vec::new(),
        };
        run.at(
            0,
            Event::PhaseStarted {
                phase: "baseline".into(),
                duration_ms: 10_000,
            },
        );
        run.at(
            10_000,
            Event::PhaseStarted {
                phase: "partition".into(),
                duration_ms: 10_000,
            },
        );
        run.at(
            20_000,
            Event::PhaseStarted {
                phase: "heal".into(),
                duration_ms: 10_000,
            },
        );
        run.at(
            15_000,
            Event::MeshChange {
                description: "v2".into(),
                version: "2".into(),
                target: Some("v2".into()),
                affects: vec!["client".into()],
            },
        );
        for ty in ["cds", "rds"] {
            run.xds(1_000, ty, XdsKind::Push, "1");
            run.xds(1_010, ty, XdsKind::Ack, "1");
        }
        run
    }

    fn at(&mut self, t_ms: u64, event: Event) -> &mut Self {
        self.entries.push(Entry { t_ms, event });
        self.entries.sort_by_key(|e| e.t_ms);
        self
    }

    fn xds(&mut self, t: u64, ty: &str, xds: XdsKind, version: &str) -> &mut Self {
        let node = "mesh/m/virtualNode/client".to_string();
        self.at(
            t,
            Event::Xds {
                node,
                type_name: ty.into(),
                xds,
                version: version.into(),
                error: None,
            },
        )
    }

    /// One load second with `ok` of 50 requests answered, all by `by`.
    fn load(&mut self, t: u64, ok: u64, by: &str) -> &mut Self {
        let mut second = LoadSecond {
            sent: 50,
            ok,
            ..Default::default()
        };
        second.served_by.insert(by.into(), ok);
        if ok < 50 {
            second.errors.insert("timeout".into(), 50 - ok);
        }
        self.at(t, Event::LoadSecond(second))
    }

    fn sample(&mut self, t: u64, connected: bool, version: &str) -> &mut Self {
        self.sample_with(t, connected, version, None)
    }

    fn sample_with(
        &mut self,
        t: u64,
        connected: bool,
        version: &str,
        timeouts: Option<u64>,
    ) -> &mut Self {
        let (node, route_version, cluster_version) =
            ("client".into(), Some(version.into()), Some(version.into()));
        self.at(
            t,
            Event::EnvoySample {
                node,
                connected: Some(connected),
                route_version,
                cluster_version,
                listener_version: None,
                xds_keepalive_timeouts: timeouts,
                ready: Some(true),
                memory_allocated: None,
                memory_heap: None,
                updates_rejected: None,
            },
        )
    }

    /// The healthy story: traffic flows on v1 through the partition, the change lands at 22 s.
    fn healthy() -> Self {
        let mut run = Run::new();
        for sec in 0..30 {
            let t = sec * 1000;
            let switched = t >= 22_000;
            run.load(t, 50, if switched { "v2" } else { "v1" });
            run.sample(
                t,
                !(12_000..21_000).contains(&t),
                if switched { "2" } else { "1" },
            );
        }
        for ty in ["cds", "rds"] {
            run.xds(21_500, ty, XdsKind::Push, "2");
            run.xds(21_600, ty, XdsKind::Ack, "2");
        }
        run
    }

    fn judge(&self, check: Check) -> super::super::Verdict {
        judged_on(check, &ctx(), &self.entries)
    }

    /// Judged as for a foreign control plane: without its xDS log.
    fn judge_without_log(&self, check: Check) -> super::super::Verdict {
        let ctx = Context {
            judge_from_envoys: true,
            ..ctx()
        };
        let entries: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| !matches!(e.event, Event::Xds { .. }))
            .cloned()
            .collect();
        judged_on(check, &ctx, &entries)
    }
}

/// `check`'s verdict on `entries`, once it has shown that the sidecars it says it reads
/// ([`Check::reads`], which decides whom a run samples) are all it needs: judged again
/// with every other sidecar's samples left out, it gives the same verdict. Every test
/// here thereby checks the declaration too: one too narrow changes a verdict.
fn judged_on(check: Check, ctx: &Context, entries: &[Entry]) -> super::super::Verdict {
    let verdict = evaluate(std::slice::from_ref(&check), ctx, entries).remove(0);
    let mut every: Vec<String> = ctx.outpost_nodes.clone();
    let mut restarted = Vec::new();
    for e in entries {
        match &e.event {
            Event::EnvoySample { node, .. } => every.push(node.clone()),
            Event::FaultApplied {
                disruption:
                    Disruption::Container {
                        part: Part::Sidecar(node),
                        action: Action::Restart,
                    },
                ..
            } => restarted.push(node.clone()),
            _ => {}
        }
    }
    let scope = Scope {
        outpost: &ctx.outpost_nodes,
        restarted: &restarted,
        every: &every,
    };
    let read = check.reads(!ctx.judge_from_envoys).nodes(scope);
    let narrowed: Vec<Entry> = entries
        .iter()
        .filter(|e| match &e.event {
            Event::EnvoySample { node, .. } => read.contains(node),
            _ => true,
        })
        .cloned()
        .collect();
    let again = evaluate(&[check], ctx, &narrowed).remove(0);
    assert_eq!(
        verdict, again,
        "judged on the samples of {read:?} alone, the check gives another verdict"
    );
    verdict
}

fn traffic() -> Check {
    Check::OutpostTrafficFlows {
        phase: s("partition"),
        min_success_ratio: Spanned::new(Span::new_blank(), 0.99),
    }
}
fn frozen() -> Check {
    Check::ConfigFrozen {
        phase: s("partition"),
    }
}
fn applied() -> Check {
    Check::ChangeAppliedAfterHeal {
        phase: s("heal"),
        within: secs(5),
        min_share: Some(Spanned::new(Span::new_blank(), 0.95)),
    }
}
fn reconverged() -> Check {
    Check::Reconvergence {
        phase: s("heal"),
        within: secs(5),
    }
}

#[test]
fn every_check_passes_on_the_healthy_story() {
    let run = Run::healthy();
    for check in [traffic(), frozen(), applied(), reconverged()] {
        let v = run.judge(check);
        assert_eq!(v.outcome, Outcome::Passed, "{}: {}", v.name, v.detail);
    }
    let r = run.judge(reconverged());
    assert_eq!(r.measurements[0].name, "reconvergence_ms.client");
    assert_eq!(r.measurements[0].value, 1_600.0);
}

#[test]
fn traffic_check_fails_when_partition_traffic_fails() {
    let mut run = Run::healthy();
    run.load(13_000, 0, "v1");
    let v = run.judge(traffic());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert_eq!(v.failed_at_ms, Some(13_000));
    assert!(v.detail.contains("timeout 50"), "{}", v.detail);
}

#[test]
fn traffic_check_is_unknown_without_load() {
    let run = Run::new();
    assert_eq!(run.judge(traffic()).outcome, Outcome::Unknown);
}

#[test]
fn frozen_check_fails_when_config_changes_during_partition() {
    let mut run = Run::healthy();
    run.sample(16_500, true, "2");
    let v = run.judge(frozen());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert_eq!(v.failed_at_ms, Some(16_500));
}

#[test]
fn applied_check_fails_when_change_lands_during_partition() {
    let mut run = Run::healthy();
    run.sample(16_500, true, "2");
    assert_eq!(run.judge(applied()).outcome, Outcome::Failed);

    let mut run = Run::healthy();
    run.load(17_000, 50, "v2");
    let v = run.judge(applied());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert!(v.detail.contains("before the heal"), "{}", v.detail);
}

#[test]
fn applied_check_fails_when_change_lands_late_or_never() {
    // Traffic stays on v1 after the heal.
    let mut run = Run::new();
    for sec in 0..30 {
        run.load(sec * 1000, 50, "v1");
        run.sample(sec * 1000, true, if sec >= 22 { "2" } else { "1" });
    }
    let v = run.judge(applied());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert!(v.detail.contains("never served"), "{}", v.detail);

    // Config lands 8 s after the heal, past the 5 s bound.
    let mut run = Run::new();
    for sec in 0..30 {
        let late = sec >= 28;
        run.load(sec * 1000, 50, if late { "v2" } else { "v1" });
        run.sample(sec * 1000, true, if late { "2" } else { "1" });
    }
    assert_eq!(run.judge(applied()).outcome, Outcome::Failed);
}

#[test]
fn reconvergence_fails_when_a_proxy_never_acks_or_acks_late() {
    let mut run = Run::healthy();
    run.entries.retain(|e| !matches!(&e.event, Event::Xds { xds: XdsKind::Ack, version, type_name, .. } if version == "2" && type_name == "rds"));
    let v = run.judge(reconverged());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert!(v.detail.contains("never ACKed"), "{}", v.detail);

    let mut run = Run::healthy();
    run.entries
        .retain(|e| !matches!(&e.event, Event::Xds { version, .. } if version == "2"));
    run.xds(27_000, "cds", XdsKind::Ack, "2")
        .xds(27_000, "rds", XdsKind::Ack, "2");
    let v = run.judge(reconverged());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert_eq!(v.measurements[0].value, 7_000.0);

    // An ACK after the heal phase is over (in a soak: in the next cycle) does not count.
    let mut run = Run::healthy();
    run.entries
        .retain(|e| !matches!(&e.event, Event::Xds { version, .. } if version == "2"));
    run.xds(31_000, "cds", XdsKind::Ack, "2")
        .xds(31_000, "rds", XdsKind::Ack, "2");
    let v = run.judge(Check::Reconvergence {
        phase: s("heal"),
        within: secs(20),
    });
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert!(v.detail.contains("never ACKed"), "{}", v.detail);
}

#[test]
fn a_missing_phase_gives_unknown_not_a_pass() {
    let run = Run::healthy();
    let v = run.judge(Check::ConfigFrozen { phase: s("nope") });
    assert_eq!(v.outcome, Outcome::Unknown);
}

#[test]
fn detection_is_seen_in_keepalive_timeouts_even_when_connected_state_flaps_back() {
    // Through a TCP-terminating proxy Envoy reports itself connected again at once; the
    // keepalive timeout counter still shows when it noticed the silent link.
    let mut run = Run::new();
    for sec in 0..30 {
        let t = sec * 1000;
        run.load(t, 50, "v1");
        let timeouts = if t >= 12_500 { 1 } else { 0 };
        run.sample_with(t, true, "1", Some(timeouts));
        run.sample_with(
            t + 500,
            true,
            "1",
            Some(if t + 500 >= 12_500 { 1 } else { 0 }),
        );
    }
    let v = run.judge(frozen());
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    let noticed = v
        .measurements
        .iter()
        .find(|m| m.name == "disconnect_noticed_ms.client");
    assert_eq!(
        noticed.map(|m| m.value),
        Some(2_500.0),
        "{:?}",
        v.measurements
    );
}

#[test]
fn reconvergence_needs_an_ack_after_the_heal_from_a_sidecar_that_lost_the_link() {
    // No change during the partition; the sidecar lost the control plane and never came back.
    let mut run = Run::new();
    run.entries
        .retain(|e| !matches!(&e.event, Event::MeshChange { .. }));
    for sec in 0..30 {
        let t = sec * 1000;
        run.sample(t, t < 12_000, "1");
    }
    let v = run.judge(reconverged());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    // Once it ACKs after the heal, it has reconverged.
    run.xds(23_000, "cds", XdsKind::Ack, "1")
        .xds(23_100, "rds", XdsKind::Ack, "1");
    let v = run.judge(reconverged());
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    assert_eq!(v.measurements[0].value, 3_100.0);
}

#[test]
fn a_newer_version_than_the_change_counts_as_applied() {
    let mut run = Run::healthy();
    for e in run.entries.iter_mut() {
        match &mut e.event {
            Event::Xds { version, .. }
            | Event::EnvoySample {
                route_version: Some(version),
                ..
            } if version == "2" => *version = "3".into(),
            _ => {}
        }
    }
    for check in [applied(), reconverged()] {
        let v = run.judge(check);
        assert_eq!(v.outcome, Outcome::Passed, "{}: {}", v.name, v.detail);
    }
}

#[test]
fn frozen_check_is_unknown_when_no_config_was_seen_during_the_phase() {
    let mut run = Run::new();
    run.sample(5_000, true, "1");
    run.at(
        12_000,
        Event::EnvoySample {
            node: "client".into(),
            connected: None,
            route_version: None,
            cluster_version: None,
            listener_version: None,
            xds_keepalive_timeouts: None,
            ready: None,
            memory_allocated: None,
            memory_heap: None,
            updates_rejected: None,
        },
    );
    assert_eq!(run.judge(frozen()).outcome, Outcome::Unknown);
}

#[test]
fn propagation_reports_the_delay_to_every_affected_sidecar_and_fails_on_a_straggler() {
    let propagation = || Check::Propagation {
        phase: s("partition"),
        within: secs(1),
    };
    let mut run = Run::new();
    // The change at 15 s is pushed at 15.05 s and reaches the client at 15.2 s.
    run.xds(15_050, "rds", XdsKind::Push, "2")
        .xds(15_200, "rds", XdsKind::Ack, "2");
    let v = run.judge(propagation());
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    assert_eq!(v.measurements[2].name, "propagation_ms.max");
    assert_eq!(v.measurements[2].value, 200.0);
    let fan_out = v.measurement("propagation_fan_out_ms.max").unwrap();
    assert_eq!(fan_out.value, 50.0);

    // Too late.
    let mut run = Run::new();
    run.xds(17_000, "rds", XdsKind::Ack, "2");
    assert_eq!(run.judge(propagation()).outcome, Outcome::Failed);

    // Never.
    let run = Run::new();
    let v = run.judge(propagation());
    assert_eq!(v.outcome, Outcome::Failed);
    assert!(v.detail.contains("never ACKed"), "{}", v.detail);
}

#[test]
fn quantiles_use_the_nearest_rank() {
    let d = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    assert_eq!(super::quantile(&d, 0.5), 50);
    assert_eq!(super::quantile(&d, 0.99), 100);
    assert_eq!(super::quantile(&[7], 0.99), 7);
}

#[test]
fn xds_stays_connected_fails_on_a_keepalive_timeout_or_a_disconnect() {
    let check = || Check::XdsStaysConnected {
        phase: s("partition"),
    };
    let steady = |run: &mut Run| {
        for sec in 0..30 {
            run.sample_with(sec * 1000, true, "1", Some(0));
        }
    };
    let mut run = Run::new();
    steady(&mut run);
    assert_eq!(run.judge(check()).outcome, Outcome::Passed);

    let mut run = Run::new();
    steady(&mut run);
    run.sample_with(14_500, true, "1", Some(1));
    let v = run.judge(check());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert_eq!(v.failed_at_ms, Some(14_500));

    let mut run = Run::new();
    steady(&mut run);
    run.sample_with(12_500, false, "1", Some(0));
    assert_eq!(run.judge(check()).outcome, Outcome::Failed);
}

#[test]
fn partition_noticed_and_unnoticed_judge_each_listed_sidecar() {
    let noticed = |within| Check::PartitionNoticed {
        phase: s("partition"),
        within: secs(within),
        nodes: vec![],
    };
    let unnoticed = || Check::PartitionUnnoticed {
        phase: s("partition"),
        nodes: vec![s("client")],
    };
    // Noticed 2.5 s into the partition (a keepalive timeout).
    let mut run = Run::new();
    for sec in 0..30 {
        let t = sec * 1000;
        run.sample_with(t, true, "1", Some(if t >= 12_500 { 1 } else { 0 }));
        run.sample_with(
            t + 500,
            true,
            "1",
            Some(if t + 500 >= 12_500 { 1 } else { 0 }),
        );
    }
    let v = run.judge(noticed(4));
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    assert_eq!(v.measurements[0].value, 2_500.0);
    assert_eq!(
        run.judge(noticed(2)).outcome,
        Outcome::Failed,
        "too late for a 2 s bound"
    );
    assert_eq!(
        run.judge(unnoticed()).outcome,
        Outcome::Failed,
        "it did notice"
    );

    // Never noticed: the keepalive count stays flat and it stays connected.
    let mut run = Run::new();
    for sec in 0..30 {
        run.sample_with(sec * 1000, true, "1", Some(0));
    }
    let v = run.judge(noticed(4));
    assert_eq!(v.outcome, Outcome::Failed);
    assert!(v.detail.contains("never noticed"), "{}", v.detail);
    assert_eq!(run.judge(unnoticed()).outcome, Outcome::Passed);
}

/// A load run's figures: `rps` requests/s, p99 `p99_ms`, `failed` failures, valid or not.
fn load_run(rps: f64, p99_ms: u64, failed: u64, valid: bool) -> crate::timeline::LoadRun {
    let latency = crate::timeline::Percentiles {
        p50_us: 500,
        p90_us: 800,
        p99_us: p99_ms * 1000,
        p999_us: p99_ms * 1500,
        max_us: p99_ms * 2000,
        mean_us: 600.0,
    };
    crate::timeline::LoadRun {
        mode: "closed".into(),
        protocol: "http1".into(),
        connections: 8,
        streams: 1,
        rate: None,
        requests: 10_000,
        ok: 10_000 - failed,
        errors: if failed > 0 {
            [("status_5xx".to_string(), failed)].into()
        } else {
            Default::default()
        },
        unsent: 0,
        elapsed_s: 5.0,
        requests_per_second: rps,
        response: latency,
        service: latency,
        lag: latency,
        behind_ms: 0,
        cpu_s: 2.0,
        cpu_ms_per_1000: 200.0,
        cpu_share: if valid { 0.4 } else { 0.99 },
        valid,
        invalid_because: if valid {
            vec![]
        } else {
            vec!["the generator's CPU was saturated".into()]
        },
    }
}

#[test]
fn proxy_overhead_holds_the_sidecar_to_its_bounds_and_knows_when_the_generator_was_the_limit() {
    let check = || Check::ProxyOverhead {
        phase: s("partition"),
        min_throughput_ratio: Spanned::new(Span::new_blank(), 0.2),
        max_added_p99: Duration(std::time::Duration::from_millis(20)),
    };
    let judged = |direct, proxied| {
        let mut run = Run::new();
        run.at(
            19_000,
            Event::ProxyOverhead {
                node: "svc".into(),
                direct: Box::new(direct),
                proxied: Box::new(proxied),
            },
        );
        run.judge(check())
    };
    let ok = judged(
        load_run(20_000.0, 2, 0, true),
        load_run(8_000.0, 5, 0, true),
    );
    assert_eq!(ok.outcome, Outcome::Passed, "{ok:?}");
    // Negative controls: too slow, too much latency added, failures through the sidecar.
    for (proxied, why) in [
        (load_run(2_000.0, 5, 0, true), "ratio 0.10"),
        (load_run(8_000.0, 40, 0, true), "p99 38.00 ms"),
        (
            load_run(8_000.0, 5, 12, true),
            "12 of 10000 requests through it failed",
        ),
    ] {
        let v = judged(load_run(20_000.0, 2, 0, true), proxied);
        assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
        assert!(v.detail.contains(why), "{why}: {}", v.detail);
    }
    // The generator was the limit: neither passed nor failed.
    let v = judged(
        load_run(20_000.0, 2, 0, false),
        load_run(8_000.0, 5, 0, true),
    );
    assert_eq!(v.outcome, Outcome::Invalid, "{v:?}");
    assert!(v.detail.contains("saturated"), "{v:?}");
    // Nothing measured.
    assert_eq!(Run::new().judge(check()).outcome, Outcome::Unknown);
}

#[test]
fn journeys_succeed_counts_every_step_of_the_phase() {
    let check = || Check::JourneysSucceed {
        phase: s("partition"),
        min_success_ratio: Spanned::new(Span::new_blank(), 0.99),
    };
    let with_steps = |failing: u64| {
        let mut run = Run::new();
        for i in 0..100u64 {
            let step = if i % 2 == 0 { "front" } else { "front-to-back" };
            let ok = i >= failing * 2 || step == "front";
            run.at(
                10_000 + i * 90,
                Event::JourneyStep {
                    step: step.into(),
                    ok,
                    status: if ok { 200 } else { 502 },
                    latency_ms: 3,
                    served_by: Some("front".into()),
                    backend: ok.then(|| "back-v1".into()),
                },
            );
        }
        run.judge(check())
    };
    let v = with_steps(0);
    assert_eq!(v.outcome, Outcome::Passed, "{v:?}");
    // Negative control: a tenth of the calls to the back fail.
    let v = with_steps(5);
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");
    assert!(v.detail.contains("front-to-back 45/50"), "{v:?}");
    assert_eq!(v.failed_at_ms, Some(10_090));
    // No journeys in the phase: nothing to judge.
    assert_eq!(Run::new().judge(check()).outcome, Outcome::Unknown);
}

/// svc-v2's sidecar killed at 12 s and started at 12.3 s, during the partition; its
/// samples every 500 ms say not ready until `ready_at`, ready from then on.
fn restarted_sidecar(ready_at: Option<u64>) -> Run {
    let mut run = Run::new();
    let restart = Disruption::Container {
        part: Part::Sidecar("svc-v2".into()),
        action: Action::Restart,
    };
    run.at(
        12_000,
        Event::FaultApplied {
            draw: restart.draw(),
            disruption: restart.clone(),
            applied: Vec::new(),
        },
    );
    run.at(
        12_300,
        Event::FaultRemoved {
            disruption: restart,
        },
    );
    for t in (11_000..30_000).step_by(500) {
        let ready = t < 12_000 || ready_at.is_some_and(|r| t >= r);
        run.at(
            t,
            Event::EnvoySample {
                node: "svc-v2".into(),
                connected: Some(ready),
                route_version: ready.then(|| "1".into()),
                cluster_version: ready.then(|| "1".into()),
                listener_version: None,
                xds_keepalive_timeouts: None,
                ready: (!(12_000..12_500).contains(&t)).then_some(ready),
                memory_allocated: None,
                memory_heap: None,
                updates_rejected: None,
            },
        );
    }
    run
}

fn restart_waits() -> Check {
    Check::RestartWaitsForHeal {
        phase: s("partition"),
        within: secs(5),
    }
}

#[test]
fn a_restarted_sidecar_must_wait_for_the_heal_then_get_ready() {
    let v = restarted_sidecar(Some(21_500)).judge(restart_waits());
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    assert_eq!(
        v.measurement("ready_after_heal_ms.svc-v2").unwrap().value,
        1_500.0
    );
    assert_eq!(v.measurement("not_ready_ms.svc-v2").unwrap().value, 9_200.0);

    // Negative controls: ready during the partition (it gave up waiting for config),
    // never ready again, or ready too late.
    let early = restarted_sidecar(Some(14_000)).judge(restart_waits());
    assert_eq!(early.outcome, Outcome::Failed);
    assert!(
        early
            .detail
            .contains("svc-v2 was ready 1.7 s after its restart"),
        "{}",
        early.detail
    );
    assert_eq!(early.failed_at_ms, Some(14_000));
    let never = restarted_sidecar(None).judge(restart_waits());
    assert_eq!(never.outcome, Outcome::Failed, "{}", never.detail);
    let late = restarted_sidecar(Some(27_000)).judge(restart_waits());
    assert_eq!(late.outcome, Outcome::Failed, "{}", late.detail);
    assert!(
        late.detail.contains("7.0 s after the heal"),
        "{}",
        late.detail
    );

    // Nothing restarted, or nothing seen of it: no verdict either way.
    assert_eq!(Run::new().judge(restart_waits()).outcome, Outcome::Unknown);
    let mut blind = restarted_sidecar(Some(21_500));
    blind.entries.retain(|e| {
        !(matches!(e.event, Event::EnvoySample { .. }) && (12_300..20_000).contains(&e.t_ms))
    });
    assert_eq!(blind.judge(restart_waits()).outcome, Outcome::Unknown);
}

#[test]
fn without_an_xds_log_reconvergence_and_propagation_judge_from_the_envoys() {
    // The healthy story: connected again at 21 s, serving version 2 from 22 s.
    let run = Run::healthy();
    for check in [applied(), reconverged()] {
        let v = run.judge_without_log(check);
        assert_eq!(v.outcome, Outcome::Passed, "{}: {}", v.name, v.detail);
        assert!(
            v.name != "reconvergence" || v.detail.contains("no xDS log"),
            "{}",
            v.detail
        );
    }
    assert_eq!(
        run.judge_without_log(reconverged()).measurements[0].value,
        2_000.0
    );

    // Negative control: the sidecar reconnects but never serves the change.
    let mut stale = Run::new();
    for sec in 0..30 {
        stale.sample(sec * 1000, !(12_000..21_000).contains(&(sec * 1000)), "1");
    }
    let v = stale.judge_without_log(reconverged());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert!(v.detail.contains("never served the change"), "{}", v.detail);

    // Propagation: the route version moves 250 ms after the change, or never.
    let propagation = || Check::Propagation {
        phase: s("partition"),
        within: secs(1),
    };
    let mut quick = Run::new();
    quick.sample(14_750, true, "1").sample(15_250, true, "2");
    let v = quick.judge_without_log(propagation());
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    assert_eq!(v.measurements[2].value, 250.0);
    let mut never = Run::new();
    never.sample(14_750, true, "1").sample(16_000, true, "1");
    assert_eq!(
        never.judge_without_log(propagation()).outcome,
        Outcome::Failed
    );
}

#[test]
fn a_change_of_unknown_version_is_known_by_the_routes_version_moving() {
    // A foreign control plane's command that printed no version.
    let mut run = Run::healthy();
    for e in &mut run.entries {
        if let Event::MeshChange { version, .. } = &mut e.event {
            version.clear();
        }
    }
    let v = run.judge_without_log(applied());
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    // Its negative control: the version moving during the partition is caught.
    run.sample(16_000, false, "7");
    assert_eq!(run.judge_without_log(applied()).outcome, Outcome::Failed);
}

#[test]
fn without_an_xds_log_a_rejected_change_is_named() {
    let propagation = Check::Propagation {
        phase: s("partition"),
        within: secs(1),
    };
    let sample = |rejected: u64| Event::EnvoySample {
        node: "client".into(),
        connected: Some(true),
        route_version: Some("1".into()),
        cluster_version: Some("1".into()),
        listener_version: None,
        xds_keepalive_timeouts: None,
        ready: Some(true),
        memory_allocated: None,
        memory_heap: None,
        updates_rejected: Some(rejected),
    };
    let mut run = Run::new();
    run.at(14_750, sample(0)).at(15_500, sample(1));
    let v = run.judge_without_log(propagation.clone());
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert!(v.detail.contains("it rejected 1 update(s)"), "{}", v.detail);
    // Its negative control: not rejected, just never served.
    let mut run = Run::new();
    run.at(14_750, sample(0)).at(15_500, sample(0));
    let v = run.judge_without_log(propagation);
    assert!(!v.detail.contains("rejected"), "{}", v.detail);
}

/// Two outpost sidecars (`client`, where the load enters, and `svc-v1`) and one in the
/// region, sampled every second: `svc-v1` takes version 2 at 15 s, inside the
/// partition, and its memory grows by 1 MB a second; the others stay as they were.
fn two_outpost_sidecars() -> (Context, Vec<Entry>) {
    let ctx = Context {
        outpost_nodes: vec!["client".into(), "svc-v1".into()],
        ..ctx()
    };
    let mut run = Run::new();
    for sec in 0..30u64 {
        for node in ["client", "svc-v1", "region-svc"] {
            let moved = node == "svc-v1" && sec >= 15;
            let version = Some(if moved { "2" } else { "1" }.to_string());
            run.at(
                sec * 1000,
                Event::EnvoySample {
                    node: node.into(),
                    connected: Some(!(11..20).contains(&sec) || node == "region-svc"),
                    route_version: version.clone(),
                    cluster_version: version,
                    listener_version: None,
                    xds_keepalive_timeouts: Some(u64::from(sec >= 11)),
                    ready: Some(true),
                    memory_allocated: Some(
                        8_000_000 + if node == "svc-v1" { sec * 1_000_000 } else { 0 },
                    ),
                    memory_heap: None,
                    updates_rejected: None,
                },
            );
        }
    }
    (ctx, run.entries)
}

#[test]
fn a_check_reads_the_samples_of_every_sidecar_it_judges_not_just_the_first() {
    let (ctx, entries) = two_outpost_sidecars();
    // The change on svc-v1 during the partition fails config_frozen; judged_on shows it
    // is the same verdict on the outpost's samples alone (a declaration of `client` only
    // would lose svc-v1 and pass).
    let v = judged_on(frozen(), &ctx, &entries);
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
    assert!(v.detail.contains("svc-v1"), "{}", v.detail);
    let noticed = Check::PartitionNoticed {
        phase: s("partition"),
        within: secs(3),
        nodes: vec![s("svc-v1")],
    };
    let v = judged_on(noticed, &ctx, &entries);
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    // memory_drift of one Envoy reads that Envoy's samples; of all, every sidecar's.
    let drift = |parts: Vec<Spanned<String>>| Check::MemoryDrift {
        phase: None,
        max_per_hour: Spanned::new(Span::new_blank(), crate::source::Bytes(1e6)),
        after: None,
        parts,
    };
    for parts in [vec![s("envoy/svc-v1")], Vec::new()] {
        let v = judged_on(drift(parts), &ctx, &entries);
        assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
        assert!(v.detail.contains("envoy/svc-v1"), "{}", v.detail);
    }
    let v = judged_on(drift(vec![s("envoy/region-svc")]), &ctx, &entries);
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
}

/// A partition from 8.19 s to 20.19 s (phases start when carried out, off the load's
/// whole seconds) with a change to v2 at 15 s, then a heal: the change is served from
/// 20.5 s; 40 of the 50 requests of second `failed_in_second` fail.
fn straddled(failed_in_second: u64) -> Vec<Entry> {
    let mut run = Run {
        entries: Vec::new(),
    };
    for (t, phase, duration_ms) in [(8_190, "partition", 12_000), (20_190, "heal", 12_000)] {
        run.at(
            t,
            Event::PhaseStarted {
                phase: phase.into(),
                duration_ms,
            },
        );
    }
    run.at(
        15_000,
        Event::MeshChange {
            description: "v2".into(),
            version: "2".into(),
            target: Some("v2".into()),
            affects: vec!["client".into()],
        },
    );
    for sec in 8..30u64 {
        let ok = if sec == failed_in_second { 10 } else { 50 };
        let switched = sec >= 20;
        run.load(sec * 1000, ok, if switched { "v2" } else { "v1" });
        run.sample(sec * 1000 + 500, true, if switched { "2" } else { "1" });
    }
    run.entries
}

#[test]
fn a_second_of_load_is_judged_in_the_phase_that_holds_most_of_it() {
    // The second from 20 s to 21 s is the heal's (it began 190 ms before it): its
    // failure is not the partition's, nor is its traffic on v2 served before the heal.
    let entries = straddled(20);
    let v = judged_on(traffic(), &ctx(), &entries);
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    assert_eq!(v.measurement("requests").unwrap().value, 600.0);
    let v = judged_on(applied(), &ctx(), &straddled(25));
    assert_eq!(v.outcome, Outcome::Passed, "{}", v.detail);
    // Negative control: failures in the partition's last second (19 s to 20 s) count.
    let v = judged_on(traffic(), &ctx(), &straddled(19));
    assert_eq!(v.outcome, Outcome::Failed, "{}", v.detail);
}
