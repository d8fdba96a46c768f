//! The suite language: YAML to [`Plan`], and nothing else.
//!
//! [`load`] parses a suite file ([`schema`]: its shapes as written), checks it and the
//! mesh it names ([`validate`], by section), and lowers it into a plan ([`lower`]); every
//! error names file, line and column. Only `run` and `cli` read suites; everything else
//! reads the [`Plan`].

mod lower;
pub mod schema;
mod validate;

use crate::mesh::Mesh;
use crate::plan::Plan;
use crate::source::{self, InputError};
use marked_yaml::Spanned;
use std::path::Path;

/// Parse and validate the suite at `path` and the mesh it names.
pub fn load(path: &Path) -> Result<Plan, InputError> {
    load_with_mesh(path, None)
}

/// Parse and validate the suite at `path` with the mesh at `mesh` instead of the one its
/// `mesh:` names (when `Some`): a run folder keeps both files side by side.
pub fn load_with_mesh(path: &Path, mesh: Option<&Path>) -> Result<Plan, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::file(path, format!("cannot read suite: {e}")))?;
    let mut suite: schema::Suite = source::parse(path, &text)?;
    let mesh_path = match mesh {
        Some(mesh) => mesh.to_path_buf(),
        None => path
            .parent()
            .unwrap_or(Path::new("."))
            .join(suite.mesh.as_str()),
    };
    if !mesh_path.is_file() {
        return Err(InputError::spanned(
            path,
            &suite.mesh,
            format!("mesh file `{}` not found", mesh_path.display()),
        ));
    }
    let mesh = Mesh::load(&mesh_path)?;
    place_fleets(&mut suite.topology, &mesh);
    validate::validate(path, &suite, &mesh)?;
    lower::plan(
        suite,
        lower::Sources {
            suite_path: path.to_path_buf(),
            suite_text: text,
            mesh_path,
            mesh,
        },
    )
}

/// A fleet placed by its name is placed as its members, each at the fleet's name in the
/// suite (see [`Mesh::fleet`]).
fn place_fleets(topology: &mut schema::Topology, mesh: &Mesh) {
    for site in [&mut topology.outpost, &mut topology.region] {
        *site = std::mem::take(site)
            .into_iter()
            .flat_map(|n| match mesh.fleet(&n) {
                Some(members) => members
                    .iter()
                    .map(|m| Spanned::new(*n.span(), m.clone()))
                    .collect(),
                None => vec![n],
            })
            .collect();
    }
}

#[cfg(test)]
mod tests;
