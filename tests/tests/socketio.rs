//! The Socket.IO endpoint (`/socket.io`, namespace `/kline`) through raw Engine.IO v4 long-polling
//! requests on the in-process server: the heartbeat and payload settings the old server had, and the
//! slow-consumer policy (`/ws`'s: a slow socket gets the newest state of each candle; one that stops reading
//! leaves the hub and is disconnected from `/kline` once its backlog is full).
//! The client flows with socket.io-client itself are in `tests/js/test_socketio_kline.js`.

use std::time::Duration;

use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::Interval;
use kline_tests::socketio::{PollingClient, SEPARATOR};
use kline_tests::{InProcessServer, KlineServer, metric, post_events, wait_for_metric, wait_until};
use serde_json::{Value, json};

#[tokio::test]
async fn the_engine_io_handshake_has_the_old_servers_heartbeat_and_a_1_mib_payload() {
    let server = InProcessServer::start(&[]);
    let (mut client, handshake) = PollingClient::open(&server).await;
    assert_eq!(handshake["pingInterval"], 25_000);
    assert_eq!(handshake["pingTimeout"], 60_000);
    assert_eq!(handshake["maxPayload"], 1_048_576);
    assert_eq!(handshake["upgrades"], json!(["websocket"]));
    client.send("40/kline,").await;
    let hello = client.event("connection_success").await;
    assert_eq!(hello["supported_intervals"].as_array().unwrap().len(), 9);
    wait_for_metric(&server, "kline_socketio_connections_active", 1.0).await;
}

/// A polling client joined to `/kline` and subscribed to every interval of `mint`: each event then brings
/// nine updates.
async fn subscribed_to_every_interval(server: &impl KlineServer, mint: &str) -> PollingClient {
    let mut client = PollingClient::joined(server).await;
    for interval in Interval::ALL {
        client
            .emit(
                "subscribe",
                json!({"symbol": mint, "interval": interval.as_str()}),
            )
            .await;
        client.event("subscription_confirmed").await;
    }
    wait_for_metric(server, "kline_subscriptions_active", 9.0).await;
    client
}

#[tokio::test]
async fn a_slow_socket_gets_the_newest_state_of_each_candle_and_stays_connected() {
    // socketioxide's buffer holds 8 packets: the rest of each event's nine updates waits in the backlog.
    let server = InProcessServer::start(&["socketio.max_buffer_packets=8"]);
    let mut market = SimulatedMarket::new(21, 1);
    let mint = market.mints()[0].to_string();
    let time = kline_protocol::response::unix_millis_now();
    let (status, _) = post_events(&server, market.next_event_for(0, time).to_json()).await;
    assert_eq!(status, 200);
    let client = subscribed_to_every_interval(&server, &mint).await;

    // The client does not read while 40 more events of the same millisecond (the same candles) arrive,
    // one request each.
    for _ in 0..40 {
        let (status, _) = post_events(&server, market.next_event_for(0, time).to_json()).await;
        assert_eq!(status, 200);
    }
    wait_until(
        "waiting updates to be replaced by newer ones",
        Duration::from_secs(20),
        || async { metric(&server, "kline_updates_replaced_total").await >= 1.0 },
    )
    .await;
    let stored =
        kline_tests::get_json(&server.url(&format!("/api/kline?mint={mint}&interval=s1&limit=1")))
            .await;
    let newest = &stored["data"]["klines"][0];
    assert_eq!(newest["update_count"], 41, "{stored}");

    // Reading again, it gets each candle's newest state, and no disconnect.
    let mut latest: std::collections::HashMap<String, Value> = Default::default();
    for _ in 0..50 {
        if latest.len() == 9 && latest.values().all(|candle| candle["update_count"] == 41) {
            break;
        }
        for packet in client.poll().await {
            assert_ne!(packet, "41/kline,", "a slow reader is not disconnected");
            if let Some(rest) = packet.strip_prefix("42/kline,[\"kline_data\",") {
                let update: Value = serde_json::from_str(&rest[..rest.len() - 1]).unwrap();
                let interval = update["interval"].as_str().unwrap().to_string();
                latest.insert(interval, update["data"].clone());
            }
        }
    }
    assert_eq!(latest.len(), 9, "every interval's candle came: {latest:?}");
    for (interval, candle) in &latest {
        assert_eq!(candle["update_count"], 41, "{interval}: {candle}");
        assert_eq!(candle["close"], newest["close"], "{interval}: {candle}");
    }
    assert_eq!(metric(&server, "kline_slow_client_closes_total").await, 0.0);
    assert_eq!(
        metric(&server, "kline_socketio_connections_active").await,
        1.0
    );
}

