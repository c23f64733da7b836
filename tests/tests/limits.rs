//! Abuse limits of the real server binary: the file-descriptor budget.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kline_core::simulated_market::SimulatedMarket;
use kline_tests::raw_ws::{OP_CLOSE, parse, upgrade_request};
use kline_tests::ws::Client;
use kline_tests::{
    KlineServer, ServerProcess, TOKEN, metric_value, metrics_text, server_binary, wait_until,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What an extra client got.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The upgrade succeeded and the server closed at once with this code (1013: at max_connections).
    Closed(Option<u16>),
    /// `503 Service Unavailable` (no descriptor to spare).
    Unavailable,
}

async fn extra_client(addr: std::net::SocketAddr) -> Refusal {
    let mut socket = tokio::net::TcpStream::connect(addr)
        .await
        .expect("TCP connects");
    socket
        .write_all(upgrade_request(addr, "").as_bytes())
        .await
        .expect("request sent");
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut bytes))
        .await
        .expect("the server answers and closes, not silence")
        .expect("an answer, not a reset");
    if bytes.starts_with(b"HTTP/1.1 503") {
        return Refusal::Unavailable;
    }
    assert!(
        bytes.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut rest = &bytes[head_end..];
    while let Some((frame, used)) = parse(rest) {
        if frame.opcode == OP_CLOSE {
            return Refusal::Closed(frame.close_code());
        }
        rest = &rest[used..];
    }
    Refusal::Closed(None)
}

#[tokio::test]
async fn past_the_descriptor_budget_ingest_goes_on_and_extra_clients_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // 512 descriptors: 64 for RocksDB's tables, 128 kept, 320 for client sockets; 300 WebSocket clients.
    let server = ServerProcess::start_with_fd_limit(
        &dir.path().join("db"),
        512,
        &[
            "--set",
            "source.simulator.enabled=false",
            "--set",
            "storage.max_open_files=64",
            "--set",
            "server.fd_reserve=128",
            "--set",
            "websocket.max_connections=300",
            "--set",
            "websocket.close_linger_ms=0",
        ],
    );
    let addr = server.addr();

    // Ingest runs throughout, on its own keep-alive connection.
    let stop = Arc::new(AtomicBool::new(false));
    let ingest = {
        let stop = stop.clone();
        let url = server.url("/api/v1/events");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut market = SimulatedMarket::new(5, 4);
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let now = kline_protocol::response::unix_millis_now();
                let body: String = (0..50)
                    .map(|i| market.next_event_for(i % 4, now).to_json() + "\n")
                    .collect();
                let status = http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                statuses.push(status.map_err(|e| e.to_string()));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            statuses
        })
    };

    let mut clients = Vec::new();
    for _ in 0..300 {
        clients.push(Client::connect(&server.ws_url()).await);
    }
    // Idle HTTP connections take the last client sockets of the budget (320 = 300 + ingest + 19).
    let mut idle = Vec::new();
    for _ in 0..25 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // More clients than fit: each is refused with an answer (503, or 1013 if a socket was free).
    let mut refusals = Vec::new();
    for _ in 0..100 {
        refusals.push(extra_client(addr).await);
    }
    stop.store(true, Ordering::Relaxed);
    let statuses = ingest.await.unwrap();

    assert!(
        refusals
            .iter()
            .all(|r| matches!(r, Refusal::Unavailable | Refusal::Closed(Some(1013)))),
        "{refusals:?}"
    );
    assert!(
        refusals.contains(&Refusal::Unavailable),
        "the budget was reached"
    );
    assert!(statuses.len() >= 5, "ingest ran meanwhile");
    assert!(
        statuses.iter().all(|s| s == &Ok(200)),
        "every ingest succeeded: {statuses:?}"
    );
    // Still serving once clients leave (and the server has seen them go). `/metrics` is read only now: at
    // the budget its own request may be refused too (a 503 holds no metrics, which `metric` reads as 0).
    drop(clients);
    let answered = |name: &'static str| {
        let server = &server;
        async move { metric_value(&metrics_text(server).await, name) }
    };
    wait_until(
        "the server has seen the clients leave",
        Duration::from_secs(20),
        || async {
            answered("kline_connections_active")
                .await
                .is_some_and(|active| active < 300.0)
        },
    )
    .await;
    assert!(answered("kline_sockets_refused_total").await >= Some(1.0));
    let mut client = Client::connect(&server.ws_url()).await;
    client.send_text(r#"{"msg_type":"ping"}"#).await;
    client.recv().await;
}

