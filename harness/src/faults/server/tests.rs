//! The fault server's tests: the API against its clients, and toxics end to end.

use super::ServeOptions;
use super::api::{path_segments, percent_decode};
use super::toxics::{Kind, effect};
use crate::faults::client::{DOWNSTREAM, Toxic, ToxiproxyClient};
use crate::faults::relay::Effect;
use crate::faults::testutil::{
    IO_DEADLINE, TestServer, closed_within, exchange, exchange_within, proxy_to_echo, round_trip,
    start_echo, start_server, start_server_with, start_tagged_echo, with_deadline,
};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A round trip through an untouched proxy on loopback takes far less than this.
const FAST: Duration = Duration::from_millis(250);

/// One raw API call: (status, content-type, JSON body or Null when empty).
async fn raw(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<&str>,
) -> (u16, String, Value) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = http.request(method, format!("{}{path}", server.base_url));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, content_type, body)
}

/// Asserts an error answer: status, JSON content type, and exact Toxiproxy body.
fn assert_error(answer: (u16, String, Value), status: u16, message: &str) {
    assert_eq!(
        answer,
        (
            status,
            "application/json".to_owned(),
            json!({ "error": message, "status": status })
        )
    );
}

/// Connects to a proxy that should refuse or immediately close: true if it does.
async fn refuses(listen: &str) -> bool {
    match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(listen)).await {
        Ok(Err(_)) => true,
        Ok(Ok(mut conn)) => {
            let _ = conn.write_all(b"x").await;
            closed_within(&mut conn, Duration::from_secs(1)).await
        }
        Err(_) => false,
    }
}

