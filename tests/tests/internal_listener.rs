//! The internal listener (`node.internal_addr`, docs/scaling.md "Listeners"): `/internal/snapshot` is
//! served there only, behind its token, only by a ready node, to a bounded number of readers at once, and
//! a reader that stalls is cut off. Real binaries on loopback; the stalled reader is a raw TCP socket that
//! sends its request, reads the status line and nothing more.

use std::io::{Read, Write};
use std::time::Duration;

use kline_core::simulated_market::SimulatedMarket;
use kline_tests::{
    KlineServer, ServerProcess, free_local_addr, metric, post_events, wait_for_metric, wait_until,
};

const SECRET: &str = "internal-s3cret";
const WAIT: Duration = Duration::from_secs(60);

/// A writer with the simulator off, the internal token set, and `extra` settings.
fn writer(data: &tempfile::TempDir, extra: &[&str]) -> ServerProcess {
    let redis = format!("stream.redis_url=\"redis://{}/\"", free_local_addr());
    let token = format!("node.internal_token={SECRET:?}");
    let mut args = vec![
        "node.role=writer",
        "source.simulator.enabled=false",
        &redis,
        &token,
    ];
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().flat_map(|pair| ["--set", pair]).collect();
    ServerProcess::start(&data.path().join("db"), &args)
}

fn internal_url(server: &ServerProcess, path: &str) -> String {
    format!("http://{}{path}", server.internal_addr())
}

/// The status of `GET url`, with `token` as bearer when given.
async fn get_status(url: &str, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET").status().as_u16()
}

/// The body of an authorized snapshot request, which must answer 200.
async fn whole_snapshot(url: &str) -> Vec<u8> {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// A raw connection that requests the snapshot and reads its status line only, retried until that line
/// says 200: the dump then holds the only permit and waits on a reader that never reads again. (Sent
/// blind, the request could lose the permit to the probe that follows it.)
fn stalled_reader(addr: std::net::SocketAddr) -> std::net::TcpStream {
    for _ in 0..100 {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET /internal/snapshot HTTP/1.1\r\nHost: kline\r\nAuthorization: Bearer {SECRET}\r\n\r\n"
        )
        .unwrap();
        let mut status_line = Vec::new();
        let mut byte = [0u8; 1];
        while !status_line.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).expect("the status line");
            status_line.push(byte[0]);
        }
        if status_line.starts_with(b"HTTP/1.1 200") {
            return stream;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the snapshot was never granted to the stalled reader");
}

/// Ingests `events` events over `mints` mints, one second apart, in batches.
async fn ingest(server: &ServerProcess, mints: usize, events: usize) {
    let mut market = SimulatedMarket::new(5, mints);
    let start = kline_protocol::response::unix_millis_now() - events as i64 * 1_000;
    for batch in 0..events.div_ceil(2_000) {
        let body: Vec<String> = (batch * 2_000..((batch + 1) * 2_000).min(events))
            .map(|i| {
                market
                    .next_event_for(i % mints, start + i as i64 * 1_000)
                    .to_json()
            })
            .collect();
        let (status, answer) = post_events(server, body.join("\n")).await;
        assert_eq!(status, 200, "{answer}");
    }
}

#[tokio::test]
async fn the_snapshot_is_served_on_the_internal_listener_only_and_with_its_token() {
    let data = tempfile::tempdir().unwrap();
    let writer = writer(&data, &[]);
    ingest(&writer, 2, 10).await;

    // The public port (the one a load balancer exposes) does not know the route.
    assert_eq!(
        get_status(&writer.url("/internal/snapshot"), None).await,
        404
    );
    assert_eq!(
        get_status(&writer.url("/internal/snapshot"), Some(SECRET)).await,
        404
    );
    // The internal one wants the token.
    let snapshot = internal_url(&writer, "/internal/snapshot");
    assert_eq!(get_status(&snapshot, None).await, 401);
    assert_eq!(get_status(&snapshot, Some("internal-s3cre")).await, 401);
    let body = whole_snapshot(&snapshot).await;
    assert!(
        body.len() > 1_000,
        "a snapshot of 10 events: {} bytes",
        body.len()
    );
    wait_for_metric(&writer, "kline_snapshots_served_total", 1.0).await;
    // And nothing else of the public surface is on the internal port.
    assert_eq!(
        get_status(&internal_url(&writer, "/api/v1/symbols"), Some(SECRET)).await,
        404
    );
}

#[tokio::test]
async fn an_edge_that_is_not_ready_serves_no_snapshot() {
    let data = tempfile::tempdir().unwrap();
    // Nothing listens at its Redis address: its replica is never loaded.
    let redis = format!("stream.redis_url=\"redis://{}/\"", free_local_addr());
    let edge = ServerProcess::start(
        &data.path().join("db"),
        &["--set", "node.role=edge", "--set", &redis],
    );
    let snapshot = internal_url(&edge, "/internal/snapshot");
    let response = reqwest::get(&snapshot).await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let reason = response.text().await.unwrap();
    assert!(reason.contains("not ready"), "{reason}");
    assert_eq!(get_status(&edge.url("/internal/snapshot"), None).await, 404);
}

#[tokio::test]
async fn a_stalled_reader_holds_its_permit_only_until_the_write_timeout() {
    let data = tempfile::tempdir().unwrap();
    let writer = writer(
        &data,
        &[
            "node.snapshot_concurrency=1",
            "node.snapshot_write_timeout_secs=3",
        ],
    );
    // ~20 MB, more than the socket buffers and the frames queued ahead hold: the dump must wait for its
    // reader.
    ingest(&writer, 50, 15_000).await;
    let snapshot = internal_url(&writer, "/internal/snapshot");

    // A reader that asks, reads the status line and nothing more.
    let stalled = stalled_reader(writer.internal_addr());
    // While it holds the only permit, others are told to come back…
    wait_until("a second reader is refused", WAIT, || async {
        get_status(&snapshot, Some(SECRET)).await == 503
    })
    .await;
    assert!(metric(&writer, "kline_snapshots_refused_total").await >= 1.0);
    // …until the write timeout cuts the stalled one off, its socket still open.
    wait_for_metric(&writer, "kline_snapshots_cut_off_total", 1.0).await;
    let body = whole_snapshot(&snapshot).await;
    assert!(
        body.len() > 16 << 20,
        "the snapshot must outgrow the socket buffers for the reader to stall: {} bytes",
        body.len()
    );
    drop(stalled);
}
