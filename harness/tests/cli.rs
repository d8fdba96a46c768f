//! The `tether` command line as a user meets it: bad input, validation, doctor, Ctrl-C.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn tether(args: &[&str]) -> std::process::Output {
    Command::new(common::tether_bin())
        .args(args)
        .current_dir(common::repo(""))
        .output()
        .unwrap()
}

fn validate_accepts_the_bundled_suites() {
    for suite in [
        "suites/outpost-partition.yaml",
        "suites/negative/data-path-partition.yaml",
    ] {
        let out = tether(&["validate", suite]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    }
}

fn a_soaks_length_comes_from_the_command_line_and_only_a_soak_takes_one() {
    let out = tether(&[
        "validate",
        "suites/soak-quick.yaml",
        "--schedule",
        "--cycles",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("a soak of 2 cycles"), "{stdout}");
    assert!(
        stdout.contains("cycle 2 starts, drawn: partition: "),
        "{stdout}"
    );
    assert!(!stdout.contains("cycle 3 starts"), "{stdout}");
    let out = tether(&["validate", "suites/soak.yaml", "--for", "1h"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("a soak of 1h"));
    let out = tether(&["validate", "suites/outpost-partition.yaml", "--for", "1h"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`--for` and `--cycles` apply to a soak"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tether(&[
        "validate",
        "suites/soak.yaml",
        "--for",
        "1h",
        "--cycles",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2), "one length, not two");
}

fn malformed_suites_give_one_line_with_file_line_column_and_exit_2() {
    let dir = tempfile::tempdir_in(common::repo("suites")).unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(common::repo("suites/outpost-partition.yaml")).unwrap();
    std::fs::write(
        &bad,
        text.replace("mesh: ../", "mesh: ../../")
            .replace("link: xds", "link: sattelite"),
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    for command in ["validate", "run"] {
        let out = tether(&[command, bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{command}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {bad}:29:15: unknown link `sattelite`")),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
    let out = tether(&["run", "no-such-suite.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tether(&["run"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

/// A suite that needs the other backend is refused before anything starts, with the
/// line that needs it.
fn a_suite_the_backend_cannot_run_is_refused_with_its_line_and_exit_2() {
    for (args, expected) in [
        (
            [
                "run",
                "suites/container-faults.yaml",
                "--backend",
                "process",
            ],
            "error: suites/container-faults.yaml:31:21: `disconnect: fault-proxy` is a container fault: run this suite with `--backend docker`",
        ),
        (
            ["run", "suites/packet-partition.yaml", "--backend", "docker"],
            "error: suites/packet-partition.yaml:12:7: `link: packet` runs on the process backend only; the Docker backend joins its sites through the fault proxy",
        ),
    ] {
        let out = tether(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with(expected), "{stderr}");
    }
    // Both validate: which backend runs them is the run's choice.
    let out = tether(&["validate", "suites/container-faults.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn doctor_reports_envoy_fault_proxy_and_docker() {
    let out = tether(&["doctor"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for part in ["envoy:", "fault proxy:", "docker:"] {
        assert!(stdout.contains(part), "{stdout}");
    }
}

fn ctrl_c_stops_everything_and_still_writes_reports() {
    let envoy = common::envoy();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::tether_bin())
        .args(["run", "suites/outpost-partition.yaml", "--report-dir"])
        .arg(dir.path())
        .arg("--envoy-bin")
        .arg(&envoy.path)
        .current_dir(common::repo(""))
        .spawn()
        .unwrap();
    // Let the topology come up and the partition begin.
    let started = std::time::Instant::now();
    while !dir.path().join("work/logs/envoy-client.log").exists()
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(7));
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(result["interrupted"], true);
    assert_eq!(result["passed"], false);
    let timeline = std::fs::read_to_string(dir.path().join("timeline.jsonl")).unwrap();
    assert!(
        timeline.contains("\"interrupted\""),
        "the timeline records why the run ended"
    );
    assert!(
        timeline.contains("load_second"),
        "what was recorded before the interrupt is kept"
    );
    std::thread::sleep(Duration::from_millis(500));
    let left = common::processes_of_run(dir.path());
    assert!(left.is_empty(), "left running after Ctrl-C: {left:?}");
}

/// A `tether fault-proxy` child process, stopped when dropped.
struct FaultProxy {
    child: Child,
    /// The first line it printed on stderr.
    line: String,
}

impl FaultProxy {
    /// Starts `tether fault-proxy ARGS` and waits (up to 20 s) for its first stderr line.
    fn start(args: &[&str]) -> FaultProxy {
        let mut child = Command::new(common::tether_bin())
            .arg("fault-proxy")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining, so later writes never meet a closed pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let mut proxy = FaultProxy {
            child,
            line: String::new(),
        };
        proxy.line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tether fault-proxy printed nothing within 20 s");
        proxy
    }

    /// The API address from the first line: `... on http://ADDR, ...`.
    fn api(&self) -> String {
        let rest = self
            .line
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no http:// address in {:?}", self.line));
        rest.split([',', ' ', '\n']).next().unwrap().to_owned()
    }

    /// Sends SIGTERM and waits (up to 10 s) for the exit status.
    fn stop(mut self) -> Option<i32> {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tether fault-proxy did not stop within 10 s of SIGTERM");
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tether ARGS` that must exit by itself; kills it and fails after 20 s.
fn tether_exits(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(common::tether_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), reader.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tether {args:?} still ran after 20 s");
}

/// `GET path` on `addr` over plain HTTP/1.1; returns the whole answer.
fn http_get(addr: &str, path: &str) -> String {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
}

fn fault_proxy_takes_toxiproxy_server_flags() {
    let help = tether(&["fault-proxy", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--host <HOST>",
        "[default: 127.0.0.1]",
        "--port <PORT>",
        "[default: 8474]",
        "--seed <SEED>",
        "--config <CONFIG>",
        "--listen <LISTEN>",
    ] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxies.json");
    std::fs::write(
        &config,
        r#"[{"name":"xds","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"},
            {"name":"spare","listen":"127.0.0.1:0","upstream":"127.0.0.1:9","enabled":false}]"#,
    )
    .unwrap();
    let config = config.to_str().unwrap();

    // Loopback unless told otherwise; one line says where the API listens.
    let proxy = FaultProxy::start(&["--port", "0", "--seed", "5", "--config", config]);
    assert!(
        proxy
            .line
            .starts_with("tether fault proxy: Toxiproxy API on http://127.0.0.1:"),
        "{}",
        proxy.line
    );
    assert!(proxy.line.contains("2 proxies from"), "{}", proxy.line);
    assert!(proxy.line.contains("seed 5"), "{}", proxy.line);
    let answer = http_get(&proxy.api(), "/proxies");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""name":"xds""#), "{answer}");
    assert!(answer.contains(r#""name":"spare""#), "{answer}");
    assert_eq!(proxy.stop(), Some(0), "SIGTERM is a clean stop");

    // --listen overrides --host and --port.
    let proxy = FaultProxy::start(&[
        "--host",
        "0.0.0.0",
        "--port",
        "1",
        "--listen",
        "127.0.0.1:0",
    ]);
    let api = proxy.api();
    assert!(
        api.starts_with("127.0.0.1:") && !api.ends_with(":1"),
        "{api}"
    );
    assert!(http_get(&api, "/version").contains("-tether"));
    assert_eq!(proxy.stop(), Some(0));
}

/// A command line written for `toxiproxy-server` (Go's single-dash flags) starts tether's
/// fault proxy, and `GET /metrics` counts each proxy's bytes per direction as
/// `toxiproxy-server -proxy-metrics` does.
fn fault_proxy_takes_toxiproxy_servers_own_command_line_and_serves_metrics() {
    let version = tether(&["fault-proxy", "-version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).contains("-tether"));

    // An upstream that echoes what it reads.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in upstream.incoming().flatten().take(1) {
            let mut conn = conn;
            let mut buf = [0u8; 1024];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 || conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxies.json");
    std::fs::write(
        &config,
        format!(r#"[{{"name":"echo","listen":"127.0.0.1:0","upstream":"{upstream_addr}"}}]"#),
    )
    .unwrap();
    let config = format!("-config={}", config.display());
    let proxy = FaultProxy::start(&[
        "-host",
        "127.0.0.1",
        "-port",
        "0",
        &config,
        "-seed",
        "7",
        "-proxy-metrics",
    ]);
    assert!(proxy.line.contains("1 proxies from"), "{}", proxy.line);
    assert!(proxy.line.contains("seed 7"), "{}", proxy.line);
    let proxies = http_get(&proxy.api(), "/proxies");
    let listen = proxies
        .split(r#""listen":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{proxies}"))
        .to_string();

    // 11 bytes up, the same 11 echoed back down.
    let mut conn = std::net::TcpStream::connect(&listen).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"hello proxy").unwrap();
    let mut echoed = [0u8; 11];
    conn.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello proxy");

    let metrics = http_get(&proxy.api(), "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("content-type: text/plain; version=0.0.4"),
        "{metrics}"
    );
    let labels = format!(r#"listener="{listen}",proxy="echo",upstream="{upstream_addr}""#);
    for line in [
        format!(r#"toxiproxy_proxy_received_bytes_total{{direction="upstream",{labels}}} 11"#),
        format!(r#"toxiproxy_proxy_sent_bytes_total{{direction="upstream",{labels}}} 11"#),
        format!(r#"toxiproxy_proxy_received_bytes_total{{direction="downstream",{labels}}} 11"#),
        format!(r#"toxiproxy_proxy_sent_bytes_total{{direction="downstream",{labels}}} 11"#),
        format!(r#"toxiproxy_proxy_accepted_connections_total{{{labels}}} 1"#),
        format!(r#"toxiproxy_proxy_open_connections{{{labels}}} 1"#),
        "# TYPE toxiproxy_proxy_received_bytes_total counter".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
    }
    drop(conn);
    assert_eq!(proxy.stop(), Some(0));
}

fn fault_proxy_rejects_bad_config_files_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"[{"name":"xds","listen":"127.0.0.1:0"}]"#,
            "missing required field: upstream at proxy 1",
        ),
        ("[\n  {\"name\": }\n]", "line 2 column"),
        ("", "bad request body"),
    ];
    for (index, (text, expected)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("bad-{index}.json"));
        std::fs::write(&file, text).unwrap();
        let file = file.to_str().unwrap();
        let (code, stderr) = tether_exits(&["fault-proxy", "--port", "0", "--config", file]);
        assert_eq!(code, Some(2), "{text}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("error: {file}: ")), "{stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
    let (code, stderr) = tether_exits(&["fault-proxy", "--port", "0", "--config", "/no/such.json"]);
    assert_eq!(code, Some(2), "{stderr}");
    // A listen address in the file that cannot be bound: the environment, exit 3.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let file = dir.path().join("taken.json");
    std::fs::write(
        &file,
        format!(
            r#"[{{"name":"xds","listen":"{}","upstream":"127.0.0.1:9"}}]"#,
            taken.local_addr().unwrap()
        ),
    )
    .unwrap();
    let (code, stderr) = tether_exits(&[
        "fault-proxy",
        "--port",
        "0",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot create the configured proxies"),
        "{stderr}"
    );
}

fn a_toxiproxy_server_on_path_is_used_instead_of_tethers_own() {
    let envoy = common::envoy();
    // A stand-in `toxiproxy-server` that notes its Toxiproxy-style flags and serves the
    // API with tether's own server (no Toxiproxy binary can be had on this machine).
    let shim_dir = tempfile::tempdir().unwrap();
    let noted = shim_dir.path().join("flags");
    let shim = shim_dir.path().join("toxiproxy-server");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\nexec '{}' fault-proxy --listen \"$2:$4\"\n",
            noted.display(),
            common::tether_bin().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        shim_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |own: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(common::tether_bin());
        cmd.args(["run", "fixtures/suites/route-features.yaml", "--report-dir"])
            .arg(dir.path())
            .arg("--envoy-bin")
            .arg(&envoy.path)
            .env("PATH", &path)
            .env_remove("TETHER_FAULT_PROXY")
            .current_dir(common::repo(""));
        if own {
            cmd.env("TETHER_FAULT_PROXY", "tether");
        }
        let out = cmd.output().unwrap();
        // Progress lines go to stderr, the verdicts to stdout.
        let output = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{output}");
        assert!(common::processes_of_run(dir.path()).is_empty());
        // Which fault proxy ran is recorded, in result.json and summary.yaml alike.
        let result = std::fs::read_to_string(dir.path().join("result.json")).unwrap();
        let summary = std::fs::read_to_string(dir.path().join("summary.yaml")).unwrap();
        let recorded = if own { "tether's own" } else { "Toxiproxy (" };
        assert!(
            result.contains(&format!("\"fault_proxy\": \"{recorded}")),
            "{result}"
        );
        assert!(
            summary.contains(&format!("faultProxy: \"{recorded}")),
            "{summary}"
        );
        output
    };

    let stdout = run(false);
    assert!(
        stdout.contains(&format!("through Toxiproxy ({})", shim.display())),
        "{stdout}"
    );
    let flags = std::fs::read_to_string(&noted).expect("the Toxiproxy binary was started");
    assert!(flags.starts_with("-host 127.0.0.1 -port "), "{flags}");

    std::fs::remove_file(&noted).unwrap();
    let stdout = run(true);
    assert!(
        stdout.contains("through tether's own Toxiproxy-compatible server"),
        "{stdout}"
    );
    assert!(
        !noted.exists(),
        "TETHER_FAULT_PROXY=tether keeps tether's own"
    );

    // Asking for Toxiproxy where there is none fails before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::tether_bin())
        .args([
            "run",
            "fixtures/suites/route-features.yaml",
            "--fault-proxy",
            "toxiproxy",
        ])
        .arg("--report-dir")
        .arg(dir.path())
        .env("PATH", "/usr/bin:/bin")
        .env_remove("TETHER_FAULT_PROXY")
        .current_dir(common::repo(""))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no `toxiproxy-server` on PATH"), "{stderr}");
    assert!(common::processes_of_run(dir.path()).is_empty());
}

fn main() -> std::process::ExitCode {
    use common::harness::Need;
    common::harness::main(vec![
        case!(validate_accepts_the_bundled_suites),
        case!(a_soaks_length_comes_from_the_command_line_and_only_a_soak_takes_one),
        case!(malformed_suites_give_one_line_with_file_line_column_and_exit_2),
        case!(a_suite_the_backend_cannot_run_is_refused_with_its_line_and_exit_2),
        case!(doctor_reports_envoy_fault_proxy_and_docker),
        case!(ctrl_c_stops_everything_and_still_writes_reports).needs(&[Need::Envoy]),
        case!(fault_proxy_takes_toxiproxy_server_flags),
        case!(fault_proxy_takes_toxiproxy_servers_own_command_line_and_serves_metrics),
        case!(fault_proxy_rejects_bad_config_files_with_exit_2),
        case!(a_toxiproxy_server_on_path_is_used_instead_of_tethers_own).needs(&[Need::Envoy]),
    ])
}
