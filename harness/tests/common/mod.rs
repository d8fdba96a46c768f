//! Shared pieces of the end-to-end tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tether::envoy::{EnvoyBinary, provision};

pub mod harness;

/// The repository root.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The `tether` binary cargo built for these tests.
pub fn tether_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tether"))
}

/// Envoy, found or installed as `tether run` would. The harness has checked that it can
/// be had before a test that needs it ([`harness::Need::Envoy`]) runs.
pub fn envoy() -> EnvoyBinary {
    provision::find_or_install(None).unwrap_or_else(|e| panic!("Envoy: {e:#}"))
}

/// Chromium on PATH, if it is there.
pub fn chromium() -> Option<PathBuf> {
    on_path("chromium")
}

/// The program `name` on PATH, if it is there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// Processes whose parent is this test process (the run's children, if any leaked).
pub fn live_children() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses): state, ppid, ...
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1) == Some(&me.as_str()) && fields.first() != Some(&"Z") {
            let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
            found.push(cmdline.replace('\0', " "));
        }
    }
    found
}

/// Processes anywhere started by the run whose report folder is `report_dir` (every
/// child of a run carries its work folder in `TETHER_RUN_DIR`).
pub fn processes_of_run(report_dir: &Path) -> Vec<String> {
    let marker = format!(
        "{}={}",
        tether::backend::process::RUN_MARKER,
        report_dir.join("work").display()
    );
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes())
        {
            let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
            found.push(cmdline.replace('\0', " "));
        }
    }
    found
}

/// Run a bundled suite end to end against real Envoy into `dir`. Asserts that nothing the
/// run started outlives it.
pub async fn run_suite(suite: &str, dir: &Path) -> tether::run::Outcome {
    let plan = tether::suite::load(&repo(suite)).unwrap_or_else(|e| panic!("{e}"));
    run_plan(&plan, dir).await
}

/// Run a loaded (and perhaps adjusted) plan, as [`run_suite`] does.
pub async fn run_plan(plan: &tether::plan::Plan, dir: &Path) -> tether::run::Outcome {
    run_plan_on(plan, dir, tether::backend::Backend::Process).await
}

/// Run a plan on `backend`, as [`run_suite`] does.
pub async fn run_plan_on(
    plan: &tether::plan::Plan,
    dir: &Path,
    backend: tether::backend::Backend,
) -> tether::run::Outcome {
    let envoy = envoy();
    let opts = tether::run::RunOptions {
        envoy_bin: Some(envoy.path),
        tether_bin: Some(tether_bin()),
        backend,
        ..tether::run::RunOptions::new(dir)
    };
    let outcome = tether::run::run(plan, &opts)
        .await
        .unwrap_or_else(|e| panic!("environment: {e}"));
    assert_eq!(
        live_children(),
        Vec::<String>::new(),
        "processes outlived the run"
    );
    assert_eq!(
        processes_of_run(dir),
        Vec::<String>::new(),
        "processes outlived the run"
    );
    check_run_folder(dir, &outcome);
    // A negative control fails what its suite says it exists to fail, as a sign-off
    // (`tether run --with-negative`) counts it.
    if let Err(e) = tether::checks::failed_as_expected(
        tether::checks::judged(&outcome.verdicts),
        &plan.expect_failing,
    ) {
        panic!("negative control {}: {e}", plan.name);
    }
    if plan.expect_stopped {
        assert!(
            outcome.stopped.is_some(),
            "negative control {}: its stop condition was expected to end it",
            plan.name
        );
    }
    outcome
}

/// The folder of a finished run: its result.json matches the schema, and judging the folder
/// again (as `tether report` does) gives the run's own verdicts.
pub fn check_run_folder(dir: &Path, outcome: &tether::run::Outcome) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("harness/schema/result.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&result)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "result.json: {errors:#?}");
    let (info, verdicts, _) = tether::run::folder::judge(dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !info.incomplete,
        "a finished run's timeline ends with run_ended"
    );
    assert_eq!(verdicts, outcome.verdicts, "judged again from its folder");
}

/// Bring up the topology of a test suite in a fresh folder, without running its phases.
/// The control plane's log goes onto `timeline`. Keep the folder alive as long as the topology.
pub async fn bring_up(
    suite: &str,
    timeline: &tether::timeline::Timeline,
) -> (tether::backend::RunningTopology, tempfile::TempDir) {
    bring_up_on(suite, None, timeline).await
}

/// [`bring_up`], with every sidecar on `xds` when given (as `tether run --xds` does).
pub async fn bring_up_on(
    suite: &str,
    xds: Option<tether::plan::XdsVariant>,
    timeline: &tether::timeline::Timeline,
) -> (tether::backend::RunningTopology, tempfile::TempDir) {
    let envoy = envoy();
    let mut plan = tether::suite::load(&repo(suite)).unwrap_or_else(|e| panic!("{e}"));
    if let Some(variant) = xds {
        plan.force_xds_variant(variant);
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = tether::backend::BackendOptions {
        tether_bin: tether_bin(),
        envoy,
        work_dir: dir.path().join("work"),
        ready_timeout: std::time::Duration::from_secs(60),
        fault_proxy: tether::faults::FaultProxy::choose(Default::default()).unwrap(),
        backend: tether::backend::Backend::Process,
        target: None,
    };
    let topo = tether::backend::RunningTopology::up(&plan, &opts, timeline)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (topo, dir)
}

/// Network namespaces and host interfaces a run made (`tether*`) that are still there
/// after `wait`: the kernel removes a deleted namespace's interfaces a moment later.
pub fn leftover_links(wait: std::time::Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let list = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| {
                    let name = l.split([' ', ':', '@']).find(|w| w.starts_with("tether"))?;
                    Some(name.to_string())
                })
                .collect::<Vec<_>>()
        };
        let mut left = list(&["netns", "list"]);
        left.extend(list(&["-o", "link", "show"]));
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A sample service called `outside` on loopback, outside any mesh, stopped when the
/// token is cancelled: where a sidecar's egress filter lets a caller reach, or not.
pub async fn outside_service() -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(tether::service::serve(
        "outside".into(),
        None,
        listener,
        stop.clone(),
    ));
    (addr, stop)
}

/// `junit.xml`, parsed as a JUnit reader parses it (quick-junit's deserializer: counts
/// and times as the attributes say, not recomputed).
pub fn read_junit(path: &Path) -> quick_junit::Report {
    let text = std::fs::read_to_string(path).unwrap();
    quick_junit::Report::deserialize_from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Run headless Chromium on `page` with `args`, killed after 90 s; (stdout, stderr).
pub fn headless(chromium: &Path, profile: &Path, page: &Path, args: &[String]) -> (String, String) {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).map(|_| s)
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (
        out.join().unwrap().unwrap_or_default(),
        err.join().unwrap().unwrap_or_default(),
    )
}

/// A screenshot of `page` into `shot` by headless Chromium, which must be a real PNG;
/// Chromium's stderr.
pub fn screenshot(chromium: &Path, profile: &Path, page: &Path, shot: &Path) -> String {
    let (_, stderr) = headless(
        chromium,
        profile,
        page,
        &[format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {stderr}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    stderr
}

/// The console errors Chromium's log shows.
pub fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("Uncaught") || l.contains("ERROR:CONSOLE"))
        .collect()
}
