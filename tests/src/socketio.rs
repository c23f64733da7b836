//! A Socket.IO client speaking Engine.IO v4 long-polling by hand (socketioxide's transport), for tests that
//! decide when the client reads.

use std::time::Duration;

use serde_json::{Value, json};

use crate::KlineServer;

/// Engine.IO's packet separator in a polling payload.
pub const SEPARATOR: char = '\u{1e}';

/// A Socket.IO client speaking Engine.IO v4 long-polling by hand, so a test decides when it reads.
pub struct PollingClient {
    pub http: reqwest::Client,
    /// The session's polling URL (with its `sid`).
    pub url: String,
    /// Packets read but not yet looked at.
    pub unread: std::collections::VecDeque<String>,
}

impl PollingClient {
    /// Opens an Engine.IO session; returns the client and the handshake (`sid`, `pingInterval`, ...).
    pub async fn open(server: &impl KlineServer) -> (PollingClient, Value) {
        let http = reqwest::Client::new();
        let base = server.url("/socket.io/?EIO=4&transport=polling");
        let body = http.get(&base).send().await.unwrap().text().await.unwrap();
        let handshake: Value = serde_json::from_str(
            body.strip_prefix('0')
                .unwrap_or_else(|| panic!("an open packet: {body}")),
        )
        .unwrap();
        let url = format!("{base}&sid={}", handshake["sid"].as_str().unwrap());
        let unread = Default::default();
        (PollingClient { http, url, unread }, handshake)
    }

    pub async fn send(&self, packet: &str) {
        let response = self
            .http
            .post(&self.url)
            .body(packet.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "POST {packet}");
    }

    /// One long-poll: the packets the server had (or the first it sends).
    pub async fn poll(&self) -> Vec<String> {
        let body = self
            .http
            .get(&self.url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.split(SEPARATOR).map(str::to_string).collect()
    }

    /// The next event named `name` on `/kline` (skipping others), polling as needed; returns its argument.
    pub async fn event(&mut self, name: &str) -> Value {
        let prefix = format!("42/kline,[\"{name}\",");
        for _ in 0..20 {
            while let Some(packet) = self.unread.pop_front() {
                if let Some(rest) = packet.strip_prefix(&prefix) {
                    return serde_json::from_str(&rest[..rest.len() - 1]).unwrap();
                }
            }
            let packets = self.poll().await;
            self.unread.extend(packets);
        }
        panic!("no `{name}` event");
    }

    pub async fn emit(&self, event: &str, data: Value) {
        self.send(&format!("42/kline,{}", json!([event, data])))
            .await;
    }

    /// Emits every request in one polling payload: socketioxide reads them back to back.
    pub async fn emit_together(&self, requests: impl IntoIterator<Item = (&str, Value)>) {
        let packets: Vec<String> = requests
            .into_iter()
            .map(|(event, data)| format!("42/kline,{}", json!([event, data])))
            .collect();
        self.send(&packets.join(&SEPARATOR.to_string())).await;
    }

    /// A session joined to `/kline`, once its `connection_success` came.
    pub async fn joined(server: &impl KlineServer) -> PollingClient {
        let (mut client, _) = PollingClient::open(server).await;
        client.send("40/kline,").await;
        client.event("connection_success").await;
        client
    }
}
