//! Running commands in the run's network namespaces, and finding and deleting the
//! namespaces of runs that were killed.

use super::*;

/// A command that runs `program` inside network namespace `ns`
/// (`ip netns exec <ns> <program>`); add arguments, environment, and spawn it.
pub fn command_in(ns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).arg(program);
    command
}

/// Runs `f` on a fresh thread that has entered network namespace `ns`, and returns
/// its result. Sockets made inside `f` stay in `ns` wherever they are used later,
/// so this is how this process listens or dials from a site.
pub fn in_namespace<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, PacketLinkError> {
    let fail = |detail: String| PacketLinkError::Namespace {
        ns: ns.to_string(),
        detail,
    };
    let path = format!("{NETNS_DIR}/{ns}");
    let handle = std::fs::File::open(&path).map_err(|e| fail(format!("{path}: {e}")))?;
    std::thread::scope(|scope| {
        let thread = scope.spawn(move || {
            // SAFETY: `handle` is an open namespace file; setns only affects this thread.
            if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(f())
        });
        match thread.join() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(fail(format!("setns: {e}"))),
            Err(_) => Err(fail("the function run inside it panicked".into())),
        }
    })
}

/// Deletes the namespaces a killed run left behind: every one whose name starts with
/// `root`, except those whose name carries the pid of a live process (as
/// [`unique_prefix`] writes it). Returns the names it deleted; tries all and reports
/// the first failure.
pub fn cleanup_stale(root: &str) -> Result<Vec<String>, PacketLinkError> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        // No directory: no namespace was ever made here.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PacketLinkError::Unavailable(format!("{NETNS_DIR}: {e}"))),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(root) && !owner_alive(root, name))
        .collect();
    names.sort();
    let mut first_error = None;
    let mut removed = Vec::new();
    for name in names {
        match delete_namespace(&name) {
            Ok(()) => removed.push(name),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// True when `name` is `<root><pid hex>x...` and that pid is a live process.
pub(super) fn owner_alive(root: &str, name: &str) -> bool {
    let Some(pid) = owner_pid(root, name) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The pid in a name made from [`unique_prefix`], if it has one.
pub(super) fn owner_pid(root: &str, name: &str) -> Option<libc::pid_t> {
    let (hex, _) = name.strip_prefix(root)?.split_once('x')?;
    let pid = libc::pid_t::from_str_radix(hex, 16).ok()?;
    (pid > 0).then_some(pid)
}

/// `ip netns del`; a namespace that is already gone counts as deleted.
pub(super) fn delete_namespace(ns: &str) -> Result<(), PacketLinkError> {
    if !std::path::Path::new(NETNS_DIR).join(ns).exists() {
        return Ok(());
    }
    run(Command::new("ip").args(["netns", "del", ns]), None)
}

/// ` -m statistic --mode random --probability <p>` for a percentage; empty at 100 %.
pub(super) fn statistic(percent: f64) -> String {
    if percent >= 100.0 {
        String::new()
    } else {
        format!(
            " -m statistic --mode random --probability {:.6}",
            percent / 100.0
        )
    }
}

/// `iptables-restore --noflush` inside `ns`, with `rules` on its standard input.
pub(super) fn iptables_restore(ns: &str, rules: &str) -> Result<(), PacketLinkError> {
    run(
        command_in(ns, "iptables-restore").args(["-w", "5", "--noflush"]),
        Some(rules),
    )
}

/// Nanoseconds of the wall clock, for seeding.
pub(super) fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The command line as text, for error messages.
pub(super) fn render(command: &Command) -> String {
    let mut shown = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

/// Runs a command to completion, feeding `stdin`; fails with its stderr if it fails.
pub(super) fn run(command: &mut Command, stdin: Option<&str>) -> Result<(), PacketLinkError> {
    output(command, stdin).map(drop)
}

/// Runs a command and returns its stdout.
pub(super) fn capture(command: &mut Command) -> Result<String, PacketLinkError> {
    output(command, None)
}

pub(super) fn output(
    command: &mut Command,
    stdin: Option<&str>,
) -> Result<String, PacketLinkError> {
    let shown = render(command);
    let fail = |detail: String| PacketLinkError::Command {
        command: shown.clone(),
        detail,
    };
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("could not start: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error shows up as the command's failure below.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("could not wait: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("{}: {}", out.status, stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
