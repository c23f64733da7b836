//! One WebSocket connection: admission, the read loop (requests, rate limit, idle timeout), and cleanup.
//!
//! The read loop handles one request at a time, so a client's requests are answered in order. Replies and
//! candle updates go through the connection's [`Outbox`] to its single writer task. Whatever ends the
//! connection (client close, error, idle timeout, slow client, shutdown), its subscriptions are removed
//! from the hub before the task ends.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use kline_protocol::{
    ClientRequest, CloseCode, ConnectionSuccess, ErrorCode, ErrorData,
    HistoryRequest as WireHistoryRequest, Pong, ServerMessage, ServerPayload, SubscribeRequest,
    SubscriptionConfirmed, UnsubscribeConfirmed, UnsubscribeRequest,
};
use tracing::Instrument;

use super::hub::ConnectionId;
use super::outbox::{Outbox, SeriesKey};
use super::rate_limit::TokenBucket;
use super::writer::{self, WriterSettings};
use crate::app::AppState;
use crate::history::{HistoryRequest, history_data};
use crate::pipeline::service::now_ms;
use crate::stats::PipelineStats;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Serves one upgraded socket until it closes.
pub async fn serve(socket: WebSocket, state: AppState) {
    let conn = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let client_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("ws", client = %client_id, conn);
    serve_admitted(socket, state, conn, client_id)
        .instrument(span)
        .await;
}

async fn serve_admitted(socket: WebSocket, state: AppState, conn: ConnectionId, client_id: String) {
    let push = state.push_stats.clone();
    let active = push.connections_active.fetch_add(1, Ordering::Relaxed);
    let _active = Decrement(&push.connections_active);
    let config = &state.config.websocket;
    let outbox = Arc::new(Outbox::new(config.outbox_capacity));
    let (sink, mut stream) = socket.split();
    let settings = WriterSettings {
        ping_every: Duration::from_millis(config.ping_interval),
        write_timeout: Duration::from_millis(config.write_timeout_ms),
    };
    let mut writer = tokio::spawn(writer::run(sink, outbox.clone(), settings, push.clone()));

    if active as usize >= config.max_connections {
        PipelineStats::add(&push.connections_rejected, 1);
        tracing::warn!(active, "at the connection limit; closing with 1013");
        outbox.close(CloseCode::ServerAtCapacity);
        let _ = writer.await;
        return;
    }
    PipelineStats::add(&push.connections_total, 1);
    let symbols = state.symbol_list().await;
    let hello = ConnectionSuccess::new(
        client_id,
        now_ms() / 1000,
        symbols,
        env!("CARGO_PKG_VERSION"),
    );
    outbox.push_message(encode(hello));

    let mut session = Session {
        state: &state,
        conn,
        outbox: &outbox,
        subscriptions: HashSet::new(),
    };
    let idle = Duration::from_secs(state.config.kline.connection_timeout);
    let mut limiter = TokenBucket::new(
        config.rate_limit_burst,
        config.rate_limit_per_sec,
        Instant::now(),
    );
    let mut strikes = 0;
    let close = loop {
        let next = tokio::select! {
            _ = state.shutdown.cancelled() => break Some(CloseCode::ServerShutdown),
            _ = &mut writer => break None,
            next = tokio::time::timeout(idle, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                PipelineStats::add(&push.idle_timeouts, 1);
                break Some(CloseCode::IdleTimeout);
            }
            Ok(None) => break None,
            Ok(Some(Err(err))) => {
                let text = err.to_string();
                let too_big = text.contains("too long") || text.contains("Space limit");
                tracing::debug!(error = %text, "read failed");
                break too_big.then_some(CloseCode::MessageTooBig);
            }
            Ok(Some(Ok(message))) => message,
        };
        let frame_is_request = matches!(message, Message::Text(_) | Message::Binary(_));
        if frame_is_request && !limiter.allow(Instant::now()) {
            strikes += 1;
            PipelineStats::add(&push.rate_limited, 1);
            if strikes >= config.rate_limit_strikes {
                break Some(CloseCode::PolicyViolation);
            }
            session.error(ErrorData::new(
                ErrorCode::RateLimited,
                "rate limited: too many messages, slow down",
            ));
            continue;
        }
        match message {
            Message::Text(text) => {
                strikes = 0;
                // Boxed: request handling (history reads, hub round trips) is the largest state of this
                // task; on the heap only while a request runs, an idle connection's task stays small
                // (massif at 1,000 connections: this task was 2.4 KB of the ~8 KB per connection).
                Box::pin(session.handle(&text)).await;
            }
            Message::Binary(_) => session.error(ErrorData::new(
                ErrorCode::UnsupportedFrame,
                "binary frames are not supported; send JSON text frames",
            )),
            Message::Close(_) => break None,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    };

    let subscriptions: Vec<SeriesKey> = session.subscriptions.drain().collect();
    state.hub.disconnect(conn, subscriptions).await;
    if let Some(code) = close {
        outbox.close(code);
        let _ =
            tokio::time::timeout(Duration::from_millis(config.write_timeout_ms * 2), writer).await;
    } else {
        outbox.close(CloseCode::ServerShutdown);
        writer.abort();
    }
    tracing::debug!(?close, "connection closed");
}

struct Decrement<'a>(&'a AtomicU64);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn encode(payload: impl Into<ServerPayload>) -> Utf8Bytes {
    ServerMessage::now(payload).to_json().into()
}

