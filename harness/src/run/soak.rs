//! A soak's judge, running beside its schedule: the timeline keeps nothing in memory and
//! hands every entry here; each cycle is judged as soon as it is over, the reports are
//! rewritten, a progress line is printed, and the stop conditions are watched. When one
//! holds, the run is stopped (every fault comes off as when it is interrupted) with the
//! reason kept for the reports and the exit code.

use super::console::Console;
use crate::checks::soak::stop::StopWatch;
use crate::checks::{Context, SoakJudge, names};
use crate::plan::{Plan, Schedule};
use crate::report::{self, Judged};
use crate::result::RunInfo;
use crate::timeline::cycles::{Cycle, Cycles};
use crate::timeline::{Entry, Timeline, resident_bytes};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a soak's judge ended with.
pub struct Judgement {
    /// What the cycles gave (its verdicts: one per check, over every cycle).
    pub judge: SoakJudge,
    /// The stop condition that ended the run, if one did.
    pub stopped: Option<String>,
}

/// A soak's judge at work.
pub struct SoakWatch {
    send: mpsc::UnboundedSender<Option<Entry>>,
    task: JoinHandle<Judgement>,
}

/// Where the judge writes, and what it writes with.
struct Writer {
    dir: PathBuf,
    info: Arc<Mutex<RunInfo>>,
    console: Console,
}

impl SoakWatch {
    /// Judge `plan`'s soak from `timeline` (from now on kept only on disk), writing the
    /// reports into `dir` after every cycle; cancels `stop` when a stop condition holds.
    pub fn start(
        plan: &Plan,
        schedule: &Schedule,
        ctx: &Context,
        timeline: &Timeline,
        (dir, info): (PathBuf, Arc<Mutex<RunInfo>>),
        console: &Console,
        stop: &CancellationToken,
    ) -> SoakWatch {
        let (send, receive) = mpsc::unbounded_channel();
        timeline.keep_nothing();
        let listener = send.clone();
        timeline.listen(Arc::new(move |entry: &Entry| {
            let _ = listener.send(Some(entry.clone()));
        }));
        let judge = SoakJudge::new(&plan.checks, ctx, schedule.cycles());
        let watch = plan
            .soak
            .as_ref()
            .map(|s| s.stop_when.clone())
            .unwrap_or_default();
        // Entries of a second come once its last request is answered or timed out.
        let grace_ms = plan.load.timeout.as_millis() as u64 + 3_000;
        let writer = Writer {
            dir,
            info,
            console: console.clone(),
        };
        let task = tokio::spawn(judge_as_it_comes(
            receive,
            (judge, Cycles::new(grace_ms), StopWatch::new(&watch)),
            writer,
            stop.clone(),
        ));
        SoakWatch { send, task }
    }

    /// The run is over (its last entry recorded): judge what is left.
    pub async fn finish(self) -> Judgement {
        let _ = self.send.send(None);
        self.task
            .await
            .unwrap_or_else(|e| panic!("the soak's judge crashed: {e}"))
    }
}

/// The judge's loop: every entry until `None`.
async fn judge_as_it_comes(
    mut receive: mpsc::UnboundedReceiver<Option<Entry>>,
    (mut judge, mut cycles, mut watch): (SoakJudge, Cycles, StopWatch),
    writer: Writer,
    stop: CancellationToken,
) -> Judgement {
    let mut stopped = None;
    let trip = |reason: Option<String>, stopped: &mut Option<String>| {
        if let Some(reason) = reason
            && stopped.is_none()
        {
            writer.console.line(&format!("stopping: {reason}"));
            *stopped = Some(reason);
            stop.cancel();
        }
    };
    while let Some(Some(entry)) = receive.recv().await {
        judge.observe(&entry);
        trip(watch.entry(&entry), &mut stopped);
        for cycle in cycles.push(entry) {
            writer.judged(&mut judge, &cycle, &stopped);
            trip(watch.cycles(judge.failed_cycles()), &mut stopped);
        }
    }
    for cycle in cycles.finish() {
        writer.judged(&mut judge, &cycle, &stopped);
    }
    Judgement { judge, stopped }
}

impl Writer {
    /// Judge one cycle, print its line and rewrite the reports with it.
    fn judged(&self, judge: &mut SoakJudge, cycle: &Cycle, stopped: &Option<String>) {
        let verdict = judge.cycle(cycle);
        let failed: Vec<String> = verdict.not_passed.iter().map(|c| c.name.clone()).collect();
        let summary = judge.summary();
        let worst = judge
            .worst_of(names::RECONVERGENCE_MS)
            .map(|(node, ms)| format!("{node} {:.1} s", ms / 1000.0))
            .unwrap_or_else(|| "none".into());
        let of = match summary.cycles_planned {
            0 => String::new(),
            n => format!(" of {n}"),
        };
        self.console.line(&format!(
            "cycle {}{of} done: {}; {} cycles failed so far; worst reconvergence {worst}; tether {:.0} MiB",
            cycle.cycle,
            if failed.is_empty() {
                "passed".to_string()
            } else {
                format!("FAILED {}", failed.join(", "))
            },
            judge.failed_cycles(),
            resident_bytes() as f64 / 1024.0 / 1024.0
        ));
        // A run killed from here on leaves these reports: marked incomplete, covering
        // every cycle judged so far.
        let mut info = self.info.lock().unwrap_or_else(|e| e.into_inner()).clone();
        info.incomplete = true;
        info.stopped = stopped.clone();
        info.duration_s = cycle.end_ms as f64 / 1000.0;
        let verdicts = judge.verdicts();
        if let Err(e) = report::write_all(&self.dir, &info, &verdicts, Judged::Soak(&summary)) {
            self.console
                .line(&format!("cannot rewrite the reports: {e:#}"));
        }
    }
}
