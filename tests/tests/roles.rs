//! The roles of one binary (`node.role`): what a writer, an edge and `all` serve and refuse, `/ready`, and
//! a bad role's error. Real binaries on loopback; no Redis (the edge's stream task connects in the
//! background and never gets there: its replica is never loaded, so it stays not ready).
//! The writer → Redis → edge path itself is the multi-node test's.

use std::time::Duration;

use kline_core::simulated_market::SimulatedMarket;
use kline_store::replication::NotReady;
use kline_tests::{
    InProcessServer, KlineServer, ServerProcess, TOKEN, free_local_addr, get_json, metrics_text,
    post_events, server_binary,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

/// A role with the simulator off and, for the stream, a Redis address where nothing listens.
fn start(role: &str, data: &tempfile::TempDir) -> ServerProcess {
    let role = format!("node.role={role}");
    let redis = format!("stream.redis_url=\"redis://{}/\"", free_local_addr());
    ServerProcess::start(
        &data.path().join("db"),
        &[
            "--set",
            &role,
            "--set",
            "source.simulator.enabled=false",
            "--set",
            &redis,
        ],
    )
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.expect("GET").status().as_u16()
}

/// `/ready`'s status and body.
async fn ready(server: &impl KlineServer) -> (u16, Value) {
    let response = reqwest::get(server.url("/ready"))
        .await
        .expect("GET /ready");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// The HTTP status a WebSocket upgrade of `/ws` gets (101 when it is accepted).
async fn ws_upgrade_status(server: &impl KlineServer) -> u16 {
    match tokio_tungstenite::connect_async(server.ws_url()).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(err) => panic!("the upgrade got no HTTP answer: {err}"),
    }
}

/// The status of a new Engine.IO session's first request (Socket.IO).
async fn socketio_open_status(server: &impl KlineServer) -> u16 {
    status_of(&server.url("/socket.io/?EIO=4&transport=polling")).await
}

/// The `/metrics` text, after checking that it exports each of `names`.
async fn exported(server: &impl KlineServer, names: &[&str]) -> String {
    let metrics = metrics_text(server).await;
    for name in names {
        assert!(
            metrics.lines().any(|l| l.starts_with(name)),
            "no {name} in\n{metrics}"
        );
    }
    metrics
}

/// SIGTERM: the role's shutdown runs to its end and exits 0.
fn stops_cleanly(server: &mut ServerProcess) {
    let exit = server.terminate(Duration::from_secs(30));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit: {exit:?}\n{}",
        server.log_text()
    );
}

fn one_event() -> (String, String) {
    let mut market = SimulatedMarket::new(16, 1);
    let mint = market.mints()[0].to_string();
    let now = kline_protocol::response::unix_millis_now();
    (mint, market.next_event_for(0, now).to_json())
}

#[tokio::test]
async fn a_writer_ingests_and_serves_rest_but_no_push() {
    let data = tempfile::tempdir().unwrap();
    let mut writer = start("writer", &data);

    let (mint, event) = one_event();
    let (status, report) = post_events(&writer, event).await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (200, Some(1)),
        "{report}"
    );
    let klines = get_json(&writer.url(&format!("/api/v1/klines?symbol={mint}&interval=m1"))).await;
    assert_eq!(klines["data"].as_array().map(Vec::len), Some(1), "{klines}");
    let symbols = get_json(&writer.url("/api/v1/symbols")).await;
    assert_eq!(symbols[0]["symbol"], mint.as_str(), "{symbols}");
    let trades = get_json(&writer.url(&format!("/api/v1/trades?symbol={mint}"))).await;
    assert_eq!(trades["data"].as_array().map(Vec::len), Some(1), "{trades}");

    // No push: no /ws, no Socket.IO, no chart page.
    assert_eq!(ws_upgrade_status(&writer).await, 404);
    assert_eq!(socketio_open_status(&writer).await, 404);
    assert_eq!(status_of(&writer.url("/")).await, 404);

    assert_eq!(
        ready(&writer).await,
        (200, json!({"ready": true, "role": "writer"}))
    );
    let health = get_json(&writer.url("/health")).await;
    assert_eq!(health["role"], "writer", "{health}");
    assert_eq!(health["pipeline"]["events_accepted"], 1, "{health}");
    assert!(health.get("connections").is_none(), "{health}");
    assert_eq!(health["stream"]["redis_connected"], false, "{health}");
    exported(
        &writer,
        &[
            "kline_stream_committed_seq",
            "kline_stream_published_seq",
            "kline_events_ingested_total",
        ],
    )
    .await;

    stops_cleanly(&mut writer);
}

