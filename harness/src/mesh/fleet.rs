//! Fleets: one virtual node written once with `fleet: N` stands for N numbered copies
//! (`client` with `fleet: 500` is `client-001` to `client-500`), so a mesh of hundreds of
//! sidecars is a few lines. A mesh is expanded as it is loaded, so the suite, the control
//! plane and the checks all see the members; a suite places a whole fleet by its name.

use super::Mesh;
use crate::source::InputError;
use marked_yaml::Spanned;
use std::path::Path;

/// The most members a fleet may have.
pub const MAX_FLEET: u32 = 10_000;

impl Mesh {
    /// Replace every node written with `fleet: N` by its N members, each a copy of it
    /// named `<name>-<number>` (numbers as wide as N's), and remember the fleet's members.
    pub(super) fn expand_fleets(&mut self, path: &Path) -> Result<(), InputError> {
        let mut nodes = Vec::with_capacity(self.virtual_nodes.len());
        for node in std::mem::take(&mut self.virtual_nodes) {
            let Some(count) = node.fleet.clone() else {
                nodes.push(node);
                continue;
            };
            if !(1..=MAX_FLEET).contains(&*count) {
                return Err(InputError::spanned(
                    path,
                    &count,
                    format!(
                        "expected a fleet of 1 to {MAX_FLEET} nodes, found {}",
                        *count
                    ),
                ));
            }
            let width = count.to_string().len();
            let members: Vec<String> = (1..=*count)
                .map(|i| format!("{}-{i:0width$}", *node.name))
                .collect();
            for name in &members {
                let mut member = node.clone();
                member.name = Spanned::new(*node.name.span(), name.clone());
                member.fleet = None;
                nodes.push(member);
            }
            self.fleets.insert(node.name.to_string(), members);
        }
        self.virtual_nodes = nodes;
        Ok(())
    }

    /// The members of the fleet called `name`, if it is one.
    pub fn fleet(&self, name: &str) -> Option<&[String]> {
        self.fleets.get(name).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Mesh, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.yaml");
        std::fs::write(&path, text).unwrap();
        Mesh::load(&path)
    }

    const MESH: &str = "mesh: { name: fleet }
virtualNodes:
  - name: client
    fleet: 12
    backends: [svc.local]
  - name: svc
    listeners: [{ port: 8080, protocol: http }]
virtualServices:
  - name: svc.local
    provider: { virtualNode: svc }
";

    #[test]
    fn a_fleet_is_its_numbered_members_each_a_copy_of_the_node() {
        let mesh = load(MESH).unwrap();
        let members = mesh.fleet("client").unwrap();
        assert_eq!(members.len(), 12);
        assert_eq!(
            (members[0].as_str(), members[11].as_str()),
            ("client-01", "client-12")
        );
        let names: Vec<&str> = mesh.virtual_nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names.len(), 13);
        assert!(!names.contains(&"client"));
        let member = mesh.node("client-07").unwrap();
        assert_eq!(*member.backends[0], "svc.local");
        assert_eq!(member.fleet, None);
        assert_eq!(mesh.fleet("svc"), None);
    }

    #[test]
    fn a_fleet_of_none_or_too_many_is_refused_where_it_is_written() {
        for count in ["0", "10001"] {
            let err = load(&MESH.replace("fleet: 12", &format!("fleet: {count}")))
                .unwrap_err()
                .to_string();
            assert!(err.contains(":4:12"), "{err}");
            assert!(
                err.contains("expected a fleet of 1 to 10000 nodes"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_member_named_like_another_node_is_a_duplicate() {
        let text = MESH.replace(
            "  - name: svc\n",
            "  - name: client-03\n    backends: []\n  - name: svc\n",
        );
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("client-03"), "{err}");
    }
}
