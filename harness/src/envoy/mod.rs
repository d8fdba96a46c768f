//! Envoy, the system under test: where its binary comes from, the bootstrap it starts
//! with, and its admin endpoint.

pub mod admin;
pub mod bootstrap;
pub mod provision;

pub use admin::AdminClient;

pub use provision::EnvoyBinary;
