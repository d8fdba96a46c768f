//! A target's links as a [`LinkActuator`]: each link's faults made through the Toxiproxy
//! API the target names (toxics on its proxies) or by its `apply`/`remove` commands, and
//! every fault written to the [`Ledger`] before it is applied.

use super::ledger::{Entry, Ledger};
use crate::backend::actuators::LinkActuator;
use crate::backend::links::{set_on_proxy, toxics};
use crate::faults::client::ToxiproxyClient;
use crate::plan::{Fault, Link};
use crate::target::{Command, LinkActuator as Spec, Redactor, Target};
use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The links of a target, and its ledger.
pub struct TargetLinks {
    links: BTreeMap<Link, Actuator>,
    ledger: Arc<Ledger>,
    redactor: Redactor,
    target: String,
}

/// How one link's faults are made.
enum Actuator {
    Toxiproxy {
        api: ToxiproxyClient,
        proxies: Vec<String>,
    },
    Command {
        apply: Command,
        remove: Command,
    },
}

impl TargetLinks {
    /// The links `target` names, recording into `ledger`.
    pub fn new(target: &Target, ledger: Arc<Ledger>) -> Result<TargetLinks> {
        let mut links = BTreeMap::new();
        for (link, spec) in &target.links {
            let actuator = match spec {
                Spec::Toxiproxy { api, proxies } => Actuator::Toxiproxy {
                    api: ToxiproxyClient::new(api.as_str())?,
                    proxies: proxies.clone(),
                },
                Spec::Command { apply, remove, .. } => Actuator::Command {
                    apply: apply.clone(),
                    remove: remove.clone(),
                },
            };
            links.insert(*link, actuator);
        }
        Ok(TargetLinks {
            links,
            ledger,
            redactor: Redactor::of(target),
            target: target.name.clone(),
        })
    }

    /// The faults the ledger says are on the target now, oldest first.
    pub fn left(&self) -> Vec<Entry> {
        self.ledger.faults()
    }

    /// Take the fault of a ledger `entry` off and cross it out; says what was removed.
    pub async fn take_off(&self, entry: &Entry) -> Result<String> {
        let (link, fault) = (entry.link, &entry.fault);
        self.set(link, fault, false)
            .await
            .with_context(|| format!("cannot remove {fault} from the {link} link"))?;
        self.ledger.removed(link, fault)?;
        Ok(format!(
            "{fault} on the {link} link (applied {} by {})",
            entry.at, entry.run
        ))
    }

    /// Put `fault` on `link` (`on`) or take it off, without the ledger; says what was
    /// set. Taking off a fault that is not there (a toxic already gone) is not an error,
    /// so a heal can be repeated.
    async fn set(&self, link: Link, fault: &Fault, on: bool) -> Result<Vec<String>> {
        let actuators = crate::target::carrying(&self.links, link);
        if actuators.is_empty() {
            bail!("the target names no actuator for the {link} link");
        }
        let mut said = Vec::new();
        for (which, actuator) in actuators {
            match actuator {
                Actuator::Toxiproxy { api, proxies } => {
                    for proxy in proxies {
                        match set_on_proxy(api, proxy, fault, on).await {
                            Ok(()) => {}
                            Err(e) if !on && e.status() == Some(404) => {}
                            Err(e) => {
                                let verb = if on { "apply" } else { "remove" };
                                bail!(
                                    "fault proxy: cannot {verb} {fault} on {proxy}: {}",
                                    self.redactor.redact(&e.to_string())
                                )
                            }
                        }
                        said.extend(toxics::describe(proxy, fault).into_iter().filter(|_| on));
                    }
                }
                Actuator::Command { apply, remove } => {
                    let command = if on { apply } else { remove };
                    said.extend(self.run(command, which, fault, on).await?);
                }
            }
        }
        Ok(said)
    }

    /// Run a link command with the fault as `TETHER_*` variables and JSON on stdin; its
    /// output lines (redacted) say what it did.
    async fn run(
        &self,
        command: &Command,
        link: Link,
        fault: &Fault,
        on: bool,
    ) -> Result<Vec<String>> {
        let action = if on { "apply" } else { "remove" };
        let fault_json = serde_json::to_value(fault)?;
        let input = serde_json::json!({
            "action": action, "link": link, "fault": fault_json, "target": self.target,
        });
        let mut env = fault_env(action, link, fault, &fault_json);
        env.push(("TETHER_TARGET".into(), self.target.clone()));
        let what = format!("the {link} link's {action} command");
        let printed = super::command::run(command, env, &input, &what, &self.redactor).await?;
        Ok(printed
            .lines()
            .map(|l| format!("{link} {action}: {l}"))
            .collect())
    }
}

/// The fault as environment variables: `TETHER_ACTION`, `TETHER_LINK`, `TETHER_FAULT`
/// (its kind), `TETHER_FAULT_TEXT` (as a suite reads it) and one `TETHER_FAULT_<FIELD>`
/// per field of it (`TETHER_FAULT_DELAY=90ms`).
fn fault_env(
    action: &str,
    link: Link,
    fault: &Fault,
    json: &serde_json::Value,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("TETHER_ACTION".to_string(), action.to_string()),
        ("TETHER_LINK".into(), link.as_str().into()),
        ("TETHER_FAULT".into(), fault.kind().into()),
        ("TETHER_FAULT_TEXT".into(), fault.to_string()),
    ];
    let fields = json.as_object().into_iter().flat_map(|m| m.values());
    for (name, value) in fields.flat_map(|f| f.as_object()).flatten() {
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        env.push((format!("TETHER_FAULT_{}", name.to_uppercase()), value));
    }
    env
}

#[async_trait]
impl LinkActuator for TargetLinks {
    async fn apply(&self, link: Link, fault: &Fault) -> Result<Vec<String>> {
        self.ledger.applying(link, fault)?;
        self.set(link, fault, true).await
    }

    async fn remove(&self, link: Link, fault: &Fault) -> Result<()> {
        self.set(link, fault, false).await?;
        self.ledger.removed(link, fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Duration;

    #[test]
    fn a_fault_becomes_environment_variables() {
        let latency = Fault::Latency {
            delay: Duration(std::time::Duration::from_millis(90)),
            jitter: None,
        };
        let json = serde_json::to_value(&latency).unwrap();
        let env: BTreeMap<String, String> = fault_env("apply", Link::Xds, &latency, &json)
            .into_iter()
            .collect();
        assert_eq!(env["TETHER_FAULT"], "latency");
        assert_eq!(env["TETHER_LINK"], "xds");
        assert_eq!(env["TETHER_FAULT_TEXT"], "latency 90ms");
        assert!(env.contains_key("TETHER_FAULT_DELAY"), "{env:?}");
        assert!(!env.contains_key("TETHER_FAULT_JITTER"), "{env:?}");
        let json = serde_json::to_value(Fault::Blackhole).unwrap();
        let env: BTreeMap<String, String> =
            fault_env("remove", Link::Data, &Fault::Blackhole, &json)
                .into_iter()
                .collect();
        assert_eq!(env["TETHER_FAULT"], "blackhole");
        assert_eq!(env["TETHER_ACTION"], "remove");
    }
}
