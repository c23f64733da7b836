//! The payloads of the old Spin Pet server's Socket.IO namespace `/kline`, exactly as its front-ends read
//! them: one JSON argument per event, no `{type, data, timestamp}` envelope
//! (`/work/shared/spinpet/upstream-interfaces.md`, section "Socket.IO").
//!
//! Requests are checked here: a payload that does not parse, an unknown interval or a mint that is not a
//! base58 public key is an [`SioError`] with code 1001 (the old server stayed silent on the first).

use kline_protocol::{Candle, ErrorCode, Interval, SubscriptionId, Symbol, UpdateType};
use serde::{Deserialize, Serialize};

use kline_push::rate_limit;

/// The message of `subscription_confirmed`, as the old server sent it.
pub const SUBSCRIBED_MESSAGE: &str = "订阅成功";

/// Candles a `history` request gets when it names no `limit`.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;

/// `subscribe` and `unsubscribe`: `{symbol, interval, subscription_id?}`.
#[derive(Debug, Deserialize)]
struct SeriesRequestWire {
    symbol: String,
    interval: String,
    subscription_id: Option<String>,
}

/// `history`: `{symbol, interval, limit?, from?}`.
#[derive(Debug, Deserialize)]
struct HistoryRequestWire {
    symbol: String,
    interval: String,
    limit: Option<u64>,
    from: Option<i64>,
}

/// A validated `subscribe` or `unsubscribe`.
#[derive(Debug, Clone)]
pub struct SeriesRequest {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<String>,
}

/// A validated `history`.
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    pub symbol: Symbol,
    pub interval: Interval,
    /// 1..=1000: larger asks are cut to 1000 (the old server had no maximum).
    pub limit: u32,
    /// Only candles with `time >= from` (the old server ignored it).
    pub from: Option<i64>,
}

/// Trade events `history_event_data` sends on `subscribe` (the old server's number).
pub const HISTORY_EVENTS: usize = 300;

/// `event_data` (and each entry of `history_event_data`): one stored price event of the mint, in the old
/// server's `EventUpdate` shape.
#[derive(Debug, Serialize)]
pub struct EventUpdate<'a> {
    pub symbol: &'a Symbol,
    pub event_type: kline_protocol::TradeKind,
    /// The stored event, as the old server's JSON (with its `event_type` tag).
    pub event_data: &'a serde_json::value::RawValue,
    /// The event's block time, Unix milliseconds.
    pub timestamp: i64,
}

/// The `EventUpdate` of a trade (its stored event JSON is valid JSON: the pipeline wrote it).
pub fn event_update(trade: &kline_pipeline::feed::trades::LiveTrade) -> EventUpdate<'_> {
    EventUpdate {
        symbol: &trade.trade.symbol,
        event_type: trade.trade.event_type,
        event_data: raw_json(&trade.event_json),
        timestamp: trade.trade.time,
    }
}

/// `json` as a raw JSON value (`null` if it were not JSON, which a stored event always is).
fn raw_json(json: &str) -> &serde_json::value::RawValue {
    serde_json::from_str(json)
        .unwrap_or_else(|_| serde_json::from_str("null").expect("null is JSON"))
}

/// The `history_event_data` payload: `trades` (newest first) with their stored events' JSON.
pub fn history_event_data(
    symbol: &Symbol,
    trades: &[kline_protocol::Trade],
    events: &[String],
    has_more: bool,
) -> serde_json::Value {
    let data = trades
        .iter()
        .zip(events)
        .map(|(trade, json)| EventUpdate {
            symbol,
            event_type: trade.event_type,
            event_data: raw_json(json),
            timestamp: trade.time,
        })
        .collect::<Vec<_>>();
    let payload = HistoryEventData {
        symbol,
        total_count: data.len(),
        data,
        has_more,
    };
    serde_json::to_value(&payload).expect("history_event_data serializes")
}

/// `history_event_data`: `{symbol, data: [EventUpdate…] newest first, has_more, total_count}`.
#[derive(Debug, Serialize)]
pub struct HistoryEventData<'a> {
    pub symbol: &'a Symbol,
    pub data: Vec<EventUpdate<'a>>,
    pub has_more: bool,
    /// Number of events in `data` (counting every stored event of a mint would read them all).
    pub total_count: usize,
}

/// `error`: `{code, message}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SioError {
    pub code: u16,
    pub message: String,
}

