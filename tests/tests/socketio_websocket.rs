//! Socket.IO's websocket transport served by the server itself (`socketio::engine`): a client that opens
//! `/socket.io/?EIO=4&transport=websocket` gets Engine.IO v4 / Socket.IO v5 from our own connection task,
//! proven by `kline_socketio_websocket_connections_active`; a polling session that upgrades stays
//! socketioxide's. Raw frames through tokio-tungstenite, so a test decides when it reads and answers pings.
//! The same contract through socket.io-client is in `tests/js/test_socketio_kline.js`.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::Interval;
use kline_tests::socketio::PollingClient;
use kline_tests::{InProcessServer, KlineServer, metric, post_events, wait_for_metric, wait_until};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const DIRECT: &str = "kline_socketio_websocket_connections_active";
const WAIT: Duration = Duration::from_secs(20);

/// A Socket.IO client on a websocket opened directly, speaking raw Engine.IO packets.
struct DirectClient {
    socket: Socket,
}

/// What the next read gave.
#[derive(Debug, PartialEq)]
enum Next {
    Text(String),
    Binary,
    /// A close frame (its code), or the end of the stream (`None`).
    Closed(Option<u16>),
}

impl DirectClient {
    fn url(server: &impl KlineServer) -> String {
        format!(
            "ws://{}/socket.io/?EIO=4&transport=websocket",
            server.addr()
        )
    }

    /// Opens the websocket; returns the client and the Engine.IO open packet's JSON.
    async fn open(server: &impl KlineServer) -> (DirectClient, Value) {
        let (socket, _) = tokio_tungstenite::connect_async(Self::url(server))
            .await
            .expect("the websocket opens");
        DirectClient::opened(socket).await
    }

    /// Opens the websocket with a 4 KiB receive buffer, for a test in which it stops reading.
    async fn open_small(server: &impl KlineServer) -> (DirectClient, Value) {
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.set_recv_buffer_size(4096).unwrap();
        let stream = tcp.connect(server.addr()).await.unwrap();
        let (socket, _) =
            tokio_tungstenite::client_async(Self::url(server), MaybeTlsStream::Plain(stream))
                .await
                .expect("the websocket opens");
        DirectClient::opened(socket).await
    }

    async fn opened(socket: Socket) -> (DirectClient, Value) {
        let mut client = DirectClient { socket };
        let Next::Text(open) = client.next().await else {
            panic!("an open packet");
        };
        let handshake = serde_json::from_str(open.strip_prefix('0').expect("`0`: open")).unwrap();
        (client, handshake)
    }

    async fn send(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.expect("sends");
    }

    /// The next frame (WebSocket pings are answered by tungstenite and skipped).
    async fn next(&mut self) -> Next {
        loop {
            let next = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a frame in time");
            return match next {
                Some(Ok(Message::Text(text))) => Next::Text(text.to_string()),
                Some(Ok(Message::Binary(_))) => Next::Binary,
                Some(Ok(Message::Close(frame))) => Next::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => Next::Closed(None),
            };
        }
    }

    /// The next text packet that is not an Engine.IO ping (answered with a pong).
    async fn packet(&mut self) -> String {
        loop {
            match self.next().await {
                Next::Text(ping) if ping == "2" => self.send("3").await,
                Next::Text(text) => return text,
                other => panic!("a packet was expected: {other:?}"),
            }
        }
    }

    /// The next `/kline` event's name and argument (Engine.IO pings answered).
    async fn event(&mut self) -> (String, Value) {
        let packet = self.packet().await;
        parse_event(&packet).unwrap_or_else(|| panic!("an event: {packet}"))
    }

    /// The next event named `name`, skipping others.
    async fn event_named(&mut self, name: &str) -> Value {
        loop {
            let (event, data) = self.event().await;
            if event == name {
                return data;
            }
        }
    }

    async fn emit(&mut self, event: &str, data: Value) {
        self.send(&format!("42/kline,{}", json!([event, data])))
            .await;
    }

    /// Joined to `/kline`: returns the socket id of `40/kline,{"sid"}`.
    async fn join(&mut self) -> String {
        self.send("40/kline,").await;
        let connected = self.packet().await;
        let sid: Value = serde_json::from_str(
            connected
                .strip_prefix("40/kline,")
                .unwrap_or_else(|| panic!("a connect answer: {connected}")),
        )
        .unwrap();
        sid["sid"].as_str().unwrap().to_owned()
    }

