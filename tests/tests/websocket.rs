//! The push service end to end: the real server binary, real WebSocket clients (tokio-tungstenite).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use kline_core::event::EventRecord;
use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::*;
use kline_tests::ws::{Client, Received};
use kline_tests::{
    KlineServer, ServerProcess, get_json, metric, metrics_text, post_events, wait_for_metric,
};
use tokio_tungstenite::tungstenite::Message;

const QUIET: &[&str] = &["--set", "source.simulator.enabled=false"];
const SECOND: Duration = Duration::from_secs(1);

fn server(extra: &[&str]) -> (tempfile::TempDir, ServerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = QUIET.to_vec();
    args.extend_from_slice(extra);
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    (dir, server)
}

async fn connect(server: &ServerProcess) -> Client {
    let mut client = Client::connect(&server.ws_url()).await;
    let hello = client.recv().await;
    let ServerPayload::ConnectionSuccess(hello) = hello.payload else {
        panic!("first message must be connection_success, got {hello:?}");
    };
    assert_eq!(hello.protocol_version, 1);
    assert_eq!(hello.supported_intervals.len(), 9);
    client
}

/// The simulator's first mint, once it has produced one.
async fn simulated_mint(server: &ServerProcess) -> Symbol {
    let deadline = tokio::time::Instant::now() + SECOND * 20;
    loop {
        let symbols = get_json(&server.url("/api/v1/symbols")).await;
        if let Some(symbol) = symbols[0]["symbol"].as_str() {
            return Symbol::parse(symbol).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the simulator produced no mint"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_event(market: &mut SimulatedMarket, mint: usize) -> EventRecord {
    market.next_event_for(mint, kline_protocol::response::unix_millis_now())
}

async fn post(server: &ServerProcess, events: &[EventRecord]) {
    let body: String = events.iter().map(|e| e.to_json() + "\n").collect();
    let (status, report) = post_events(server, body).await;
    assert_eq!(status, 200, "{report}");
}

fn subscribe(symbol: &Symbol, interval: Interval, id: &str) -> ClientRequest {
    ClientRequest::Subscribe(
        SubscribeRequest::new(symbol.clone(), interval)
            .with_subscription_id(SubscriptionId::new(id).unwrap()),
    )
}

fn expect_error(message: ServerMessage, code: ErrorCode) -> ErrorData {
    match message.payload {
        ServerPayload::Error(error) if error.code == code => error,
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn every_request_kind_and_error_code_and_the_connection_stays_usable() {
    let (_dir, server) = server(&["--set", "kline.max_subscriptions_per_client=2"]);
    let mut market = SimulatedMarket::new(3, 3);
    let mints = market.mints().to_vec();
    post(&server, &[now_event(&mut market, 0)]).await;
    let mut client = connect(&server).await;

    client.send(&ClientRequest::Ping).await;
    assert!(matches!(
        client.recv().await.payload,
        ServerPayload::Pong(_)
    ));
    client.send_text("{not json").await;
    let error = expect_error(client.recv().await, ErrorCode::InvalidRequest);
    assert!(
        error.message.starts_with("malformed JSON"),
        "{}",
        error.message
    );
    client.send_text(r#"{"type":"subscribe","symbol":"test_mint_account","interval":"s1","subscription_id":"x"}"#).await;
    let error = expect_error(client.recv().await, ErrorCode::InvalidRequest);
    assert_eq!(
        (error.msg_type.as_deref(), error.subscription_id.as_deref()),
        (Some("subscribe"), Some("x"))
    );
    client.send_text(r#"{"msg_type":"teleport"}"#).await;
    expect_error(client.recv().await, ErrorCode::InvalidRequest);
    client.send_raw(Message::binary(vec![1, 2, 3])).await;
    expect_error(client.recv().await, ErrorCode::UnsupportedFrame);

    // History of a mint with one event, via WebSocket and REST: the same payload.
    let history = ClientRequest::History(HistoryRequest::new(mints[0].clone(), Interval::M1));
    client.send(&history).await;
    let ServerPayload::HistoryData(data) = client.recv().await.payload else {
        panic!("history_data")
    };
    assert_eq!(data.total_count, 1);
    let rest =
        get_json(&server.url(&format!("/api/v1/klines?symbol={}&interval=m1", mints[0]))).await;
    assert_eq!(serde_json::to_value(&data).unwrap(), rest);

    // Subscription limit 2: the third is refused with 1002, the first two still work.
    for (i, mint) in mints.iter().enumerate() {
        client
            .send(&subscribe(mint, Interval::S1, &format!("s{i}")))
            .await;
        if i < 2 {
            assert!(matches!(
                client.recv().await.payload,
                ServerPayload::HistoryData(_)
            ));
            assert!(matches!(
                client.recv().await.payload,
                ServerPayload::SubscriptionConfirmed(_)
            ));
        } else {
            let error = expect_error(client.recv().await, ErrorCode::SubscriptionRefused);
            assert_eq!(error.subscription_id.as_deref(), Some("s2"));
        }
    }
    client.send(&ClientRequest::Ping).await;
    assert!(
        matches!(client.recv().await.payload, ServerPayload::Pong(_)),
        "still usable"
    );
}

#[tokio::test]
async fn subscribe_streams_updates_once_and_unsubscribe_stops_them() {
    let (_dir, server) = server(&[]);
    let mut market = SimulatedMarket::new(4, 2);
    let mint = market.mints()[0].clone();
    let mut client = connect(&server).await;
    for _ in 0..2 {
        // Subscribing twice confirms again and does not double the updates.
        client.send(&subscribe(&mint, Interval::M1, "a")).await;
        assert!(matches!(
            client.recv().await.payload,
            ServerPayload::HistoryData(_)
        ));
        assert!(matches!(
            client.recv().await.payload,
            ServerPayload::SubscriptionConfirmed(_)
        ));
    }
    for _ in 0..3 {
        post(
            &server,
            &[now_event(&mut market, 0), now_event(&mut market, 1)],
        )
        .await;
        let ServerPayload::KlineData(update) = client.recv().await.payload else {
            panic!("kline_data")
        };
        assert_eq!(
            (
                update.symbol.clone(),
                update.interval,
                update.subscription_id.clone()
            ),
            (mint.clone(), Interval::M1, None)
        );
    }
    // Exactly one update per event on the subscribed pair (mint 1 and other intervals are not sent).
    client.send(&ClientRequest::Ping).await;
    assert!(
        matches!(client.recv().await.payload, ServerPayload::Pong(_)),
        "no duplicate updates queued"
    );

    client
        .send(&ClientRequest::Unsubscribe(UnsubscribeRequest::new(
            mint.clone(),
            Interval::M1,
        )))
        .await;
    assert!(matches!(
        client.recv().await.payload,
        ServerPayload::UnsubscribeConfirmed(_)
    ));
    post(&server, &[now_event(&mut market, 0)]).await;
    client.send(&ClientRequest::Ping).await;
    assert!(
        matches!(client.recv().await.payload, ServerPayload::Pong(_)),
        "no kline_data after unsubscribe"
    );
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("kline_subscriptions_active 0"),
        "{metrics}"
    );
}

/// Under a live stream: a client that subscribes mid-stream gets history, confirmation, then updates none
/// older than the snapshot, `update_count` never going backwards per candle, and every final candle.
#[tokio::test]
async fn ordering_promises_hold_for_a_subscriber_joining_mid_stream() {
    let (_dir, server) = server(&[
        "--set",
        "source.simulator.enabled=true",
        "--set",
        "source.simulator.mints=1",
        "--set",
        "source.simulator.events_per_sec=400",
        "--set",
        "kline.finality_grace_ms=300",
    ]);
    // Join mid-stream: a second's worth of events first.
    wait_for_metric(&server, "kline_events_ingested_total", 400.0).await;
    let mint = simulated_mint(&server).await;
    let mut client = connect(&server).await;
    client.send(&subscribe(&mint, Interval::S1, "live")).await;
    let ServerPayload::HistoryData(snapshot) = client.recv().await.payload else {
        panic!("history first")
    };
    assert!(matches!(
        client.recv().await.payload,
        ServerPayload::SubscriptionConfirmed(_)
    ));
    let newest = snapshot
        .data
        .last()
        .expect("the snapshot includes the open candle");
    assert!(!newest.is_final, "the current candle is in the snapshot");

    let mut latest: BTreeMap<i64, (u32, bool)> = snapshot
        .data
        .iter()
        .map(|c| (c.time, (c.update_count, c.is_final)))
        .collect();
    let mut finals = HashSet::new();
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        let ServerPayload::KlineData(update) = client.recv().await.payload else {
            panic!("only kline_data")
        };
        let candle = update.data;
        assert!(
            candle.time >= snapshot.data[0].time,
            "nothing older than the snapshot"
        );
        if let Some(&(count, was_final)) = latest.get(&candle.time) {
            assert!(!was_final, "nothing after a final candle of the same time");
            assert!(
                (candle.update_count, candle.is_final) > (count, was_final),
                "update_count never goes backwards at {}: {count} then {}",
                candle.time,
                candle.update_count
            );
        }
        latest.insert(candle.time, (candle.update_count, candle.is_final));
        if candle.is_final {
            assert!(finals.insert(candle.time), "a final candle is pushed once");
        }
    }
    // Every candle that was open at subscription time or later, and whose bucket closed more than a
    // second ago, was pushed as final.
    let cutoff = kline_protocol::response::unix_millis_now() / 1000 - 2;
    for (&time, &(_, is_final)) in latest.range(newest.time..cutoff) {
        assert!(is_final, "missed the final candle at {time}");
    }
    assert!(finals.len() >= 2, "finals were seen: {finals:?}");
}

#[tokio::test]
async fn resume_with_from_after_a_disconnect_is_gap_free() {
    let (_dir, server) = server(&[
        "--set",
        "source.simulator.enabled=true",
        "--set",
        "source.simulator.mints=1",
        "--set",
        "source.simulator.events_per_sec=50",
    ]);
    wait_for_metric(&server, "kline_events_ingested_total", 60.0).await;
    let mint = simulated_mint(&server).await;
    let mut candles: BTreeMap<i64, Candle> = BTreeMap::new();

    let mut first = connect(&server).await;
    first.send(&subscribe(&mint, Interval::S1, "a")).await;
    let ServerPayload::HistoryData(history) = first.recv().await.payload else {
        panic!()
    };
    candles.extend(history.data.iter().map(|c| (c.time, *c)));
    first.recv().await;
    for _ in 0..20 {
        if let ServerPayload::KlineData(update) = first.recv().await.payload {
            candles.insert(update.data.time, update.data);
        }
    }
    drop(first);
    // The stream goes on while we are away: two more candles close.
    let finalized = metric(&server, "kline_candles_finalized_total").await;
    wait_for_metric(&server, "kline_candles_finalized_total", finalized + 2.0).await;

    let from = *candles.keys().last().unwrap();
    let mut second = connect(&server).await;
    let resume = SubscribeRequest::new(mint.clone(), Interval::S1).with_from(from);
    second.send(&ClientRequest::Subscribe(resume)).await;
    let ServerPayload::HistoryData(history) = second.recv().await.payload else {
        panic!()
    };
    // One interval plus the finality grace (2 s by default) before it: candles that may have changed since.
    // (The simulator may have begun inside that window.)
    assert!(
        (from - 3..from).contains(&history.data[0].time),
        "the resume starts the finality window before the newest candle held ({from}): {}",
        history.data[0].time
    );
    candles.extend(history.data.iter().map(|c| (c.time, *c)));

    let oldest = *candles.keys().next().unwrap();
    let rest = get_json(&server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval=s1&from={oldest}&limit=1000"
    )))
    .await;
    let stored: Vec<i64> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["time"].as_i64().unwrap())
        .collect();
    let newest_held = *candles.keys().last().unwrap();
    for time in stored.iter().filter(|t| **t <= newest_held) {
        assert!(
            candles.contains_key(time),
            "gap at {time} after resuming from {from}"
        );
    }
}

/// A late event for an older candle that is still open, while the client is away, then that candle's
/// final: a resume with `from` = the newest candle held still brings both (protocol.md, "resume").
#[tokio::test]
async fn a_resume_brings_the_change_and_final_of_an_older_open_candle() {
    let (_dir, server) = server(&["--set", "kline.finality_grace_ms=4000"]);
    let mut market = SimulatedMarket::new(17, 1);
    let mint = market.mints()[0].clone();
    let t2 = kline_protocol::response::unix_millis_now() / 1000;
    let t1 = t2 - 1;
    post(
        &server,
        &[
            market.next_event_for(0, t1 * 1000 + 100),
            market.next_event_for(0, t2 * 1000 + 100),
        ],
    )
    .await;
    let mut client = connect(&server).await;
    client.send(&subscribe(&mint, Interval::S1, "a")).await;
    let ServerPayload::HistoryData(history) = client.recv().await.payload else {
        panic!()
    };
    let held: BTreeMap<i64, Candle> = history.data.iter().map(|c| (c.time, *c)).collect();
    assert_eq!(held.keys().copied().collect::<Vec<_>>(), [t1, t2]);
    assert!(!held[&t1].is_final, "t1 is open for 4 s more");
    drop(client);

    // Away: an event of t1 arrives late (t2 already began), then t1 turns final.
    post(&server, &[market.next_event_for(0, t1 * 1000 + 900)]).await;
    let stored_t1 = || async {
        let rest = get_json(&server.url(&format!(
            "/api/v1/klines?symbol={mint}&interval=s1&from={t1}&to={t2}"
        )))
        .await;
        rest["data"][0].clone()
    };
    kline_tests::wait_until("t1 is final", SECOND * 20, || async {
        stored_t1().await["is_final"] == true
    })
    .await;
    let stored_t1 = stored_t1().await;
    assert_eq!(stored_t1["update_count"], 2, "{stored_t1}");

    let mut client = connect(&server).await;
    let resume = SubscribeRequest::new(mint.clone(), Interval::S1).with_from(t2);
    client.send(&ClientRequest::Subscribe(resume)).await;
    let ServerPayload::HistoryData(history) = client.recv().await.payload else {
        panic!()
    };
    let resumed_t1 = history
        .data
        .iter()
        .find(|c| c.time == t1)
        .unwrap_or_else(|| panic!("the resume from {t2} leaves out t1 = {t1}: {history:?}"));
    assert_eq!(serde_json::to_value(resumed_t1).unwrap(), stored_t1);
}

#[tokio::test]
async fn a_slow_reader_is_closed_with_4008_while_a_fast_one_gets_everything() {
    // A long grace keeps every candle open, so each event below is a live update of its own candle
    // (no newer update of the same candle exists to replace it): ~13 MB of updates, more than the
    // loopback socket buffers of a client that never reads.
    let (_dir, server) = server(&[
        "--set",
        "kline.finality_grace_ms=864000000",
        "--set",
        "kline.intervals=[\"s1\"]",
        "--set",
        "websocket.outbox_capacity=2048",
        "--set",
        // The slow client reads only after the fast one got everything (tens of seconds in a debug build
        // on a busy machine): until then the server must keep waiting to write its close frame.
        "websocket.write_timeout_ms=180000",
    ]);
    const EVENTS: usize = 40_000;
    let mut market = SimulatedMarket::new(6, 1);
    let mint = market.mints()[0].clone();
    let mut fast = connect(&server).await;
    let mut slow = connect(&server).await;
    for client in [&mut fast, &mut slow] {
        client.send(&subscribe(&mint, Interval::S1, "x")).await;
    }
    for _ in 0..2 {
        fast.recv().await;
    }
    let start = kline_protocol::response::unix_millis_now() - EVENTS as i64 * 1000;
    let events: Vec<_> = (0..EVENTS)
        .map(|i| market.next_event_for(0, start + i as i64 * 1000))
        .collect();
    let reader = tokio::spawn(async move {
        let mut updates = 0;
        while updates < EVENTS {
            match fast.recv_within(Duration::from_secs(30)).await {
                Received::Message(message) if message.kind() == "kline_data" => updates += 1,
                Received::Message(_) => {}
                Received::Closed(code) => {
                    panic!("the fast client was closed ({code:?}) after {updates} updates")
                }
            }
        }
        updates
    });
    for chunk in events.chunks(500) {
        post(&server, chunk).await;
    }
    assert_eq!(
        reader.await.unwrap(),
        EVENTS,
        "the fast client received every update"
    );
    // The slow client never read: now it does, and finds the 4008 close after what it was sent.
    assert_eq!(
        slow.close_code(Duration::from_secs(30)).await,
        Some(CloseCode::TooSlow.as_u16())
    );
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("kline_slow_client_closes_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kline_subscriptions_active 0\n"),
        "both left the index (slow close, client close): {metrics}"
    );
}

