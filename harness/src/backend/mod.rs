//! Backends bring a [`Plan`](crate::suite::Plan) up as a running topology and take it down:
//! the process backend runs every part as a child process, on 127.0.0.1 or in its site's
//! network namespace; the Docker backend runs every part as a container on its site's
//! Docker network ([`docker::topology`]).

pub mod docker;
pub mod links;
pub mod process;

pub use process::{BackendOptions, RunningTopology};

/// Where a run's parts run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// Child processes of tether.
    #[default]
    Process,
    /// Containers on two Docker networks, from images built on this machine (or
    /// official ones a suite names).
    Docker,
}

impl Backend {
    /// The name a user types (`process`, `docker`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Process => "process",
            Backend::Docker => "docker",
        }
    }
}
