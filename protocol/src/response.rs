//! Server → client messages: one envelope, one payload type per message kind.
//!
//! Every message is `{"type": "<kind>", "data": {...}, "timestamp": <Unix ms when sent>}`. Optional fields
//! are always present on the wire (as `null` when absent) so a client can rely on the shape.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::request::RejectedRequest;
use crate::ticker::{Tickers, TickersSnapshot, TickersUnsubscribed};
use crate::token::SymbolName;
use crate::{Candle, ErrorCode, Interval, PROTOCOL_VERSION, SubscriptionId, Symbol, Trade};

/// The envelope of every server message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMessage {
    #[serde(flatten)]
    pub payload: ServerPayload,
    /// Unix milliseconds when the message was sent.
    pub timestamp: i64,
}

/// The kind (`type`) and body (`data`) of a server message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerPayload {
    ConnectionSuccess(ConnectionSuccess),
    HistoryData(HistoryData),
    SubscriptionConfirmed(SubscriptionConfirmed),
    UnsubscribeConfirmed(UnsubscribeConfirmed),
    KlineData(KlineData),
    Error(ErrorData),
    Pong(Pong),
    TradesSnapshot(TradesSnapshot),
    /// Boxed: a trade is larger than every other payload, and most messages are not trades.
    Trade(Box<Trade>),
    TradesUnsubscribed(TradesUnsubscribed),
    TickersSnapshot(TickersSnapshot),
    Tickers(Tickers),
    TickersUnsubscribed(TickersUnsubscribed),
}

/// The latest trades of a mint, answering `subscribe_trades` (before any live `trade` of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TradesSnapshot {
    pub symbol: Symbol,
    pub subscription_id: Option<SubscriptionId>,
    /// Newest first.
    pub data: Vec<Trade>,
    /// Older trades exist (after `after`, when resuming): page back with `GET /api/v1/trades?before=` the
    /// last trade's `id`.
    pub has_more: bool,
}

/// Trades of the mint are no longer pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TradesUnsubscribed {
    pub symbol: Symbol,
    pub subscription_id: Option<SubscriptionId>,
    pub success: bool,
}

impl TradesSnapshot {
    pub fn new(
        symbol: Symbol,
        subscription_id: Option<SubscriptionId>,
        data: Vec<Trade>,
        has_more: bool,
    ) -> TradesSnapshot {
        TradesSnapshot {
            symbol,
            subscription_id,
            data,
            has_more,
        }
    }
}

impl TradesUnsubscribed {
    pub fn new(symbol: Symbol, subscription_id: Option<SubscriptionId>) -> TradesUnsubscribed {
        TradesUnsubscribed {
            symbol,
            subscription_id,
            success: true,
        }
    }
}

/// First message on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionSuccess {
    /// UUID v4 the server gave this connection (quote it in bug reports).
    pub client_id: String,
    /// Unix seconds.
    pub server_time: i64,
    pub supported_intervals: Vec<Interval>,
    /// Mints the server knows of; may be empty (any valid mint may be subscribed).
    pub supported_symbols: Vec<Symbol>,
    /// The same mints, in the same order, each with its token's ticker and name (`null` when unknown).
    /// Absent from servers before names were kept: read as empty.
    #[serde(default)]
    pub symbol_names: Vec<SymbolName>,
    pub protocol_version: u32,
    pub server_version: String,
}