#[tokio::test]
async fn limits_close_with_their_codes() {
    let (_dir, server) = server(&[
        "--set",
        "websocket.max_message_bytes=1024",
        "--set",
        "kline.connection_timeout=1",
        "--set",
        "websocket.rate_limit_burst=5",
        "--set",
        "websocket.rate_limit_per_sec=1",
        "--set",
        "websocket.rate_limit_strikes=5",
        "--set",
        "websocket.max_connections=3",
    ]);
    let mut big = connect(&server).await;
    big.send_text(&format!(
        "{{\"msg_type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(4096)
    ))
    .await;
    assert_eq!(big.close_code(SECOND * 5).await, Some(1009));

    let mut idle = connect(&server).await;
    let mint = Symbol::from_bytes(&[9; 32]);
    idle.send(&subscribe(&mint, Interval::M5, "idle")).await;
    assert_eq!(idle.close_code(SECOND * 5).await, Some(4000));
    let health = get_json(&server.url("/health")).await;
    assert_eq!(
        health["connections"]["subscriptions"], 0,
        "the idle client left the index: {health}"
    );

    let mut abuser = connect(&server).await;
    for _ in 0..20 {
        abuser.send(&ClientRequest::Ping).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    let code = loop {
        match abuser.recv_within(SECOND * 5).await {
            Received::Message(message) => match message.payload {
                ServerPayload::Pong(_) => pongs += 1,
                ServerPayload::Error(error) if error.code == ErrorCode::RateLimited => limited += 1,
                other => panic!("{other:?}"),
            },
            Received::Closed(code) => break code,
        }
    };
    assert_eq!(
        (pongs, code),
        (5, Some(1008)),
        "burst of 5 answered, then 1004 errors ({limited}), then 1008"
    );
    assert!(limited >= 1);

    // The closed connections' tasks may still be finishing: start the capacity check from zero.
    let deadline = tokio::time::Instant::now() + SECOND * 10;
    while get_json(&server.url("/health")).await["connections"]["active"] != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections did not all close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _a = connect(&server).await;
    let _b = connect(&server).await;
    let _c = connect(&server).await;
    let mut fourth = Client::connect(&server.ws_url()).await;
    assert_eq!(fourth.close_code(SECOND * 5).await, Some(1013));
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001_and_exits_0() {
    let (_dir, mut server) = server(&[]);
    let mut client = connect(&server).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(20));
        (status, server)
    });
    assert_eq!(client.close_code(SECOND * 10).await, Some(1001));
    let (status, _server) = status.await.unwrap();
    assert!(status.expect("exits within the timeout").success());
}

