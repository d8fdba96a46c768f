//! The end-to-end tests' own test harness, on `libtest-mimic`: the command line, output
//! and exit code of `cargo test`'s, plus two things the built-in one cannot do.
//!
//! - **What a test needs is known before it runs.** Each test names the parts of the
//!   machine it needs ([`Need`]: Envoy, a Docker engine, packet links, Chromium,
//!   pdftoppm). One
//!   that is missing makes the test *ignored* when the tests are listed, with the reason
//!   on stderr, so `cargo test` shows it as ignored and `cargo nextest run` as skipped,
//!   never as passed. Under `CI=true` nothing is ignored: the test runs and fails, saying
//!   what is missing, because CI must run every test.
//! - **Each test runs in a process of its own**, this binary run again for that one test
//!   (as nextest runs every test): its output is kept and shown only if it fails, as
//!   `cargo test` does, and tests that start Envoy, containers or namespaces (`alone`)
//!   run one at a time while the light ones run beside each other. Under nextest, or with
//!   `--nocapture`, tests run in this process instead (nextest has started one per test
//!   already, and keeps its end-to-end group one at a time: `.config/nextest.toml`).

use std::collections::HashMap;
use std::process::{Command, ExitCode};
use std::sync::Mutex;

use libtest_mimic::{Arguments, Failed, Trial};

/// Set in a test's own process, so that it runs the test instead of starting another.
const CHILD: &str = "TETHER_TEST_CHILD";

/// A part of the machine a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Need {
    /// Real Envoy, found or installed as `tether run` would.
    Envoy,
    /// A Docker engine that answers.
    Docker,
    /// Root and `ip netns`, for a packet-level link.
    PacketLinks,
    /// `chromium` on PATH (ci/test installs it).
    Chromium,
    /// `pdftoppm` on PATH, to look at printed pages (ci/test installs poppler-utils).
    Pdftoppm,
}

impl Need {
    /// Why this machine cannot meet the need, or `None` when it can.
    fn missing(self) -> Option<String> {
        match self {
            Need::Envoy => tether::envoy::provision::find_or_install(None)
                .err()
                .map(|e| format!("Envoy could not be found or installed: {e:#}")),
            Need::Docker => docker_missing(),
            Need::PacketLinks => packet_links_missing(),
            Need::Chromium => super::chromium()
                .is_none()
                .then(|| "`chromium` is not on PATH (ci/test installs it)".to_string()),
            Need::Pdftoppm => super::on_path("pdftoppm")
                .is_none()
                .then(|| "`pdftoppm` is not on PATH (ci/test installs poppler-utils)".to_string()),
        }
    }
}

fn docker_missing() -> Option<String> {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "no Docker engine answers: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("no `docker` CLI: {e}")),
    }
}

fn packet_links_missing() -> Option<String> {
    use tether::faults::packet::{PacketLink, PacketLinkError, unique_prefix};
    match PacketLink::create(&unique_prefix("tetherprobe")) {
        Ok(_) => None,
        Err(PacketLinkError::Unavailable(reason)) => Some(format!(
            "a packet-level link needs root and `ip netns`: {reason}"
        )),
        Err(e) => Some(format!("creating a packet link failed: {e}")),
    }
}

/// One test: its name, what it needs, and its body (which passes unless it panics).
pub struct Test {
    name: &'static str,
    needs: Vec<Need>,
    alone: bool,
    body: Box<dyn FnOnce() + Send>,
}

impl Test {
    /// A test that needs nothing and may run beside others.
    pub fn new(name: &'static str, body: impl FnOnce() + Send + 'static) -> Self {
        Test {
            name,
            needs: Vec::new(),
            alone: false,
            body: Box::new(body),
        }
    }

    /// What the test needs; a test that needs any of them also runs [`alone`](Self::alone).
    pub fn needs(mut self, needs: &[Need]) -> Self {
        self.needs.extend_from_slice(needs);
        self.alone = true;
        self
    }

    /// The test runs while no other `alone` test of this binary does (its timing or
    /// the machine's shared state would disturb, or be disturbed by, another).
    pub fn alone(mut self) -> Self {
        self.alone = true;
        self
    }
}

/// `case!(name)` is `Test::new(stringify!(name), name)`, for a plain `fn name()`, or with `async` for an
/// `async fn name()` run on a two-worker Tokio runtime (as `#[tokio::test(flavor =
/// "multi_thread", worker_threads = 2)]` would).
#[macro_export]
macro_rules! case {
    (async $name:ident) => {
        $crate::common::harness::Test::new(stringify!($name), || {
            $crate::common::harness::block_on($name())
        })
    };
    ($name:ident) => {
        $crate::common::harness::Test::new(stringify!($name), $name)
    };
}

/// Run `future` to its end on a fresh two-worker Tokio runtime.
pub fn block_on<F: std::future::Future<Output = ()>>(future: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
        .block_on(future)
}

/// Held by the `alone` test that is running.
static ALONE: Mutex<()> = Mutex::new(());

/// The harness's `main`: list, filter and run `tests` as `cargo test` would.
pub fn main(tests: Vec<Test>) -> ExitCode {
    let args = Arguments::from_args();
    let in_process = args.nocapture || std::env::var_os(CHILD).is_some();
    let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut missing: HashMap<Need, Option<String>> = HashMap::new();
    let mut trials = Vec::new();
    for test in tests {
        if !selected(&args, test.name) {
            trials.push(Trial::test(test.name, || Ok(())));
            continue;
        }
        let why = test.needs.iter().find_map(|need| {
            missing
                .entry(*need)
                .or_insert_with(|| need.missing())
                .clone()
        });
        trials.push(trial(test, why, in_process, under_ci, args.list));
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// Whether the command line's filters keep `name` (so that needs are checked only for
/// the tests that will run).
fn selected(args: &Arguments, name: &str) -> bool {
    let matches = |filter: &str| {
        if args.exact {
            name == filter
        } else {
            name.contains(filter)
        }
    };
    args.filter.as_deref().is_none_or(matches) && !args.skip.iter().any(|s| matches(s))
}

/// The trial for `test`, `why` being what this machine lacks for it, if anything.
fn trial(test: Test, why: Option<String>, in_process: bool, ci: bool, list: bool) -> Trial {
    let Test {
        name, alone, body, ..
    } = test;
    match why {
        Some(why) if ci => Trial::test(name, move || {
            Err(format!("CI=true and this test cannot run here: {why}").into())
        }),
        Some(why) => {
            if !list {
                say_skipped(name, &why);
            }
            Trial::test(name, move || Err(format!("cannot run here: {why}").into()))
                .with_ignored_flag(true)
        }
        None if in_process => Trial::test(name, move || {
            let _turn = alone.then(|| ALONE.lock().unwrap_or_else(|e| e.into_inner()));
            body();
            Ok(())
        }),
        None => Trial::test(name, move || in_own_process(name, alone)),
    }
}

/// A loud line on stderr: an ignored test says why only here.
fn say_skipped(name: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "*** SKIPPED (shown as ignored): {name}: {why}"
    );
}

/// Run test `name` in a process of its own (this binary again), keeping its output and
/// giving it back only if the test fails.
fn in_own_process(name: &str, alone: bool) -> Result<(), Failed> {
    let _turn = alone.then(|| ALONE.lock().unwrap_or_else(|e| e.into_inner()));
    let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args([name, "--exact", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .map_err(|e| format!("cannot start the test's own process: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "the test's process ended with {}; its output:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .into())
}
