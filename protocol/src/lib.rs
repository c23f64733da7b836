//! # kline-protocol: the wire contract v1
//!
//! Every JSON message that crosses the kline WebSocket (`/ws`) is a type in this crate. The server, the
//! terminal client and the end-to-end tests all use these types, and `docs/protocol.md` describes the same
//! contract for web front-ends. Nothing here knows about sockets, runtimes or storage.
//!
//! ## Layout
//! - [`interval`]: the nine candle intervals and bucket arithmetic.
//! - [`symbol`]: a token mint address, validated as base58 of 32 bytes.
//! - [`candle`]: one OHLC candle as sent on the wire.
//! - [`request`]: client → server messages, parsed with a typed error that says what was wrong.
//! - [`response`]: the server → client envelope and one payload type per message kind.
//! - [`codes`]: protocol error codes and WebSocket close codes.
//! - [`trade`]: one trade of a mint (a trades list's row) and the REST page of them.
//! - [`token`]: a token's ticker, name and URI, sanitised ([`TokenText`]): hostile input made safe to show.
//! - [`ticker`]: the ticker stream: every mint's last price and 24-hour numbers.
//!
//! Invalid values cannot be built: [`Symbol`], [`Interval`], [`SubscriptionId`] and the request limits are
//! checked when parsed or constructed, and payload structs are `#[non_exhaustive]` so other crates create them
//! only through their constructors (they can still read every field).

pub mod base58;
pub mod candle;
pub mod codes;
pub mod interval;
pub mod request;
pub mod response;
pub mod symbol;
pub mod ticker;
pub mod token;
pub mod trade;

pub use candle::{Candle, UpdateType};
pub use codes::{CloseCode, ErrorCode};
pub use interval::{Interval, IntervalError};
pub use request::{
    ClientRequest, HistoryRequest, RejectedRequest, RequestError, SubscribeRequest,
    SubscribeTickersRequest, SubscribeTradesRequest, SubscriptionId, UnsubscribeRequest,
    UnsubscribeTickersRequest, UnsubscribeTradesRequest,
};
pub use response::{
    ConnectionSuccess, ErrorData, HistoryData, KlineData, Pong, ServerMessage, ServerPayload,
    SubscriptionConfirmed, TradesSnapshot, TradesUnsubscribed, UnsubscribeConfirmed,
};
pub use symbol::{Symbol, SymbolError};
pub use ticker::{DayStats, Ticker, Tickers, TickersSnapshot, TickersUnsubscribed};
pub use token::{NameText, SymbolName, TickerText, TokenText, UriText};
pub use trade::{Side, Trade, TradeId, TradeIdError, TradeKind, TradesPage};

/// Version of the wire contract, sent in `connection_success`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest `limit` a `subscribe` or `history` request may ask for, and the most candles one
/// `history_data` message carries.
pub const MAX_HISTORY_LIMIT: u32 = 1000;

/// Most trades one trades page carries.
pub const MAX_TRADES_LIMIT: u32 = 1000;

/// `limit` used when a request gives none (servers may configure another default up to the maximum).
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;

/// Longest `subscription_id` a client may choose, in characters.
pub const MAX_SUBSCRIPTION_ID_CHARS: usize = 64;
