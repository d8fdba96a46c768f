//! The run's two Docker networks, and what killed runs left on the engine.

use super::topology::RUN_LABEL;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::Path;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};

/// Two /24 subnets (region, outpost) no other network uses, as networks made with them.
pub(super) async fn make_networks(
    docker: &Docker,
    prefix: &str,
    labels: &HashMap<String, String>,
) -> Result<[(String, [u8; 3]); 2]> {
    let mut made: Vec<(String, [u8; 3])> = Vec::new();
    let start = (std::process::id() % 200) as u8;
    for attempt in 0..200u8 {
        if made.len() == 2 {
            break;
        }
        let third = start.wrapping_add(attempt.wrapping_mul(7)) % 250;
        let base = [10, 213, third];
        // Numbered so the region's sorts first: the engine publishes a container's
        // ports on its first network by name, and the fault proxy's API must stay
        // reachable while the proxy is cut off the outpost's.
        let site = if made.is_empty() {
            "1-region"
        } else {
            "2-outpost"
        };
        let name = format!("{prefix}-{site}");
        let created = docker
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels.clone()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(format!("10.213.{third}.0/24")),
                        gateway: Some(format!("10.213.{third}.1")),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        match created {
            Ok(_) => made.push((name, base)),
            // Taken by another network: try the next subnet.
            Err(e) if e.to_string().contains("overlap") => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create network {name}")),
        }
    }
    match <[(String, [u8; 3]); 2]>::try_from(made) {
        Ok(both) => Ok(both),
        Err(made) => {
            for (name, _) in made {
                let _ = docker.remove_network(&name).await;
            }
            bail!("no free 10.213.x.0/24 subnet for the run's networks")
        }
    }
}

/// Removes containers and networks whose harness process is gone (killed runs).
pub(super) async fn remove_stale(docker: &Docker) {
    let filters = HashMap::from([("label", vec![RUN_LABEL.to_string()])]);
    let alive = |labels: Option<&HashMap<String, String>>| {
        labels
            .and_then(|l| l.get(RUN_LABEL))
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    };
    if let Ok(containers) = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
    {
        for c in containers.iter().filter(|c| !alive(c.labels.as_ref())) {
            if let Some(id) = &c.id {
                let _ = docker
                    .remove_container(
                        id,
                        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                    )
                    .await;
            }
        }
    }
    if let Ok(networks) = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
    {
        for n in networks.iter().filter(|n| !alive(n.labels.as_ref())) {
            if let Some(name) = &n.name {
                let _ = docker.remove_network(name).await;
            }
        }
    }
}
