//! permessage-deflate (RFC 7692) on `/ws`, seen from raw frames: what an offer is answered with, that a
//! compressed reply inflates to exactly the uncompressed one, and that live updates are compressed once and
//! shared. Frames are inflated with flate2 here, not with the server's code.

use std::time::Duration;

use kline_core::simulated_market::SimulatedMarket;
use kline_tests::raw_ws::*;
use kline_tests::{InProcessServer, KlineServer, post_events};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

fn negotiated(client: &RawClient) -> Option<String> {
    client
        .handshake
        .lines()
        .find(|line| {
            line.to_ascii_lowercase()
                .starts_with("sec-websocket-extensions:")
        })
        .map(|line| line.split_once(':').unwrap().1.trim().to_owned())
}

#[tokio::test]
async fn offers_are_answered_without_context_takeover_and_only_when_acceptable() {
    let server = InProcessServer::start(&[]);
    let answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    for (offer, expected) in [
        (BROWSER_OFFER, Some(answer)),
        (
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            Some(answer),
        ),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n",
            Some(answer),
        ),
        // Not acceptable: an unknown parameter; a window zlib cannot honour; another extension.
        (
            "Sec-WebSocket-Extensions: permessage-deflate; foo=1\r\n",
            None,
        ),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8\r\n",
            None,
        ),
        ("Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", None),
        ("", None),
    ] {
        let client = RawClient::connect_with(server.addr(), offer).await;
        assert_eq!(negotiated(&client).as_deref(), expected, "offer {offer:?}");
    }
    let off = InProcessServer::start(&["websocket.compression=false"]);
    let client = RawClient::connect_with(off.addr(), BROWSER_OFFER).await;
    assert_eq!(
        negotiated(&client),
        None,
        "compression = false ignores offers"
    );
}

/// Reads frames until a text message of `kind`; returns the frame.
async fn next_message(client: &mut RawClient, kind: &str) -> ServerFrame {
    let needle = format!(r#""type":"{kind}""#);
    loop {
        match client.read(WAIT).await {
            Read::Frame(frame) if frame.opcode == OP_TEXT => {
                if String::from_utf8_lossy(&frame.message()).contains(&needle) {
                    return frame;
                }
            }
            Read::Frame(_) => {}
            Read::Eof => panic!("the server closed while waiting for {kind}"),
        }
    }
}

fn json(frame: &ServerFrame) -> Value {
    serde_json::from_slice(&frame.message()).expect("a JSON message")
}

#[tokio::test]
async fn a_1000_candle_history_comes_compressed_and_inflates_to_the_uncompressed_answer() {
    let server = InProcessServer::start(&[]);
    let mut market = SimulatedMarket::new(7, 1);
    let mint = market.mints()[0].to_string();
    let start = kline_protocol::response::unix_millis_now() - 3_600_000;
    let body: String = (0..1000)
        .map(|i| market.next_event(start + i * 1000).to_json() + "\n")
        .collect();
    let (status, report) = post_events(&server, body).await;
    assert_eq!(
        (status, &report["accepted"]),
        (200, &Value::from(1000)),
        "{report}"
    );

    let request =
        format!(r#"{{"msg_type":"history","symbol":"{mint}","interval":"s1","limit":1000}}"#);
    let mut plain = RawClient::connect(server.addr()).await;
    plain.send(&RawFrame::text(&request)).await;
    let plain_answer = next_message(&mut plain, "history_data").await;
    assert_eq!(plain_answer.rsv, 0, "no offer, no compression");

    let mut compressed = RawClient::connect_with(server.addr(), BROWSER_OFFER).await;
    compressed
        .send(&RawFrame::deflated_text(request.as_bytes()))
        .await;
    let compressed_answer = next_message(&mut compressed, "history_data").await;
    assert_eq!(compressed_answer.rsv, 0b100, "RSV1: compressed");

    let (plain_json, inflated_json) = (json(&plain_answer), json(&compressed_answer));
    assert_eq!(
        plain_json["data"]["data"].as_array().map(Vec::len),
        Some(1000)
    );
    assert_eq!(plain_json["data"], inflated_json["data"]);
    let ratio = plain_answer.payload.len() as f64 / compressed_answer.payload.len() as f64;
    assert!(
        ratio > 4.0,
        "{} bytes compressed to {} (ratio {ratio:.1})",
        plain_answer.payload.len(),
        compressed_answer.payload.len()
    );
    // Small replies stay uncompressed (below websocket.compression_min_bytes).
    compressed
        .send(&RawFrame::text(r#"{"msg_type":"ping"}"#))
        .await;
    assert_eq!(next_message(&mut compressed, "pong").await.rsv, 0);
}

#[tokio::test]
async fn a_live_update_is_compressed_once_and_the_same_bytes_go_to_every_compressing_subscriber() {
    let server = InProcessServer::start(&["websocket.compression_min_bytes=0"]);
    let mut market = SimulatedMarket::new(8, 1);
    let mint = market.mints()[0].to_string();
    let subscribe = format!(r#"{{"msg_type":"subscribe","symbol":"{mint}","interval":"m1"}}"#);
    let mut clients = Vec::new();
    for offer in [BROWSER_OFFER, BROWSER_OFFER, ""] {
        let mut client = RawClient::connect_with(server.addr(), offer).await;
        client.send(&RawFrame::text(&subscribe)).await;
        next_message(&mut client, "subscription_confirmed").await;
        clients.push(client);
    }
    let event = market.next_event(kline_protocol::response::unix_millis_now());
    let (status, report) = post_events(&server, event.to_json()).await;
    assert_eq!(
        (status, &report["accepted"]),
        (200, &Value::from(1)),
        "{report}"
    );
    let mut updates = Vec::new();
    for client in &mut clients {
        updates.push(next_message(client, "kline_data").await);
    }
    assert_eq!(updates[0].rsv, 0b100);
    assert_eq!(
        updates[0].payload, updates[1].payload,
        "one compressed copy, shared"
    );
    assert_eq!(
        updates[2].rsv, 0,
        "the subscriber without compression gets plain text"
    );
    assert_eq!(
        updates[0].message(),
        updates[2].payload,
        "the compressed update inflates to the very bytes of the plain one"
    );
}
