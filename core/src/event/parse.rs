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
    TimestampOutOfRange {
        timestamp_ms: i64,
        reason: &'static str,
    },
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
    let record = parse_stored(text)?;
    validate(&record, limits)?;
    Ok(record)
}

/// Parses an event the server stored ([`EventRecord::to_json`]) like [`parse_event`], without the limits:
/// it met them when it arrived, and the price scale or the clock may have moved since.
pub fn parse_stored(text: &str) -> Result<EventRecord, EventError> {
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
        other => {
            return Err(EventError::UnknownEventType(
                other.chars().take(64).collect(),
            ));
        }
    };
    Ok(EventRecord {
        event,
        meta: fields::<EventMeta>(text)?,
    })
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
        let items: Vec<&RawValue> = serde_json::from_str(trimmed)
            .map_err(|err| EventError::Malformed(format!("body array: {err}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulated_market::SimulatedMarket;

    const NOW_MS: i64 = 1_764_000_000_000;
    const LIMITS: ParseLimits = ParseLimits {
        now_ms: NOW_MS,
        price_scale: 28,
    };
    const MINT: &str = "b4zeKt5mRRSyWiokzX63ww9FDZSkp6RrDjnbdtGFRbP";
    const SIG: &str =
        "1XTRN2RJN5MfCYf2UTVo8dcmei94CvVB2BBWvvograKBRzTW7RaDH79KZ4NSHQNUNLf3DwSbhdsgmDYptsM2d21";

    fn buy_sell(price: &str, timestamp: &str) -> String {
        format!(
            r#"{{"event_type":"BuySell","payer":"{MINT}","mint_account":"{MINT}","is_buy":true,"token_amount":5,
            "sol_amount":7,"latest_price":{price},"timestamp":{timestamp},"signature":"{SIG}","slot":42}}"#
        )
    }

    #[test]
    fn existing_server_shape_parses_with_exact_u128() {
        let event = parse_event(
            &buy_sell("\"279590000000000000001\"", "\"2025-11-24T16:00:00Z\""),
            &LIMITS,
        )
        .unwrap();
        assert_eq!(
            event.event.latest_price(),
            Some(279_590_000_000_000_000_001)
        );
        assert_eq!(event.meta.timestamp.unix_secs(), 1_764_000_000);
        assert_eq!(event.meta.event_index, 0, "defaults to 0");
        // A JSON integer keeps every digit too (an f64 would round this one).
        let as_int =
            parse_event(&buy_sell("279590000000000000001", "1764000000"), &LIMITS).unwrap();
        assert_eq!(
            as_int.event.latest_price(),
            Some(279_590_000_000_000_000_001)
        );
        assert_eq!(
            as_int.meta.timestamp, event.meta.timestamp,
            "Unix seconds equal the RFC 3339 time"
        );
    }

    #[test]
    fn every_event_type_round_trips_through_its_stored_json() {
        let mut market = SimulatedMarket::new(11, 2);
        for i in 0..200 {
            let event = market.next_event(NOW_MS - i);
            assert_eq!(parse_event(&event.to_json(), &LIMITS).unwrap(), event);
        }
    }

    /// The HTTP ingest's side of a program upgrade: a field the server does not know yet (the indexer
    /// passing on a newer event version) is ignored, as on-chain trailing bytes are.
    #[test]
    fn fields_the_server_does_not_know_are_ignored() {
        let plain = buy_sell("\"279590000000000000001\"", "1764000000");
        let extended = plain.replacen(
            "\"is_buy\":true,",
            "\"is_buy\":true,\"fee_bps\":30,\"referrer\":{\"a\":[1,2]},",
            1,
        );
        assert_ne!(plain, extended);
        assert_eq!(
            parse_event(&extended, &LIMITS).unwrap(),
            parse_event(&plain, &LIMITS).unwrap()
        );
    }

    fn reason(text: &str) -> String {
        parse_event(text, &LIMITS).unwrap_err().to_string()
    }

    #[test]
    fn bad_events_are_rejected_with_a_reason() {
        assert!(reason("{not json").starts_with("malformed JSON"));
        assert!(reason("[1,2]").contains("must be a JSON object"));
        assert_eq!(reason(r#"{"slot":1}"#), "missing `event_type`");
        assert!(reason(r#"{"event_type":"Swap"}"#).starts_with("unknown event_type `Swap`"));
        let bad_mint = buy_sell("\"1\"", "1764000000").replacen(
            &format!("\"mint_account\":\"{MINT}\""),
            "\"mint_account\":\"0xdead\"",
            1,
        );
        assert!(
            reason(&bad_mint).starts_with("field `mint_account`: symbol `0xdead` is not base58"),
            "{}",
            reason(&bad_mint)
        );
        assert_eq!(
            reason(&buy_sell("\"0\"", "1764000000")),
            "invalid price: latest_price is 0"
        );
        let overflow = reason(&buy_sell(
            "\"999999999999999999999999999999999999999999\"",
            "1764000000",
        ));
        assert!(overflow.contains("does not fit in a u128"), "{overflow}");
        assert!(reason(&buy_sell("\"-5\"", "1764000000")).contains("expected an unsigned integer"));
        assert!(reason(&buy_sell("\"1\"", "1500000000")).contains("before 2020-01-01"));
        assert!(reason(&buy_sell("\"1\"", "1764172801")).contains("more than a day in the future"));
        assert!(reason(&buy_sell("\"1\"", "\"yesterday\"")).contains("field `timestamp`"));
        let missing = buy_sell("\"1\"", "1764000000").replace(r#","slot":42"#, "");
        assert!(
            reason(&missing).starts_with("missing field `slot`"),
            "{}",
            reason(&missing)
        );
        let bad_sig = buy_sell("\"1\"", "1764000000").replace(SIG, "abc");
        assert!(
            reason(&bad_sig).contains("a signature is 64 bytes"),
            "{}",
            reason(&bad_sig)
        );
    }

    #[test]
    fn bodies_split_into_events() {
        let one = buy_sell("\"1\"", "1764000000");
        assert_eq!(split_body(&one).unwrap().len(), 1);
        let array = format!("[{one}, {one}, 5]");
        assert_eq!(
            split_body(&array).unwrap().len(),
            3,
            "each element is judged on its own"
        );
        let ndjson = format!(
            "{}\n\n{{broken\n{}\n",
            one.replace('\n', " "),
            one.replace('\n', " ")
        );
        let lines = split_body(&ndjson).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(parse_event(lines[1], &LIMITS).is_err() && parse_event(lines[2], &LIMITS).is_ok());
        assert!(split_body("[1, 2").is_err());
    }
}
