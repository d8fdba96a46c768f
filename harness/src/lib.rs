//! tether: proves an Envoy service mesh keeps working when the link between an edge rack
//! and its control plane breaks, and measures its proxies while it happens.
//!
//! Data flows one way through the modules, in the order they are declared below; a
//! module imports only modules above it (a test in this file checks it):
//!
//! - [`source`]: reading YAML with positions, so every error names file, line, column.
//! - [`mesh`]: the App Mesh-shaped resource model and its validation.
//! - [`plan`]: the vocabulary every later stage reads (sites, link faults, container
//!   faults, mesh changes, xDS settings, load, checks, disruptions) and the
//!   [`plan::Schedule`]: a plan and a seed as timed operations, computed up front.
//! - [`suite`]: the YAML suite language, parsed and validated into a [`plan::Plan`].
//! - [`target`]: a deployment tether did not start (a rack), as a target file names it:
//!   sidecars by address, where load enters, the control plane, each link's actuator.
//! - [`topology`]: which node runs on which site, at which addresses.
//! - [`timeline`]: the one append-only record of a run, streamed to disk; every part
//!   that observes or acts writes into it.
//! - [`envoy`]: finding or installing Envoy, its bootstrap, its admin endpoint.
//! - [`service`]: the sample HTTP/gRPC service that answers with its own name.
//! - [`control_plane`]: the reference ADS server (state of the world and delta), its
//!   change API, and the translation of the mesh to Envoy resources.
//! - [`faults`]: the Toxiproxy-compatible fault proxy (server and client) and the
//!   packet-level link (two network namespaces joined by a veth pair).
//! - [`load`]: the load generator.
//! - [`journeys`]: goose user journeys across two mesh services.
//! - [`observe`]: samples each Envoy's admin endpoint onto the timeline.
//! - [`backend`]: brings a plan up as a running topology (child processes, or
//!   containers on two Docker networks) and provides the actuators (link faults,
//!   container faults, the control plane, load) the interpreter calls.
//! - [`checks`]: judge the timeline and give verdicts; they never talk to processes.
//! - [`result`]: a run's result as one typed model (`result.json`), with its schema.
//! - [`compare`]: a candidate's runs against a baseline's, beyond the run-to-run noise.
//! - [`signoff`]: a release's suites, each judged from its run folders (and against the
//!   last release's), as one verdict to sign.
//! - [`report`]: render verdicts (console, `result.json`, `junit.xml`, `summary.yaml`,
//!   `report.html`, comparisons); they never judge.
//! - [`run`]: a whole run: bring up, carry out the schedule (the interpreter), take
//!   down, judge, report; and run folders judged again.
//! - [`bench`]: `tether bench`, tether's generator against wrk (a benchmark, not a test).
//! - [`cli`]: the `tether` command line, including the roles the binary plays as a child
//!   process (control plane, fault proxy, sample service, journeys).

// Reading the input.
pub mod source;

pub mod mesh;

pub mod plan;

pub mod suite;

pub mod target;

pub mod topology;

// The record everything writes into.
pub mod timeline;

// The parts of a run.
pub mod envoy;

pub mod service;

pub mod control_plane;

pub mod faults;

pub mod load;

pub mod journeys;

pub mod observe;

// Bringing the parts up, and acting on them.
pub mod backend;

// Judging and rendering.
pub mod checks;

pub mod result;

pub mod compare;

pub mod signoff;

pub mod report;

// The whole run, and the commands.
pub mod run;

pub mod bench;

pub mod cli;

#[cfg(test)]
mod layout;
