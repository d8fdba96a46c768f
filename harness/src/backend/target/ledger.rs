//! The fault ledger of a target: every fault is written down before it is applied and
//! crossed out after it is removed, in two places:
//!
//! - `ledger.jsonl` in the run folder: one line per fault applied or removed, the run's
//!   own record of what it did to the rack;
//! - `ledger.json` in tether's state folder for the target ([`Target::state_dir`]): the
//!   faults on the target now. A run that finds faults there refuses to start, and
//!   `tether heal --target` removes them.
//!
//! Both are written (and synced) before the fault's actuator is called, so a run killed
//! at any moment, SIGKILL included, leaves at worst an entry for a fault that was never
//! applied, never a fault that is not written down.

use crate::plan::{Fault, Link};
use crate::target::Target;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One fault on a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The link it is on.
    pub link: Link,
    /// The fault, as a suite writes it.
    pub fault: Fault,
    /// When it was written down (UTC, RFC 3339); on a `removed` line of the run's
    /// ledger, when it was removed.
    pub at: String,
    /// The run folder of the run that applied it.
    pub run: String,
}

/// The faults on a target now, as kept in its state folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The target's name.
    target: String,
    /// The faults applied and not yet removed, oldest first.
    faults: Vec<Entry>,
}

/// A run's ledger of the faults it puts on a target.
#[derive(Debug)]
pub struct Ledger {
    target: String,
    state_file: PathBuf,
    run_file: Option<PathBuf>,
    run: String,
    faults: Mutex<Vec<Entry>>,
}

/// The state file of `target`.
fn state_file(target: &Target) -> PathBuf {
    target.state_dir().join("ledger.json")
}

/// The faults a run left on `target` (empty when none, or no run ever ran against it).
pub fn pending(target: &Target) -> Result<Vec<Entry>> {
    let path = state_file(target);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let state: State = serde_json::from_slice(&bytes)
                .with_context(|| format!("cannot read the fault ledger {}", path.display()))?;
            Ok(state.faults)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Now, UTC, RFC 3339 to the millisecond.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Ledger {
    /// The ledger of a run against `target` writing into `run_dir` (none: `tether heal`,
    /// which only crosses faults out). Errors when it cannot write.
    pub fn open(target: &Target, run_dir: Option<&Path>) -> Result<Ledger> {
        let state_file = state_file(target);
        if let Some(dir) = state_file.parent() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("cannot create tether's state folder {}", dir.display())
            })?;
        }
        Ok(Ledger {
            target: target.name.clone(),
            faults: Mutex::new(pending(target)?),
            state_file,
            run_file: run_dir.map(|d| d.join("ledger.jsonl")),
            run: run_dir.map_or_else(|| "tether heal".into(), |d| d.display().to_string()),
        })
    }

    /// The state file, for messages.
    pub fn state_path(&self) -> &Path {
        &self.state_file
    }

    /// The faults on the target now, as this ledger knows them.
    pub fn faults(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    /// Write `fault` on `link` down, before it is applied.
    pub fn applying(&self, link: Link, fault: &Fault) -> Result<()> {
        let entry = Entry {
            link,
            fault: fault.clone(),
            at: now(),
            run: self.run.clone(),
        };
        self.append("applying", &entry)?;
        let mut faults = self.lock();
        faults.push(entry);
        self.save(&faults)
    }

    /// Cross `fault` on `link` out, once it is removed.
    pub fn removed(&self, link: Link, fault: &Fault) -> Result<()> {
        let mut faults = self.lock();
        if let Some(i) = faults
            .iter()
            .rposition(|e| e.link == link && e.fault == *fault)
        {
            let mut entry = faults.remove(i);
            self.save(&faults)?;
            drop(faults);
            entry.at = now();
            self.append("removed", &entry)?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state file rewritten whole: beside, synced, then renamed over.
    fn save(&self, faults: &[Entry]) -> Result<()> {
        let state = State {
            target: self.target.clone(),
            faults: faults.to_vec(),
        };
        let next = self.state_file.with_extension("json.next");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&next)?;
            file.write_all(&serde_json::to_vec_pretty(&state)?)?;
            file.sync_all()?;
            std::fs::rename(&next, &self.state_file)
        };
        write().with_context(|| {
            format!(
                "cannot write the fault ledger {}",
                self.state_file.display()
            )
        })
    }

    /// A line in the run folder's ledger.
    fn append(&self, what: &str, entry: &Entry) -> Result<()> {
        let Some(path) = &self.run_file else {
            return Ok(());
        };
        let mut line = serde_json::to_value(entry)?;
        line["ledger"] = what.into();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(file, "{line}")?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(state: &Path) -> Target {
        let dir = state.join("t");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rack.yaml");
        std::fs::write(
            &path,
            "name: r\nsidecars: {}\nload: {}\ncontrol_plane: { tether: { api: 'http://h:1' } }\n",
        )
        .unwrap();
        let mut target = crate::target::load(&path).unwrap();
        // A state folder of the test's own.
        target.state_base = state.to_path_buf();
        target
    }

    #[test]
    fn faults_are_written_down_before_and_crossed_out_after() {
        let tmp = tempfile::tempdir().unwrap();
        let target = target(tmp.path());
        let run = tmp.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let ledger = Ledger::open(&target, Some(&run)).unwrap();
        ledger.applying(Link::Xds, &Fault::Blackhole).unwrap();
        ledger.applying(Link::Data, &Fault::Down).unwrap();
        // What a killed run leaves: the state says what is on the target.
        let left: Vec<Link> = pending(&target).unwrap().iter().map(|e| e.link).collect();
        assert_eq!(left, [Link::Xds, Link::Data]);
        ledger.removed(Link::Xds, &Fault::Blackhole).unwrap();
        ledger.removed(Link::Data, &Fault::Down).unwrap();
        assert!(pending(&target).unwrap().is_empty());
        let lines = std::fs::read_to_string(run.join("ledger.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 4, "{lines}");
        assert!(lines.lines().next().unwrap().contains("\"applying\""));
        // A second ledger (the next run, or `tether heal`) reads what the first left.
        ledger.applying(Link::Xds, &Fault::Reset).unwrap();
        let next = Ledger::open(&target, None).unwrap();
        assert_eq!(next.faults().len(), 1);
    }
}
