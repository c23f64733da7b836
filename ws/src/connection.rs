//! One WebSocket connection: admission, the read loop (requests, rate limit, idle timeout), and cleanup.
//!
//! One task per connection. It reads the client's frames with tungstenite and handles one request at a
//! time, so a client's requests are answered in order; the same task runs the connection's
//! [`writer`] for whatever the socket could not take at once. Replies and candle updates go through the
//! connection's [`Outbox`]. Whatever ends the connection (client close, error, idle timeout, slow client,
//! shutdown), its subscriptions are removed from the hub before the task ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use kline_protocol::{
    ClientRequest, CloseCode, ConnectionSuccess, ErrorCode, ErrorData,
    HistoryRequest as WireHistoryRequest, Pong, ServerMessage, ServerPayload, SubscribeRequest,
    SubscribeTickersRequest, SubscribeTradesRequest, SubscriptionConfirmed, TickersSnapshot,
    TickersUnsubscribed, TradesSnapshot, TradesUnsubscribed, UnsubscribeConfirmed,
    UnsubscribeRequest, UnsubscribeTickersRequest, UnsubscribeTradesRequest,
};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use kline_core::clock::now_ms;
use kline_push::PushContext;
use kline_push::hub::ConnectionId;
use kline_push::rate_limit::{self, Charge, RequestBudget};
use kline_push::session::{self, Subscriptions};
use kline_push::websocket::close::{self, ReadEnd};
use kline_push::websocket::deflate::Deflate;
use kline_push::websocket::frame;
use kline_push::websocket::outbox::{Ending, Outbox};
use kline_push::websocket::socket::ClientStream;
use kline_push::websocket::writer::{self, WriterSettings};
use kline_push::{SeriesKey, Subscriber};
use kline_store::history::{self, HistoryRequest, history_data};

use kline_core::event::TradePosition;

/// Serves one upgraded socket until it closes. `read_ahead`: bytes the HTTP server read past the upgrade;
/// `deflate`: permessage-deflate as negotiated in the handshake.
pub async fn serve(
    socket: TcpStream,
    read_ahead: Bytes,
    deflate: Option<Deflate>,
    state: PushContext,
) {
    let conn = kline_push::hub::next_connection_id();
    let client_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("ws", client = %client_id, conn);
    serve_admitted(socket, read_ahead, deflate, state, conn, client_id)
        .instrument(span)
        .await;
}

