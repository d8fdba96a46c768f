//! The child processes of the process backend: started with their output in a log file,
//! in their site's network namespace when there is a packet link, and killed when their
//! handle drops or, through `PR_SET_PDEATHSIG`, when the harness dies.

use super::super::running::Parts;
use crate::control_plane::XdsLogLine;
use crate::faults::packet;
use crate::plan::{Action, Part};
use crate::timeline::Timeline;
use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// The environment variable every child of a run carries: the run's work folder, so a
/// leftover process can be traced to the run that started it.
pub const RUN_MARKER: &str = "TETHER_RUN_DIR";

/// The name the control plane's process has among the children.
const CONTROL_PLANE: &str = "control plane";

/// A child process the topology owns.
pub(super) struct Managed {
    pub name: String,
    pub child: Child,
}

/// Start `program args` with its output in `log` (inside `<work dir>/logs/`), killed when dropped or when we die.
/// With `netns`, the child runs in that network namespace.
pub(super) fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
    piped_stdout: bool,
    netns: Option<&str>,
) -> Result<Managed> {
    let work_dir = log
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    // Appended to, so a restarted part keeps the log of its earlier life.
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot create {}", log.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env(RUN_MARKER, work_dir)
        .stdin(Stdio::null())
        .stderr(log_file.try_clone()?)
        .kill_on_drop(true);
    if piped_stdout {
        cmd.stdout(Stdio::piped());
    } else {
        cmd.stdout(log_file);
    }
    let namespace = netns
        .map(|ns| {
            let path = Path::new(packet::NETNS_DIR).join(ns);
            std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))
        })
        .transpose()?;
    // SAFETY: prctl and setns are async-signal-safe system calls. prctl asks the kernel
    // to kill the child when the thread that spawned it exits, so nothing outlives the
    // harness; setns moves the child into its site's namespace (the file stays open in
    // the closure until the child is started).
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Some(ns) = &namespace
                && libc::setns(std::os::fd::AsRawFd::as_raw_fd(ns), libc::CLONE_NEWNET) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {name} ({})", program.display()))?;
    Ok(Managed {
        name: name.to_string(),
        child,
    })
}

/// Wait until `probe` says yes, the child is still alive, and the deadline has not passed.
pub(super) async fn wait_until<F, Fut>(
    what: &str,
    child: &mut Managed,
    deadline: Instant,
    log: &Path,
    mut probe: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if let Some(status) = child.child.try_wait()? {
            bail!(
                "{what} exited during start-up ({status}); see {}",
                log.display()
            );
        }
        if probe().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} was not ready in time; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The command line and log of the control plane, kept to restart it.
#[derive(Debug, Clone, Default)]
pub(super) struct ControlPlaneCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
    pub health: String,
    /// The region's network namespace, with a packet link.
    pub netns: Option<String>,
}

/// Every child of a running topology, the control plane among them.
pub(super) struct Children {
    state: Mutex<State>,
    control_plane: ControlPlaneCommand,
    timeline: Timeline,
}

struct State {
    children: Vec<Managed>,
    /// Copy the control plane's log onto the timeline; each ends when its process exits.
    log_readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Children {
    /// No children yet; the control plane will be started with `control_plane`, its
    /// log lines recorded on `timeline`.
    pub fn new(control_plane: ControlPlaneCommand, timeline: &Timeline) -> Children {
        Children {
            state: Mutex::new(State {
                children: Vec::new(),
                log_readers: Vec::new(),
            }),
            control_plane,
            timeline: timeline.clone(),
        }
    }

    /// Own `child` from now on (it is stopped with the others).
    pub async fn adopt(&self, child: Managed) {
        self.state.lock().await.children.push(child);
    }

    /// Start the control plane (again) and wait until it serves, by `deadline`; its log
    /// lines go onto the timeline.
    pub async fn start_control_plane(&self, deadline: Instant) -> Result<()> {
        let cmd = &self.control_plane;
        let mut cp = spawn(
            CONTROL_PLANE,
            &cmd.program,
            &cmd.args,
            &cmd.log,
            true,
            cmd.netns.as_deref(),
        )?;
        let mut state = self.state.lock().await;
        if let Some(stdout) = cp.child.stdout.take() {
            let timeline = self.timeline.clone();
            state.log_readers.push(tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    XdsLogLine::record(line.as_bytes(), &timeline, 0);
                }
            }));
        }
        let result = wait_until(CONTROL_PLANE, &mut cp, deadline, &cmd.log, || {
            crate::backend::http_ok(&cmd.health)
        })
        .await;
        state.children.push(cp);
        result
    }
}

#[async_trait]
impl Parts for Children {
    async fn kill_control_plane(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        let i = state
            .children
            .iter()
            .position(|m| m.name == CONTROL_PLANE)
            .context("the control plane is not running")?;
        let mut cp = state.children.remove(i);
        cp.child
            .kill()
            .await
            .context("cannot kill the control plane")
    }

    async fn restart_control_plane(&self) -> Result<()> {
        self.start_control_plane(Instant::now() + Duration::from_secs(30))
            .await
            .context("cannot restart the control plane")
    }

    async fn container_fault(&self, part: &Part, action: Action, _on: bool) -> Result<Vec<String>> {
        bail!(
            "`{} {part}` is a container fault: it needs the Docker backend",
            action.as_str()
        )
    }

    /// SIGTERM to every child, then SIGKILL for any still running after a grace period.
    async fn shutdown(self: Box<Self>) {
        let mut state = self.state.into_inner();
        for m in &state.children {
            if let Some(pid) = m.child.id() {
                // SAFETY: sending a signal to a child we own; at worst it has already exited.
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            }
        }
        for m in &mut state.children {
            if tokio::time::timeout(Duration::from_secs(3), m.child.wait())
                .await
                .is_err()
            {
                eprintln!("tether: {} did not stop on SIGTERM; killing it", m.name);
                let _ = m.child.kill().await;
            }
        }
        state.children.clear();
        // Every line the control plane wrote is on the timeline before anyone reads it.
        for reader in state.log_readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
    }
}
