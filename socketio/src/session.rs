//! One Socket.IO socket on `/kline`: its requests, handled one at a time in order, over the push core,
//! whichever transport serves it ([`Transport`]: socketioxide, or our own websocket in [`super::engine`]).
//!
//! socketioxide runs each event handler as a task of its own, so two requests sent back to back could be
//! handled in either order. The [`Queued`] extractor runs while socketioxide reads the packet, in order,
//! and puts the request in the socket's bounded queue (`socketio.request_queue`; beyond, error 1004); one
//! session ([`run`]) per socket handles the queue. Our websocket connection reads its packets in order and
//! fills the same queue ([`RequestQueue::offer`]). A session ends when the socket disconnects, closes as
//! too slow, or the server shuts down; then its subscriptions leave the hub.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kline_protocol::{ErrorCode, Interval};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, SocketRef, TryData};
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::sink::{BacklogLimits, SocketIoSink};
use super::transport::Transport;
use super::wire::{self, HistoryRequest, SeriesRequest, SioError};
use crate::wire::request_cost;
use kline_core::event::EventId;
use kline_core::event::TradePosition;
use kline_core::stats::PushStats;
use kline_push::PushContext;
use kline_push::hub::{ConnectionId, next_connection_id};
use kline_push::rate_limit::{Charge, RequestBudget};
use kline_push::session::{Subscriptions, read_history};
use kline_push::{SeriesKey, Subscriber};

/// The events a client may send.
pub const EVENTS: [&str; 4] = ["subscribe", "unsubscribe", "history", "ping"];

/// A request as it was read: the event's name and its first argument (or why it did not parse).
#[derive(Debug)]
pub struct Request {
    pub event: String,
    pub data: Result<serde_json::Value, String>,
}

/// The sending end of a socket's request queue (for socketioxide, kept in the socket's extensions).
#[derive(Clone)]
pub struct RequestQueue {
    requests: mpsc::Sender<Request>,
    stats: Arc<PushStats>,
}

impl RequestQueue {
    /// A queue of `socketio.request_queue` requests, and its receiving end for [`run`].
    pub fn new(state: &PushContext) -> (RequestQueue, mpsc::Receiver<Request>) {
        let (requests, receiver) = mpsc::channel(state.config.socketio.request_queue);
        let queue = RequestQueue {
            requests,
            stats: state.push_stats.clone(),
        };
        (queue, receiver)
    }

    /// Queues `request` for the session; the error 1004 to send the client, out of band (not behind the
    /// waiting replies), when the queue is full: the request is refused, not queued. A request for a
    /// session that has ended is dropped.
    pub fn offer(&self, request: Request) -> Result<(), SioError> {
        let Err(mpsc::error::TrySendError::Full(request)) = self.requests.try_send(request) else {
            return Ok(());
        };
        kline_core::stats::add(&self.stats.rate_limited, 1);
        kline_core::stats::add(&self.stats.request_errors, 1);
        let message = format!(
            "rate limited: too many requests waiting; `{}` was dropped, slow down",
            request.event
        );
        Err(SioError::new(ErrorCode::RateLimited, message))
    }
}

/// Extractor that queues the request for the socket's session, in the order socketioxide reads packets.
pub struct Queued;

impl<A: Adapter> FromMessageParts<A> for Queued {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        value: &mut Value,
        ack: &Option<i64>,
    ) -> Result<Queued, Infallible> {
        let event = Event::from_message_parts(socket, value, ack)
            .map(|Event(name)| name)
            .unwrap_or_default();
        let Ok(TryData(data)) =
            TryData::<serde_json::Value>::from_message_parts(socket, value, ack);
        let request = Request {
            event,
            data: data.map_err(|err| err.to_string()),
        };
        let Some(queue) = socket.extensions.get::<RequestQueue>() else {
            return Ok(Queued);
        };
        if let Err(refused) = queue.offer(request) {
            let _ = socket.emit("error", &refused);
        }
        Ok(Queued)
    }
}

