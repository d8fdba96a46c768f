//! The Docker backend: the images it runs, built on this machine ([`images`]), the
//! topology as containers on two networks ([`topology`]), and what runs leave behind
//! ([`leftovers`]).
//!
//! Everything tether makes on the Docker engine (images, containers, networks) carries
//! the label [`MANAGED_LABEL`]`=true`, so `tether doctor` can list what a killed run
//! left and `tether clean` can remove it. The engine is reached as the `docker` CLI
//! reaches it (`DOCKER_HOST`, else the local socket).

pub mod images;
pub mod leftovers;
mod network;
mod parts;
pub mod topology;

use anyhow::{Context, Result};
use testcontainers::bollard::Docker;

/// The label on every image, container and network tether makes.
pub const MANAGED_LABEL: &str = "io.tether.managed";

/// A client of the Docker engine, or why there is none.
pub fn engine() -> Result<Docker> {
    Docker::connect_with_defaults()
        .context("cannot reach the Docker engine (DOCKER_HOST or /var/run/docker.sock)")
}

/// An error of testcontainers, with its cause chain.
fn docker_error(e: testcontainers::TestcontainersError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The image `reference` a suite names: found on the engine, or pulled from its
/// registry. Fails, saying so, when it is not there and cannot be pulled.
pub async fn named_image(reference: &str) -> Result<String> {
    use futures::StreamExt;
    use testcontainers::bollard::query_parameters::CreateImageOptionsBuilder;
    if image_exists(reference).await? {
        return Ok(reference.to_string());
    }
    let docker = engine()?;
    let options = CreateImageOptionsBuilder::new()
        .from_image(reference)
        .build();
    let mut pull = docker.create_image(Some(options), None, None);
    while let Some(step) = pull.next().await {
        if let Err(e) = step {
            anyhow::bail!(
                "the suite names image {reference}, which the Docker engine does not have and cannot pull ({e}); \
                 with no registry, load it first (`docker load`) or leave `images:` out to run the images tether builds"
            );
        }
    }
    Ok(reference.to_string())
}

/// Whether the engine has the image `reference` (`repository:tag`).
pub async fn image_exists(reference: &str) -> Result<bool> {
    use testcontainers::bollard::errors::Error;
    match engine()?.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot ask the Docker engine for {reference}")),
    }
}