#[test]
fn check_config_rejects_connections_that_cannot_have_descriptors() {
    let output = Command::new(server_binary())
        .args(["--set", "websocket.max_connections=30000", "check-config"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted: {stderr}");
    assert!(
        stderr.contains("websocket.max_connections") && stderr.contains("RLIMIT_NOFILE"),
        "{stderr}"
    );
    let fine = Command::new(server_binary())
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        fine.status.success(),
        "{}",
        String::from_utf8_lossy(&fine.stderr)
    );
}

#[tokio::test]
async fn connection_success_stays_small_however_many_mints_exist() {
    let server = kline_tests::InProcessServer::start(&["websocket.hello_max_symbols=20"]);
    let mut market = SimulatedMarket::new(11, 150);
    let now = kline_protocol::response::unix_millis_now();
    let body: String = (0..150)
        .map(|i| market.next_event_for(i, now).to_json() + "\n")
        .collect();
    let (status, report) = kline_tests::post_events(&server, body).await;
    assert_eq!(status, 200, "{report}");
    let symbols = kline_tests::get_json(&server.url("/api/v1/symbols")).await;
    assert_eq!(
        symbols.as_array().map(Vec::len),
        Some(150),
        "150 mints are known"
    );
    let mut client = Client::connect(&server.ws_url()).await;
    let kline_protocol::ServerPayload::ConnectionSuccess(hello) = client.recv().await.payload
    else {
        panic!("connection_success first");
    };
    assert_eq!(hello.supported_symbols.len(), 20);
}

/// The server's resident memory, MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib / 1024.0
}

/// A measurement, not a pass/fail test (`cargo test --test limits -- --ignored --nocapture`): 20 clients
/// each send 200 `history` requests (limit 1000) and stop reading; prints the server's added RSS, their
/// close codes, and whether a fast subscriber lost anything meanwhile.
#[tokio::test]
#[ignore]
async fn measure_memory_of_clients_that_ask_for_large_histories_and_stop_reading() {
    use futures_util::SinkExt;
    use kline_protocol::{
        ClientRequest, HistoryRequest, Interval, ServerPayload, SubscribeRequest,
    };
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("db"),
        &[
            "--set",
            "source.simulator.enabled=false",
            "--set",
            "kline.finality_grace_ms=864000000",
        ],
    );
    let mut market = SimulatedMarket::new(3, 1);
    let mint = market.mints()[0].clone();
    let start = kline_protocol::response::unix_millis_now() - 2_000_000;
    let body: String = (0..1200)
        .map(|i| market.next_event_for(0, start + i * 1000).to_json() + "\n")
        .collect();
    assert_eq!(kline_tests::post_events(&server, body).await.0, 200);
    let mut fast = Client::connect(&server.ws_url()).await;
    fast.recv().await;
    fast.send(&ClientRequest::Subscribe(SubscribeRequest::new(
        mint.clone(),
        Interval::S1,
    )))
    .await;
    fast.recv().await;
    fast.recv().await;
    let before = rss_mib(server.pid());
    let request = ClientRequest::History(
        HistoryRequest::new(mint.clone(), Interval::S1)
            .with_limit(1000)
            .unwrap(),
    )
    .to_json();
    let mut abusers = Vec::new();
    for _ in 0..20 {
        let mut client = Client::connect(&server.ws_url()).await;
        for _ in 0..200 {
            let _ = client.socket.feed(Message::text(request.clone())).await;
        }
        let _ = client.socket.flush().await;
        abusers.push(client);
    }
    // Live updates meanwhile, which the fast subscriber must all get.
    let mut sent = 0;
    let mut peak = before;
    for round in 0..40 {
        let event = market.next_event_for(0, kline_protocol::response::unix_millis_now());
        assert_eq!(
            kline_tests::post_events(&server, event.to_json() + "\n")
                .await
                .0,
            200
        );
        sent += 1;
        peak = peak.max(rss_mib(server.pid()));
        if round % 10 == 0 {
            eprintln!("rss {:.1} MiB", rss_mib(server.pid()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut updates = 0;
    while updates < sent {
        match fast.recv().await.payload {
            ServerPayload::KlineData(_) => updates += 1,
            other => panic!("{other:?}"),
        }
    }
    let mut codes = Vec::new();
    for mut client in abusers {
        codes.push(client.close_code(Duration::from_secs(30)).await);
    }
    eprintln!(
        "20 clients x 200 history(1000): rss before {before:.1} MiB, peak {peak:.1} MiB, added {:.1} MiB; \
         close codes {codes:?}; fast subscriber got {updates}/{sent} updates",
        peak - before
    );
}
