//! Running a target's commands: a link's `apply`/`remove` and a foreign control plane's
//! change commands. Each gets what to do as `TETHER_*` environment variables and as JSON
//! on its standard input, has its `timeout`, and fails the operation when it exits
//! non-zero; what it prints comes back redacted.

use crate::plan::Change;
use crate::target::{Command, Redactor};
use anyhow::{Context, Result, anyhow, bail};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// Run `command` (`what` names it in errors) with `env` and `input` on stdin; its
/// standard output, trimmed and redacted.
pub async fn run(
    command: &Command,
    env: Vec<(String, String)>,
    input: &serde_json::Value,
    what: &str,
    redactor: &Redactor,
) -> Result<String> {
    let shown = redactor.redact(&command.argv.join(" "));
    let mut child = tokio::process::Command::new(&command.argv[0])
        .args(&command.argv[1..])
        .envs(&command.env)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {what} `{shown}`"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{input}\n").as_bytes()).await;
    }
    let output = tokio::time::timeout(command.timeout, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("{what} `{shown}` took longer than {:?}", command.timeout))??;
    let text = |bytes: &[u8]| redactor.redact(String::from_utf8_lossy(bytes).trim());
    if !output.status.success() {
        bail!(
            "{what} `{shown}` failed ({}): {}",
            output.status,
            text(&output.stderr)
        );
    }
    Ok(text(&output.stdout))
}

/// Make `change` with a foreign control plane's command: `TETHER_CHANGE` is its kind,
/// stdin the change as the change API takes it (`{"set_route_weights": {...}}`). The
/// last line it prints, if any, is the config version the change made.
pub async fn change(command: &Command, change: &Change, redactor: &Redactor) -> Result<String> {
    let input = serde_json::to_value(change)?;
    let env = vec![("TETHER_CHANGE".to_string(), change.kind().to_string())];
    let what = format!("the `{}` change command", change.kind());
    let printed = run(command, env, &input, &what, redactor).await?;
    Ok(printed.lines().last().unwrap_or("").trim().to_string())
}
