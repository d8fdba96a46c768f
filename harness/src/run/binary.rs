//! Which `tether` executable plays a run's control plane, fault proxy and services.
//!
//! Those roles run as child processes (or in containers built from the executable), so
//! that a run can kill, restart and partition them as a rack's own would be. A run from
//! the `tether` command uses that very executable; a run from a user's own crate (their
//! `cargo test`, where the running executable is their test binary) needs one found
//! elsewhere: [`RunOptions::tether_bin`](super::RunOptions::tether_bin), then
//! `$TETHER_BIN`, then `tether` on `PATH`.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The variable naming the executable, when the run's options do not.
pub const ENV: &str = "TETHER_BIN";

/// Set by the `tether` command line: the running executable plays the roles itself.
static RUNNING_TETHER: AtomicBool = AtomicBool::new(false);

/// Say that the running executable is `tether` (its `main` calls this), so runs started
/// from it use it for the roles.
pub fn running_tether() {
    RUNNING_TETHER.store(true, Ordering::Relaxed);
}

/// The executable for the roles: `asked` if given, else `$TETHER_BIN`, else this one when
/// it is `tether`, else `tether` on `PATH`; an error in one line saying how to get one.
pub fn locate(asked: Option<&Path>) -> Result<PathBuf> {
    let from_env = std::env::var_os(ENV).filter(|v| !v.is_empty());
    let this = RUNNING_TETHER
        .load(Ordering::Relaxed)
        .then(std::env::current_exe)
        .and_then(Result::ok);
    let path = std::env::var_os("PATH").unwrap_or_default();
    choose(asked, from_env.map(PathBuf::from), this, &path)
}

/// [`locate`] with its inputs given, for tests.
fn choose(
    asked: Option<&Path>,
    from_env: Option<PathBuf>,
    this: Option<PathBuf>,
    path: &std::ffi::OsStr,
) -> Result<PathBuf> {
    if let Some(asked) = asked {
        return executable(asked.to_path_buf(), "RunOptions::tether_bin");
    }
    if let Some(from_env) = from_env {
        return executable(from_env, ENV);
    }
    if let Some(this) = this {
        return Ok(this);
    }
    match std::env::split_paths(path)
        .map(|dir| dir.join("tether"))
        .find(|p| is_executable(p))
    {
        Some(found) => Ok(found),
        None => bail!(
            "no tether executable to run the control plane, fault proxy and services: \
             set {ENV} (or RunOptions::tether_bin) to one, or put one on PATH \
             (`cargo install --locked --path harness` in a tether checkout)"
        ),
    }
}

/// `path`, if it is an executable file; else an error naming where it came from.
fn executable(path: PathBuf, from: &str) -> Result<PathBuf> {
    if is_executable(&path) {
        Ok(path)
    } else {
        bail!(
            "{from} is {}, which is not an executable file",
            path.display()
        )
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::fs::PermissionsExt;

    fn fake_tether(dir: &Path) -> PathBuf {
        let bin = dir.join("tether");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    #[test]
    fn the_options_then_the_variable_then_this_executable_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_tether(dir.path());
        let other = tempfile::tempdir().unwrap();
        let other_bin = fake_tether(other.path());
        let path = std::env::join_paths([other.path()]).unwrap();
        let this = PathBuf::from("/proc/self/exe");
        let env = Some(bin.clone());
        let mine = || Some(this.clone());
        assert_eq!(choose(Some(&bin), None, mine(), &path).unwrap(), bin);
        assert_eq!(choose(None, env, mine(), &path).unwrap(), bin);
        assert_eq!(choose(None, None, mine(), &path).unwrap(), this);
        assert_eq!(choose(None, None, None, &path).unwrap(), other_bin);
    }

    #[test]
    fn none_found_says_in_one_line_how_to_get_one() {
        let empty = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([empty.path()]).unwrap();
        let err = choose(None, None, None, &path).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(
            err.contains("TETHER_BIN") && err.contains("cargo install"),
            "{err}"
        );
        assert!(choose(None, None, None, &OsString::new()).is_err());
    }

    #[test]
    fn a_named_file_that_is_not_executable_is_refused_with_where_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("tether");
        std::fs::write(&plain, "").unwrap();
        let err = choose(None, Some(plain), None, &OsString::new())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("TETHER_BIN is "), "{err}");
        let missing = dir.path().join("missing");
        assert!(choose(Some(&missing), None, None, &OsString::new()).is_err());
    }
}
