//! Each sidecar's whole admin state at the end of every phase, saved into the run folder
//! the way `istioctl bug-report` collects it: `config_dump.json` (with EDS),
//! `clusters.txt` and `stats.txt` per sidecar in `sidecars/<phase>/<node>/`. A failed
//! check's report links the state at the end of the phase it judged.
//!
//! The dumps run beside the schedule (the next phase does not wait for them) and are all
//! written before the topology is taken down ([`SidecarDumps::finish`]). A phase that
//! comes again (a soak's cycles) writes over its folder, so a soak of any length keeps
//! one dump per phase: its last.

use crate::envoy::AdminClient;
use crate::timeline::{Event, Timeline};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::task::JoinHandle;

/// What each sidecar's dump holds: file name and admin path.
const FILES: [(&str, &str); 3] = [
    ("config_dump.json", "/config_dump?include_eds"),
    ("clusters.txt", "/clusters"),
    ("stats.txt", "/stats"),
];

/// The folder of the dumps, in the run folder.
pub const DIR: &str = "sidecars";

/// The most sidecars dumped at the end of a phase. A larger fleet is dumped in part: the
/// sidecar the load enters through and the others evenly spread over the names, so a
/// phase's end does not ask 500 Envoys for their whole config at once (a `config_dump`
/// costs an Envoy milliseconds) while the next phase's changes are on their way.
pub const MAX_DUMPED: usize = 50;

/// The sidecars of `envoys` to dump: all of them up to [`MAX_DUMPED`], else `keep` and
/// evenly spread others, [`MAX_DUMPED`] in all.
fn chosen(
    envoys: BTreeMap<String, AdminClient>,
    keep: Option<&str>,
) -> BTreeMap<String, AdminClient> {
    let n = envoys.len();
    if n <= MAX_DUMPED {
        return envoys;
    }
    let others = MAX_DUMPED - usize::from(keep.is_some_and(|k| envoys.contains_key(k)));
    envoys
        .into_iter()
        .enumerate()
        .filter(|(i, (name, _))| Some(name.as_str()) == keep || i * others % n < others)
        .map(|(_, e)| e)
        .take(MAX_DUMPED)
        .collect()
}

/// The dumps of one run.
pub struct SidecarDumps {
    envoys: BTreeMap<String, AdminClient>,
    run_dir: PathBuf,
    timeline: Timeline,
    pending: Mutex<Vec<JoinHandle<()>>>,
}

impl SidecarDumps {
    /// Dumps of `envoys` (at most [`MAX_DUMPED`], `keep` among them) into
    /// `run_dir/sidecars/`, each recorded on `timeline`.
    pub fn new(
        envoys: BTreeMap<String, AdminClient>,
        keep: Option<&str>,
        run_dir: &Path,
        timeline: &Timeline,
    ) -> Self {
        SidecarDumps {
            envoys: chosen(envoys, keep),
            run_dir: run_dir.to_path_buf(),
            timeline: timeline.clone(),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Start saving every sidecar's state as `phase` ends; returns at once.
    pub fn phase_ended(&self, phase: &str) {
        let dir = format!("{DIR}/{}", folder_name(phase));
        let envoys = self.envoys.clone();
        let (root, timeline, phase) = (
            self.run_dir.join(&dir),
            self.timeline.clone(),
            phase.to_string(),
        );
        let task = tokio::spawn(async move {
            let saved = futures::future::join_all(
                envoys
                    .iter()
                    .map(|(node, admin)| save(admin, root.join(node), node)),
            )
            .await;
            let sidecars: Vec<String> = saved.into_iter().flatten().collect();
            timeline.record(Event::SidecarsDumped {
                phase,
                dir,
                sidecars,
            });
        });
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }

    /// Wait for every dump started.
    pub async fn finish(&self) {
        let pending = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in pending {
            let _ = task.await;
        }
    }
}

/// Save one sidecar's files into `dir`; its name when every file was saved.
async fn save(admin: &AdminClient, dir: PathBuf, node: &str) -> Option<String> {
    tokio::fs::create_dir_all(&dir).await.ok()?;
    for (file, path) in FILES {
        let body = admin.text(path).await?;
        tokio::fs::write(dir.join(file), body).await.ok()?;
    }
    Some(node.to_string())
}

/// A phase name as a folder name: letters, digits, `-` and `_` kept, the rest `_`.
fn folder_name(phase: &str) -> String {
    phase
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_make_safe_folder_names() {
        assert_eq!(folder_name("heal"), "heal");
        assert_eq!(folder_name("after heal/../x"), "after_heal____x");
    }

    #[test]
    fn a_large_fleet_is_dumped_in_part_and_spread_with_the_load_s_sidecar() {
        let admin = AdminClient::new(std::net::SocketAddr::from(([127, 0, 0, 1], 9)));
        let fleet = |n: usize| -> BTreeMap<String, AdminClient> {
            (1..=n)
                .map(|i| (format!("client-{i:03}"), admin.clone()))
                .collect()
        };
        assert_eq!(chosen(fleet(40), None).len(), 40);
        let some = chosen(fleet(502), Some("client-333"));
        assert_eq!(some.len(), MAX_DUMPED);
        assert!(some.contains_key("client-333"));
        // Spread over the names, not the first fifty.
        assert!(some.contains_key("client-001") || some.contains_key("client-002"));
        assert!(
            some.keys().any(|k| k.as_str() > "client-490"),
            "{:?}",
            some.keys()
        );
    }

    #[tokio::test]
    async fn a_sidecar_that_does_not_answer_is_left_out_and_the_dump_still_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let timeline = Timeline::new();
        // Nothing listens on port 9 of loopback.
        let envoys = BTreeMap::from([(
            "client".to_string(),
            AdminClient::new(std::net::SocketAddr::from(([127, 0, 0, 1], 9))),
        )]);
        let dumps = SidecarDumps::new(envoys, None, dir.path(), &timeline);
        dumps.phase_ended("baseline");
        dumps.finish().await;
        let recorded: Vec<Event> = timeline.entries().into_iter().map(|e| e.event).collect();
        assert_eq!(
            recorded,
            [Event::SidecarsDumped {
                phase: "baseline".into(),
                dir: "sidecars/baseline".into(),
                sidecars: vec![],
            }]
        );
    }
}
