//! Client → server messages and their validation.
//!
//! A request is a JSON object whose `msg_type` (or its alias `type`) names the kind. Unknown extra fields are
//! ignored. [`ClientRequest::parse`] either returns a fully valid request or a [`RejectedRequest`] carrying a
//! [`RequestError`] that says what was wrong, plus the `msg_type` and `subscription_id` when they could be
//! read, so the server can echo them in its `error` message.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Interval, MAX_HISTORY_LIMIT, MAX_SUBSCRIPTION_ID_CHARS, Symbol, TradeId};

/// A client-chosen label for a subscription, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubscriptionId(String);

impl SubscriptionId {
    pub fn new(id: impl Into<String>) -> Result<SubscriptionId, RequestError> {
        let id = id.into();
        let chars = id.chars().count();
        if chars > MAX_SUBSCRIPTION_ID_CHARS {
            return Err(RequestError::SubscriptionIdTooLong { chars });
        }
        Ok(SubscriptionId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SubscriptionId {
    type Error = RequestError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        SubscriptionId::new(value)
    }
}

impl From<SubscriptionId> for String {
    fn from(id: SubscriptionId) -> String {
        id.0
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Subscribe to live candles of one (symbol, interval), receiving history first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SubscribeRequest {
    pub symbol: Symbol,
    pub interval: Interval,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    /// Candles of history to send first; `None` means the server's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Instead of the last `limit` candles, send every candle with `time >= from` (up to 1000): resume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
}

/// Stop live candles of one (symbol, interval).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UnsubscribeRequest {
    pub symbol: Symbol,
    pub interval: Interval,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
}

/// Ask for the newest `limit` candles in `[from, to)`, ascending.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HistoryRequest {
    pub symbol: Symbol,
    pub interval: Interval,
    /// Echoed in the answer so a client can match it to its request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Inclusive lower bound on `time`, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Exclusive upper bound on `time`, Unix seconds. Paging backwards: the oldest `time` you hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
}

/// Subscribe to the live trades of one mint, receiving the latest ones first (`trades_snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SubscribeTradesRequest {
    pub symbol: Symbol,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    /// Trades in the snapshot (newest first); `None` means the server's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Resume: the snapshot holds only the trades after this one (the last trade the client saw), the
    /// newest `limit` of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<TradeId>,
}

/// Stop the live trades of one mint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UnsubscribeTradesRequest {
    pub symbol: Symbol,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
}

/// Subscribe to every mint's ticker: a `tickers_snapshot`, then `tickers` updates at most once a second.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct SubscribeTickersRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
}

/// Stop the ticker stream.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct UnsubscribeTickersRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
}

/// Any message a client may send.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "msg_type", rename_all = "snake_case")]
pub enum ClientRequest {
    Subscribe(SubscribeRequest),
    Unsubscribe(UnsubscribeRequest),
    History(HistoryRequest),
    SubscribeTrades(SubscribeTradesRequest),
    UnsubscribeTrades(UnsubscribeTradesRequest),
    SubscribeTickers(SubscribeTickersRequest),
    UnsubscribeTickers(UnsubscribeTickersRequest),
    Ping,
}

/// What was wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("a request must be a JSON object")]
    NotAnObject,
    #[error(
        "missing `msg_type`; expected one of subscribe, unsubscribe, history, subscribe_trades, unsubscribe_trades, subscribe_tickers, unsubscribe_tickers, ping"
    )]
    MissingMsgType,
    #[error(
        "unknown msg_type `{0}`; expected one of subscribe, unsubscribe, history, subscribe_trades, unsubscribe_trades, subscribe_tickers, unsubscribe_tickers, ping"
    )]
    UnknownMsgType(String),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("`limit` must be between 1 and {MAX_HISTORY_LIMIT}, got {0}")]
    LimitOutOfRange(i64),
    #[error("`from` ({from}) must not be after `to` ({to})")]
    FromAfterTo { from: i64, to: i64 },
    #[error(
        "`subscription_id` has {chars} characters; at most {MAX_SUBSCRIPTION_ID_CHARS} are allowed"
    )]
    SubscriptionIdTooLong { chars: usize },
}