/// The `/kline` connect handler: sets the socket up and starts its session.
pub fn on_connect(socket: SocketRef, state: PushContext) {
    let (queue, requests) = RequestQueue::new(&state);
    socket.extensions.insert(queue);
    let gone = CancellationToken::new();
    socket.on_disconnect({
        let gone = gone.clone();
        move || async move { gone.cancel() }
    });
    for event in EVENTS {
        socket.on(event, async |_: Queued| {});
    }
    let limits = BacklogLimits {
        packets: state.config.socketio.max_backlog_packets,
        bytes: state.config.socketio.max_backlog_bytes,
    };
    let sink = Arc::new(SocketIoSink::new(
        socket.clone(),
        state.push_stats.clone(),
        limits,
    ));
    let conn = next_connection_id();
    let span = tracing::info_span!("socketio", sid = %socket.id, conn);
    let tracker = state.connections.clone();
    let transport = Transport::Socketioxide(sink);
    tracker.spawn(run(transport, requests, gone, state, conn).instrument(span));
}

/// A socket's session: `connection_success`, then its requests in order, until the socket disconnects
/// (`gone`), closes as too slow, or the server shuts down; then its subscriptions leave the hubs.
pub async fn run(
    socket: Transport,
    mut requests: mpsc::Receiver<Request>,
    gone: CancellationToken,
    state: PushContext,
    conn: ConnectionId,
) {
    let push = state.push_stats.clone();
    let active = push.socketio_connections_active.inc() + 1;
    let _active = kline_core::stats::Decrement(&push.socketio_connections_active);
    let config = &state.config;
    let open = active + push.connections_active.get();
    if open as usize > config.websocket.max_connections {
        kline_core::stats::add(&push.connections_rejected, 1);
        tracing::warn!(open, "at the connection limit; disconnecting from /kline");
        socket.disconnect();
        return;
    }
    kline_core::stats::add(&push.socketio_connections_total, 1);
    let mut symbols = state.symbol_list().await;
    symbols.truncate(config.websocket.hello_max_symbols);
    let symbol_names = state.names.symbol_names(&symbols);
    socket.emit(
        "connection_success",
        &wire::ConnectionSuccess {
            client_id: socket.id(),
            server_time: kline_core::clock::now_ms() / 1000,
            supported_symbols: symbols,
            supported_intervals: Interval::ALL.to_vec(),
            symbol_names,
        },
    );
    let mut session = Session {
        state: &state,
        conn,
        socket: &socket,
        subscriptions: Subscriptions::default(),
        trade_mints: Vec::new(),
        budget: RequestBudget::new(&config.websocket, Instant::now()),
        exhausted: false,
    };
    let too_slow = loop {
        tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => break false,
            _ = gone.cancelled() => break false,
            _ = socket.closed_as_too_slow() => break true,
            request = requests.recv() => match request {
                Some(request) => Box::pin(session.handle(request)).await,
                None => break false,
            },
            () = socket.drain() => {}
        }
        if session.exhausted {
            tracing::debug!("kept sending while rate limited; disconnecting from /kline");
            socket.disconnect();
            break false;
        }
    };
    state
        .hub
        .disconnect(conn, session.subscriptions.into_series())
        .await;
    state.trade_hub.disconnect(conn, session.trade_mints).await;
    if too_slow {
        let patience = Duration::from_secs(config.socketio.ping_timeout_secs);
        // Gives up after `patience`: the Engine.IO heartbeat closes a client that never reads.
        socket.disconnect_too_slow(&gone, patience).await;
    }
    tracing::debug!(too_slow, "Socket.IO session ended");
}

/// A socket's request handling state.
struct Session<'a> {
    state: &'a PushContext,
    conn: ConnectionId,
    socket: &'a Transport,
    subscriptions: Subscriptions,
    /// Mints whose trades reach this socket as `event_data`: those with a subscribed series, each once.
    trade_mints: Vec<[u8; 32]>,
    /// The same budget as a `/ws` connection's ([`kline_push::rate_limit`]).
    budget: RequestBudget,
    /// Refused `websocket.rate_limit_strikes` times in a row: the socket is disconnected.
    exhausted: bool,
}

