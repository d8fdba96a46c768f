//! User journeys across mesh services, written as goose scenarios: a user visits a front
//! service, then asks it for something it needs a back service for, so the request
//! crosses both sidecars (and whatever route sits between them).
//!
//! goose installs its own Ctrl-C handler, so journeys run in a child process
//! (`tether journeys`, see [`play`]) that prints one JSON line per step with goose's
//! metrics of it; [`drive`] starts that child for a run and puts each line on the
//! timeline as an [`Event::JourneyStep`].

use crate::service::{BACKEND_SERVED_BY, SERVED_BY};
use crate::timeline::{Event, Timeline};
use anyhow::{Context, Result};
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

/// One journey run.
#[derive(Debug, Clone)]
pub struct JourneySpec {
    /// The sidecar egress the users' requests enter through.
    pub egress: SocketAddr,
    /// The front virtual service (the Host of every request).
    pub front: String,
    /// The back virtual service the front calls.
    pub back: String,
    /// Concurrent users.
    pub users: usize,
    /// How long the users run.
    pub duration: Duration,
}

/// One step of one user's journey, as the child prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLine {
    /// When it finished, ms since the Unix epoch.
    pub unix_ms: u64,
    /// `front` or `front-to-back`.
    pub step: String,
    /// goose's verdict: a 2xx answer.
    pub ok: bool,
    /// The HTTP status (0: no answer).
    pub status: u16,
    /// goose's response time, ms.
    pub latency_ms: u64,
    /// Who answered.
    #[serde(default)]
    pub served_by: Option<String>,
    /// Who served the front's call to the back.
    #[serde(default)]
    pub backend: Option<String>,
}

/// The journey the child's transactions read (goose transactions are plain functions).
static JOURNEY: OnceLock<JourneySpec> = OnceLock::new();

/// Play the journeys of `spec` with goose (`tether journeys`): print a [`StepLine`] per
/// step on stdout until the duration is over.
pub async fn play(spec: JourneySpec) -> Result<()> {
    let users = spec.users.max(1);
    let duration = spec.duration.as_secs().max(1);
    let egress = spec.egress;
    JOURNEY
        .set(spec)
        .map_err(|_| anyhow::anyhow!("journeys already set"))?;
    let mut config = GooseConfiguration::default();
    config.host = Some(format!("http://{egress}"));
    config.users = Some(users);
    config.increase_rate = Some(users.to_string());
    config.run_time = Some(duration.to_string());
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.no_telnet = true;
    config.no_websocket = true;
    config.quiet = 1;
    GooseAttack::initialize_with_config(config)
        .context("cannot set up goose")?
        .register_scenario(
            scenario!("front-and-back")
                .set_wait_time(Duration::from_millis(50), Duration::from_millis(150))
                .context("bad wait time")?
                .register_transaction(transaction!(visit_front))
                .register_transaction(transaction!(front_calls_back)),
        )
        .execute()
        .await
        .context("goose failed")?;
    Ok(())
}

async fn visit_front(user: &mut GooseUser) -> TransactionResult {
    step(user, "front", "/".into()).await
}

async fn front_calls_back(user: &mut GooseUser) -> TransactionResult {
    let back = JOURNEY.get().map(|j| j.back.clone()).unwrap_or_default();
    step(user, "front-to-back", format!("/?call={back}")).await
}

/// One step: a GET of `path` on the front service, its goose metrics printed as a line.
async fn step(user: &mut GooseUser, name: &str, path: String) -> TransactionResult {
    let front = JOURNEY.get().map(|j| j.front.clone()).unwrap_or_default();
    let builder = user
        .get_request_builder(&GooseMethod::Get, &path)?
        .header("host", front);
    let request = GooseRequest::builder()
        .name(name)
        .set_request_builder(builder)
        .build();
    let goose = user.request(request).await?;
    let header = |name: &str| {
        goose.response.as_ref().ok().and_then(|r| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    };
    let line = StepLine {
        unix_ms: crate::timeline::now_unix_ms(),
        step: name.to_string(),
        ok: goose.request.success,
        status: goose.request.status_code,
        latency_ms: goose.request.response_time,
        served_by: header(SERVED_BY),
        backend: header(BACKEND_SERVED_BY),
    };
    if let Ok(text) = serde_json::to_string(&line) {
        println!("{text}");
    }
    Ok(())
}

/// Run `spec`'s journeys in a `tether journeys` child of `tether` until they end or
/// `stop` fires, recording each step on `timeline`. The child carries `run_marker`
/// in its environment, as every child of a run does.
pub async fn drive(
    tether: &Path,
    spec: &JourneySpec,
    run_marker: (&str, &Path),
    timeline: Timeline,
    stop: CancellationToken,
) -> Result<()> {
    let mut child = tokio::process::Command::new(tether)
        .args(["journeys", "--egress", &spec.egress.to_string()])
        .args(["--front", &spec.front, "--back", &spec.back])
        .args(["--users", &spec.users.to_string()])
        .args([
            "--duration",
            &format!("{}s", spec.duration.as_secs().max(1)),
        ])
        .env(run_marker.0, run_marker.1)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start `tether journeys`")?;
    let stdout = child
        .stdout
        .take()
        .context("no stdout from `tether journeys`")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if let Ok(s) = serde_json::from_str::<StepLine>(&line) {
                        timeline.record_at_unix(
                            s.unix_ms,
                            Event::JourneyStep {
                                step: s.step,
                                ok: s.ok,
                                status: s.status,
                                latency_ms: s.latency_ms,
                                served_by: s.served_by,
                                backend: s.backend,
                            },
                        );
                    }
                }
                _ => break,
            },
        }
    }
    let _ = child.kill().await;
    Ok(())
}