#[tokio::test]
async fn a_socket_that_stops_reading_is_disconnected_once_its_backlog_is_full() {
    let server = InProcessServer::start(&[
        "socketio.max_buffer_packets=8",
        "socketio.max_backlog_packets=16",
    ]);
    let mut market = SimulatedMarket::new(21, 1);
    let mint = market.mints()[0].to_string();
    // One event a second apart each: every event opens new candles, which nothing replaces.
    let mut time = kline_protocol::response::unix_millis_now() - 3_600_000;
    let mut event = move |market: &mut SimulatedMarket| {
        time += 1_000;
        market.next_event_for(0, time).to_json()
    };
    let (status, _) = post_events(&server, event(&mut market)).await;
    assert_eq!(status, 200);
    let client = subscribed_to_every_interval(&server, &mint).await;

    // The client stops reading; events keep coming.
    wait_until(
        "the socket to be closed as too slow",
        Duration::from_secs(20),
        || {
            let body = event(&mut market);
            let server = &server;
            async move {
                post_events(server, body).await;
                metric(server, "kline_slow_client_closes_total").await >= 1.0
            }
        },
    )
    .await;
    wait_until(
        "its subscriptions to leave the hub",
        Duration::from_secs(10),
        || async { metric(&server, "kline_subscriptions_active").await == 0.0 },
    )
    .await;

    // Reading again, the client gets what its buffer held, then the namespace's disconnect packet.
    let mut disconnected = false;
    for _ in 0..20 {
        if client.poll().await.iter().any(|p| p == "41/kline,") {
            disconnected = true;
            break;
        }
    }
    assert!(disconnected, "the socket is disconnected from /kline");
    wait_until(
        "the socket's session to end",
        Duration::from_secs(10),
        || async { metric(&server, "kline_socketio_connections_active").await == 0.0 },
    )
    .await;
}

#[tokio::test]
async fn ws_and_socketio_subscribers_of_one_series_get_the_same_update_from_the_shared_hub() {
    use kline_protocol::{ClientRequest, ServerPayload, SubscribeRequest, Symbol};
    let server = InProcessServer::start(&[]);
    let mut market = SimulatedMarket::new(33, 1);
    let mint = market.mints()[0].to_string();
    let now = kline_protocol::response::unix_millis_now;
    post_events(&server, market.next_event_for(0, now()).to_json()).await;

    let mut ws = kline_tests::ws::Client::connect(&server.ws_url()).await;
    ws.recv().await; // connection_success
    let symbol = Symbol::parse(&mint).unwrap();
    ws.send(&ClientRequest::Subscribe(SubscribeRequest::new(
        symbol,
        Interval::M5,
    )))
    .await;
    let (mut sio, _) = PollingClient::open(&server).await;
    sio.send("40/kline,").await;
    sio.event("connection_success").await;
    sio.emit("subscribe", json!({"symbol": mint, "interval": "m5"}))
        .await;
    let history = sio.event("history_data").await;
    assert_eq!(history["data"].as_array().unwrap().len(), 1);
    sio.event("subscription_confirmed").await;
    wait_for_metric(&server, "kline_subscriptions_active", 2.0).await;

    let (status, _) = post_events(&server, market.next_event_for(0, now()).to_json()).await;
    assert_eq!(status, 200);
    let via_sio = sio.event("kline_data").await;
    let via_ws = loop {
        if let ServerPayload::KlineData(update) = ws.recv().await.payload {
            break update;
        }
    };
    assert_eq!(via_sio["symbol"], mint.as_str());
    assert_eq!(via_sio["interval"], "m5");
    // The same update; Socket.IO in the old server's candle shape (without the volume breakdown).
    let mut expected = serde_json::to_value(via_ws.data).unwrap();
    for added in ["quote_volume", "taker_buy_volume", "taker_buy_quote_volume"] {
        expected.as_object_mut().unwrap().remove(added);
    }
    assert_eq!(via_sio["data"], expected);
    assert_eq!(via_sio["data"]["update_count"], 2);
}

#[tokio::test]
async fn requests_beyond_the_sockets_queue_get_error_1004() {
    let server = InProcessServer::start(&["socketio.request_queue=2"]);
    let mut client = PollingClient::joined(&server).await;
    let mint = "So11111111111111111111111111111111111111112";
    // 40 requests in one polling payload.
    client
        .emit_together((0..40).map(|i| {
            let request = json!({"symbol": mint, "interval": "s1", "limit": i + 1});
            ("history", request)
        }))
        .await;
    let error = client.event("error").await;
    assert_eq!(error["code"], 1004);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("too many requests waiting"),
        "{error}"
    );
    wait_for_metric(&server, "kline_rate_limited_total", 1.0).await;
}

#[tokio::test]
async fn at_the_connection_limit_over_both_transports_a_new_socket_is_disconnected() {
    let server = InProcessServer::start(&["websocket.max_connections=1"]);
    let mut ws = kline_tests::ws::Client::connect(&server.ws_url()).await;
    ws.recv().await; // connection_success: the one connection allowed
    let (client, _) = PollingClient::open(&server).await;
    client.send("40/kline,").await;
    let mut disconnected = false;
    for _ in 0..5 {
        if client.poll().await.iter().any(|p| p == "41/kline,") {
            disconnected = true;
            break;
        }
    }
    assert!(disconnected, "the socket beyond the limit is disconnected");
    wait_for_metric(&server, "kline_connections_rejected_total", 1.0).await;
}

