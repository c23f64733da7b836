//! Server core end to end, through the real binary: HTTP ingest, crash safety under SIGKILL, replay.

use std::time::Duration;

use kline_core::event::EventRecord;
use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::Interval;
use kline_tests::{KlineServer, ServerProcess, TOKEN, candle_values, get_json, post_events};
use serde_json::Value;

const SIMULATOR_OFF: &[&str] = &["--set", "source.simulator.enabled=false"];

/// Events spread over the last hour, so every short interval's candles are final.
fn events(seed: u64, count: usize) -> (Vec<EventRecord>, Vec<String>) {
    let mut market = SimulatedMarket::new(seed, 4);
    let start = kline_protocol::response::unix_millis_now() - 3_600_000;
    let events: Vec<_> = (0..count)
        .map(|i| market.next_event(start + i as i64 * 997))
        .collect();
    let mints = market.mints().iter().map(|m| m.to_string()).collect();
    (events, mints)
}

fn ndjson(events: &[EventRecord]) -> String {
    events.iter().map(|e| e.to_json() + "\n").collect()
}

#[tokio::test]
async fn ingest_reports_accepted_duplicate_and_rejected_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("db"), SIMULATOR_OFF);
    let (events, mints) = events(1, 3);
    let bad_price = events[2].to_json().replace(
        &format!(
            "\"latest_price\":\"{}\"",
            events[2].event.latest_price().unwrap()
        ),
        "\"latest_price\":\"0\"",
    );
    let body = format!(
        "[{}, {}, {}, {{\"event_type\":\"Nope\"}}, {}]",
        events[0].to_json(),
        events[1].to_json(),
        events[0].to_json(),
        bad_price
    );
    let (status, report) = post_events(&server, body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], 2);
    assert_eq!(report["duplicates"], 1);
    assert_eq!(report["rejected"], 2);
    assert_eq!(report["errors"][0]["index"], 3);
    assert!(
        report["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown event_type `Nope`")
    );
    assert_eq!(report["errors"][1]["index"], 4);
    assert_eq!(
        report["errors"][1]["reason"],
        "invalid price: latest_price is 0"
    );

    // NDJSON works too, and nothing is stored twice.
    let (_, again) = post_events(&server, ndjson(&events[..2])).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(2))
    );

    let client = reqwest::Client::new();
    let unauthorized = client
        .post(server.url("/api/v1/events"))
        .bearer_auth("wrong")
        .body(events[0].to_json())
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    let malformed = client
        .post(server.url("/api/v1/events"))
        .bearer_auth(TOKEN)
        .body("[{\"event_type\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);

    let symbols = get_json(&server.url("/api/v1/symbols")).await;
    assert!(!symbols.as_array().unwrap().is_empty(), "{symbols}");
    let stored: usize = futures_util::future::join_all(
        mints
            .iter()
            .map(|m| candle_values(&server, m, Interval::D1)),
    )
    .await
    .iter()
    .map(Vec::len)
    .sum();
    assert!(stored >= 1);
}

#[tokio::test]
async fn the_ingest_route_is_off_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("db"), &["--set", "ingest.enabled=false"]);
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/events"))
        .bearer_auth(TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_event_and_replay_completes_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let (events, mints) = events(7, 3000);

    // The reference: a server that ingests everything once, without a crash.
    let reference = ServerProcess::start(&dir.path().join("reference"), SIMULATOR_OFF);
    for chunk in events.chunks(500) {
        let (status, report) = post_events(&reference, ndjson(chunk)).await;
        assert_eq!(status, 200, "{report}");
    }

    // The victim: batches of 50 go out four at a time; SIGKILL lands right after the tenth is
    // acknowledged, so it always hits mid-ingest with requests in flight.
    let victim_dir = dir.path().join("victim");
    let mut victim = ServerProcess::start(&victim_dir, SIMULATOR_OFF);
    let client = reqwest::Client::new();
    let url = victim.url("/api/v1/events");
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let bodies: Vec<String> = events.chunks(50).map(ndjson).collect();
    let sender = tokio::spawn(async move {
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
        for body in bodies {
            let permit = permits.clone().acquire_owned().await.unwrap();
            let (client, url, acks) = (client.clone(), url.clone(), acks_tx.clone());
            tokio::spawn(async move {
                let response = client.post(&url).bearer_auth(TOKEN).body(body).send().await;
                let accepted = match response {
                    Ok(response) if response.status().is_success() => response
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|r| r["accepted"].as_u64()),
                    _ => None,
                };
                let _ = acks.send(accepted);
                drop(permit);
            });
        }
    });
    let mut acknowledged = 0;
    let mut acknowledged_batches = 0;
    while acknowledged_batches < 10 {
        if let Some(accepted) = acks.recv().await.expect("the sender reports") {
            acknowledged += accepted;
            acknowledged_batches += 1;
        }
    }
    victim.kill();
    sender.abort();
    // Answers that arrived before the kill still count as acknowledged.
    while let Ok(Some(answer)) = tokio::time::timeout(Duration::from_secs(5), acks.recv()).await {
        acknowledged += answer.unwrap_or(0);
    }
    assert!(
        acknowledged >= 500,
        "ten batches were acknowledged before the kill"
    );
    assert!(
        acknowledged < 3000,
        "the kill happened mid-ingest ({acknowledged} acknowledged)"
    );

    // Replay the whole file into the crashed store: every acknowledged event is already there.
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, ndjson(&events)).unwrap();
    let replay = |_: ()| {
        std::process::Command::new(kline_tests::server_binary())
            .args(["--data-dir"])
            .arg(&victim_dir)
            .arg("replay")
            .arg(&file)
            .output()
            .unwrap()
    };
    let output = replay(());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout).to_string();
    let number = |label: &str| -> u64 {
        let before = summary.split(label).next().unwrap();
        before
            .split([' ', ',', ':'])
            .rfind(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let (stored, duplicates) = (number(" stored"), number(" already stored"));
    assert_eq!(stored + duplicates, 3000, "{summary}");
    assert!(
        duplicates >= acknowledged,
        "every acknowledged event survived: {summary} vs {acknowledged} acked"
    );

    let second = String::from_utf8_lossy(&replay(()).stdout).to_string();
    assert!(
        second.contains("0 stored, 3000 already stored"),
        "a second replay adds nothing: {second}"
    );

    // The recovered history equals the reference, candle for candle.
    let victim = ServerProcess::start(&victim_dir, SIMULATOR_OFF);
    for mint in &mints {
        for interval in Interval::ALL {
            let want = candle_values(&reference, mint, interval).await;
            assert!(!want.is_empty());
            assert_eq!(
                candle_values(&victim, mint, interval).await,
                want,
                "{mint} {interval}"
            );
        }
    }
}
