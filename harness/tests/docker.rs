//! The Docker backend's groundwork against the real engine: the `tether` and Envoy
//! images built `FROM scratch` on this machine (no registry) and reused, their binaries
//! running and serving inside them, and what a killed run leaves listed by
//! `tether doctor` and removed by `tether clean`.

mod common;

use std::process::Command;

/// `tether ARGS`: (exit code, stdout), stderr echoed to the test log.
fn tether(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(common::tether_bin())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "tether {args:?}:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), stdout)
}

/// `docker ARGS`, which must succeed: its stdout.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The `repository:tag` `tether images` printed for `repository`.
fn reference(stdout: &str, repository: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("image ")?
                .split_once(": ")
                .filter(|(r, rest)| r.starts_with(&format!("{repository}:")) && !rest.is_empty())
                .map(|(r, _)| r.to_string())
        })
        .unwrap_or_else(|| panic!("no {repository} image in:\n{stdout}"))
}

fn images_from_scratch_are_reused_run_their_binaries_and_leftovers_are_cleaned() {
    let envoy = common::envoy();
    let envoy_bin = envoy.path.to_str().unwrap();

    // Built (or found, if an earlier run built the same binaries), then found.
    let (code, first) = tether(&["images", "--envoy-bin", envoy_bin]);
    assert_eq!(code, Some(0), "{first}");
    let (code, again) = tether(&["images", "--envoy-bin", envoy_bin]);
    assert_eq!(code, Some(0));
    assert_eq!(
        again.matches("present, reused").count(),
        2,
        "the second call builds nothing:\n{again}"
    );
    let (tether_image, envoy_image) = (
        reference(&again, "tether/tether"),
        reference(&again, "tether/envoy"),
    );
    assert_eq!(reference(&first, "tether/tether"), tether_image, "same tag");

    // FROM scratch: one layer (the binary and its glibc files), labelled as tether's.
    for image in [&tether_image, &envoy_image] {
        let layers = docker(&[
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            image,
        ]);
        assert_eq!(layers, "1", "{image} has more than its own layer");
        let label = docker(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"io.tether.managed\"}}",
            image,
        ]);
        assert_eq!(label, "true");
    }
    let version = docker(&["run", "--rm", &envoy_image, "--version"]);
    assert!(version.contains("1.40.0"), "{version}");
    let version = docker(&["run", "--rm", &tether_image, "--version"]);
    assert!(version.starts_with("tether "), "{version}");

    // The tether image serves: its fault proxy answers Toxiproxy's API on a mapped port.
    let name = format!("tether-test-fault-proxy-{}", std::process::id());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "io.tether.managed=true",
        "-p",
        "127.0.0.1::8474",
        &tether_image,
        "fault-proxy",
        "--host",
        "0.0.0.0",
    ]);
    let port = docker(&["port", &name, "8474/tcp"]);
    let url = format!("http://{port}/version");
    let answered = (0..50).find_map(|_| {
        let out = Command::new("curl").args(["-sf", &url]).output().ok()?;
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        None
    });
    let answered = answered.unwrap_or_else(|| panic!("no answer from {url}"));
    assert!(answered.contains("version"), "{answered}");

    // What a killed run leaves: that container, and a network with tether's label.
    let network = format!("tether-test-leftover-{}", std::process::id());
    docker(&[
        "network",
        "create",
        "--label",
        "io.tether.managed=true",
        &network,
    ]);
    let (code, doctor) = tether(&["doctor", "--envoy-bin", envoy_bin]);
    assert_eq!(code, Some(0));
    assert!(
        doctor.contains(&name) && doctor.contains(&network),
        "doctor lists the leftovers:\n{doctor}"
    );
    let (code, cleaned) = tether(&["clean"]);
    assert_eq!(code, Some(0));
    assert!(
        cleaned.contains(&name) && cleaned.contains(&network),
        "{cleaned}"
    );
    let (_, doctor) = tether(&["doctor", "--envoy-bin", envoy_bin]);
    assert!(
        doctor.contains("no container or network left by a run"),
        "{doctor}"
    );
    assert_engine_clean("a tether container or network remains");
    // Images stay: they are the cache the next run reuses.
    docker(&["image", "inspect", &tether_image]);

    // A suite naming an image the engine has not got and cannot pull (no registry
    // here) stops before anything starts, saying so.
    let suites = tempfile::tempdir_in(common::repo("suites")).unwrap();
    let suite = suites.path().join("missing-image.yaml");
    let text = std::fs::read_to_string(common::repo("suites/outpost-partition.yaml"))
        .unwrap()
        .replace("mesh: ../", "mesh: ../../");
    std::fs::write(
        &suite,
        text + "images:\n  envoy: tether-test/no-such-envoy:0\n",
    )
    .unwrap();
    let out = Command::new(common::tether_bin())
        .args(["run", suite.to_str().unwrap(), "--backend", "docker"])
        .args(["--envoy-bin", envoy_bin])
        .arg("--report-dir")
        .arg(suites.path().join("report"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("names image tether-test/no-such-envoy:0, which the Docker engine does not have and cannot pull"),
        "{stderr}"
    );
    assert_engine_clean("a run that could not start left something");
}

