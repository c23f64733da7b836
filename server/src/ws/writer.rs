//! The connection's single writer: drains everything its outbox has ready, writes it, flushes once, sends
//! server pings, and ends the connection with a close frame when asked (or when the client is too slow).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use kline_protocol::CloseCode;
use kline_protocol::response::unix_millis_now;

use super::outbox::{Frame, Outbox};
use crate::stats::{PipelineStats, PushStats};

pub struct WriterSettings {
    pub ping_every: Duration,
    pub write_timeout: Duration,
}

/// Writes until the outbox closes or the socket fails. Returns the close code sent, if any.
pub async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    settings: WriterSettings,
    stats: Arc<PushStats>,
) -> Option<CloseCode> {
    let mut frames = Vec::new();
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.ping_every,
        settings.ping_every,
    );
    loop {
        let mut close = tokio::select! {
            close = outbox.drain(&mut frames) => close,
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return None;
                }
                continue;
            }
        };
        let count = frames.len();
        let written = {
            let write = async {
                for frame in frames.drain(..) {
                    let bytes = match frame {
                        Frame::Message(bytes) => bytes,
                        Frame::Update(update) => {
                            let latency_ms = (unix_millis_now() - update.produced_at_ms) as f64;
                            stats.push_latency.observe_ms(latency_ms);
                            update.bytes
                        }
                    };
                    sink.feed(Message::Text(bytes)).await?;
                }
                sink.flush().await
            };
            // Most writes finish at once (the socket has room): only a write that has to wait arms the stall
            // timer, so the common path registers no timer (perf showed `Sleep::poll` per write batch).
            let mut write = std::pin::pin!(write);
            match futures_util::poll!(write.as_mut()) {
                std::task::Poll::Ready(result) => Some(result),
                std::task::Poll::Pending => tokio::select! {
                    result = write => Some(result),
                    // Stuck writing to a client that does not read, and the backlog overflowed meanwhile.
                    _ = outbox.wait_too_slow() => None,
                    _ = tokio::time::sleep(settings.write_timeout) => None,
                },
            }
        };
        match written {
            Some(Ok(())) => PipelineStats::add(&stats.messages_sent, count),
            Some(Err(_)) => return None,
            None => close = Some(CloseCode::TooSlow),
        }
        frames.clear();
        if let Some(code) = close {
            if code == CloseCode::TooSlow {
                PipelineStats::add(&stats.slow_client_closes, 1);
                outbox.close(CloseCode::TooSlow);
            }
            let frame = CloseFrame {
                code: code.as_u16(),
                reason: close_reason(code).into(),
            };
            let _ = tokio::time::timeout(
                settings.write_timeout,
                sink.send(Message::Close(Some(frame))),
            )
            .await;
            return Some(code);
        }
    }
}

fn close_reason(code: CloseCode) -> &'static str {
    match code {
        CloseCode::ServerShutdown => "server shutting down",
        CloseCode::PolicyViolation => "rate limit abuse",
        CloseCode::MessageTooBig => "message too big",
        CloseCode::ServerAtCapacity => "server at connection limit, try again later",
        CloseCode::IdleTimeout => "idle timeout",
        CloseCode::TooSlow => "client too slow to keep up",
    }
}
