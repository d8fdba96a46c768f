//! What runs left on the Docker engine: every container and network with tether's
//! label (a run removes its own at its end; a killed run cannot), and tether's images
//! (kept on purpose: they are the build cache).

use super::{MANAGED_LABEL, engine};
use anyhow::{Context, Result};
use std::collections::HashMap;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};

/// tether's things on the engine, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Containers (running or not), by name.
    pub containers: Vec<String>,
    /// Networks, by name.
    pub networks: Vec<String>,
    /// Images, as `repository:tag`.
    pub images: Vec<String>,
}

impl Leftovers {
    /// No container or network is left (images are a cache, not leftovers).
    pub fn is_clean(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty()
    }
}

fn label_filter() -> HashMap<&'static str, Vec<String>> {
    HashMap::from([("label", vec![format!("{MANAGED_LABEL}=true")])])
}

/// Lists tether's containers, networks and images.
pub async fn find() -> Result<Leftovers> {
    let docker = engine()?;
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&label_filter())
                .build(),
        ))
        .await
        .context("cannot list containers")?
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.into_iter().next()?;
            Some(name.trim_start_matches('/').to_string())
        })
        .collect();
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new()
                .filters(&label_filter())
                .build(),
        ))
        .await
        .context("cannot list networks")?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new()
                .filters(&label_filter())
                .build(),
        ))
        .await
        .context("cannot list images")?
        .into_iter()
        .flat_map(|i| i.repo_tags)
        .filter(|tag| tag != "<none>:<none>")
        .collect();
    Ok(Leftovers {
        containers,
        networks,
        images,
    })
}

/// Removes tether's containers (stopping them) and networks, and with `images` its
/// images too. Returns what was there before.
pub async fn clean(images: bool) -> Result<Leftovers> {
    let docker = engine()?;
    let found = find().await?;
    for name in &found.containers {
        docker
            .remove_container(
                name,
                Some(
                    RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
            .with_context(|| format!("cannot remove container {name}"))?;
    }
    // Networks after their containers: a network in use cannot go.
    for name in &found.networks {
        docker
            .remove_network(name)
            .await
            .with_context(|| format!("cannot remove network {name}"))?;
    }
    if images {
        for reference in &found.images {
            docker
                .remove_image(
                    reference,
                    Some(RemoveImageOptionsBuilder::new().force(true).build()),
                    None,
                )
                .await
                .with_context(|| format!("cannot remove image {reference}"))?;
        }
    }
    Ok(found)
}