#[tokio::test]
async fn requests_sent_back_to_back_are_answered_in_the_order_sent() {
    let server = InProcessServer::start(&[]);
    let (mut client, _) = PollingClient::open(&server).await;
    client.send("40/kline,").await;
    client.event("connection_success").await;
    let mint = "So11111111111111111111111111111111111111112";
    // Nine requests in one polling payload, then read the nine answers.
    let packets: Vec<String> = Interval::ALL
        .iter()
        .map(|interval| {
            let request = json!(["history", {"symbol": mint, "interval": interval.as_str()}]);
            format!("42/kline,{request}")
        })
        .collect();
    client.send(&packets.join(&SEPARATOR.to_string())).await;
    let mut answered = Vec::new();
    for _ in Interval::ALL {
        answered.push(client.event("history_data").await["interval"].clone());
    }
    let sent: Vec<Value> = Interval::ALL.iter().map(|i| json!(i.as_str())).collect();
    assert_eq!(answered, sent);
}

#[tokio::test]
async fn sigterm_with_sockets_on_both_transports_ends_them_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = kline_tests::ServerProcess::start(
        &dir.path().join("db"),
        &["--set", "source.simulator.events_per_sec=50"],
    );
    // A polling socket waiting in a long-poll, and a websocket-transport socket.
    let (mut polling, _) = PollingClient::open(&server).await;
    polling.send("40/kline,").await;
    polling.event("connection_success").await;
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.addr()
    );
    let (mut websocket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    websocket.next().await.unwrap().unwrap(); // the Engine.IO open packet
    websocket
        .send(tokio_tungstenite::tungstenite::Message::text("40/kline,"))
        .await
        .unwrap();
    wait_for_metric(&server, "kline_socketio_connections_active", 2.0).await;
    // Whatever it returns (the last packets, or a closed connection), it must return.
    let long_poll = tokio::spawn(async move {
        let _ = polling.http.get(&polling.url).send().await;
    });

    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(20));
        (status, server.log_text())
    })
    .await
    .unwrap();
    let (status, log) = status;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}:\n{log}"
    );
    assert!(log.contains("store flushed"), "{log}");
    // Both sockets were ended by the server, not left hanging.
    let returned = tokio::time::timeout(Duration::from_secs(5), long_poll).await;
    assert!(returned.is_ok(), "the pending long-poll returns");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = websocket.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the websocket transport is closed");
}

#[tokio::test]
async fn history_reads_the_candles_it_answers_and_counts_the_series_without_reading_it() {
    let server = InProcessServer::start(&[]);
    let mut market = SimulatedMarket::new(31, 1);
    let mint = market.mints()[0].to_string();
    // 40 events a second apart, an hour ago: 40 s1 candles (fewer if some event moves no price).
    let start = (kline_protocol::response::unix_millis_now() - 3_600_000) / 1000 * 1000;
    let body: String = (0..40)
        .map(|i| market.next_event_for(0, start + i * 1000 + 250).to_json() + "\n")
        .collect();
    let (status, report) = post_events(&server, body).await;
    assert_eq!(status, 200, "{report}");
    let mut client = PollingClient::joined(&server).await;

    let read_before = metric(&server, "kline_store_candles_read_total").await;
    client
        .emit(
            "history",
            json!({"symbol": mint, "interval": "s1", "limit": 3}),
        )
        .await;
    let history = client.event("history_data").await;
    assert_eq!(history["data"].as_array().unwrap().len(), 3);
    let total = history["total_count"].as_u64().unwrap();
    assert!(total > 30, "total_count counts the whole series: {history}");
    let read = metric(&server, "kline_store_candles_read_total").await - read_before;
    assert!(
        read <= 4.0,
        "{read} candles read for 3 of {total}: the series is not scanned for its count"
    );
}

#[tokio::test]
async fn a_socket_that_keeps_sending_while_rate_limited_is_disconnected_as_ws_is_closed() {
    let server = InProcessServer::start(&[
        "websocket.rate_limit_burst=2",
        "websocket.rate_limit_per_sec=0.01",
        "websocket.rate_limit_strikes=3",
    ]);
    let mut client = PollingClient::joined(&server).await;
    let mint = "So11111111111111111111111111111111111111112";
    // A 100-candle history costs 2 tokens (as on /ws): the whole burst; then three refusals in a row.
    let history = json!({"symbol": mint, "interval": "s1"});
    client
        .emit_together((0..4).map(|_| ("history", history.clone())))
        .await;
    client.event("history_data").await;
    for _ in 0..3 {
        assert_eq!(client.event("error").await["code"], 1004);
    }
    let mut disconnected = client.unread.iter().any(|p| p == "41/kline,");
    for _ in 0..5 {
        if disconnected {
            break;
        }
        disconnected = client.poll().await.iter().any(|p| p == "41/kline,");
    }
    assert!(disconnected, "the socket is disconnected from /kline");
    wait_for_metric(&server, "kline_rate_limited_total", 3.0).await;
}
