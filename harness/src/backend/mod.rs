//! Backends bring a [`Plan`](crate::suite::Plan) up as a running topology and take it down.
//! Only the process backend exists so far: every part is a child process, on 127.0.0.1
//! or in its site's network namespace.

pub mod docker;
pub mod links;
pub mod process;

pub use process::{BackendOptions, RunningTopology};