/// A request that failed validation, with whatever context could be read from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct RejectedRequest {
    /// The request's `msg_type`, when it was a string.
    pub msg_type: Option<String>,
    /// The request's `subscription_id`, when it was a string (cut to 64 characters).
    pub subscription_id: Option<String>,
    pub error: RequestError,
}

impl SubscribeRequest {
    pub fn new(symbol: Symbol, interval: Interval) -> SubscribeRequest {
        SubscribeRequest {
            symbol,
            interval,
            subscription_id: None,
            limit: None,
            from: None,
        }
    }

    pub fn with_subscription_id(mut self, id: SubscriptionId) -> Self {
        self.subscription_id = Some(id);
        self
    }

    /// Sets `limit`, which must be 1..=1000.
    pub fn with_limit(mut self, limit: u32) -> Result<Self, RequestError> {
        self.limit = Some(check_limit(i64::from(limit))?);
        Ok(self)
    }

    pub fn with_from(mut self, from: i64) -> Self {
        self.from = Some(from);
        self
    }
}

impl UnsubscribeRequest {
    pub fn new(symbol: Symbol, interval: Interval) -> UnsubscribeRequest {
        UnsubscribeRequest {
            symbol,
            interval,
            subscription_id: None,
        }
    }

    pub fn with_subscription_id(mut self, id: SubscriptionId) -> Self {
        self.subscription_id = Some(id);
        self
    }
}

impl HistoryRequest {
    pub fn new(symbol: Symbol, interval: Interval) -> HistoryRequest {
        HistoryRequest {
            symbol,
            interval,
            subscription_id: None,
            limit: None,
            from: None,
            to: None,
        }
    }

    pub fn with_subscription_id(mut self, id: SubscriptionId) -> Self {
        self.subscription_id = Some(id);
        self
    }

    /// Sets `limit`, which must be 1..=1000.
    pub fn with_limit(mut self, limit: u32) -> Result<Self, RequestError> {
        self.limit = Some(check_limit(i64::from(limit))?);
        Ok(self)
    }

    /// Sets the range `[from, to)`; either end may be open. `from` must not be after `to`.
    pub fn with_range(mut self, from: Option<i64>, to: Option<i64>) -> Result<Self, RequestError> {
        check_range(from, to)?;
        self.from = from;
        self.to = to;
        Ok(self)
    }
}

impl SubscribeTradesRequest {
    pub fn new(symbol: Symbol) -> SubscribeTradesRequest {
        SubscribeTradesRequest {
            symbol,
            subscription_id: None,
            limit: None,
            after: None,
        }
    }

    pub fn with_subscription_id(mut self, id: SubscriptionId) -> Self {
        self.subscription_id = Some(id);
        self
    }

    /// Sets `limit`, which must be 1..=1000.
    pub fn with_limit(mut self, limit: u32) -> Result<Self, RequestError> {
        self.limit = Some(check_limit(i64::from(limit))?);
        Ok(self)
    }

    /// Resumes after `last_seen`.
    pub fn with_after(mut self, last_seen: TradeId) -> Self {
        self.after = Some(last_seen);
        self
    }
}

impl UnsubscribeTradesRequest {
    pub fn new(symbol: Symbol) -> UnsubscribeTradesRequest {
        UnsubscribeTradesRequest {
            symbol,
            subscription_id: None,
        }
    }

    pub fn with_subscription_id(mut self, id: SubscriptionId) -> Self {
        self.subscription_id = Some(id);
        self
    }
}

impl SubscribeTickersRequest {
    pub fn new() -> SubscribeTickersRequest {
        SubscribeTickersRequest::default()
    }

    pub fn with_subscription_id(mut self, id: SubscriptionId) -> Self {
        self.subscription_id = Some(id);
        self
    }
}

impl UnsubscribeTickersRequest {
    pub fn new() -> UnsubscribeTickersRequest {
        UnsubscribeTickersRequest::default()
    }

    pub fn with_subscription_id(mut self, id: SubscriptionId) -> Self {
        self.subscription_id = Some(id);
        self
    }
}