impl SioError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> SioError {
        SioError {
            code: code.as_u16(),
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> SioError {
        SioError::new(ErrorCode::InvalidRequest, message)
    }
}

impl SeriesRequest {
    /// Parses the argument of a `subscribe` or `unsubscribe` (`event` names it in the error message).
    pub fn parse(event: &str, data: serde_json::Value) -> Result<SeriesRequest, SioError> {
        let wire: SeriesRequestWire = serde_json::from_value(data)
            .map_err(|err| SioError::invalid(format!("invalid `{event}` payload: {err}")))?;
        Ok(SeriesRequest {
            interval: parse_interval(&wire.interval)?,
            symbol: parse_symbol(&wire.symbol)?,
            subscription_id: wire.subscription_id,
        })
    }
}

impl HistoryRequest {
    pub fn parse(data: serde_json::Value) -> Result<HistoryRequest, SioError> {
        let wire: HistoryRequestWire = serde_json::from_value(data)
            .map_err(|err| SioError::invalid(format!("invalid `history` payload: {err}")))?;
        let limit = wire.limit.unwrap_or(u64::from(DEFAULT_HISTORY_LIMIT));
        Ok(HistoryRequest {
            interval: parse_interval(&wire.interval)?,
            symbol: parse_symbol(&wire.symbol)?,
            limit: limit.clamp(1, u64::from(kline_protocol::MAX_HISTORY_LIMIT)) as u32,
            from: wire.from,
        })
    }
}

fn parse_interval(interval: &str) -> Result<Interval, SioError> {
    interval.parse().map_err(|_| {
        let names: Vec<&str> = Interval::ALL.iter().map(|i| i.as_str()).collect();
        SioError::invalid(format!(
            "Invalid interval: {interval}, must be one of: {}",
            names.join(", ")
        ))
    })
}

fn parse_symbol(symbol: &str) -> Result<Symbol, SioError> {
    Symbol::parse(symbol).map_err(|err| SioError::invalid(format!("Invalid symbol format: {err}")))
}

/// `connection_success`.
#[derive(Debug, Serialize)]
pub struct ConnectionSuccess {
    pub client_id: String,
    /// Unix seconds.
    pub server_time: i64,
    pub supported_symbols: Vec<Symbol>,
    pub supported_intervals: Vec<Interval>,
    /// Added here (the old server had no names): `supported_symbols` with their tickers and names, as on
    /// `/ws`. Clients of the old server ignore it.
    pub symbol_names: Vec<kline_protocol::SymbolName>,
}

/// A candle in the old server's shape: contract v1's fields before the volume breakdown was added
/// (`quote_volume` and the taker-buy volumes stay on `/ws`); `volume` is the token volume, which the old
/// server always sent as 0.
#[derive(Debug, Serialize)]
pub struct LegacyCandle {
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub is_final: bool,
    pub update_type: UpdateType,
    pub update_count: u32,
}

impl From<&Candle> for LegacyCandle {
    fn from(candle: &Candle) -> LegacyCandle {
        LegacyCandle {
            time: candle.time,
            open: candle.open,
            high: candle.high,
            low: candle.low,
            close: candle.close,
            volume: candle.volume,
            is_final: candle.is_final,
            update_type: candle.update_type,
            update_count: candle.update_count,
        }
    }
}

fn legacy_candles<S: serde::Serializer>(candles: &[Candle], out: S) -> Result<S::Ok, S::Error> {
    out.collect_seq(candles.iter().map(LegacyCandle::from))
}

/// `kline_data`: one candle update of a subscribed series.
#[derive(Debug, Serialize)]
pub struct KlineData {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<SubscriptionId>,
    pub data: LegacyCandle,
    /// Unix milliseconds when the update was produced.
    pub timestamp: i64,
}

/// `history_data`: newest candle first; `total_count` counts every stored candle of the series.
#[derive(Debug, Serialize)]
pub struct HistoryData {
    pub symbol: Symbol,
    pub interval: Interval,
    /// Sent in the old shape ([`LegacyCandle`]).
    #[serde(serialize_with = "legacy_candles")]
    pub data: Vec<Candle>,
    pub has_more: bool,
    pub total_count: usize,
}

/// `subscription_confirmed`.
#[derive(Debug, Serialize)]
pub struct SubscriptionConfirmed {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<String>,
    pub success: bool,
    pub message: &'static str,
}

/// `unsubscribe_confirmed`.
#[derive(Debug, Serialize)]
pub struct UnsubscribeConfirmed {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<String>,
    pub success: bool,
}

/// `pong` (our addition: the old server had no `ping` event; Engine.IO's heartbeat is separate).
#[derive(Debug, Serialize)]
pub struct Pong {
    /// Unix seconds.
    pub server_time: i64,
}

/// The tokens a Socket.IO request costs, by the same rule as `/ws`: `history` by its `limit` (the old
/// server's default 100), `subscribe` by the snapshot it reads (`kline.history_data_limit` candles; its 300
/// trade events are not charged, as `/ws`'s `subscribe_trades` is not), anything else 1.
pub fn request_cost(event: &str, data: &serde_json::Value, snapshot_candles: u32) -> u32 {
    match event {
        "history" => rate_limit::history_cost(
            data["limit"]
                .as_u64()
                .unwrap_or(u64::from(DEFAULT_HISTORY_LIMIT)),
        ),
        "subscribe" => rate_limit::history_cost(u64::from(snapshot_candles)),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MINT: &str = "So11111111111111111111111111111111111111112";

    #[test]
    fn requests_in_the_old_shapes_parse_and_bad_ones_say_what_is_wrong() {
        let ok = SeriesRequest::parse(
            "subscribe",
            json!({"symbol": MINT, "interval": "m5", "subscription_id": "a"}),
        )
        .unwrap();
        assert_eq!(ok.interval, Interval::M5);
        assert_eq!(ok.subscription_id.as_deref(), Some("a"));

        let err = SeriesRequest::parse("subscribe", json!({"symbol": MINT, "interval": "x"}))
            .unwrap_err();
        assert_eq!(err.code, 1001);
        assert!(
            err.message
                .starts_with("Invalid interval: x, must be one of: s1, s15")
        );
        let err = SeriesRequest::parse(
            "subscribe",
            json!({"symbol": "TEST_MINT_0", "interval": "s1"}),
        )
        .unwrap_err();
        assert!(err.message.starts_with("Invalid symbol format"), "{err:?}");
        let err = SeriesRequest::parse("unsubscribe", json!("nope")).unwrap_err();
        assert!(
            err.message.starts_with("invalid `unsubscribe` payload"),
            "{err:?}"
        );

        let history = HistoryRequest::parse(json!({"symbol": MINT, "interval": "s1"})).unwrap();
        assert_eq!(history.limit, DEFAULT_HISTORY_LIMIT);
        let history = HistoryRequest::parse(
            json!({"symbol": MINT, "interval": "s1", "limit": 5000, "from": 7}),
        )
        .unwrap();
        assert_eq!((history.limit, history.from), (1000, Some(7)));
    }

    #[test]
    fn replies_serialize_in_the_old_shapes() {
        let symbol = Symbol::parse(MINT).unwrap();
        let confirmed = SubscriptionConfirmed {
            symbol: symbol.clone(),
            interval: Interval::S30,
            subscription_id: None,
            success: true,
            message: SUBSCRIBED_MESSAGE,
        };
        assert_eq!(
            serde_json::to_value(confirmed).unwrap(),
            json!({"symbol": MINT, "interval": "s30", "subscription_id": null, "success": true,
                   "message": "订阅成功"})
        );
        let error = SioError::new(ErrorCode::SubscriptionRefused, "full");
        assert_eq!(
            serde_json::to_value(error).unwrap(),
            json!({"code": 1002, "message": "full"})
        );
    }

    #[test]
    fn socketio_requests_cost_what_the_same_ws_requests_cost() {
        let history =
            |limit: u32| serde_json::json!({"symbol": "x", "interval": "s1", "limit": limit});
        for limit in [1, 100, 1000, 5000] {
            let ws = format!(r#"{{"msg_type":"history","limit":{limit}}}"#);
            assert_eq!(
                request_cost("history", &history(limit), 100),
                rate_limit::request_cost(&ws)
            );
        }
        let no_limit = serde_json::json!({"symbol": "x", "interval": "s1"});
        assert_eq!(request_cost("history", &no_limit, 100), 2);
        assert_eq!(request_cost("subscribe", &no_limit, 500), 6);
        assert_eq!(request_cost("ping", &no_limit, 500), 1);
    }
}