async fn serve_admitted(
    socket: TcpStream,
    read_ahead: Bytes,
    deflate: Option<Deflate>,
    state: PushContext,
    conn: ConnectionId,
    client_id: String,
) {
    let push = state.push_stats.clone();
    let active = push.connections_active.inc();
    let _active = kline_core::stats::Decrement(&push.connections_active);
    let config = &state.config.websocket;
    let outbox = Arc::new(
        Outbox::new(
            socket,
            config.outbox_capacity,
            config.outbox_max_bytes,
            push.clone(),
        )
        .with_deflate(deflate),
    );
    let settings = WriterSettings {
        ping_every: Some(Duration::from_millis(config.ping_interval)),
        write_timeout: Duration::from_millis(config.write_timeout_ms),
        min_drain_bytes_per_sec: config.min_drain_bytes_per_sec,
    };
    let mut writer = std::pin::pin!(writer::run(&outbox, &settings));
    let linger = Duration::from_millis(config.close_linger_ms);

    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes));
    let mut stream = WebSocketStream::from_raw_socket(
        ClientStream::new(
            read_ahead,
            outbox.clone(),
            deflate.map(|_| config.max_message_bytes),
        ),
        Role::Server,
        Some(ws_config),
    )
    .await;

    if active as usize >= config.max_connections {
        kline_core::stats::add(&push.connections_rejected, 1);
        tracing::warn!(active, "at the connection limit; closing with 1013");
        outbox.close(CloseCode::ServerAtCapacity);
        if let Ok(Ending::Close(_)) = tokio::time::timeout(settings.write_timeout, writer).await {
            Box::pin(close::linger_for_close(&mut stream, linger)).await;
        }
        return;
    }
    kline_core::stats::add(&push.connections_total, 1);
    // Every mint ever seen would make this message grow without bound: list a bounded number.
    let mut symbols = state.symbol_list().await;
    symbols.truncate(config.hello_max_symbols);
    let names = state.names.symbol_names(&symbols);
    let hello = ConnectionSuccess::new(
        client_id,
        now_ms() / 1000,
        symbols,
        env!("CARGO_PKG_VERSION"),
    )
    .with_symbol_names(names);
    let mut session = Session {
        state: &state,
        conn,
        outbox: &outbox,
        deflate,
        subscriptions: Subscriptions::default(),
        trade_mints: Vec::new(),
        tickers: false,
    };
    outbox.push_message(session.encode(hello));
    let idle = Duration::from_secs(state.config.kline.connection_timeout);
    let mut budget = RequestBudget::new(config, Instant::now());
    let end = loop {
        let next = tokio::select! {
            _ = state.shutdown.cancelled() => break ReadEnd::Close(CloseCode::ServerShutdown),
            sent = &mut writer => break ReadEnd::WriterDone(sent),
            next = tokio::time::timeout(idle, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                kline_core::stats::add(&push.idle_timeouts, 1);
                break ReadEnd::Close(CloseCode::IdleTimeout);
            }
            Ok(None) => break ReadEnd::ClientGone,
            Ok(Some(Err(err))) => match close::violation(&err) {
                Some(code) => {
                    tracing::debug!(error = %err, code = code.as_u16(), "protocol violation");
                    close::count_violation(&push, code);
                    break ReadEnd::Violation(code);
                }
                None => {
                    tracing::debug!(error = %err, "read failed");
                    break ReadEnd::ClientGone;
                }
            },
            Ok(Some(Ok(message))) => message,
        };
        // Requests are weighed by their cost (a 1000-candle history reads and sends far more than a ping).
        let cost = match &message {
            Message::Text(text) => rate_limit::request_cost(text),
            Message::Binary(_) => 1,
            _ => 0,
        };
        let charge = match cost {
            0 => Charge::Allowed,
            cost => budget.charge(Instant::now(), cost),
        };
        if charge != Charge::Allowed {
            kline_core::stats::add(&push.rate_limited, 1);
            if charge == Charge::Exhausted {
                break ReadEnd::Close(CloseCode::PolicyViolation);
            }
            session.error(ErrorData::new(
                ErrorCode::RateLimited,
                "rate limited: too many messages, slow down",
            ));
            continue;
        }
        match message {
            Message::Text(text) => {
                // Boxed: request handling (history reads, hub round trips) is the largest state of this
                // task; on the heap only while a request runs, an idle connection's task stays small.
                Box::pin(session.handle(&text)).await;
            }
            Message::Binary(_) => session.error(ErrorData::new(
                ErrorCode::UnsupportedFrame,
                "binary frames are not supported; send JSON text frames",
            )),
            Message::Close(frame) => {
                if close::is_invalid_code(frame.as_ref()) {
                    close::count_violation(&push, CloseCode::ProtocolError);
                }
                break ReadEnd::ClientClosed(close::echo_code(frame.as_ref()));
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    };

    state
        .hub
        .disconnect(conn, session.subscriptions.into_series())
        .await;
    // Boxed: the trade hub's command (a trade position with its 64-byte signature, a reply closure) made
    // this await the largest state of the task, and so every idle connection's (3.8 → 4.2 KB at 19,000).
    Box::pin(state.trade_hub.disconnect(conn, session.trade_mints)).await;
    if session.tickers {
        Box::pin(state.ticker_hub.leave(conn)).await;
    }
    let ending = Box::pin(close::finish(
        end,
        &outbox,
        writer,
        &mut stream,
        settings.write_timeout,
        linger,
    ))
    .await;
    tracing::debug!(ending = ?ending, "connection closed");
}

/// A connection's request handling state.
struct Session<'a> {
    state: &'a PushContext,
    conn: ConnectionId,
    outbox: &'a Arc<Outbox>,
    /// permessage-deflate, if negotiated: large replies are compressed.
    deflate: Option<Deflate>,
    subscriptions: Subscriptions,
    /// Mints whose trades this connection subscribed (bounded like the candle subscriptions).
    trade_mints: Vec<[u8; 32]>,
    /// The connection holds the ticker stream.
    tickers: bool,
}