/// The outpost partition on Docker: the same suite as on processes, the same verdicts;
/// its negative control fails there too; nothing of either run remains on the engine.
async fn the_outpost_partition_and_its_negative_control_on_docker() {
    use tether::backend::Backend;
    let dir = tempfile::tempdir().unwrap();
    let plan = tether::suite::load(&common::repo("suites/outpost-partition.yaml")).unwrap();
    let outcome = common::run_plan_on(&plan, dir.path(), Backend::Docker).await;
    print_verdicts(&outcome);
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(run["backend"], "docker");
    // Each container's output was kept.
    let logs: Vec<String> = std::fs::read_dir(dir.path().join("work/logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(logs.iter().any(|l| l.contains("envoy-client")), "{logs:?}");

    let negative = tempfile::tempdir().unwrap();
    let plan =
        tether::suite::load(&common::repo("suites/negative/data-path-partition.yaml")).unwrap();
    let outcome = common::run_plan_on(&plan, negative.path(), Backend::Docker).await;
    assert_eq!(outcome.exit_code(), 1);
    let traffic = outcome.verdict("outpost_traffic_flows").unwrap();
    assert!(!traffic.passed(), "{traffic:?}");

    assert_engine_clean("a tether container or network outlived the runs");
}

/// A soak on Docker: two short cycles are judged and pass, its memory is sampled from the
/// containers, and the data-cut control's stop condition ends its soak early (exit 5);
/// nothing of either run remains on the engine.
async fn a_soak_and_its_stop_condition_on_docker() {
    use tether::backend::Backend;
    use tether::checks::Outcome;
    let dir = tempfile::tempdir().unwrap();
    let mut plan = tether::suite::load(&common::repo("suites/soak-quick.yaml")).unwrap();
    plan.set_soak_length(tether::plan::SoakLength::Cycles(2));
    let outcome = common::run_plan_on(&plan, dir.path(), Backend::Docker).await;
    print_verdicts(&outcome);
    for v in outcome.verdicts.iter().filter(|v| v.name != "memory_drift") {
        assert!(v.passed(), "{v:#?}");
    }
    let memory = outcome.verdict("memory_drift").unwrap();
    assert_ne!(memory.outcome, Outcome::Unknown, "{}", memory.detail);
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(result["soak"]["cycles_judged"], 2);
    let minute = &result["soak"]["minutes"][0]["memory"];
    assert!(minute["control-plane"].as_u64().unwrap() > 0, "{minute}");

    let negative = tempfile::tempdir().unwrap();
    let plan = tether::suite::load(&common::repo("suites/negative/soak-data-cut.yaml")).unwrap();
    let outcome = common::run_plan_on(&plan, negative.path(), Backend::Docker).await;
    assert_eq!(
        outcome.exit_code(),
        tether::run::exit::STOPPED,
        "{:?}",
        outcome.stopped
    );
    assert_engine_clean("a tether container or network outlived the soaks");
}

/// The faults only Docker gives: the fault proxy cut off the outpost's network, a
/// sidecar restarted during that partition (it must stay not ready until the heal), the
/// control plane paused. The negative control's sidecars give up waiting for config
/// after 2 s, so `restart_waits_for_heal` must fail; it runs an Envoy image the suite
/// names (`images: { envoy: ... }`), found on the engine rather than built.
async fn container_faults_and_their_negative_control_on_docker() {
    use tether::backend::Backend;
    let dir = tempfile::tempdir().unwrap();
    let plan = tether::suite::load(&common::repo("suites/container-faults.yaml")).unwrap();
    let outcome = common::run_plan_on(&plan, dir.path(), Backend::Docker).await;
    print_verdicts(&outcome);
    assert!(outcome.passed(), "{:#?}", outcome.verdicts);
    let waited = outcome.verdict("restart_waits_for_heal").unwrap();
    assert!(waited.measurement("not_ready_ms.svc-v2").unwrap().value > 8_000.0);
    // The faults, as the timeline has them.
    let timeline = std::fs::read_to_string(dir.path().join("timeline.jsonl")).unwrap();
    for said in [
        r#""fault":"disconnect","applied":["#,
        r#""fault":"restart","applied":["#,
        r#""fault":"pause","applied":["#,
        r#""kind":"fault_removed","link":"fault-proxy","fault":"disconnect""#,
        r#""kind":"fault_removed","link":"sidecar/svc-v2","fault":"restart""#,
        r#""kind":"fault_removed","link":"control-plane","fault":"pause""#,
        "disconnected from",
        "killed (SIGKILL)",
    ] {
        assert!(timeline.contains(said), "the timeline never says {said:?}");
    }

    // The negative control, with a named Envoy image: the one tether built, tagged. (Its
    // folder is as deep as the suite's own, so the mesh path still resolves.)
    let envoy_bin = common::envoy().path;
    let (code, images) = tether(&["images", "--envoy-bin", envoy_bin.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{images}");
    let built = reference(&images, "tether/envoy");
    let named = "tether-test/envoy-named:v1.40.0";
    docker(&["tag", &built, named]);
    let suites = tempfile::tempdir_in(common::repo("suites")).unwrap();
    let text = std::fs::read_to_string(common::repo(
        "suites/negative/restart-gives-up-waiting.yaml",
    ))
    .unwrap()
        + &format!("images:\n  envoy: {named}\n");
    let path = suites.path().join("named-image.yaml");
    std::fs::write(&path, text).unwrap();
    let plan = tether::suite::load(&path).unwrap();
    let negative = tempfile::tempdir().unwrap();
    let outcome = common::run_plan_on(&plan, negative.path(), Backend::Docker).await;
    docker(&["rmi", named]);
    print_verdicts(&outcome);
    assert_eq!(outcome.exit_code(), 1);
    let waited = outcome.verdict("restart_waits_for_heal").unwrap();
    assert!(!waited.passed(), "{waited:?}");
    assert!(
        waited.detail.contains("before the heal"),
        "{}",
        waited.detail
    );
    assert!(outcome.verdict("outpost_traffic_flows").unwrap().passed());
    let logs = std::fs::read_dir(negative.path().join("work/logs")).unwrap();
    assert!(logs.count() > 0);

    assert_engine_clean("a tether container or network outlived the runs");
}

/// Fails with `why` if any tether container or network is on the engine.
fn assert_engine_clean(why: &str) {
    assert_eq!(
        tether_containers_and_networks(),
        (String::new(), String::new()),
        "{why}"
    );
}

/// Each verdict of a run, in the test's log.
fn print_verdicts(outcome: &tether::run::Outcome) {
    for v in &outcome.verdicts {
        eprintln!("{:?} {}: {}", v.outcome, v.name, v.detail);
    }
}

/// The tether containers and networks on the engine, by name.
fn tether_containers_and_networks() -> (String, String) {
    (
        docker(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            "label=io.tether.managed=true",
        ]),
        docker(&[
            "network",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            "label=io.tether.managed=true",
        ]),
    )
}

/// `tether run --backend docker` on the outpost partition, into `dir`, once its sidecars
/// run: the child, still running.
fn docker_run_until_up(dir: &std::path::Path, envoy_bin: &str) -> std::process::Child {
    let child = Command::new(common::tether_bin())
        .args([
            "run",
            "suites/outpost-partition.yaml",
            "--backend",
            "docker",
        ])
        .arg("--report-dir")
        .arg(dir)
        .args(["--envoy-bin", envoy_bin])
        .current_dir(common::repo(""))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let timeline = dir.join("timeline.jsonl");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&timeline)
        .unwrap_or_default()
        .contains("\"phase\":\"partition\"")
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the partition never began"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}

/// Ctrl-C takes every container and network of a Docker run down, and its reports are
/// still written; after a SIGKILL, `tether doctor` lists what the run left and the next
/// Docker run removes it.
fn nothing_of_a_docker_run_outlives_ctrl_c_and_a_killed_runs_leftovers_go() {
    let envoy = common::envoy();
    let envoy_bin = envoy.path.to_str().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut child = docker_run_until_up(dir.path(), envoy_bin);
    let (containers, _) = tether_containers_and_networks();
    assert_eq!(containers.lines().count(), 7, "{containers}");
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_engine_clean("left on the engine after Ctrl-C");
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(result["interrupted"], true);
    assert_eq!(result["backend"], "docker");

    // SIGKILL: the run cannot clean up; its containers and networks stay, listed.
    let killed = tempfile::tempdir().unwrap();
    let mut child = docker_run_until_up(killed.path(), envoy_bin);
    child.kill().unwrap();
    child.wait().unwrap();
    let (containers, networks) = tether_containers_and_networks();
    assert_eq!(containers.lines().count(), 7, "{containers}");
    assert_eq!(networks.lines().count(), 2, "{networks}");
    let (_, doctor) = tether(&["doctor", "--envoy-bin", envoy_bin]);
    for name in containers.lines().chain(networks.lines()) {
        assert!(
            doctor.contains(name),
            "doctor does not list {name}:\n{doctor}"
        );
    }
    // The next Docker run removes them as it starts (their harness is gone).
    let next = tempfile::tempdir().unwrap();
    let mut child = docker_run_until_up(next.path(), envoy_bin);
    let (now, _) = tether_containers_and_networks();
    for name in containers.lines() {
        assert!(!now.contains(name), "{name} outlived the next run's start");
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_engine_clean("left on the engine");
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(images_from_scratch_are_reused_run_their_binaries_and_leftovers_are_cleaned)
            .needs(&[Need::Envoy, Need::Docker]),
        case!(async the_outpost_partition_and_its_negative_control_on_docker)
            .needs(&[Need::Envoy, Need::Docker]),
        case!(async a_soak_and_its_stop_condition_on_docker).needs(&[Need::Envoy, Need::Docker]),
        case!(async container_faults_and_their_negative_control_on_docker)
            .needs(&[Need::Envoy, Need::Docker]),
        case!(nothing_of_a_docker_run_outlives_ctrl_c_and_a_killed_runs_leftovers_go)
            .needs(&[Need::Envoy, Need::Docker]),
    ])
}
