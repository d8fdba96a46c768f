//! Embeds the git revision tether is built from (`TETHER_GIT_REVISION`), or `unknown`
//! when there is no git or no repository: the build never fails for want of git. A
//! `TETHER_GIT_REVISION` in the build's environment wins.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    // Packagers building from a tarball can name the revision themselves.
    let revision = std::env::var("TETHER_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TETHER_GIT_REVISION={revision}");
    println!("cargo:rerun-if-env-changed=TETHER_GIT_REVISION");
    // Build again when HEAD moves: the HEAD file, the branch it names, packed refs.
    let mut watched = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watched.push(format!("{dir}/HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        watched.push(format!("{common}/packed-refs"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(format!("{common}/{branch}"));
        }
    }
    for path in watched {
        // A path that does not exist would make cargo run this script on every build.
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
