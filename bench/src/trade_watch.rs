//! Trade-feed watchers (`live`): one `/ws` connection per mint subscribed to its trades
//! (`subscribe_trades`), timing each `trade` from the moment its event was sent (its price encodes its
//! sequence number, as the candle clients read it). The trade feed promises block order, so under the
//! Solana source it waits for each block's position: its latency includes the node's `getBlock` delay,
//! where the candle push does not.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::clients::{Shared, seq_of_price};

/// The trade latencies the watchers recorded, in microseconds.
pub struct TradeWatch {
    latency_us: Arc<Mutex<Histogram<u64>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TradeWatch {
    /// Connects one watcher per mint and waits for each one's `trades_snapshot`.
    pub async fn start(
        addr: SocketAddr,
        mints: &[String],
        shared: &Arc<Shared>,
        stop: &CancellationToken,
    ) -> anyhow::Result<TradeWatch> {
        let latency_us = Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        ));
        let mut tasks = Vec::new();
        for mint in mints {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
            let subscribe = json!({ "msg_type": "subscribe_trades", "symbol": mint, "limit": 1 });
            ws.send(Message::text(subscribe.to_string())).await?;
            while let Some(Ok(message)) = ws.next().await {
                if message
                    .to_text()
                    .is_ok_and(|t| t.contains("\"trades_snapshot\""))
                {
                    break;
                }
            }
            let (shared, latency_us, stop) = (shared.clone(), latency_us.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let message = tokio::select! {
                        _ = stop.cancelled() => return,
                        message = ws.next() => message,
                    };
                    let Some(Ok(Message::Text(text))) = message else {
                        if message.is_none() {
                            return;
                        }
                        continue;
                    };
                    let now_ns = shared.epoch.elapsed().as_nanos() as u64;
                    let Ok(value) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    if value["type"] != "trade" {
                        continue;
                    }
                    let sent = value["data"]["price"]
                        .as_f64()
                        .and_then(seq_of_price)
                        .and_then(|seq| shared.sent_at_ns.get(seq as usize))
                        .map(|sent| sent.load(Ordering::Relaxed))
                        .filter(|sent| *sent > 0);
                    if let Some(sent) = sent {
                        let micros = now_ns.saturating_sub(sent) / 1000;
                        let _ = latency_us.lock().unwrap().record(micros.max(1));
                    }
                }
            }));
        }
        Ok(TradeWatch { latency_us, tasks })
    }

    /// Stops the watchers (after `stop` was cancelled) and reports `{trades, p50, p90, p99, max}` in ms.
    pub async fn finish(self) -> Value {
        for task in self.tasks {
            let _ = task.await;
        }
        let histogram = self.latency_us.lock().unwrap().clone();
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        json!({
            "trades": histogram.len(),
            "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": histogram.max() as f64 / 1000.0,
        })
    }
}
