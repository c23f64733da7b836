//! The writer → Redis → edge cluster with TLS on every hop: Redis over `rediss://` (redis-server's own TLS
//! port, a certificate of the test's CA trusted through `stream.redis_ca_file`), the writer's listener
//! over `https://` (`server.tls`), and the edge's snapshot fetched from it over `https://`
//! (`stream.snapshot_ca_file`). The stream is trimmed to a couple of groups before the edge starts, so the
//! edge cannot catch up without the snapshot: it must end with the writer's history, candle for candle.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::Interval;
use kline_tests::redis::RedisServer;
use kline_tests::tls::TestCa;
use kline_tests::{KlineServer, ServerProcess, TOKEN, free_local_addr, get_json, wait_until};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn settings(pairs: &[String]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|pair| ["--set".to_owned(), pair.clone()])
        .collect()
}

fn free_port() -> u16 {
    free_local_addr()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap()
}

/// Whether this `redis-server` was built with TLS (Debian's is): one without it refuses `tls-port` as an
/// unknown directive.
fn redis_has_tls() -> bool {
    let binary = std::env::var_os("KLINE_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
    let probe = Command::new(binary)
        .args(["--port", "0", "--tls-port", "0", "--save", ""])
        .output()
        .expect("redis-server runs");
    let text = String::from_utf8_lossy(&probe.stdout) + String::from_utf8_lossy(&probe.stderr);
    !text.contains("Bad directive")
}

#[tokio::test]
async fn writer_and_edge_over_rediss_with_the_snapshot_over_https() {
    if !redis_has_tls() {
        eprintln!("SKIPPED: this redis-server has no TLS support (Debian's redis-server has it)");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs a redis-server with TLS"
        );
        return;
    }
    let ca = TestCa::new();
    let redis_cert = ca.issue("redis", &["localhost"]);
    let writer_cert = ca.issue("writer", &["localhost"]);
    let tls_port = free_port().to_string();
    let redis = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &redis_cert.cert_file.display().to_string(),
        "--tls-key-file",
        &redis_cert.key_file.display().to_string(),
        "--tls-auth-clients",
        "no",
        // Small stream nodes, so `XADD MAXLEN ~ 2` really trims.
        "--stream-node-max-entries",
        "2",
    ]);
    let rediss = format!("stream.redis_url=\"rediss://localhost:{tls_port}/\"");
    let redis_ca = format!("stream.redis_ca_file={}", path(&ca.ca_file));
    let dir = tempfile::tempdir().unwrap();
    let writer = ServerProcess::start(
        &dir.path().join("writer"),
        &settings(&[
            "source.simulator.enabled=false".into(),
            "node.role=writer".into(),
            "stream.max_len=2".into(),
            rediss.clone(),
            redis_ca.clone(),
            "server.tls.enabled=true".into(),
            // Snapshots over TLS too, with the same certificate.
            "node.internal_tls=true".into(),
            // 3 descriptors a TLS client: the default 10,000 connections do not fit 20,000 files.
            "websocket.max_connections=1000".into(),
            format!("server.tls.cert_file={}", path(&writer_cert.cert_file)),
            format!("server.tls.key_file={}", path(&writer_cert.key_file)),
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    let writer_base = format!("https://localhost:{}", writer.addr.port());
    let writer_internal = format!("https://localhost:{}", writer.internal_addr().port());
    let tls = kline_tls::client_config(Some(&ca.ca_file)).unwrap();
    let https = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Twenty commits, one event each: twenty groups, of which the stream keeps about two.
    let mut market = SimulatedMarket::new(21, 2);
    let start = kline_protocol::response::unix_millis_now() - 60_000;
    for i in 0..20 {
        let body = market
            .next_event_for(i % 2, start + i as i64 * 1_500)
            .to_json();
        let response = https
            .post(format!("{writer_base}/api/v1/events"))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    let mut redis_plain = redis.connection().unwrap();
    wait_until("the stream is trimmed past group 1", WAIT, || {
        let first: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg("kline:groups")
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query(&mut redis_plain)
            .unwrap();
        let trimmed = first.ids.first().is_some_and(|entry| entry.id != "1-0");
        async move { trimmed }
    })
    .await;

    let edge = ServerProcess::start(
        &dir.path().join("edge"),
        &settings(&[
            "source.simulator.enabled=false".into(),
            "ingest.enabled=false".into(),
            "node.role=edge".into(),
            rediss,
            redis_ca,
            format!("stream.snapshot_url={writer_internal:?}"),
            format!("stream.snapshot_ca_file={}", path(&ca.ca_file)),
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    wait_until("the edge is ready", WAIT, || async {
        reqwest::get(edge.url("/ready"))
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(
        edge.log_text().contains("snapshot loaded"),
        "{}",
        edge.log_text()
    );

    for mint in market.mints() {
        for interval in [Interval::S1, Interval::M1] {
            let query = format!("/api/v1/klines?symbol={mint}&interval={interval}&limit=1000");
            let want: Value = https
                .get(format!("{writer_base}{query}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(!want["data"].as_array().unwrap().is_empty(), "{want}");
            wait_until(
                &format!("the edge holds {mint} {interval}"),
                WAIT,
                || async { get_json(&edge.url(&query)).await["data"] == want["data"] },
            )
            .await;
        }
    }
}