/// Candles answering a `subscribe` (before its confirmation) or a `history` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryData {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<SubscriptionId>,
    /// Ascending by `time`.
    pub data: Vec<Candle>,
    /// Older candles exist before the first one returned, within the requested range.
    pub has_more: bool,
    /// Number of candles in `data`.
    pub total_count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubscriptionConfirmed {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<SubscriptionId>,
    pub success: bool,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UnsubscribeConfirmed {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<SubscriptionId>,
    pub success: bool,
}

/// A live candle change. The same bytes go to every subscriber of the pair, so `subscription_id` is
/// always `null`: route by `symbol` + `interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KlineData {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<SubscriptionId>,
    pub data: Candle,
    /// Unix milliseconds when the update was produced.
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorData {
    pub code: ErrorCode,
    /// Human-readable; says what was wrong.
    pub message: String,
    /// `msg_type` of the request, when known.
    pub msg_type: Option<String>,
    /// `subscription_id` of the request, when given.
    pub subscription_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pong {
    /// Unix seconds.
    pub server_time: i64,
}

impl ConnectionSuccess {
    pub fn new(
        client_id: impl Into<String>,
        server_time: i64,
        supported_symbols: Vec<Symbol>,
        server_version: impl Into<String>,
    ) -> ConnectionSuccess {
        ConnectionSuccess {
            client_id: client_id.into(),
            server_time,
            supported_intervals: Interval::ALL.to_vec(),
            supported_symbols,
            symbol_names: Vec::new(),
            protocol_version: PROTOCOL_VERSION,
            server_version: server_version.into(),
        }
    }

    /// Sets `symbol_names`: one entry per `supported_symbols` entry, in its order.
    pub fn with_symbol_names(mut self, names: Vec<SymbolName>) -> ConnectionSuccess {
        debug_assert!(
            names
                .iter()
                .map(|entry| &entry.symbol)
                .eq(self.supported_symbols.iter()),
            "symbol_names follows supported_symbols"
        );
        self.symbol_names = names;
        self
    }
}

impl HistoryData {
    /// `total_count` is derived from `data`, which must be ascending by `time`.
    pub fn new(
        symbol: Symbol,
        interval: Interval,
        subscription_id: Option<SubscriptionId>,
        data: Vec<Candle>,
        has_more: bool,
    ) -> HistoryData {
        debug_assert!(
            data.windows(2).all(|w| w[0].time < w[1].time),
            "history must ascend"
        );
        HistoryData {
            symbol,
            interval,
            subscription_id,
            total_count: data.len(),
            data,
            has_more,
        }
    }
}

impl SubscriptionConfirmed {
    pub fn new(
        symbol: Symbol,
        interval: Interval,
        subscription_id: Option<SubscriptionId>,
    ) -> Self {
        let message = format!("subscribed to {symbol} {interval}");
        SubscriptionConfirmed {
            symbol,
            interval,
            subscription_id,
            success: true,
            message,
        }
    }
}

impl UnsubscribeConfirmed {
    pub fn new(
        symbol: Symbol,
        interval: Interval,
        subscription_id: Option<SubscriptionId>,
    ) -> Self {
        UnsubscribeConfirmed {
            symbol,
            interval,
            subscription_id,
            success: true,
        }
    }
}

impl KlineData {
    pub fn new(symbol: Symbol, interval: Interval, data: Candle, produced_at_ms: i64) -> KlineData {
        KlineData {
            symbol,
            interval,
            subscription_id: None,
            data,
            timestamp: produced_at_ms,
        }
    }
}

impl ErrorData {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorData {
        ErrorData {
            code,
            message: message.into(),
            msg_type: None,
            subscription_id: None,
        }
    }

    /// Adds the request context (`msg_type`, `subscription_id`) the error answers.
    pub fn for_request(mut self, msg_type: Option<&str>, subscription_id: Option<&str>) -> Self {
        self.msg_type = msg_type.map(str::to_owned);
        self.subscription_id = subscription_id.map(str::to_owned);
        self
    }
}

impl From<&RejectedRequest> for ErrorData {
    /// The `error` (code 1001) that answers an invalid request.
    fn from(rejected: &RejectedRequest) -> ErrorData {
        ErrorData::new(ErrorCode::InvalidRequest, rejected.error.to_string()).for_request(
            rejected.msg_type.as_deref(),
            rejected.subscription_id.as_deref(),
        )
    }
}

impl Pong {
    pub fn new(server_time: i64) -> Pong {
        Pong { server_time }
    }
}

macro_rules! payload_from {
    ($($variant:ident),*) => {$(
        impl From<$variant> for ServerPayload {
            fn from(payload: $variant) -> ServerPayload {
                ServerPayload::$variant(payload)
            }
        }
    )*};
}
payload_from!(
    ConnectionSuccess,
    HistoryData,
    SubscriptionConfirmed,
    UnsubscribeConfirmed,
    KlineData,
    Pong,
    TradesSnapshot,
    TradesUnsubscribed,
    TickersSnapshot,
    Tickers,
    TickersUnsubscribed
);

impl From<Trade> for ServerPayload {
    fn from(trade: Trade) -> ServerPayload {
        ServerPayload::Trade(Box::new(trade))
    }
}

impl From<ErrorData> for ServerPayload {
    fn from(payload: ErrorData) -> ServerPayload {
        ServerPayload::Error(payload)
    }
}

impl ServerMessage {
    /// A message stamped with the given send time (Unix ms).
    pub fn new(payload: impl Into<ServerPayload>, timestamp_ms: i64) -> ServerMessage {
        ServerMessage {
            payload: payload.into(),
            timestamp: timestamp_ms,
        }
    }

    /// A message stamped with the current time.
    pub fn now(payload: impl Into<ServerPayload>) -> ServerMessage {
        ServerMessage::new(payload, unix_millis_now())
    }

    /// The `type` of this message, e.g. `"kline_data"`.
    pub fn kind(&self) -> &'static str {
        match self.payload {
            ServerPayload::ConnectionSuccess(_) => "connection_success",
            ServerPayload::HistoryData(_) => "history_data",
            ServerPayload::SubscriptionConfirmed(_) => "subscription_confirmed",
            ServerPayload::UnsubscribeConfirmed(_) => "unsubscribe_confirmed",
            ServerPayload::KlineData(_) => "kline_data",
            ServerPayload::Error(_) => "error",
            ServerPayload::Pong(_) => "pong",
            ServerPayload::TradesSnapshot(_) => "trades_snapshot",
            ServerPayload::Trade(_) => "trade",
            ServerPayload::TradesUnsubscribed(_) => "trades_unsubscribed",
            ServerPayload::TickersSnapshot(_) => "tickers_snapshot",
            ServerPayload::Tickers(_) => "tickers",
            ServerPayload::TickersUnsubscribed(_) => "tickers_unsubscribed",
        }
    }

    /// The JSON text of one WebSocket frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }

    /// Parses one text frame received from a server.
    pub fn parse(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Current Unix time in milliseconds.
pub fn unix_millis_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