    /// Reads until the connection ends; returns the close frame's code and the text packets read before.
    async fn until_closed(&mut self) -> (Option<u16>, Vec<String>) {
        let mut packets = Vec::new();
        loop {
            match self.next().await {
                Next::Closed(code) => return (code, packets),
                Next::Text(text) => packets.push(text),
                Next::Binary => {}
            }
        }
    }
}

/// `42/kline,["name",arg]` (an ack id is allowed) as (name, arg).
fn parse_event(packet: &str) -> Option<(String, Value)> {
    let rest = packet.strip_prefix("42/kline,")?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let Value::Array(mut args) = serde_json::from_str(rest).ok()? else {
        return None;
    };
    let data = args.get_mut(1).map(Value::take).unwrap_or(Value::Null);
    Some((args[0].as_str()?.to_owned(), data))
}

#[tokio::test]
async fn a_direct_websocket_is_served_by_the_servers_own_transport_with_the_old_contract() {
    let server = InProcessServer::start(&[]);
    let mut market = SimulatedMarket::new(41, 1);
    let mint = market.mints()[0].to_string();
    let time = kline_protocol::response::unix_millis_now();
    let (status, _) = post_events(&server, market.next_event_for(0, time).to_json()).await;
    assert_eq!(status, 200);

    let (mut client, open) = DirectClient::open(&server).await;
    assert_eq!(open["upgrades"], json!([]), "already a websocket: {open}");
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 60_000);
    assert_eq!(open["maxPayload"], 1_048_576);
    assert_eq!(
        metric(&server, DIRECT).await,
        1.0,
        "served by our own transport"
    );

    let sid = client.join().await;
    let (event, hello) = client.event().await;
    assert_eq!(event, "connection_success");
    assert_eq!(hello["client_id"], sid);
    assert_eq!(hello["supported_intervals"].as_array().unwrap().len(), 9);
    wait_for_metric(&server, "kline_socketio_connections_active", 1.0).await;

    // An ack id is accepted and ignored (the old server acknowledged nothing): no `43` comes.
    client
        .send(&format!(
            "42/kline,7{}",
            json!(["subscribe", {"symbol": mint, "interval": "s1", "subscription_id": "a"}])
        ))
        .await;
    let mut names = Vec::new();
    for _ in 0..3 {
        let packet = client.packet().await;
        assert!(!packet.starts_with("43"), "no ack: {packet}");
        let (name, data) = parse_event(&packet).unwrap();
        if name == "subscription_confirmed" {
            assert_eq!(data["subscription_id"], "a");
            assert_eq!(data["message"], "订阅成功");
        }
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "history_data",
            "history_event_data",
            "subscription_confirmed"
        ]
    );
    let (status, _) = post_events(&server, market.next_event_for(0, time).to_json()).await;
    assert_eq!(status, 200);
    let update = client.event_named("kline_data").await;
    assert_eq!(update["symbol"], mint);
    assert_eq!(update["interval"], "s1");
    assert_eq!(update["data"]["update_count"], 2, "{update}");
    client.emit("ping", json!({})).await;
    client.event_named("pong").await;

    // `41/kline,` leaves the namespace: the session ends, the connection stays until the client closes.
    client.send("41/kline,").await;
    wait_until("the session to end", WAIT, || async {
        metric(&server, "kline_socketio_connections_active").await == 0.0
    })
    .await;
    assert_eq!(metric(&server, DIRECT).await, 1.0);
    client.socket.close(None).await.unwrap();
    wait_until("the connection to end", WAIT, || async {
        metric(&server, DIRECT).await == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_polling_session_that_upgrades_to_websocket_stays_socketioxides() {
    let server = InProcessServer::start(&[]);
    let (polling, open) = PollingClient::open(&server).await;
    polling.send("40/kline,").await;
    // engineioxide's first ping may come first.
    let mut packets = Vec::new();
    while !packets.iter().any(|p: &String| p.starts_with("40/kline,")) {
        assert!(packets.len() < 10, "{packets:?}");
        packets.extend(polling.poll().await);
    }

    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket&sid={}",
        server.addr(),
        open["sid"].as_str().unwrap()
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrades");
    let mut client = DirectClient { socket };
    client.send("2probe").await;
    assert_eq!(client.packet().await, "3probe");
    // socketioxide ends the pending long-poll with a noop before the upgrade completes.
    let _ = polling.poll().await;
    client.send("5").await;
    client.emit("ping", json!({})).await;
    client.event_named("pong").await;
    assert_eq!(metric(&server, DIRECT).await, 0.0, "socketioxide serves it");
    assert_eq!(
        metric(&server, "kline_socketio_connections_active").await,
        1.0
    );
}

#[tokio::test]
async fn a_namespace_other_than_kline_gets_socketioxides_answer_on_both_transports() {
    let server = InProcessServer::start(&[]);
    let mut answers = Vec::new();
    for connect in ["40", "40/admin,"] {
        let (polling, _) = PollingClient::open(&server).await;
        polling.send(connect).await;
        // engineioxide pings at once: its ping is not the answer.
        let mut by_socketioxide = Vec::new();
        while by_socketioxide.is_empty() {
            by_socketioxide = polling.poll().await;
            by_socketioxide.retain(|packet| packet != "2");
        }
        let (mut client, _) = DirectClient::open(&server).await;
        client.send(connect).await;
        let by_us = client.packet().await;
        assert_eq!(by_socketioxide, std::slice::from_ref(&by_us), "{connect}");
        answers.push(by_us);
    }
    assert_eq!(
        answers,
        [
            r#"44{"message":"Invalid namespace"}"#,
            r#"44/admin,{"message":"Invalid namespace"}"#
        ]
    );
}

#[tokio::test]
async fn malformed_packets_and_binary_frames_end_the_connection_and_the_server_goes_on() {
    let server = InProcessServer::start(&[]);
    let bad = [
        Message::text("42/kline,{not json"),
        Message::text("9"),
        Message::text("42/kline,[1,2]"),
        Message::binary(vec![1, 2, 3]),
    ];
    for message in bad {
        let (mut client, _) = DirectClient::open(&server).await;
        client.join().await;
        client.event_named("connection_success").await;
        let shown = format!("{message:?}");
        client.socket.send(message).await.unwrap();
        let (code, packets) = client.until_closed().await;
        assert_eq!(code, Some(1000), "{shown}");
        assert_eq!(
            packets.last().map(String::as_str),
            Some("1"),
            "{shown}: Engine.IO close"
        );
    }
    // A message over maxPayload: 1009, as engine.io's `ws` closes it.
    let server = InProcessServer::start(&["socketio.max_payload_bytes=1024"]);
    let (mut client, _) = DirectClient::open(&server).await;
    client
        .send(&format!("42/kline,[\"ping\",\"{}\"]", "x".repeat(2000)))
        .await;
    assert_eq!(client.until_closed().await.0, Some(1009));
    wait_until("every connection to end", WAIT, || async {
        metric(&server, DIRECT).await == 0.0
    })
    .await;
    let (mut client, _) = DirectClient::open(&server).await;
    client.join().await;
    client.event_named("connection_success").await;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_after_the_ping_timeout() {
    let server = InProcessServer::start(&[
        "socketio.ping_interval_secs=1",
        "socketio.ping_timeout_secs=1",
    ]);
    let (mut answering, _) = DirectClient::open(&server).await;
    let (mut silent, _) = DirectClient::open(&server).await;
    answering.join().await;
    silent.join().await;
    for client in [&mut answering, &mut silent] {
        client.event_named("connection_success").await;
    }
    // Three pings answered (`packet` answers them) keep the answering client open.
    for _ in 0..3 {
        assert_eq!(answering.next().await, Next::Text("2".into()));
        answering.send("3").await;
    }
    // The silent one got its first ping, then the close.
    let (code, packets) = silent.until_closed().await;
    assert_eq!(
        packets,
        ["2", "1"],
        "one ping, no second, then Engine.IO close"
    );
    assert_eq!(code, Some(1000));
    wait_until("only the answering client to remain", WAIT, || async {
        metric(&server, DIRECT).await == 1.0
            && metric(&server, "kline_socketio_connections_active").await == 1.0
    })
    .await;
    answering.emit("ping", json!({})).await;
    answering.event_named("pong").await;
}

/// A client on every interval of `mint`: each event then brings nine updates.
async fn subscribed_to_every_interval(
    client: &mut DirectClient,
    server: &InProcessServer,
    mint: &str,
) {
    client.join().await;
    client.event_named("connection_success").await;
    for interval in Interval::ALL {
        client
            .emit(
                "subscribe",
                json!({"symbol": mint, "interval": interval.as_str()}),
            )
            .await;
        client.event_named("subscription_confirmed").await;
    }
    wait_for_metric(server, "kline_subscriptions_active", 9.0).await;
}

#[tokio::test]
async fn a_slow_direct_websocket_gets_the_newest_state_of_each_candle_and_stays_connected() {
    let server = InProcessServer::start(&[]);
    let mut market = SimulatedMarket::new(21, 1);
    let mint = market.mints()[0].to_string();
    let time = kline_protocol::response::unix_millis_now();
    let (status, _) = post_events(&server, market.next_event_for(0, time).to_json()).await;
    assert_eq!(status, 200);
    let (mut client, _) = DirectClient::open_small(&server).await;
    subscribed_to_every_interval(&mut client, &server, &mint).await;

    // The client does not read while events of the same millisecond (the same nine candles) arrive, until
    // the socket buffers are full and waiting updates are replaced by newer ones.
    wait_until(
        "waiting updates to be replaced by newer ones",
        Duration::from_secs(120),
        || {
            let body: String = (0..100)
                .map(|_| market.next_event_for(0, time).to_json() + "\n")
                .collect();
            let server = &server;
            async move {
                assert_eq!(post_events(server, body).await.0, 200);
                metric(server, "kline_updates_replaced_total").await >= 1.0
            }
        },
    )
    .await;
    let stored =
        kline_tests::get_json(&server.url(&format!("/api/kline?mint={mint}&interval=s1&limit=1")))
            .await;
    let newest = stored["data"]["klines"][0].clone();

    // Reading again, it gets each candle's newest state, and no close.
    let mut latest: HashMap<String, Value> = HashMap::new();
    while !(latest.len() == 9
        && latest
            .values()
            .all(|c| c["update_count"] == newest["update_count"]))
    {
        let packet = client.packet().await;
        assert_ne!(packet, "41/kline,", "a slow reader is not disconnected");
        if let Some((name, update)) = parse_event(&packet)
            && name == "kline_data"
        {
            latest.insert(
                update["interval"].as_str().unwrap().to_owned(),
                update["data"].clone(),
            );
        }
    }
    for (interval, candle) in &latest {
        assert_eq!(candle["close"], newest["close"], "{interval}: {candle}");
    }
    assert_eq!(metric(&server, "kline_slow_client_closes_total").await, 0.0);
    assert_eq!(metric(&server, DIRECT).await, 1.0);
}

#[tokio::test]
async fn a_direct_websocket_that_stops_reading_is_closed_once_its_byte_budget_is_spent() {
    let server = InProcessServer::start(&[
        "socketio.max_backlog_bytes=65536",
        // Not the drain rate: the byte budget closes it.
        "websocket.write_timeout_ms=600000",
    ]);
    let mut market = SimulatedMarket::new(22, 1);
    let mint = market.mints()[0].to_string();
    // Events a second apart: every one opens new candles, which nothing replaces.
    let mut time = kline_protocol::response::unix_millis_now() - 36_000_000;
    let (status, _) = post_events(&server, market.next_event_for(0, time).to_json()).await;
    assert_eq!(status, 200);
    let (mut client, _) = DirectClient::open_small(&server).await;
    subscribed_to_every_interval(&mut client, &server, &mint).await;

    wait_until(
        "the socket to be closed as too slow",
        Duration::from_secs(120),
        || {
            let body: String = (0..100)
                .map(|_| {
                    time += 1_000;
                    market.next_event_for(0, time).to_json() + "\n"
                })
                .collect();
            let server = &server;
            async move {
                assert_eq!(post_events(server, body).await.0, 200);
                metric(server, "kline_slow_client_closes_total").await >= 1.0
            }
        },
    )
    .await;
    wait_until("its subscriptions to leave the hub", WAIT, || async {
        metric(&server, "kline_subscriptions_active").await == 0.0
    })
    .await;
    // Reading again, the client gets what the socket buffers held, then the close: 4008, as on /ws.
    let (code, _) = client.until_closed().await;
    assert_eq!(code, Some(4008));
    wait_until("the connection to end", WAIT, || async {
        metric(&server, DIRECT).await == 0.0
            && metric(&server, "kline_socketio_connections_active").await == 0.0
    })
    .await;
}

/// The memory task counts this transport's connections too: once many have closed, the freed heap goes
/// back to the OS (it counted `/ws` connections only, so an idle run of Socket.IO sockets stayed at its peak).
#[tokio::test]
async fn freed_memory_is_returned_once_many_direct_websockets_have_closed() {
    let server = InProcessServer::start(&["websocket.memory_trim_after_closes=50"]);
    let trims = "kline_memory_trims_total";
    let mut clients = Vec::new();
    for _ in 0..60 {
        let (mut client, _) = DirectClient::open(&server).await;
        client.join().await;
        clients.push(client);
    }
    wait_for_metric(&server, DIRECT, 60.0).await;
    // The memory task samples the connection count once a second and exports no peak to wait for: let it
    // see the 60.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(metric(&server, trims).await, 0.0, "nothing closed yet");
    drop(clients);
    wait_until(
        "60 closed sockets (threshold 50) trigger a trim",
        WAIT,
        || async { metric(&server, trims).await >= 1.0 },
    )
    .await;
}
