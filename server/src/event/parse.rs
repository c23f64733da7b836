//! Turning event JSON text into validated [`EventRecord`]s, with a reason for every rejection.
//!
//! Events are parsed straight from their text (no intermediate `serde_json::Value`), so `u128` JSON integers
//! keep every digit. A request body may hold one event, a JSON array of events, or NDJSON; [`split_body`]
//! cuts it into one text per event so that a bad event never affects its neighbours.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::price::{PriceError, scaled_price};
use super::{EventMeta, EventRecord, SpinPetEvent};

/// Earliest accepted event time: 2020-01-01T00:00:00Z (Spin Pet did not exist before).
pub const EARLIEST_EVENT_MS: i64 = 1_577_836_800_000;
/// How far in the future an event time may be (clock skew between hosts).
pub const MAX_FUTURE_MS: i64 = 86_400_000;

/// What validation needs to know beyond the text.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Now, Unix ms (events more than a day after it are rejected).
    pub now_ms: i64,
    /// `latest_price` is scaled by 10^price_scale.
    pub price_scale: u32,
}

/// Why an event was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("missing `event_type`")]
    MissingEventType,
    #[error(
        "unknown event_type `{0}`; expected one of TokenCreated, BuySell, LongShort, ForceLiquidate, \
         FullClose, PartialClose, MilestoneDiscount"
    )]
    UnknownEventType(String),
    #[error("{}", field_message(.field, .reason))]
    InvalidField { field: String, reason: String },
    #[error("invalid price: {0}")]
    Price(#[from] PriceError),
    #[error("timestamp {timestamp_ms} ms is {reason}")]
    TimestampOutOfRange { timestamp_ms: i64, reason: &'static str },
}

fn field_message(field: &str, reason: &str) -> String {
    if field.is_empty() || field == "." {
        reason.to_owned()
    } else {
        format!("field `{field}`: {reason}")
    }
}

#[derive(Deserialize)]
struct EventTypeOnly<'a> {
    #[serde(borrow, default)]
    event_type: Option<Cow<'a, str>>,
}

/// Parses and validates one event.
pub fn parse_event(text: &str, limits: &ParseLimits) -> Result<EventRecord, EventError> {
    let tag: EventTypeOnly = serde_json::from_str(text).map_err(|err| {
        if err.is_data() {
            EventError::Malformed(format!("an event must be a JSON object ({err})"))
        } else {
            EventError::Malformed(err.to_string())
        }
    })?;
    let event_type = tag.event_type.ok_or(EventError::MissingEventType)?;
    let event = match event_type.as_ref() {
        "TokenCreated" => SpinPetEvent::TokenCreated(fields(text)?),
        "BuySell" => SpinPetEvent::BuySell(fields(text)?),
        "LongShort" => SpinPetEvent::LongShort(fields(text)?),
        "ForceLiquidate" => SpinPetEvent::ForceLiquidate(fields(text)?),
        "FullClose" => SpinPetEvent::FullClose(fields(text)?),
        "PartialClose" => SpinPetEvent::PartialClose(fields(text)?),
        "MilestoneDiscount" => SpinPetEvent::MilestoneDiscount(fields(text)?),
        other => return Err(EventError::UnknownEventType(other.chars().take(64).collect())),
    };
    let record = EventRecord {
        event,
        meta: fields::<EventMeta>(text)?,
    };
    validate(&record, limits)?;
    Ok(record)
}

/// Checks what the types alone do not: a usable price and a plausible time.
pub fn validate(record: &EventRecord, limits: &ParseLimits) -> Result<(), EventError> {
    if let Some(raw) = record.event.latest_price() {
        scaled_price(raw, limits.price_scale)?;
    }
    let timestamp_ms = record.meta.timestamp.unix_millis();
    if timestamp_ms < EARLIEST_EVENT_MS {
        return Err(EventError::TimestampOutOfRange {
            timestamp_ms,
            reason: "before 2020-01-01",
        });
    }
    if timestamp_ms > limits.now_ms + MAX_FUTURE_MS {
        return Err(EventError::TimestampOutOfRange {
            timestamp_ms,
            reason: "more than a day in the future",
        });
    }
    Ok(())
}

fn fields<T: DeserializeOwned>(text: &str) -> Result<T, EventError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| EventError::InvalidField {
        field: err.path().to_string(),
        reason: err.into_inner().to_string(),
    })
}

/// Splits a request body into the texts of its events: a JSON array, one JSON object, or NDJSON (one
/// event per line; blank lines are skipped). Only an array that is not valid JSON fails as a whole.
pub fn split_body(body: &str) -> Result<Vec<&str>, EventError> {
    let trimmed = body.trim();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(trimmed).map_err(|err| EventError::Malformed(format!("body array: {err}")))?;
        return Ok(items.into_iter().map(RawValue::get).collect());
    }
    if serde_json::from_str::<&RawValue>(trimmed).is_ok() {
        return Ok(vec![trimmed]);
    }
    Ok(trimmed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect())
}