// On the multi-threaded runtime, so the relay's connections run on other
// threads than the API while toxics change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxics_apply_to_open_connections() {
    with_deadline(async {
        let (server, api, proxy) = proxy_to_echo().await;

        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        let before = round_trip(&mut conn, b"before").await.unwrap();
        assert!(before < FAST, "untouched round trip took {before:?}");

        // Latency reaches the connection that is already open.
        api.add_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 300, 0))
            .await
            .unwrap();
        let lagged = round_trip(&mut conn, b"lagged").await.unwrap();
        assert!(
            lagged >= Duration::from_millis(300),
            "round trip with 300 ms latency took {lagged:?}"
        );

        // So does its removal.
        api.remove_toxic("link", "lag").await.unwrap();
        let after = round_trip(&mut conn, b"after").await.unwrap();
        assert!(
            after < FAST,
            "round trip after removing latency took {after:?}"
        );

        // A blackhole swallows the answers on the open connection and on new ones.
        api.add_toxic("link", &Toxic::blackhole("cut", DOWNSTREAM))
            .await
            .unwrap();
        let mut fresh = TcpStream::connect(&proxy.listen).await.unwrap();
        let (old_answer, new_answer) = tokio::join!(
            exchange_within(&mut conn, b"lost", 4, Duration::from_secs(1)),
            exchange_within(&mut fresh, b"lost", 4, Duration::from_secs(1))
        );
        for answer in [old_answer, new_answer] {
            let err = answer.expect_err("a blackholed connection answered");
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        }

        // Without it, a new connection works again.
        api.remove_toxic("link", "cut").await.unwrap();
        let mut again = TcpStream::connect(&proxy.listen).await.unwrap();
        round_trip(&mut again, b"back").await.unwrap();
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn blackhole_holds_reads_for_a_second() {
    with_deadline(async {
        let (server, api, proxy) = proxy_to_echo().await;
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        round_trip(&mut conn, b"ok").await.unwrap();

        api.add_toxic("link", &Toxic::blackhole("cut", DOWNSTREAM))
            .await
            .unwrap();
        conn.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(1), conn.read(&mut buf)).await;
        assert!(read.is_err(), "read through a blackhole returned {read:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn disabling_closes_connections_and_enabling_restores() {
    with_deadline(async {
        let (server, api, proxy) = proxy_to_echo().await;
        api.add_toxic("link", &Toxic::latency("lag", DOWNSTREAM, 200, 0))
            .await
            .unwrap();
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        round_trip(&mut conn, b"up").await.unwrap();

        let disabled = api.set_enabled("link", false).await.unwrap();
        assert!(!disabled.enabled);
        assert!(
            closed_within(&mut conn, Duration::from_secs(2)).await,
            "the open connection survived disabling"
        );
        assert!(
            refuses(&proxy.listen).await,
            "a disabled proxy took a connection"
        );
        assert!(!api.proxy("link").await.unwrap().enabled);

        // Enabled again: same address, same toxics.
        let enabled = api.set_enabled("link", true).await.unwrap();
        assert!(enabled.enabled);
        assert_eq!(enabled.listen, proxy.listen);
        assert_eq!(enabled.toxics.len(), 1);
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        let took = round_trip(&mut conn, b"again").await.unwrap();
        assert!(
            took >= Duration::from_millis(200),
            "the latency toxic did not survive disable/enable: {took:?}"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn reset_enables_proxies_and_removes_toxics() {
    with_deadline(async {
        let server = start_server().await;
        let api = ToxiproxyClient::new(&server.base_url).unwrap();
        let echo = start_echo().await;
        let off = api
            .create_proxy("off", "127.0.0.1:0", &echo.to_string())
            .await
            .unwrap();
        api.set_enabled("off", false).await.unwrap();
        let slow = api
            .create_proxy("slow", "127.0.0.1:0", &echo.to_string())
            .await
            .unwrap();
        let mut conn = TcpStream::connect(&slow.listen).await.unwrap();
        api.add_toxic("slow", &Toxic::latency("lag", DOWNSTREAM, 300, 0))
            .await
            .unwrap();
        api.add_toxic("slow", &Toxic::latency("lag_up", "upstream", 300, 0))
            .await
            .unwrap();
        assert!(round_trip(&mut conn, b"slow").await.unwrap() >= Duration::from_millis(600));

        let answer = raw(&server, reqwest::Method::POST, "/reset", None).await;
        assert_eq!((answer.0, answer.2), (204, Value::Null));

        for (name, proxy) in api.proxies().await.unwrap() {
            assert!(proxy.enabled, "{name} still disabled");
            assert!(proxy.toxics.is_empty(), "{name} kept {:?}", proxy.toxics);
        }
        // Both directions' toxics are gone from the open connection.
        let took = round_trip(&mut conn, b"fast").await.unwrap();
        assert!(took < FAST, "round trip after reset took {took:?}");
        let mut conn = TcpStream::connect(&off.listen).await.unwrap();
        round_trip(&mut conn, b"on").await.unwrap();
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn error_answers_match_toxiproxy() {
    use reqwest::Method as M;
    with_deadline(async {
        let server = start_server().await;
        let echo = start_echo().await;
        let create = format!(r#"{{"name":"p","listen":"127.0.0.1:0","upstream":"{echo}"}}"#);

        assert_error(
            raw(&server, M::GET, "/proxies/nope", None).await,
            404,
            "proxy not found",
        );
        assert_error(
            raw(&server, M::DELETE, "/proxies/nope", None).await,
            404,
            "proxy not found",
        );
        assert_error(
            raw(
                &server,
                M::POST,
                "/proxies/nope",
                Some(r#"{"enabled":false}"#),
            )
            .await,
            404,
            "proxy not found",
        );
        assert_error(
            raw(&server, M::GET, "/proxies/nope/toxics", None).await,
            404,
            "proxy not found",
        );
        assert_error(
            raw(
                &server,
                M::POST,
                "/proxies/nope/toxics",
                Some(r#"{"type":"noop"}"#),
            )
            .await,
            404,
            "proxy not found",
        );

        assert_eq!(
            raw(&server, M::POST, "/proxies", Some(&create)).await.0,
            201
        );
        assert_error(
            raw(&server, M::POST, "/proxies", Some(&create)).await,
            409,
            "proxy already exists",
        );

        let (status, _, body) = raw(&server, M::POST, "/proxies", Some("{not json")).await;
        assert_eq!(status, 400);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("bad request body: "),
            "{body}"
        );
        assert_eq!(body["status"], 400);
        let (status, _, _) = raw(&server, M::POST, "/proxies", None).await;
        assert_eq!(status, 400);
        assert_error(
            raw(
                &server,
                M::POST,
                "/proxies",
                Some(r#"{"name":"q","listen":"127.0.0.1:0"}"#),
            )
            .await,
            400,
            "missing required field: upstream",
        );
        assert_error(
            raw(
                &server,
                M::POST,
                "/proxies",
                Some(r#"{"listen":"127.0.0.1:0","upstream":"x:1"}"#),
            )
            .await,
            400,
            "missing required field: name",
        );
        let (status, _, body) = raw(
            &server,
            M::POST,
            "/proxies",
            Some(r#"{"name":"q","listen":"not an address","upstream":"x:1"}"#),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let (status, _, _) =
            raw(&server, M::POST, "/proxies/p", Some(r#"{"enabled":"yes"}"#)).await;
        assert_eq!(status, 400);

        // A listen address that is taken: 500, and no proxy is created.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_addr = taken.local_addr().unwrap();
        let clash = format!(r#"{{"name":"clash","listen":"{taken_addr}","upstream":"{echo}"}}"#);
        let (status, _, body) = raw(&server, M::POST, "/proxies", Some(&clash)).await;
        assert_eq!(status, 500, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&taken_addr.to_string()),
            "{body}"
        );
        assert_error(
            raw(&server, M::GET, "/proxies/clash", None).await,
            404,
            "proxy not found",
        );

        // Toxics.
        assert_error(
            raw(
                &server,
                M::POST,
                "/proxies/p/toxics",
                Some(r#"{"type":"gremlins"}"#),
            )
            .await,
            400,
            "invalid toxic type",
        );
        assert_error(
            raw(
                &server,
                M::POST,
                "/proxies/p/toxics",
                Some(r#"{"attributes":{}}"#),
            )
            .await,
            400,
            "invalid toxic type",
        );
        assert_error(
            raw(
                &server,
                M::POST,
                "/proxies/p/toxics",
                Some(r#"{"type":"latency","stream":"sideways","attributes":{"latency":1}}"#),
            )
            .await,
            400,
            "stream was invalid, can be either upstream or downstream",
        );
        let (status, _, body) = raw(
            &server,
            M::POST,
            "/proxies/p/toxics",
            Some(r#"{"type":"latency","attributes":{"latency":-5}}"#),
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("bad request body: "),
            "{body}"
        );
        let (status, _, _) = raw(
            &server,
            M::POST,
            "/proxies/p/toxics",
            Some(r#"{"type":"timeout","attributes":{}}"#),
        )
        .await;
        assert_eq!(status, 400, "timeout needs its timeout attribute");
        let (status, _, _) = raw(
            &server,
            M::POST,
            "/proxies/p/toxics",
            Some(r#"{"type":"reset_peer","attributes":{"timeout":-1}}"#),
        )
        .await;
        assert_eq!(status, 400, "a negative reset_peer timeout");

        let (status, _, _) = raw(
            &server,
            M::POST,
            "/proxies/p/toxics",
            Some(r#"{"type":"noop","toxicity":1e40}"#),
        )
        .await;
        assert_eq!(status, 400, "an infinite toxicity cannot be shown as JSON");

        let latency = r#"{"type":"latency","attributes":{"latency":5}}"#;
        assert_eq!(
            raw(&server, M::POST, "/proxies/p/toxics", Some(latency))
                .await
                .0,
            200
        );
        assert_error(
            raw(&server, M::POST, "/proxies/p/toxics", Some(latency)).await,
            409,
            "toxic already exists",
        );
        let (status, _, _) = raw(
            &server,
            M::POST,
            "/proxies/p/toxics/latency_downstream",
            Some(r#"{"attributes":{"latency":"slow"}}"#),
        )
        .await;
        assert_eq!(status, 400);
        let (status, _, _) = raw(
            &server,
            M::POST,
            "/proxies/p/toxics/latency_downstream",
            Some(r#"{"attributes":[1]}"#),
        )
        .await;
        assert_eq!(status, 400);
        for method in [M::GET, M::DELETE] {
            assert_error(
                raw(&server, method, "/proxies/p/toxics/nope", None).await,
                404,
                "toxic not found",
            );
        }
        assert_error(
            raw(&server, M::POST, "/proxies/p/toxics/nope", Some("{}")).await,
            404,
            "toxic not found",
        );

        // Routing.
        assert_error(
            raw(&server, M::PUT, "/proxies", None).await,
            405,
            "method not allowed",
        );
        assert_error(
            raw(&server, M::DELETE, "/version", None).await,
            405,
            "method not allowed",
        );
        assert_error(
            raw(&server, M::GET, "/nothing", None).await,
            404,
            "not found",
        );
        assert_error(
            raw(&server, M::GET, "/proxies/%zz", None).await,
            400,
            "invalid path encoding",
        );

        // Delete answers 204 with no body, then the proxy is gone.
        let answer = raw(&server, M::DELETE, "/proxies/p", None).await;
        assert_eq!((answer.0, answer.2), (204, Value::Null));
        assert_error(
            raw(&server, M::GET, "/proxies/p", None).await,
            404,
            "proxy not found",
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn json_shapes_match_toxiproxy() {
    use reqwest::Method as M;
    with_deadline(async {
        let server = start_server().await;
        let echo = start_echo().await;

        let (status, content_type, body) = raw(&server, M::GET, "/version", None).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, "application/json");
        assert_eq!(body, json!({ "version": format!("{}-tether", env!("CARGO_PKG_VERSION")) }));

        assert_eq!(raw(&server, M::GET, "/proxies", None).await.2, json!({}));
        let create = format!(r#"{{"name":"p","listen":"127.0.0.1:0","upstream":"{echo}"}}"#);
        let (status, content_type, created) =
            raw(&server, M::POST, "/proxies", Some(&create)).await;
        assert_eq!((status, content_type.as_str()), (201, "application/json"));
        let listen = created["listen"].as_str().unwrap().to_owned();
        let port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
        assert_ne!(port, 0, "listen must show the real port");
        assert_eq!(
            created,
            json!({
                "name": "p",
                "listen": listen,
                "upstream": echo.to_string(),
                "enabled": true,
                "toxics": [],
            })
        );
        // And it really listens there.
        let mut conn = TcpStream::connect(&listen).await.unwrap();
        round_trip(&mut conn, b"shape").await.unwrap();
        assert_eq!(raw(&server, M::GET, "/proxies", None).await.2, json!({ "p": created }));
        assert_eq!(raw(&server, M::GET, "/proxies/p", None).await.2, created);

        // Each toxic type, with defaults filled in.
        let cases = [
            (
                r#"{"type":"latency","attributes":{"latency":10}}"#,
                json!({"name":"latency_downstream","type":"latency","stream":"downstream",
                       "toxicity":1.0,"attributes":{"latency":10,"jitter":0}}),
            ),
            (
                r#"{"name":"bw","type":"bandwidth","stream":"UPSTREAM","toxicity":0.5,"attributes":{"rate":100}}"#,
                json!({"name":"bw","type":"bandwidth","stream":"upstream",
                       "toxicity":0.5,"attributes":{"rate":100}}),
            ),
            (
                r#"{"type":"timeout","stream":"upstream","attributes":{"timeout":0}}"#,
                json!({"name":"timeout_upstream","type":"timeout","stream":"upstream",
                       "toxicity":1.0,"attributes":{"timeout":0}}),
            ),
            (
                r#"{"type":"slow_close","attributes":{"delay":5}}"#,
                json!({"name":"slow_close_downstream","type":"slow_close","stream":"downstream",
                       "toxicity":1.0,"attributes":{"delay":5}}),
            ),
            (
                r#"{"type":"slicer","attributes":{"average_size":64}}"#,
                json!({"name":"slicer_downstream","type":"slicer","stream":"downstream",
                       "toxicity":1.0,"attributes":{"average_size":64,"size_variation":0,"delay":0}}),
            ),
            (
                r#"{"type":"limit_data","stream":"upstream","attributes":{"bytes":1000000}}"#,
                json!({"name":"limit_data_upstream","type":"limit_data","stream":"upstream",
                       "toxicity":1.0,"attributes":{"bytes":1000000}}),
            ),
            (
                r#"{"name":"nothing","type":"noop"}"#,
                json!({"name":"nothing","type":"noop","stream":"downstream",
                       "toxicity":1.0,"attributes":{}}),
            ),
            (
                r#"{"type":"reset_peer","stream":"upstream","toxicity":0.5}"#,
                json!({"name":"reset_peer_upstream","type":"reset_peer","stream":"upstream",
                       "toxicity":0.5,"attributes":{"timeout":0}}),
            ),
        ];
        let mut expected_list = Vec::new();
        for (request, expected) in cases {
            let (status, content_type, body) =
                raw(&server, M::POST, "/proxies/p/toxics", Some(request)).await;
            assert_eq!((status, content_type.as_str()), (200, "application/json"), "{request}");
            assert_eq!(body, expected, "{request}");
            expected_list.push(expected);
        }
        assert_eq!(raw(&server, M::GET, "/proxies/p/toxics", None).await.2, json!(expected_list));

        // Updates merge attributes and keep what was not given.
        let (status, _, body) = raw(
            &server,
            M::POST,
            "/proxies/p/toxics/latency_downstream",
            Some(r#"{"attributes":{"jitter":3}}"#),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["attributes"], json!({"latency":10,"jitter":3}));
        assert_eq!(body["toxicity"], json!(1.0));
        let (status, _, body) = raw(
            &server,
            M::PATCH,
            "/proxies/p/toxics/latency_downstream",
            Some(r#"{"toxicity":0.25}"#),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"name":"latency_downstream","type":"latency","stream":"downstream",
                   "toxicity":0.25,"attributes":{"latency":10,"jitter":3}})
        );
        assert_eq!(
            raw(&server, M::GET, "/proxies/p/toxics/latency_downstream", None).await.2,
            body
        );

        let answer = raw(&server, M::DELETE, "/proxies/p/toxics/latency_downstream", None).await;
        assert_eq!((answer.0, answer.2), (204, Value::Null));
        let names: Vec<Value> = raw(&server, M::GET, "/proxies/p", None).await.2["toxics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|toxic| toxic["name"].clone())
            .collect();
        assert_eq!(
            names,
            vec![
                json!("bw"),
                json!("timeout_upstream"),
                json!("slow_close_downstream"),
                json!("slicer_downstream"),
                json!("limit_data_upstream"),
                json!("nothing"),
                json!("reset_peer_upstream")
            ]
        );

        let (status, _, body) =
            raw(&server, M::POST, "/proxies/p", Some(r#"{"enabled":false}"#)).await;
        assert_eq!((status, &body["enabled"]), (200, &json!(false)));
        assert_eq!(body["listen"], json!(listen));
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn update_moves_upstream_and_listen() {
    with_deadline(async {
        let server = start_server().await;
        let api = ToxiproxyClient::new(&server.base_url).unwrap();
        let first = start_tagged_echo(b"A:").await;
        let second = start_tagged_echo(b"B:").await;
        let proxy = api
            .create_proxy("p", "127.0.0.1:0", &first.to_string())
            .await
            .unwrap();
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        assert_eq!(exchange(&mut conn, b"x", 3).await.unwrap().0, b"A:x");

        let body = format!(r#"{{"upstream":"{second}"}}"#);
        let (status, _, moved) =
            raw(&server, reqwest::Method::POST, "/proxies/p", Some(&body)).await;
        assert_eq!(status, 200);
        assert_eq!(moved["upstream"], json!(second.to_string()));
        assert_eq!(moved["listen"], json!(proxy.listen));
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        assert_eq!(exchange(&mut conn, b"y", 3).await.unwrap().0, b"B:y");

        let (status, _, moved) = raw(
            &server,
            reqwest::Method::POST,
            "/proxies/p",
            Some(r#"{"listen":"127.0.0.1:0"}"#),
        )
        .await;
        assert_eq!(status, 200);
        let new_listen = moved["listen"].as_str().unwrap().to_owned();
        assert_ne!(new_listen, proxy.listen);
        assert!(
            refuses(&proxy.listen).await,
            "the old listen address still accepts"
        );
        let mut conn = TcpStream::connect(&new_listen).await.unwrap();
        assert_eq!(exchange(&mut conn, b"z", 3).await.unwrap().0, b"B:z");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bandwidth_limits_throughput() {
    with_deadline(async {
        let server = start_server().await;
        let api = ToxiproxyClient::new(&server.base_url).unwrap();
        let echo = start_echo().await;
        let proxy = api
            .create_proxy("p", "127.0.0.1:0", &echo.to_string())
            .await
            .unwrap();
        let payload = vec![7u8; 5000];
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        let unlimited = round_trip(&mut conn, &payload).await.unwrap();
        assert!(unlimited < FAST, "5000 bytes unlimited took {unlimited:?}");

        // 10 KB/s: 5000 bytes take about 500 ms.
        let toxic = Toxic::new("bw", DOWNSTREAM, DOWNSTREAM, json!({}));
        let toxic = Toxic {
            kind: "bandwidth".to_owned(),
            attributes: json!({ "rate": 10 }),
            ..toxic
        };
        api.add_toxic("p", &toxic).await.unwrap();
        let limited = round_trip(&mut conn, &payload).await.unwrap();
        assert!(
            limited >= Duration::from_millis(400) && limited < IO_DEADLINE,
            "5000 bytes at 10 KB/s took {limited:?}"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn limit_data_closes_after_the_limit() {
    with_deadline(async {
        let server = start_server().await;
        let api = ToxiproxyClient::new(&server.base_url).unwrap();
        let echo = start_echo().await;
        let proxy = api
            .create_proxy("p", "127.0.0.1:0", &echo.to_string())
            .await
            .unwrap();
        let mut early = TcpStream::connect(&proxy.listen).await.unwrap();
        round_trip(&mut early, b"early").await.unwrap();

        let limit = Toxic::new("limit", "limit_data", DOWNSTREAM, json!({ "bytes": 5 }));
        api.add_toxic("p", &limit).await.unwrap();
        // Documented: connections older than a limit_data toxic are closed.
        assert!(closed_within(&mut early, Duration::from_secs(2)).await);

        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        conn.write_all(b"0123456789").await.unwrap();
        let mut received = Vec::new();
        let read = tokio::time::timeout(IO_DEADLINE, conn.read_to_end(&mut received)).await;
        assert!(read.is_ok(), "the connection stayed open past the limit");
        assert_eq!(received, b"01234");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_stops_api_and_proxies() {
    with_deadline(async {
        let server = start_server().await;
        let api = ToxiproxyClient::new(&server.base_url).unwrap();
        let echo = start_echo().await;
        let proxy = api
            .create_proxy("p", "127.0.0.1:0", &echo.to_string())
            .await
            .unwrap();
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        round_trip(&mut conn, b"alive").await.unwrap();

        let api_addr = server.addr;
        server.stop().await;
        assert!(closed_within(&mut conn, Duration::from_secs(2)).await);
        assert!(
            refuses(&proxy.listen).await,
            "the proxy outlived the server"
        );
        assert!(
            TcpStream::connect(api_addr).await.is_err(),
            "the API outlived the server"
        );
    })
    .await;
}

/// Round-trip times of `count` echoes on one connection through a proxy with
/// latency 200 ± 200 ms on the answers, on a server seeded with `seed`.
async fn jittered_round_trips(seed: u64, count: usize) -> Vec<i64> {
    let server = start_server_with(ServeOptions {
        seed: Some(seed),
        ..ServeOptions::default()
    })
    .await;
    let api = ToxiproxyClient::new(&server.base_url).unwrap();
    let echo = start_echo().await;
    let proxy = api
        .create_proxy("link", "127.0.0.1:0", &echo.to_string())
        .await
        .unwrap();
    api.add_toxic("link", &Toxic::latency("jitter", DOWNSTREAM, 200, 200))
        .await
        .unwrap();
    let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
    let mut took = Vec::with_capacity(count);
    for _ in 0..count {
        // One answer is one chunk, and each chunk draws one jitter.
        let time = round_trip(&mut conn, b"j").await.unwrap();
        took.push(i64::try_from(time.as_millis()).unwrap());
    }
    server.stop().await;
    took
}

/// For `count` new connections through a proxy with a `reset_peer` toxic of
/// toxicity 0.5, on a server seeded with `seed`: whether each was reset.
async fn reset_decisions(seed: u64, count: usize) -> Vec<bool> {
    let server = start_server_with(ServeOptions {
        seed: Some(seed),
        ..ServeOptions::default()
    })
    .await;
    let api = ToxiproxyClient::new(&server.base_url).unwrap();
    let echo = start_echo().await;
    let proxy = api
        .create_proxy("link", "127.0.0.1:0", &echo.to_string())
        .await
        .unwrap();
    let mut toxic = Toxic::new("coin", "reset_peer", "upstream", json!({ "timeout": 0 }));
    toxic.toxicity = 0.5;
    api.add_toxic("link", &toxic).await.unwrap();
    let mut decisions = Vec::with_capacity(count);
    for _ in 0..count {
        let mut conn = TcpStream::connect(&proxy.listen).await.unwrap();
        match exchange(&mut conn, b"?", 1).await {
            Ok(_) => decisions.push(false),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => decisions.push(true),
            Err(err) => panic!("neither an answer nor a reset: {err}"),
        }
    }
    server.stop().await;
    decisions
}

#[tokio::test]
async fn seeded_jitter_is_reproducible() {
    // Scheduling noise allowed between two runs of the same round trip.
    const NOISE_MS: i64 = 60;
    with_deadline(async {
        let (first, again, other) = tokio::join!(
            jittered_round_trips(7, 8),
            jittered_round_trips(7, 8),
            jittered_round_trips(8, 8)
        );
        let spread = first.iter().max().unwrap() - first.iter().min().unwrap();
        assert!(spread >= 100, "no jitter in {first:?}");
        assert!(
            first
                .iter()
                .zip(&again)
                .all(|(a, b)| (a - b).abs() <= NOISE_MS),
            "the same seed gave {first:?} and {again:?}"
        );
        let differing = first
            .iter()
            .zip(&other)
            .filter(|(a, b)| (*a - *b).abs() > 2 * NOISE_MS)
            .count();
        assert!(differing >= 2, "seeds 7 and 8 gave {first:?} and {other:?}");
    })
    .await;
}

#[tokio::test]
async fn seeded_toxicity_is_reproducible() {
    with_deadline(async {
        let (first, again, other) = tokio::join!(
            reset_decisions(7, 12),
            reset_decisions(7, 12),
            reset_decisions(8, 12)
        );
        assert!(
            first.contains(&true) && first.contains(&false),
            "toxicity 0.5 decided {first:?}"
        );
        assert_eq!(first, again, "the same seed decided differently");
        assert_ne!(first, other, "seeds 7 and 8 decided alike");
    })
    .await;
}

#[test]
fn effects_keep_slicer_and_bandwidth_safe() {
    let slicer = |average_size, size_variation, delay| Kind::Slicer {
        average_size,
        size_variation,
        delay,
    };
    // Toxiproxy treats a rate of 0 as unlimited: nothing to run.
    assert_eq!(effect(Kind::Bandwidth { rate: 0 }), None);
    assert_eq!(effect(Kind::Noop), None);
    // `rate` KB/s is `rate` bytes per millisecond.
    assert_eq!(
        effect(Kind::Bandwidth { rate: 100 }),
        Some(Effect::Bandwidth { bytes_per_ms: 100 })
    );
    // Slices of 0 bytes never end; a variation at or above the average underflows.
    assert_eq!(
        effect(slicer(0, 9, 1)),
        Some(Effect::Slicer {
            average_size: 1,
            size_variation: 0,
            delay: Duration::from_micros(1)
        })
    );
    assert_eq!(
        effect(slicer(8, 20, 0)),
        Some(Effect::Slicer {
            average_size: 8,
            size_variation: 7,
            delay: Duration::ZERO
        })
    );
    assert_eq!(
        effect(slicer(u64::MAX, u64::MAX, u64::MAX)),
        Some(Effect::Slicer {
            average_size: u64::MAX,
            size_variation: u64::MAX - 1,
            delay: Duration::from_millis(1 << 40)
        })
    );
    // A timeout of 0 is a blackhole that never closes.
    assert_eq!(
        effect(Kind::Timeout { timeout: 0 }),
        Some(Effect::Timeout { close_after: None })
    );
    assert_eq!(
        effect(Kind::Timeout { timeout: 5 }),
        Some(Effect::Timeout {
            close_after: Some(Duration::from_millis(5))
        })
    );
}

#[test]
fn paths_are_percent_decoded() {
    assert_eq!(
        path_segments("/proxies/edge%20rack%2Fxds/toxics/").unwrap(),
        vec!["proxies", "edge rack/xds", "toxics"]
    );
    assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
    for broken in ["%", "%2", "%zz", "%+1", "%FF"] {
        assert_eq!(percent_decode(broken), None, "{broken}");
    }
}