impl ClientRequest {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<ClientRequest, RejectedRequest> {
        let value: Value = serde_json::from_str(text).map_err(|err| RejectedRequest {
            msg_type: None,
            subscription_id: None,
            error: RequestError::MalformedJson(err.to_string()),
        })?;
        ClientRequest::from_value(&value)
    }

    /// Validates an already parsed JSON value.
    pub fn from_value(value: &Value) -> Result<ClientRequest, RejectedRequest> {
        let Some(object) = value.as_object() else {
            return Err(RejectedRequest {
                msg_type: None,
                subscription_id: None,
                error: RequestError::NotAnObject,
            });
        };
        let msg_type = object
            .get("msg_type")
            .or_else(|| object.get("type"))
            .and_then(Value::as_str);
        let reject = |error| RejectedRequest {
            msg_type: msg_type.map(str::to_owned),
            subscription_id: object
                .get("subscription_id")
                .and_then(Value::as_str)
                .map(|id| id.chars().take(MAX_SUBSCRIPTION_ID_CHARS).collect()),
            error,
        };
        let fields = Fields(object);
        let parsed = match msg_type {
            None => Err(RequestError::MissingMsgType),
            Some("subscribe") => fields.subscribe().map(ClientRequest::Subscribe),
            Some("unsubscribe") => fields.unsubscribe().map(ClientRequest::Unsubscribe),
            Some("history") => fields.history().map(ClientRequest::History),
            Some("subscribe_trades") => fields
                .subscribe_trades()
                .map(ClientRequest::SubscribeTrades),
            Some("unsubscribe_trades") => fields
                .unsubscribe_trades()
                .map(ClientRequest::UnsubscribeTrades),
            Some("subscribe_tickers") => fields.subscription_id().map(|subscription_id| {
                ClientRequest::SubscribeTickers(SubscribeTickersRequest { subscription_id })
            }),
            Some("unsubscribe_tickers") => fields.subscription_id().map(|subscription_id| {
                ClientRequest::UnsubscribeTickers(UnsubscribeTickersRequest { subscription_id })
            }),
            Some("ping") => Ok(ClientRequest::Ping),
            Some(other) => Err(RequestError::UnknownMsgType(
                other.chars().take(64).collect(),
            )),
        };
        parsed.map_err(reject)
    }

    /// The `msg_type` of this request.
    pub fn msg_type(&self) -> &'static str {
        match self {
            ClientRequest::Subscribe(_) => "subscribe",
            ClientRequest::Unsubscribe(_) => "unsubscribe",
            ClientRequest::History(_) => "history",
            ClientRequest::SubscribeTrades(_) => "subscribe_trades",
            ClientRequest::UnsubscribeTrades(_) => "unsubscribe_trades",
            ClientRequest::SubscribeTickers(_) => "subscribe_tickers",
            ClientRequest::UnsubscribeTickers(_) => "unsubscribe_tickers",
            ClientRequest::Ping => "ping",
        }
    }

    /// The JSON text a client sends for this request.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("requests always serialize")
    }
}

fn check_limit(limit: i64) -> Result<u32, RequestError> {
    match u32::try_from(limit) {
        Ok(valid @ 1..=MAX_HISTORY_LIMIT) => Ok(valid),
        _ => Err(RequestError::LimitOutOfRange(limit)),
    }
}

fn check_range(from: Option<i64>, to: Option<i64>) -> Result<(), RequestError> {
    match (from, to) {
        (Some(from), Some(to)) if from > to => Err(RequestError::FromAfterTo { from, to }),
        _ => Ok(()),
    }
}

