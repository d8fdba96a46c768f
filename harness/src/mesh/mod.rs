//! The mesh: an App Mesh-shaped resource model and its translation to Envoy resources.

pub mod model;
pub mod render;
pub mod translate;
mod validate;

pub use model::Mesh;
pub use translate::{Resources, translate};
