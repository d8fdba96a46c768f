//! The mesh: an App Mesh-shaped resource model, read from YAML and validated (every
//! error with file, line and column). Its translation to Envoy resources is the control
//! plane's.

mod fleet;
pub mod model;
mod validate;

pub use fleet::MAX_FLEET;

pub use model::Mesh;
