//! The images the Docker backend runs, built on this machine: no registry is needed.
//!
//! Each image is `FROM scratch` plus one binary and the glibc files it loads (the
//! shared libraries `ldd` names and the dynamic loader), at the paths the binary looks
//! for them. Its tag is a digest of everything that goes in, so an image is built once
//! and reused until the binary changes; a build that finds its tag present does nothing.
//! Building a new tag removes the repository's older tags that no container uses, so
//! rebuilding tether does not pile up images.
//!
//! - `tether/tether:<digest>`: the `tether` multi-call binary (control plane, fault
//!   proxy, sample service);
//! - `tether/envoy:<digest>`: the provisioned Envoy binary.

use super::{MANAGED_LABEL, docker_error};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use testcontainers::core::BuildImageOptions;
use testcontainers::runners::AsyncBuilder;
use testcontainers::{GenericBuildableImage, GenericImage};

/// The system's CA certificates (Debian's bundle).
const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One image to build: a binary and where it goes inside.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Repository name, e.g. `tether/envoy`.
    pub repository: &'static str,
    /// The binary on this machine.
    pub binary: PathBuf,
    /// Its path inside the image, also the image's entrypoint.
    pub entrypoint: &'static str,
    /// Other files of this machine it needs, at the same path inside.
    pub extra_files: Vec<PathBuf>,
}

impl ImageSpec {
    /// The image of the `tether` binary at `binary`.
    pub fn tether(binary: &Path) -> ImageSpec {
        ImageSpec {
            repository: "tether/tether",
            binary: binary.to_path_buf(),
            entrypoint: "/usr/local/bin/tether",
            // Its HTTP client loads the system's CA certificates when it starts.
            extra_files: [CA_CERTIFICATES]
                .into_iter()
                .map(PathBuf::from)
                .filter(|path| path.is_file())
                .collect(),
        }
    }

    /// The image of the Envoy binary at `binary` (the real executable, not a wrapper
    /// script: see [`crate::envoy::EnvoyBinary`]).
    pub fn envoy(binary: &Path) -> ImageSpec {
        ImageSpec {
            repository: "tether/envoy",
            binary: binary.to_path_buf(),
            entrypoint: "/usr/local/bin/envoy",
            extra_files: Vec::new(),
        }
    }
}

/// A built (or found) image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Repository name.
    pub repository: String,
    /// Content digest tag.
    pub tag: String,
    /// True when it was built now, false when it was already there.
    pub built: bool,
    /// Bytes that went in.
    pub bytes: u64,
}

impl BuiltImage {
    /// `repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }

    /// The image, to start containers from.
    pub fn image(&self) -> GenericImage {
        GenericImage::new(&self.repository, &self.tag)
    }
}

/// The files an image of `binary` holds: (path on this machine, path inside).
pub fn runtime_files(binary: &Path, entrypoint: &str) -> Result<Vec<(PathBuf, String)>> {
    let head = std::fs::read(binary)
        .map(|b| b.get(..2).map(<[u8]>::to_vec).unwrap_or_default())
        .with_context(|| format!("cannot read {}", binary.display()))?;
    if head == b"#!" {
        bail!(
            "{} is a script, not a binary: an image needs the executable it starts",
            binary.display()
        );
    }
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run `ldd` (from glibc) to list the libraries the binary loads")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut files = vec![(binary.to_path_buf(), entrypoint.to_string())];
    if !out.status.success() && text.contains("not a dynamic executable") {
        // Static: the binary alone.
        return Ok(files);
    }
    if !out.status.success() {
        bail!(
            "`ldd {}` failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, or the loader
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file.
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            if line.contains("not found") {
                bail!("{}: {}", binary.display(), line.trim());
            }
            continue;
        };
        files.push((PathBuf::from(path), path.to_string()));
    }
    Ok(files)
}

/// The Dockerfile of an image holding `files`.
fn dockerfile(spec: &ImageSpec) -> String {
    format!(
        "FROM scratch\nLABEL {MANAGED_LABEL}=true\nCOPY rootfs/ /\nENTRYPOINT [\"{}\"]\n",
        spec.entrypoint
    )
}

/// The image's tag: the first 16 hex digits of a SHA-256 over the Dockerfile and
/// every file's inside path and bytes.
fn digest(spec: &ImageSpec, files: &[(PathBuf, String)]) -> Result<(String, u64)> {
    let mut hasher = Sha256::new();
    hasher.update(dockerfile(spec));
    let mut bytes = 0;
    for (source, inside) in files {
        let content =
            std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
        bytes += content.len() as u64;
        hasher.update(inside.as_bytes());
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok((hex, bytes))
}

/// Builds the image of `spec`, or finds it built already.
pub async fn ensure(spec: &ImageSpec) -> Result<BuiltImage> {
    let mut files = runtime_files(&spec.binary, spec.entrypoint)?;
    files.extend(
        spec.extra_files
            .iter()
            .map(|path| (path.clone(), path.display().to_string())),
    );
    let (tag, bytes) = digest(spec, &files)?;
    let reference = format!("{}:{tag}", spec.repository);
    let present = super::image_exists(&reference).await?;
    if !present {
        let mut image = GenericBuildableImage::new(spec.repository, &tag)
            .with_dockerfile_string(dockerfile(spec));
        for (source, inside) in &files {
            image = image.with_file(source, format!("rootfs{inside}"));
        }
        // The image to run comes from `BuiltImage::image`, tagged alike.
        let _built = image
            .build_image_with(BuildImageOptions::new().with_skip_if_exists(true))
            .await
            .map_err(docker_error)
            .with_context(|| format!("cannot build image {reference}"))?;
        remove_older_tags(spec.repository, &tag).await;
    }
    Ok(BuiltImage {
        repository: spec.repository.to_string(),
        tag,
        built: !present,
        bytes,
    })
}

/// Removes the images of `repository` other than `keep`, except those a container
/// uses (the engine refuses those, and they stay).
async fn remove_older_tags(repository: &str, keep: &str) {
    use testcontainers::bollard::query_parameters::{
        ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    };
    let Ok(docker) = super::engine() else { return };
    let filters = std::collections::HashMap::from([
        ("reference", vec![repository.to_string()]),
        ("label", vec![format!("{MANAGED_LABEL}=true")]),
    ]);
    let Ok(images) = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
    else {
        return;
    };
    let keep = format!("{repository}:{keep}");
    for reference in images.into_iter().flat_map(|i| i.repo_tags) {
        if reference != keep {
            let _ = docker
                .remove_image(
                    &reference,
                    Some(RemoveImageOptionsBuilder::new().build()),
                    None,
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_takes_its_libraries_and_loader() {
        let files = runtime_files(Path::new("/bin/ls"), "/ls").unwrap();
        assert_eq!(files[0].1, "/ls");
        let inside: Vec<&str> = files.iter().map(|(_, i)| i.as_str()).collect();
        assert!(inside.iter().any(|p| p.contains("libc.so")), "{inside:?}");
        assert!(inside.iter().any(|p| p.contains("ld-linux")), "{inside:?}");
    }

    #[test]
    fn the_tag_follows_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bin");
        std::fs::write(&binary, b"one").unwrap();
        let spec = ImageSpec::tether(&binary);
        let files = vec![(binary.clone(), "/usr/local/bin/tether".to_string())];
        let (first, bytes) = digest(&spec, &files).unwrap();
        assert_eq!(bytes, 3);
        assert_eq!(first.len(), 16);
        assert_eq!(digest(&spec, &files).unwrap().0, first);
        std::fs::write(&binary, b"two").unwrap();
        assert_ne!(digest(&spec, &files).unwrap().0, first);
    }
}