/// A connection's request handling state.
struct Session<'a> {
    state: &'a AppState,
    conn: ConnectionId,
    outbox: &'a Arc<Outbox>,
    subscriptions: HashSet<SeriesKey>,
}

impl Session<'_> {
    fn error(&self, error: ErrorData) {
        PipelineStats::add(&self.state.push_stats.request_errors, 1);
        self.outbox.push_message(encode(error));
    }

    async fn handle(&mut self, text: &str) {
        match ClientRequest::parse(text) {
            Err(rejected) => self.error(ErrorData::from(&rejected)),
            Ok(ClientRequest::Ping) => {
                self.outbox.push_message(encode(Pong::new(now_ms() / 1000)));
            }
            Ok(ClientRequest::Subscribe(request)) => self.subscribe(request).await,
            Ok(ClientRequest::Unsubscribe(request)) => self.unsubscribe(request).await,
            Ok(ClientRequest::History(request)) => self.history(request).await,
        }
    }

    async fn subscribe(&mut self, request: SubscribeRequest) {
        let series: SeriesKey = (request.symbol.clone(), request.interval);
        let sub_id = request
            .subscription_id
            .as_ref()
            .map(|id| id.as_str().to_owned());
        let limit = self.state.config.kline.max_subscriptions_per_client;
        if !self.subscriptions.contains(&series) && self.subscriptions.len() >= limit {
            let message =
                format!("subscription limit reached ({limit} per connection); unsubscribe first");
            self.error(
                ErrorData::new(ErrorCode::SubscriptionRefused, message)
                    .for_request(Some("subscribe"), sub_id.as_deref()),
            );
            return;
        }
        // Gate first, then join the index, then read the snapshot: every update published after the
        // snapshot's read is held and follows it; anything the snapshot already covers is dropped.
        self.outbox.close_gate(&series);
        self.state
            .hub
            .subscribe(self.conn, series.clone(), self.outbox.clone())
            .await;
        self.subscriptions.insert(series.clone());
        let query = HistoryRequest {
            symbol: request.symbol.clone(),
            interval: request.interval,
            subscription_id: request.subscription_id.clone(),
            from: request.from,
            to: None,
            // A resume (`from`) sends every candle since `from`, up to the protocol's maximum.
            limit: request.limit.unwrap_or(if request.from.is_some() {
                kline_protocol::MAX_HISTORY_LIMIT
            } else {
                self.state.config.kline.history_data_limit
            }),
        };
        match self.read_history(query).await {
            Ok(history) => {
                let confirmed = SubscriptionConfirmed::new(
                    request.symbol,
                    request.interval,
                    request.subscription_id,
                );
                let candles = history.data.clone();
                self.outbox
                    .open_gate(&series, &candles, vec![encode(history), encode(confirmed)]);
            }
            Err(message) => {
                self.state.hub.unsubscribe(self.conn, series.clone()).await;
                self.subscriptions.remove(&series);
                self.outbox.purge(&series);
                self.error(
                    ErrorData::new(ErrorCode::HistoryFailed, message)
                        .for_request(Some("subscribe"), sub_id.as_deref()),
                );
            }
        }
    }

    async fn unsubscribe(&mut self, request: UnsubscribeRequest) {
        let series: SeriesKey = (request.symbol.clone(), request.interval);
        if self.subscriptions.remove(&series) {
            self.state.hub.unsubscribe(self.conn, series.clone()).await;
        }
        self.outbox.purge(&series);
        let confirmed =
            UnsubscribeConfirmed::new(request.symbol, request.interval, request.subscription_id);
        self.outbox.push_message(encode(confirmed));
    }

    async fn history(&mut self, request: WireHistoryRequest) {
        let sub_id = request
            .subscription_id
            .as_ref()
            .map(|id| id.as_str().to_owned());
        let query = HistoryRequest {
            symbol: request.symbol,
            interval: request.interval,
            subscription_id: request.subscription_id,
            from: request.from,
            to: request.to,
            limit: request
                .limit
                .unwrap_or(self.state.config.kline.history_data_limit),
        };
        match self.read_history(query).await {
            Ok(history) => {
                self.outbox.push_message(encode(history));
            }
            Err(message) => self.error(
                ErrorData::new(ErrorCode::HistoryFailed, message)
                    .for_request(Some("history"), sub_id.as_deref()),
            ),
        }
    }

    async fn read_history(
        &self,
        query: HistoryRequest,
    ) -> Result<kline_protocol::HistoryData, String> {
        let store = self.state.store.clone();
        match tokio::task::spawn_blocking(move || history_data(&store, query)).await {
            Ok(Ok(history)) => Ok(history),
            Ok(Err(err)) => Err(format!("history query failed: {err}")),
            Err(err) => Err(format!("history query failed: {err}")),
        }
    }
}
