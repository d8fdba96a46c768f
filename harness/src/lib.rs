//! tether: proves an Envoy service mesh keeps working when the link between an edge rack
//! and its control plane breaks, and measures its proxies while it happens.
//!
//! Data flows one way through the modules, in this order:
//!
//! - [`suite`]: the YAML suite language, parsed and validated into a [`suite::Plan`].
//! - [`mesh`]: the App Mesh-shaped resource model and its translation to Envoy resources.
//! - [`control_plane`]: the reference ADS server Envoys fetch their config from.
//! - [`envoy`]: finding or installing Envoy, its bootstrap, its admin endpoint.
//! - [`faults`]: the Toxiproxy-compatible fault proxy (server and client) on the links,
//!   the packet-level link (two network namespaces joined by a veth pair), and the
//!   faults on containers (disconnect, pause, restart) the Docker backend makes.
//! - [`service`]: the sample HTTP service that answers with its own name.
//! - [`backend`]: brings a plan up as a running [`topology`]: child processes, or
//!   containers on two Docker networks from images built on this machine.
//! - [`load`]: the load generator that drives requests through the sidecars.
//! - [`journeys`]: goose user journeys across two mesh services.
//! - [`observe`]: samples each Envoy's admin endpoint onto the timeline.
//! - [`timeline`]: the one append-only record of a run, streamed to disk.
//! - [`run`]: carries out a plan's phases, faults and mesh changes against a topology.
//! - [`checks`]: judge the timeline and give verdicts, and read each phase's figures
//!   off it; they never talk to processes.
//! - [`report`]: render verdicts (console, `result.json`, `junit.xml`, `summary.yaml`,
//!   `report.html`, and comparisons).
//! - [`compare`]: a candidate's runs against a baseline's, check by check and figure by
//!   figure, changes flagged beyond the run-to-run noise.
//! - [`bench`]: `tether bench`, tether's generator against wrk (a benchmark, not a test).
//! - [`cli`]: the `tether` command line, including the roles the binary plays as a child
//!   process (control plane, fault proxy, sample service).

pub mod backend;
pub mod bench;
pub mod checks;
pub mod cli;
pub mod compare;
pub mod control_plane;
pub mod envoy;
pub mod faults;
pub mod journeys;
pub mod load;
pub mod mesh;
pub mod observe;
pub mod report;
pub mod run;
pub mod service;
pub mod suite;
pub mod timeline;
pub mod topology;
