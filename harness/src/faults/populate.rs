//! The proxy lists of `POST /populate` and of `tether fault-proxy --config FILE`.
//!
//! Both take a JSON array of proxies, as Toxiproxy does:
//!
//! ```json
//! [{"name": "xds", "listen": "127.0.0.1:21000", "upstream": "127.0.0.1:18000", "enabled": true}]
//! ```
//!
//! [`parse_proxy_list`] checks the whole list before anything changes, so a bad
//! entry leaves every proxy as it was. Applying it (in [`super::server`]) creates
//! each proxy, or replaces the proxy of that name when its `listen` or
//! `upstream` differ; a proxy that is already the same is kept with its toxics.

use serde::Deserialize;
use std::collections::HashSet;

/// One proxy of a populate list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec {
    /// The unique name of the proxy.
    pub name: String,
    /// The address to listen on, like `127.0.0.1:21000` (port 0 picks a free port).
    pub listen: String,
    /// The address to forward to.
    pub upstream: String,
    /// False to create the proxy disabled; true when absent or null.
    pub enabled: bool,
}

/// One entry as it comes in; unknown fields (like `toxics`) are ignored.
#[derive(Deserialize)]
struct RawSpec {
    #[serde(default)]
    name: String,
    #[serde(default)]
    listen: String,
    #[serde(default)]
    upstream: String,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Parses and checks a JSON array of proxies.
///
/// The error is the message Toxiproxy answers with, e.g. `missing required
/// field: upstream at proxy 2` or `bad request body: ...` (which names the line
/// and column of a JSON syntax error).
pub fn parse_proxy_list(json: &[u8]) -> Result<Vec<ProxySpec>, String> {
    let raw: Vec<RawSpec> =
        serde_json::from_slice(json).map_err(|err| format!("bad request body: {err}"))?;
    let mut names = HashSet::new();
    let mut specs = Vec::with_capacity(raw.len());
    for (index, entry) in raw.into_iter().enumerate() {
        let position = index + 1;
        for (field, value) in [
            ("name", &entry.name),
            ("listen", &entry.listen),
            ("upstream", &entry.upstream),
        ] {
            if value.is_empty() {
                return Err(format!(
                    "missing required field: {field} at proxy {position}"
                ));
            }
        }
        if !names.insert(entry.name.clone()) {
            return Err(format!("duplicate proxy name {:?}", entry.name));
        }
        specs.push(ProxySpec {
            name: entry.name,
            listen: entry.listen,
            upstream: entry.upstream,
            enabled: entry.enabled.unwrap_or(true),
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::client::{Toxic, ToxiproxyClient};
    use crate::faults::testutil::{
        TestServer, exchange, start_echo, start_server, start_tagged_echo, with_deadline,
    };
    use serde_json::{Value, json};
    use tokio::net::TcpStream;

    /// `POST /populate` with `body`: (status, JSON answer).
    async fn populate(server: &TestServer, body: &str) -> (u16, Value) {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/populate", server.base_url))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{status}"
        );
        (status, response.json().await.unwrap())
    }

    #[test]
    fn parses_lists_with_defaults() {
        let specs = parse_proxy_list(
            br#"[{"name":"a","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"},
                 {"name":"b","listen":"127.0.0.1:0","upstream":"u:2","enabled":false,"toxics":[]},
                 {"name":"c","listen":"127.0.0.1:0","upstream":"u:3","enabled":null}]"#,
        )
        .unwrap();
        let enabled: Vec<(&str, bool)> = specs
            .iter()
            .map(|spec| (spec.name.as_str(), spec.enabled))
            .collect();
        assert_eq!(enabled, vec![("a", true), ("b", false), ("c", true)]);
        assert_eq!(specs[1].upstream, "u:2");
        assert_eq!(parse_proxy_list(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn rejects_bad_lists_with_toxiproxy_messages() {
        let err = |json: &str| parse_proxy_list(json.as_bytes()).unwrap_err();
        assert_eq!(
            err(r#"[{"name":"a","listen":"l:1","upstream":"u:1"},{"name":"b","listen":"l:2"}]"#),
            "missing required field: upstream at proxy 2"
        );
        assert_eq!(
            err(r#"[{"listen":"l:1","upstream":"u:1"}]"#),
            "missing required field: name at proxy 1"
        );
        assert_eq!(
            err(r#"[{"name":"a","upstream":"u:1"}]"#),
            "missing required field: listen at proxy 1"
        );
        assert_eq!(
            err(
                r#"[{"name":"a","listen":"l:1","upstream":"u"},{"name":"a","listen":"l:2","upstream":"u"}]"#
            ),
            r#"duplicate proxy name "a""#
        );
        for not_a_list in [
            r#"{"name":"a"}"#,
            "[1]",
            r#"[{"name":"a","listen":"l:1","upstream":"u","enabled":"yes"}]"#,
            "",
        ] {
            assert!(
                err(not_a_list).starts_with("bad request body: "),
                "{not_a_list}"
            );
        }
        // JSON syntax errors name the line and column.
        let syntax = err("[\n  {\"name\": }\n]");
        assert!(syntax.contains("line 2 column"), "{syntax}");
    }

    #[tokio::test]
    async fn populate_creates_and_replaces_proxies() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let first = start_tagged_echo(b"A:").await;
            let second = start_tagged_echo(b"B:").await;
            let echo = start_echo().await;

            let body = format!(
                r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{first}"}},
                    {{"name":"off","listen":"127.0.0.1:0","upstream":"{echo}","enabled":false}}]"#
            );
            let (status, answer) = populate(&server, &body).await;
            assert_eq!(status, 201, "{answer}");
            let proxies = answer["proxies"].as_array().unwrap();
            assert_eq!(
                answer.as_object().unwrap().len(),
                1,
                "only `proxies`: {answer}"
            );
            assert_eq!(proxies.len(), 2);
            let a_listen = proxies[0]["listen"].as_str().unwrap().to_owned();
            assert_eq!(
                proxies[0],
                json!({"name":"a","listen":a_listen,"upstream":first.to_string(),
                       "enabled":true,"toxics":[]})
            );
            assert_eq!(proxies[1]["enabled"], json!(false));
            assert_eq!(api.proxies().await.unwrap().len(), 2);
            let mut conn = TcpStream::connect(&a_listen).await.unwrap();
            assert_eq!(exchange(&mut conn, b"x", 3).await.unwrap().0, b"A:x");

            // The same listen and upstream: kept as it is, toxics and all.
            api.add_toxic("a", &Toxic::latency("lag", "downstream", 1, 0))
                .await
                .unwrap();
            let same = format!(r#"[{{"name":"a","listen":"{a_listen}","upstream":"{first}"}}]"#);
            let (status, answer) = populate(&server, &same).await;
            assert_eq!(status, 201, "{answer}");
            assert_eq!(answer["proxies"][0]["toxics"][0]["name"], json!("lag"));
            // ... and its open connection still works.
            assert_eq!(exchange(&mut conn, b"z", 3).await.unwrap().0, b"A:z");
            assert_eq!(api.toxics("a").await.unwrap().len(), 1);

            // A new upstream replaces it: same name, no toxics, new target.
            let moved = format!(r#"[{{"name":"a","listen":"{a_listen}","upstream":"{second}"}}]"#);
            let (status, answer) = populate(&server, &moved).await;
            assert_eq!(status, 201, "{answer}");
            assert_eq!(answer["proxies"][0]["upstream"], json!(second.to_string()));
            assert_eq!(answer["proxies"][0]["toxics"], json!([]));
            let mut conn = TcpStream::connect(&a_listen).await.unwrap();
            assert_eq!(exchange(&mut conn, b"y", 3).await.unwrap().0, b"B:y");
            // Proxies not named in a populate list are left alone.
            assert!(api.proxy("off").await.is_ok());

            let (status, answer) = populate(&server, "[]").await;
            assert_eq!((status, answer), (201, json!({ "proxies": [] })));
            server.stop().await;
        })
        .await;
    }

    #[tokio::test]
    async fn populate_rejects_bad_input_and_changes_nothing() {
        with_deadline(async {
            let server = start_server().await;
            let api = ToxiproxyClient::new(&server.base_url).unwrap();
            let echo = start_echo().await;

            let cases = [
                (
                    format!(
                        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{echo}"}},{{"name":"b","listen":"127.0.0.1:0"}}]"#
                    ),
                    400,
                    "missing required field: upstream at proxy 2".to_owned(),
                ),
                (
                    format!(
                        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{echo}"}},{{"name":"a","listen":"127.0.0.1:0","upstream":"{echo}"}}]"#
                    ),
                    400,
                    r#"duplicate proxy name "a""#.to_owned(),
                ),
                (
                    format!(
                        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{echo}"}},{{"name":"b","listen":"nowhere","upstream":"{echo}"}}]"#
                    ),
                    400,
                    String::new(),
                ),
                ("{}".to_owned(), 400, String::new()),
                ("not json".to_owned(), 400, String::new()),
            ];
            for (body, status, message) in cases {
                let answer = populate(&server, &body).await;
                assert_eq!(answer.0, status, "{body}: {}", answer.1);
                assert_eq!(answer.1["status"], json!(status), "{body}");
                assert_eq!(answer.1["proxies"], json!([]), "{body}");
                let error = answer.1["error"].as_str().unwrap();
                if message.is_empty() {
                    assert!(!error.is_empty(), "{body}");
                } else {
                    assert_eq!(error, message, "{body}");
                }
                // Checked before anything changed: the valid first entry was not created.
                assert!(api.proxies().await.unwrap().is_empty(), "{body}");
            }

            // A listen address that is taken fails when applied: 500, Toxiproxy's shape.
            let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let taken = taken.local_addr().unwrap();
            let body = format!(r#"[{{"name":"t","listen":"{taken}","upstream":"{echo}"}}]"#);
            let (status, answer) = populate(&server, &body).await;
            assert_eq!(status, 500, "{answer}");
            assert_eq!(answer["status"], json!(500));
            assert!(
                answer["error"].as_str().unwrap().contains(&taken.to_string()),
                "{answer}"
            );
            assert!(api.proxies().await.unwrap().is_empty());

            // Wrong method.
            let response = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .get(format!("{}/populate", server.base_url))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 405);
            server.stop().await;
        })
        .await;
    }
}