#[tokio::test]
async fn an_edge_without_its_replica_is_not_ready_and_refuses_new_clients() {
    let data = tempfile::tempdir().unwrap();
    let mut edge = start("edge", &data);
    let reason = NotReady::NoReplica.to_string();

    assert_eq!(
        ready(&edge).await,
        (
            503,
            json!({"ready": false, "role": "edge", "reason": reason})
        )
    );
    assert_eq!(ws_upgrade_status(&edge).await, 503);
    assert_eq!(socketio_open_status(&edge).await, 503);
    let refused = reqwest::get(edge.url("/socket.io/?EIO=4&transport=websocket"))
        .await
        .unwrap();
    assert_eq!(refused.headers()["retry-after"], "5");
    assert_eq!(
        refused.text().await.unwrap(),
        format!("not ready: {reason}\n")
    );
    // A request of a session already open (it has a `sid`) is not refused: socketioxide answers it (here
    // 400, the session is unknown).
    let open_session = edge.url("/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAA");
    assert_ne!(status_of(&open_session).await, 503);

    // No ingest: the route does not exist (ingest is on in the test config, with a token).
    let ingest = reqwest::Client::new()
        .post(edge.url("/api/v1/events"))
        .bearer_auth(TOKEN)
        .body(one_event().1)
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), 404);

    // The REST reads and the chart page are served from the (empty) replica.
    let (mint, _) = one_event();
    let klines = get_json(&edge.url(&format!("/api/v1/klines?symbol={mint}&interval=m1"))).await;
    assert_eq!(klines["data"], json!([]), "{klines}");
    assert_eq!(get_json(&edge.url("/api/v1/symbols")).await, json!([]));
    assert_eq!(status_of(&edge.url("/")).await, 200);

    let health = get_json(&edge.url("/health")).await;
    assert_eq!(health["role"], "edge", "{health}");
    assert_eq!(health["stream"]["ready"], false, "{health}");
    assert_eq!(health["stream"]["not_ready"], reason.as_str(), "{health}");
    assert_eq!(health["stream"]["applied_seq"], 0, "{health}");
    assert_eq!(health["connections"]["active"], 0, "{health}");
    assert!(health.get("pipeline").is_none(), "{health}");
    let metrics = exported(
        &edge,
        &[
            "kline_stream_applied_seq",
            "kline_stream_head_seq",
            "kline_connections_active",
        ],
    )
    .await;
    assert!(!metrics.contains("kline_events_ingested"), "{metrics}");

    stops_cleanly(&mut edge);
}

#[tokio::test]
async fn role_all_is_ready_and_serves_everything() {
    let server = InProcessServer::start(&[]);
    assert_eq!(
        ready(&server).await,
        (200, json!({"ready": true, "role": "all"}))
    );
    assert_eq!(ws_upgrade_status(&server).await, 101);
    assert_eq!(socketio_open_status(&server).await, 200);
    let (_, event) = one_event();
    assert_eq!(post_events(&server, event).await.0, 200);
    let health = get_json(&server.url("/health")).await;
    assert_eq!(health["role"], "all", "{health}");
    assert!(health.get("stream").is_none(), "{health}");
}

#[test]
fn a_bad_role_is_an_error_naming_node_role() {
    let output = std::process::Command::new(server_binary())
        .args(["--set", "node.role=leader", "check-config"])
        .output()
        .expect("kline-server runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("node.role") && stderr.contains("leader"),
        "the error names the key and the value: {stderr}"
    );
    for role in ["all", "writer", "edge"] {
        assert!(stderr.contains(role), "the error lists `{role}`: {stderr}");
    }
}
