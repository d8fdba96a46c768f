//! Keeping the CPUs out of their sleep states while the benchmark measures.
//!
//! On a virtual machine an idle CPU halts, and waking a halted virtual CPU takes the host
//! tens to hundreds of microseconds. A closed loop keeps both cores busy and never pays
//! it; an open loop at 100 requests a second idles for 10 ms between requests and pays
//! it for every one, on the target's side and on the tool's. Measured on this project's
//! CI machine kind, `wrk -c1` answered in 73 µs with the CPUs allowed to halt and in
//! 23 µs without. Latency benchmarks hold them out of it (cyclictest and tuned's
//! `latency-performance` profile do it the same way): writing 0 to
//! `/dev/cpu_dma_latency` and keeping the file open asks the kernel's PM QoS for no exit
//! latency, so its idle loop polls instead of halting. The request ends when the file
//! is closed, which the kernel does when this process ends, however it ends.

use std::io::Write;

/// How the CPUs idle while the benchmark runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuIdle {
    /// Poll, never halt: `/dev/cpu_dma_latency` held at 0 (the default).
    #[default]
    Poll,
    /// As the machine is configured.
    AsIs,
}

/// The request for polling idle, held while this lives.
pub(super) struct IdleHold {
    /// The open request (none when not asked for or refused); closing it ends it.
    pub(super) file: Option<std::fs::File>,
    /// What the CPUs did, in words (for the figures).
    pub(super) described: String,
}

impl IdleHold {
    /// Hold the CPUs as `how` says; if polling cannot be asked for, say why and go on
    /// as configured.
    pub(super) fn new(how: CpuIdle) -> IdleHold {
        let configured = configured();
        if how == CpuIdle::AsIs {
            return IdleHold {
                file: None,
                described: format!("as configured ({configured})"),
            };
        }
        let held = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/cpu_dma_latency")
            .and_then(|mut f| f.write_all(&0i32.to_ne_bytes()).map(|()| f));
        match held {
            Ok(file) => IdleHold {
                file: Some(file),
                described: format!(
                    "polling: /dev/cpu_dma_latency held at 0 µs ({configured} otherwise)"
                ),
            },
            Err(e) => {
                eprintln!(
                    "bench: cannot hold /dev/cpu_dma_latency at 0 ({e}); the CPUs idle as configured, so open-loop latencies include their wake-ups"
                );
                IdleHold {
                    file: None,
                    described: format!("as configured ({configured}): /dev/cpu_dma_latency: {e}"),
                }
            }
        }
    }
}

/// The machine's cpuidle driver and governor, e.g. `cpuidle haltpoll/haltpoll`.
fn configured() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/devices/system/cpu/cpuidle/{name}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "none".into())
    };
    format!(
        "cpuidle driver {}, governor {}",
        read("current_driver"),
        read("current_governor")
    )
}