/// A hub shard whose feed inbox overflows (here: 500 candles changed by one write, into an inbox that holds
/// one) re-reads the series from the store and catches up: the subscriber is not closed, and it gets the
/// current state of every candle, never an older state after a newer one.
#[tokio::test]
async fn a_hub_shard_that_falls_behind_catches_up_instead_of_closing_its_subscribers() {
    let (_dir, server) = server(&[
        "--set",
        "kline.broadcast_buffer_size=1",
        "--set",
        "kline.intervals=[\"s1\"]",
        "--set",
        "kline.finality_grace_ms=864000000",
    ]);
    let mut market = SimulatedMarket::new(8, 1);
    let mint = market.mints()[0].clone();
    let mut client = connect(&server).await;
    client.send(&subscribe(&mint, Interval::S1, "lag")).await;
    for _ in 0..2 {
        client.recv().await;
    }
    // On a whole second, so the second event of each candle (100 ms later) stays in that candle.
    let start = (kline_protocol::response::unix_millis_now() - 500_000) / 1000 * 1000;
    for round in 0..2 {
        // Round 0: 500 new candles in one write; round 1: a second event in each of them.
        let events: Vec<_> = (0..500)
            .map(|i| market.next_event_for(0, start + i * 1000 + 100 * round))
            .collect();
        post(&server, &events).await;
        let mut newest: BTreeMap<i64, u32> = BTreeMap::new();
        while newest.len() < 500 || newest.values().any(|count| *count < round as u32 + 1) {
            let message = client.recv_within(SECOND * 20).await;
            let Received::Message(message) = message else {
                panic!("the subscriber was closed or got nothing: {message:?}");
            };
            let ServerPayload::KlineData(update) = message.payload else {
                panic!("unexpected {message:?}");
            };
            let seen = newest.entry(update.data.time).or_default();
            assert!(
                update.data.update_count > *seen,
                "an older or repeated state of candle {} after a newer one",
                update.data.time
            );
            *seen = update.data.update_count;
        }
    }
    let metrics = metrics_text(&server).await;
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} is exported"))
    };
    assert!(
        metric("kline_feed_lagged_total ") > 0,
        "the inbox overflowed"
    );
    assert_eq!(metric("kline_slow_client_closes_total "), 0);
    // And the connection is still in service.
    client.send(&ClientRequest::Ping).await;
    assert!(matches!(
        client.recv().await.payload,
        ServerPayload::Pong(_)
    ));
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_upgrade_gets_an_http_error_naming_the_problem() {
    let (_dir, server) = server(&[]);
    let http = reqwest::Client::new();
    let plain = http.get(server.url("/ws")).send().await.unwrap();
    assert_eq!(plain.status(), 400);
    assert!(plain.text().await.unwrap().contains("`Upgrade` header"));
    let old_version = http
        .get(server.url("/ws"))
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-version", "8")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(old_version.status(), 426);
    assert_eq!(old_version.headers()["sec-websocket-version"], "13");
    // The server is still serving WebSocket clients.
    let mut client = connect(&server).await;
    client.send_text(r#"{"msg_type":"ping"}"#).await;
    assert!(matches!(
        client.recv().await.payload,
        ServerPayload::Pong(_)
    ));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_dir, server) = server(&["--set", "server.header_read_timeout_secs=1"]);
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(SECOND * 15, slow.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the server keeps a connection whose headers never end"
    );
    // Everyone else is still served.
    assert_eq!(get_json(&server.url("/health")).await["status"], "ok");
}

#[tokio::test]
async fn freed_memory_is_returned_once_many_connections_have_closed() {
    let (_dir, server) = server(&["--set", "websocket.memory_trim_after_closes=50"]);
    let trims = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("kline_memory_trims_total "))
            .and_then(|n| n.trim().parse().ok())
            .expect("kline_memory_trims_total is exported")
    };
    let mut clients = Vec::new();
    for _ in 0..60 {
        clients.push(connect(&server).await);
    }
    wait_for_metric(&server, "kline_connections_active", 60.0).await;
    // The memory task samples the connection count once a second and exports no peak to wait for: let it
    // see the 60.
    tokio::time::sleep(SECOND * 2).await;
    assert_eq!(trims(&metrics_text(&server).await), 0, "nothing closed yet");
    drop(clients);
    let deadline = tokio::time::Instant::now() + SECOND * 20;
    while trims(&metrics_text(&server).await) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "60 closed connections (threshold 50) did not trigger a trim"
        );
        tokio::time::sleep(SECOND / 4).await;
    }
    assert!(server.log_text().contains("returned freed heap memory"));
}