/// Typed access to the fields of a request object, with errors that name the field.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn required<T: TryFromJson>(&self, field: &'static str) -> Result<T, RequestError> {
        self.optional(field)?
            .ok_or(RequestError::MissingField(field))
    }

    /// A missing field and an explicit `null` both mean "not given".
    fn optional<T: TryFromJson>(&self, field: &'static str) -> Result<Option<T>, RequestError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::try_from_json(value)
                .map(Some)
                .map_err(|reason| RequestError::InvalidField { field, reason }),
        }
    }

    fn subscription_id(&self) -> Result<Option<SubscriptionId>, RequestError> {
        let id: Option<String> = self.optional("subscription_id")?;
        id.map(SubscriptionId::new).transpose()
    }

    fn limit(&self) -> Result<Option<u32>, RequestError> {
        let limit: Option<i64> = self.optional("limit")?;
        limit.map(check_limit).transpose()
    }

    fn subscribe(&self) -> Result<SubscribeRequest, RequestError> {
        Ok(SubscribeRequest {
            symbol: self.required("symbol")?,
            interval: self.required("interval")?,
            subscription_id: self.subscription_id()?,
            limit: self.limit()?,
            from: self.optional("from")?,
        })
    }

    fn unsubscribe(&self) -> Result<UnsubscribeRequest, RequestError> {
        Ok(UnsubscribeRequest {
            symbol: self.required("symbol")?,
            interval: self.required("interval")?,
            subscription_id: self.subscription_id()?,
        })
    }

    fn subscribe_trades(&self) -> Result<SubscribeTradesRequest, RequestError> {
        Ok(SubscribeTradesRequest {
            symbol: self.required("symbol")?,
            subscription_id: self.subscription_id()?,
            limit: self.limit()?,
            after: self.optional("after")?,
        })
    }

    fn unsubscribe_trades(&self) -> Result<UnsubscribeTradesRequest, RequestError> {
        Ok(UnsubscribeTradesRequest {
            symbol: self.required("symbol")?,
            subscription_id: self.subscription_id()?,
        })
    }

    fn history(&self) -> Result<HistoryRequest, RequestError> {
        let from = self.optional("from")?;
        let to = self.optional("to")?;
        check_range(from, to)?;
        Ok(HistoryRequest {
            symbol: self.required("symbol")?,
            interval: self.required("interval")?,
            subscription_id: self.subscription_id()?,
            limit: self.limit()?,
            from,
            to,
        })
    }
}

/// Conversion of one JSON field value, with a reason when it does not fit.
trait TryFromJson: Sized {
    fn try_from_json(value: &Value) -> Result<Self, String>;
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl TryFromJson for String {
    fn try_from_json(value: &Value) -> Result<Self, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("expected a string, got {}", type_name(value)))
    }
}

impl TryFromJson for i64 {
    fn try_from_json(value: &Value) -> Result<Self, String> {
        value
            .as_i64()
            .ok_or_else(|| format!("expected an integer, got {value}"))
    }
}

impl TryFromJson for Symbol {
    fn try_from_json(value: &Value) -> Result<Self, String> {
        Symbol::parse(&String::try_from_json(value)?).map_err(|err| err.to_string())
    }
}

impl TryFromJson for TradeId {
    fn try_from_json(value: &Value) -> Result<Self, String> {
        TradeId::parse(&String::try_from_json(value)?).map_err(|err| err.to_string())
    }
}