impl Session<'_> {
    /// A whole text frame carrying `payload` in the envelope (compressed if negotiated and worth it).
    fn encode(&self, payload: impl Into<ServerPayload>) -> Bytes {
        frame::text_for(&ServerMessage::now(payload).to_json(), self.deflate)
    }

    fn error(&self, error: ErrorData) {
        kline_core::stats::add(&self.state.push_stats.request_errors, 1);
        self.outbox.push_message(self.encode(error));
    }

    fn subscriber(&self) -> Subscriber {
        Subscriber::WebSocket(self.outbox.clone())
    }

    async fn handle(&mut self, text: &str) {
        match ClientRequest::parse(text) {
            Err(rejected) => self.error(ErrorData::from(&rejected)),
            Ok(ClientRequest::Ping) => {
                self.outbox
                    .push_message(self.encode(Pong::new(now_ms() / 1000)));
            }
            Ok(ClientRequest::Subscribe(request)) => self.subscribe(request).await,
            Ok(ClientRequest::Unsubscribe(request)) => self.unsubscribe(request).await,
            Ok(ClientRequest::History(request)) => self.history(request).await,
            Ok(ClientRequest::SubscribeTrades(request)) => self.subscribe_trades(request).await,
            Ok(ClientRequest::UnsubscribeTrades(request)) => self.unsubscribe_trades(request).await,
            Ok(ClientRequest::SubscribeTickers(request)) => self.subscribe_tickers(request).await,
            Ok(ClientRequest::UnsubscribeTickers(request)) => {
                self.unsubscribe_tickers(request).await
            }
        }
    }

    /// Joins the ticker stream: the hub queues the snapshot (encoded here, sent from its thread), then its
    /// rounds (see [`kline_push::tickers`]).
    async fn subscribe_tickers(&mut self, request: SubscribeTickersRequest) {
        let sub_id = request
            .subscription_id
            .as_ref()
            .map(|id| id.as_str().to_owned());
        let (outbox, deflate) = (self.outbox.clone(), self.deflate);
        let subscription_id = request.subscription_id;
        let reply = Box::new(move |window_start, tickers| {
            let snapshot = TickersSnapshot::new(subscription_id, window_start, tickers);
            outbox.push_message(frame::text_for(
                &ServerMessage::now(snapshot).to_json(),
                deflate,
            ));
        });
        let hub = &self.state.ticker_hub;
        match Box::pin(hub.join(self.conn, self.subscriber(), reply)).await {
            Ok(()) => self.tickers = true,
            Err(refused) => self.error(
                ErrorData::new(ErrorCode::SubscriptionRefused, refused.to_string())
                    .for_request(Some("subscribe_tickers"), sub_id.as_deref()),
            ),
        }
    }

    async fn unsubscribe_tickers(&mut self, request: UnsubscribeTickersRequest) {
        if std::mem::take(&mut self.tickers) {
            self.state.ticker_hub.leave(self.conn).await;
        }
        let confirmed = TickersUnsubscribed::new(request.subscription_id);
        self.outbox.push_message(self.encode(confirmed));
    }

    /// Joins the mint's trades (gated), reads the snapshot, and opens the gate with the snapshot as its
    /// reply: the snapshot, then every trade committed after it (see [`kline_push::trade_hub`]).
    async fn subscribe_trades(&mut self, request: SubscribeTradesRequest) {
        let sub_id = request
            .subscription_id
            .as_ref()
            .map(|id| id.as_str().to_owned());
        let refuse = |code, message: String| {
            ErrorData::new(code, message).for_request(Some("subscribe_trades"), sub_id.as_deref())
        };
        let mint = request.symbol.to_bytes();
        let limit = self.state.config.kline.max_subscriptions_per_client;
        if !self.trade_mints.contains(&mint) && self.trade_mints.len() >= limit {
            let message = format!(
                "trade subscription limit reached ({limit} per connection); unsubscribe first"
            );
            return self.error(refuse(ErrorCode::SubscriptionRefused, message));
        }
        let hub = &self.state.trade_hub;
        hub.join(self.conn, mint, self.subscriber()).await;
        if !self.trade_mints.contains(&mint) {
            self.trade_mints.push(mint);
        }
        let count = request
            .limit
            .unwrap_or(self.state.config.kline.history_data_limit) as usize;
        let after = request.after.clone();
        let read =
            session::read_history(&self.state.history_reads, &self.state.store, move |store| {
                let page = store.trades_between(&mint, after.as_ref(), None, count)?;
                let floor = match (page.trades.first(), &after) {
                    (Some(newest), _) => Some(TradePosition::of_trade(newest)),
                    (None, Some(after)) => Some(store.trade_position(after)?),
                    (None, None) => None,
                };
                Ok((page, floor))
            })
            .await;
        match read {
            Ok((page, floor)) => {
                let snapshot = TradesSnapshot::new(
                    request.symbol,
                    request.subscription_id,
                    page.trades,
                    page.has_more,
                );
                let frame = self.encode(snapshot);
                let outbox = self.outbox.clone();
                let reply = Box::new(move || {
                    outbox.push_message(frame);
                });
                hub.open(self.conn, mint, floor, reply).await;
            }
            Err(message) => {
                hub.leave(self.conn, mint).await;
                self.trade_mints.retain(|known| *known != mint);
                self.error(refuse(ErrorCode::HistoryFailed, message));
            }
        }
    }

    async fn unsubscribe_trades(&mut self, request: UnsubscribeTradesRequest) {
        let mint = request.symbol.to_bytes();
        self.state.trade_hub.leave(self.conn, mint).await;
        self.trade_mints.retain(|known| *known != mint);
        let confirmed = TradesUnsubscribed::new(request.symbol, request.subscription_id);
        self.outbox.push_message(self.encode(confirmed));
    }

    async fn subscribe(&mut self, request: SubscribeRequest) {
        let series: SeriesKey = (request.symbol.clone(), request.interval);
        let sub_id = request
            .subscription_id
            .as_ref()
            .map(|id| id.as_str().to_owned());
        let limit = self.state.config.kline.max_subscriptions_per_client;
        if let Err(message) = self.subscriptions.check_limit(&series, limit) {
            self.error(
                ErrorData::new(ErrorCode::SubscriptionRefused, message)
                    .for_request(Some("subscribe"), sub_id.as_deref()),
            );
            return;
        }
        let subscriber = self.subscriber();
        self.subscriptions
            .join(&self.state.hub, self.conn, &series, &subscriber)
            .await;
        let query = HistoryRequest {
            symbol: request.symbol.clone(),
            interval: request.interval,
            subscription_id: request.subscription_id.clone(),
            from: request.from.map(|from| {
                history::resume_from(
                    from,
                    request.interval,
                    self.state.config.kline.finality_grace_ms,
                )
            }),
            to: None,
            // A resume (`from`) sends every candle since `from` (and those before it that may still have
            // changed), up to the protocol's maximum.
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
                self.outbox.open_gate(
                    &series,
                    &candles,
                    vec![self.encode(history), self.encode(confirmed)],
                );
            }
            Err(message) => {
                self.subscriptions
                    .abort(&self.state.hub, self.conn, &series, &subscriber)
                    .await;
                self.error(
                    ErrorData::new(ErrorCode::HistoryFailed, message)
                        .for_request(Some("subscribe"), sub_id.as_deref()),
                );
            }
        }
    }

    async fn unsubscribe(&mut self, request: UnsubscribeRequest) {
        let series: SeriesKey = (request.symbol.clone(), request.interval);
        self.subscriptions
            .leave(&self.state.hub, self.conn, &series, &self.subscriber())
            .await;
        let confirmed =
            UnsubscribeConfirmed::new(request.symbol, request.interval, request.subscription_id);
        self.outbox.push_message(self.encode(confirmed));
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
                self.outbox.push_message(self.encode(history));
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
        session::read_history(&self.state.history_reads, &self.state.store, move |store| {
            history_data(store, query)
        })
        .await
    }
}
