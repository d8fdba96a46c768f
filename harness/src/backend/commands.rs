//! The command lines of the four parts a run starts (control plane, fault proxy, sample
//! service, Envoy), built in one place for every backend: a child process runs them, a
//! container runs them as its command.

use crate::plan::Plan;
use anyhow::Result;
use std::net::SocketAddr;
use std::path::Path;

/// `tether control-plane`: serving `mesh` to the nodes of `placement_file`, xDS on
/// `xds`, its admin API on `admin`, its state kept in `work_dir`.
pub fn control_plane(
    mesh: &Path,
    placement_file: &Path,
    work_dir: &Path,
    xds: SocketAddr,
    admin: SocketAddr,
) -> Vec<String> {
    vec![
        "control-plane".into(),
        "--mesh".into(),
        mesh.display().to_string(),
        "--placement".into(),
        placement_file.display().to_string(),
        "--xds-listen".into(),
        xds.to_string(),
        "--admin-listen".into(),
        admin.to_string(),
        "--state".into(),
        work_dir
            .join("control-plane-state.json")
            .display()
            .to_string(),
    ]
}

/// The fault proxy serving its Toxiproxy API on `api`: `tether fault-proxy`, or the
/// arguments of Shopify's `toxiproxy-server` (its binary or image) with `toxiproxy`.
pub fn fault_proxy(toxiproxy: bool, api: SocketAddr) -> Vec<String> {
    if toxiproxy {
        vec![
            "-host".into(),
            api.ip().to_string(),
            "-port".into(),
            api.port().to_string(),
        ]
    } else {
        vec!["fault-proxy".into(), "--listen".into(), api.to_string()]
    }
}

/// `tether service`: the sample service of virtual node `name` on `listen`, calling
/// other services through its sidecar's `egress`.
pub fn service(name: &str, listen: SocketAddr, egress: SocketAddr) -> Vec<String> {
    vec![
        "service".into(),
        "--name".into(),
        name.into(),
        "--listen".into(),
        listen.to_string(),
        "--egress".into(),
        egress.to_string(),
    ]
}

/// Writes the bootstrap of `node`'s Envoy (admin at `admin`, the control plane at
/// `xds`) into `work_dir`; the arguments Envoy starts with.
pub fn envoy(
    plan: &Plan,
    work_dir: &Path,
    node: &str,
    admin: SocketAddr,
    xds: SocketAddr,
) -> Result<Vec<String>> {
    let config = crate::envoy::bootstrap::bootstrap(
        &plan.mesh.node_id(node),
        admin,
        xds,
        &plan.xds_for(node),
    );
    let config_file = work_dir.join(format!("envoy-{node}.json"));
    std::fs::write(&config_file, serde_json::to_vec_pretty(&config)?)?;
    Ok(vec![
        "-c".into(),
        config_file.display().to_string(),
        "--disable-hot-restart".into(),
        "--concurrency".into(),
        "1".into(),
        "--log-level".into(),
        "warn".into(),
    ])
}