impl Session<'_> {
    fn error(&self, error: SioError) {
        kline_core::stats::add(&self.state.push_stats.request_errors, 1);
        self.socket.emit("error", &error);
    }

    fn subscriber(&self) -> Subscriber {
        self.socket.subscriber()
    }

    async fn handle(&mut self, request: Request) {
        let data = match request.data {
            Ok(data) => data,
            Err(err) => {
                return self.error(SioError::new(
                    ErrorCode::InvalidRequest,
                    format!("invalid `{}` payload: {err}", request.event),
                ));
            }
        };
        let snapshot = self.state.config.kline.history_data_limit;
        let cost = request_cost(&request.event, &data, snapshot);
        match self.budget.charge(Instant::now(), cost) {
            Charge::Allowed => {}
            refused => {
                kline_core::stats::add(&self.state.push_stats.rate_limited, 1);
                self.exhausted = refused == Charge::Exhausted;
                return self.error(SioError::new(
                    ErrorCode::RateLimited,
                    "rate limited: too many messages, slow down",
                ));
            }
        }
        let outcome = match request.event.as_str() {
            "subscribe" => match SeriesRequest::parse("subscribe", data) {
                Ok(request) => self.subscribe(request).await,
                Err(err) => Err(err),
            },
            "unsubscribe" => match SeriesRequest::parse("unsubscribe", data) {
                Ok(request) => {
                    self.unsubscribe(request).await;
                    Ok(())
                }
                Err(err) => Err(err),
            },
            "history" => match HistoryRequest::parse(data) {
                Ok(request) => self.history(request).await,
                Err(err) => Err(err),
            },
            _ => {
                self.socket.emit(
                    "pong",
                    &wire::Pong {
                        server_time: kline_core::clock::now_ms() / 1000,
                    },
                );
                Ok(())
            }
        };
        if let Err(err) = outcome {
            self.error(err);
        }
    }

    async fn subscribe(&mut self, request: SeriesRequest) -> Result<(), SioError> {
        let series: SeriesKey = (request.symbol.clone(), request.interval);
        let limit = self.state.config.kline.max_subscriptions_per_client;
        self.subscriptions
            .check_limit(&series, limit)
            .map_err(|message| SioError::new(ErrorCode::SubscriptionRefused, message))?;
        let subscriber = self.subscriber();
        self.subscriptions
            .join(&self.state.hub, self.conn, &series, &subscriber)
            .await;
        // The mint's trades: joined (gated) with its first series, so `event_data` comes once per socket.
        let mint = request.symbol.to_bytes();
        let joins_trades = !self.trade_mints.contains(&mint);
        if joins_trades {
            self.state
                .trade_hub
                .join(self.conn, mint, subscriber.clone())
                .await;
            self.trade_mints.push(mint);
        }
        let snapshot = HistoryRequest {
            symbol: request.symbol.clone(),
            interval: request.interval,
            limit: self.state.config.kline.history_data_limit,
            from: None,
        };
        let read = match self.read(snapshot).await {
            Ok(history) => self.read_events(mint).await.map(|events| (history, events)),
            Err(err) => Err(err),
        };
        let (history, (trades, events, has_more)) = match read {
            Ok(read) => read,
            Err(err) => {
                self.subscriptions
                    .abort(&self.state.hub, self.conn, &series, &subscriber)
                    .await;
                self.leave_trades_if_unused(&request.symbol).await;
                return Err(err);
            }
        };
        let mut ascending = history.data.clone();
        ascending.reverse();
        let history_events = wire::history_event_data(&request.symbol, &trades, &events, has_more);
        let confirmed = wire::SubscriptionConfirmed {
            symbol: request.symbol,
            interval: request.interval,
            subscription_id: request.subscription_id,
            success: true,
            message: wire::SUBSCRIBED_MESSAGE,
        };
        let replies = [
            ("history_data", to_value(&history)),
            ("history_event_data", history_events),
            ("subscription_confirmed", to_value(&confirmed)),
        ];
        self.socket.open_gate(&series, &ascending, &replies);
        if joins_trades {
            // After the replies: the trades committed since the events were read follow them.
            let floor = trades.first().map(TradePosition::of_trade);
            self.state
                .trade_hub
                .open(self.conn, mint, floor, Box::new(|| {}))
                .await;
        }
        Ok(())
    }

    /// Leaves the mint's trades when no series of it is subscribed any more.
    async fn leave_trades_if_unused(&mut self, symbol: &kline_protocol::Symbol) {
        let mint = symbol.to_bytes();
        if self.subscriptions.has_symbol(symbol) || !self.trade_mints.contains(&mint) {
            return;
        }
        self.state.trade_hub.leave(self.conn, mint).await;
        self.trade_mints.retain(|known| *known != mint);
    }

    /// The mint's latest [`wire::HISTORY_EVENTS`] price events, newest first, with their stored JSON.
    async fn read_events(
        &self,
        mint: [u8; 32],
    ) -> Result<(Vec<kline_protocol::Trade>, Vec<String>, bool), SioError> {
        read_history(&self.state.history_reads, &self.state.store, move |store| {
            let page = store.trades(&mint, None, wire::HISTORY_EVENTS)?;
            let mut events = Vec::with_capacity(page.trades.len());
            for trade in &page.trades {
                let id = EventId {
                    signature: trade.id.signature_bytes(),
                    event_index: trade.id.event_index(),
                };
                events.push(store.event_json(&id)?.unwrap_or_else(|| "null".to_owned()));
            }
            Ok((page.trades, events, page.has_more))
        })
        .await
        .map_err(|message| SioError::new(ErrorCode::HistoryFailed, message))
    }

    async fn unsubscribe(&mut self, request: SeriesRequest) {
        let series: SeriesKey = (request.symbol.clone(), request.interval);
        self.subscriptions
            .leave(&self.state.hub, self.conn, &series, &self.subscriber())
            .await;
        self.leave_trades_if_unused(&request.symbol).await;
        self.socket.emit(
            "unsubscribe_confirmed",
            &wire::UnsubscribeConfirmed {
                symbol: request.symbol,
                interval: request.interval,
                subscription_id: request.subscription_id,
                success: true,
            },
        );
    }

    async fn history(&mut self, request: HistoryRequest) -> Result<(), SioError> {
        let history = self.read(request).await?;
        self.socket.emit("history_data", &history);
        Ok(())
    }

    /// The newest `limit` candles (from `from` on, if given), newest first, with the series' size (its kept
    /// count: reads `limit` candles, however long the series).
    async fn read(&self, request: HistoryRequest) -> Result<wire::HistoryData, SioError> {
        let HistoryRequest {
            symbol,
            interval,
            limit,
            from,
        } = request;
        let mint = symbol.to_bytes();
        let (candles, has_more, total_count) =
            read_history(&self.state.history_reads, &self.state.store, move |store| {
                if from.is_none() {
                    let newest = store.series_page(&mint, interval, true, 0, limit as usize)?;
                    let has_more = newest.total > newest.candles.len();
                    return Ok((newest.candles, has_more, newest.total));
                }
                let query = kline_store::HistoryQuery {
                    from,
                    to: None,
                    limit: limit as usize,
                };
                let page = store.history(&mint, interval, query)?;
                let total =
                    usize::try_from(store.series_count(&mint, interval)?).unwrap_or(usize::MAX);
                let mut candles = page.candles;
                candles.reverse();
                Ok((candles, page.has_more, total))
            })
            .await
            .map_err(|message| SioError::new(ErrorCode::HistoryFailed, message))?;
        Ok(wire::HistoryData {
            symbol,
            interval,
            data: candles.iter().map(|state| state.to_candle()).collect(),
            has_more,
            total_count,
        })
    }
}

fn to_value<T: serde::Serialize>(payload: &T) -> serde_json::Value {
    serde_json::to_value(payload).expect("reply payloads serialize")
}
