//! The `history` scenario: what a 1000-candle `history_data` costs on the wire and in server CPU, with and
//! without permessage-deflate. One mint gets 1000 s1 candles (an hour ago, so all final); then, for each
//! mode in turn, `connections` clients each ask for the full history `rounds` times, one request at a
//! time, and the bench records the bytes they read and the server's CPU over the phase.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use kline_core::simulated_market::SimulatedMarket;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::Plan;
use crate::client_stream::CountingStream;
use crate::driver;
use crate::process::cpu_percent;
use crate::report::round;
use crate::server::ServerUnderTest;

const CANDLES: i64 = 1000;

pub async fn run(
    http: &reqwest::Client,
    server: &ServerUnderTest,
    plan: &Plan,
    rounds: u64,
) -> anyhow::Result<Value> {
    let mut market = SimulatedMarket::new(1000, 1);
    let mint = market.mints()[0].to_string();
    let start = kline_protocol::response::unix_millis_now() - 3_600_000;
    let body: String = (0..CANDLES)
        .map(|i| market.next_event(start + i * 1000).to_json() + "\n")
        .collect();
    let url = format!("{}/api/v1/events", server.base_url);
    let accepted = driver::post(http, &url, &server.token, body)
        .await
        .unwrap_or(0);
    anyhow::ensure!(
        accepted == CANDLES as u64,
        "the server took {accepted} of {CANDLES} events"
    );
    let addr = server.socket_addr()?;
    let mut modes = serde_json::Map::new();
    for compression in [false, true] {
        let before = server.sample();
        let started = Instant::now();
        let wire_bytes = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        for _ in 0..plan.connections {
            let (url, mint, wire_bytes) = (server.ws_url(), mint.clone(), wire_bytes.clone());
            clients.push(tokio::spawn(async move {
                client(addr, &url, &mint, compression, rounds, &wire_bytes).await
            }));
        }
        let mut answers = 0;
        for client in clients {
            answers += client.await??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = before
            .zip(server.sample())
            .map(|(a, b)| cpu_percent(&a, &b));
        let bytes = wire_bytes.load(Ordering::Relaxed);
        modes.insert(
            if compression { "compressed" } else { "plain" }.to_owned(),
            json!({
                "answers": answers,
                "secs": round(elapsed),
                "answers_per_sec": round(answers as f64 / elapsed),
                "wire_bytes_per_answer": round(bytes as f64 / answers.max(1) as f64),
                "server_cpu_percent_of_one_core": cpu.map(round),
                "server_cpu_ms_per_answer": cpu.map(|cpu| round(cpu / 100.0 * elapsed * 1000.0 / answers.max(1) as f64)),
            }),
        );
    }
    let ratio = |pointer: &str| {
        let plain = modes
            .get("plain")
            .and_then(|m| m.pointer(pointer))
            .and_then(Value::as_f64);
        let compressed = modes
            .get("compressed")
            .and_then(|m| m.pointer(pointer))
            .and_then(Value::as_f64);
        plain
            .zip(compressed)
            .filter(|(p, _)| *p > 0.0)
            .map(|(p, c)| round(c / p))
    };
    Ok(json!({
        "scenario": "history",
        "candles_per_answer": CANDLES,
        "connections": plan.connections,
        "rounds_per_connection": rounds,
        "compressed_to_plain": {
            "wire_bytes_per_answer": ratio("/wire_bytes_per_answer"),
            "server_cpu_ms_per_answer": ratio("/server_cpu_ms_per_answer"),
        },
        "modes": modes,
    }))
}

/// One client: connects (offering permessage-deflate if `compression`), asks for the history `rounds`
/// times, one at a time; returns the answers it got and adds the bytes it read to `wire_bytes`.
async fn client(
    addr: SocketAddr,
    url: &str,
    mint: &str,
    compression: bool,
    rounds: u64,
    wire_bytes: &AtomicU64,
) -> anyhow::Result<u64> {
    let mut request = url.into_client_request()?;
    if compression {
        request.headers_mut().insert(
            "Sec-WebSocket-Extensions",
            HeaderValue::from_static("permessage-deflate; client_max_window_bits"),
        );
    }
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut ws, _) =
        tokio_tungstenite::client_async(request, CountingStream::new(stream, compression)).await?;
    let ask = format!(r#"{{"msg_type":"history","symbol":"{mint}","interval":"s1","limit":1000}}"#);
    let mut answers = 0;
    for _ in 0..rounds {
        ws.send(Message::text(ask.clone())).await?;
        loop {
            let message = ws.next().await.context("the server closed")??;
            if let Message::Text(text) = message
                && text.starts_with(r#"{"type":"history_data""#)
            {
                anyhow::ensure!(
                    text.matches(r#""time":"#).count() == CANDLES as usize,
                    "a full history"
                );
                answers += 1;
                break;
            }
        }
    }
    wire_bytes.fetch_add(ws.get_ref().read_bytes(), Ordering::Relaxed);
    let _ = ws.close(None).await;
    Ok(answers)
}