impl TryFromJson for Interval {
    fn try_from_json(value: &Value) -> Result<Self, String> {
        String::try_from_json(value)?
            .parse()
            .map_err(|err: crate::IntervalError| err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINT: &str = "JBMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ";

    fn error_of(text: &str) -> RequestError {
        ClientRequest::parse(text).unwrap_err().error
    }

    #[test]
    fn parses_subscribe_with_every_field() {
        let text = format!(
            r#"{{"msg_type":"subscribe","symbol":"{MINT}","interval":"m5","subscription_id":"a","limit":50,"from":1700000000,"extra":true}}"#
        );
        let ClientRequest::Subscribe(sub) = ClientRequest::parse(&text).unwrap() else {
            panic!("not a subscribe");
        };
        assert_eq!(sub.symbol.as_str(), MINT);
        assert_eq!(sub.interval, Interval::M5);
        assert_eq!(sub.subscription_id.unwrap().as_str(), "a");
        assert_eq!(sub.limit, Some(50));
        assert_eq!(sub.from, Some(1_700_000_000));
    }

    #[test]
    fn type_is_an_alias_of_msg_type() {
        assert_eq!(
            ClientRequest::parse(r#"{"type":"ping"}"#).unwrap(),
            ClientRequest::Ping
        );
    }

    #[test]
    fn bad_input_says_what_was_wrong() {
        assert!(matches!(error_of("{nope"), RequestError::MalformedJson(_)));
        assert_eq!(error_of("[1]"), RequestError::NotAnObject);
        assert_eq!(error_of(r#"{"symbol":"x"}"#), RequestError::MissingMsgType);
        assert_eq!(
            error_of(r#"{"msg_type":"subscrib"}"#),
            RequestError::UnknownMsgType("subscrib".into())
        );
        assert_eq!(
            error_of(r#"{"msg_type":"subscribe","interval":"s1"}"#),
            RequestError::MissingField("symbol")
        );
        let wrong_type = error_of(&format!(
            r#"{{"msg_type":"subscribe","symbol":"{MINT}","interval":5}}"#
        ));
        assert_eq!(
            wrong_type,
            RequestError::InvalidField {
                field: "interval",
                reason: "expected a string, got a number".into()
            }
        );
        let bad_interval = error_of(&format!(
            r#"{{"msg_type":"history","symbol":"{MINT}","interval":"m2"}}"#
        ));
        assert!(
            bad_interval
                .to_string()
                .contains("field `interval`: unknown interval `m2`"),
            "{bad_interval}"
        );
        let bad_symbol =
            error_of(r#"{"msg_type":"subscribe","symbol":"test_mint_account","interval":"s1"}"#);
        assert!(
            bad_symbol
                .to_string()
                .starts_with("field `symbol`: symbol `test_mint_account` is not base58"),
            "{bad_symbol}"
        );
        for limit in ["0", "1001", "-1"] {
            let text = format!(
                r#"{{"msg_type":"subscribe","symbol":"{MINT}","interval":"s1","limit":{limit}}}"#
            );
            assert_eq!(
                error_of(&text),
                RequestError::LimitOutOfRange(limit.parse().unwrap())
            );
        }
        let fractional = error_of(&format!(
            r#"{{"msg_type":"history","symbol":"{MINT}","interval":"s1","limit":1.5}}"#
        ));
        assert!(matches!(
            fractional,
            RequestError::InvalidField { field: "limit", .. }
        ));
        assert_eq!(
            error_of(&format!(
                r#"{{"msg_type":"history","symbol":"{MINT}","interval":"s1","from":10,"to":5}}"#
            )),
            RequestError::FromAfterTo { from: 10, to: 5 }
        );
        let long_id = "x".repeat(65);
        assert_eq!(
            error_of(&format!(
                r#"{{"msg_type":"unsubscribe","symbol":"{MINT}","interval":"s1","subscription_id":"{long_id}"}}"#
            )),
            RequestError::SubscriptionIdTooLong { chars: 65 }
        );
    }

    #[test]
    fn rejection_keeps_context_for_the_error_reply() {
        let rejected = ClientRequest::parse(r#"{"msg_type":"subscribe","subscription_id":"mine"}"#)
            .unwrap_err();
        assert_eq!(rejected.msg_type.as_deref(), Some("subscribe"));
        assert_eq!(rejected.subscription_id.as_deref(), Some("mine"));
    }

    #[test]
    fn constructors_enforce_limits() {
        let symbol = Symbol::parse(MINT).unwrap();
        assert!(
            SubscribeRequest::new(symbol.clone(), Interval::S1)
                .with_limit(0)
                .is_err()
        );
        assert!(
            HistoryRequest::new(symbol.clone(), Interval::S1)
                .with_limit(1001)
                .is_err()
        );
        assert!(
            HistoryRequest::new(symbol.clone(), Interval::S1)
                .with_range(Some(2), Some(1))
                .is_err()
        );
        let request = ClientRequest::History(
            HistoryRequest::new(symbol, Interval::S1)
                .with_range(None, Some(100))
                .unwrap(),
        );
        assert_eq!(ClientRequest::parse(&request.to_json()).unwrap(), request);
    }
}
