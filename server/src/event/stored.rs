//! The stored form of an event: a compact binary record, the value of the `events` family (whose key, the
//! event's signature and index, is not repeated in it).
//!
//! Layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | [`FORMAT`] (a JSON value, written before this format existed, starts with `{`) |
//! | 8 | `timestamp`, Unix milliseconds (`i64`): at a fixed offset, so retention reads it without decoding |
//! | 8 | `slot` |
//! | 1 | flags: bit 0 `tx_index` present; bits 1–2 `time_source` (0 none, 1 block time, 2 received); bits 3–4 `tx_index_source` (0 none, 1 block, 2 unavailable) |
//! | 4 | `tx_index`, only when present |
//! | 1 | the event's kind ([`Kind`]) |
//! | … | the event's fields in Borsh, the IDL's order: the program's own on-chain encoding |
//!
//! A BuySell event takes 127 bytes this way against ~420 as JSON, and costs no JSON serialization on the
//! pipeline thread. Values written as JSON before are still read (no migration).

use borsh::{BorshDeserialize, BorshSerialize};

use super::{
    EventId, EventMeta, EventRecord, EventTime, Signature, SpinPetEvent, TimeSource, TxIndexSource,
    parse_stored,
};

/// The first byte of a binary record.
pub const FORMAT: u8 = 2;
/// Where the timestamp sits in a binary record.
const TIMESTAMP_AT: usize = 1;
/// Format, timestamp, slot and flags.
const FIXED_LEN: usize = 1 + 8 + 8 + 1;

const HAS_TX_INDEX: u8 = 1;

/// The kind byte of each event (never renumbered: it is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    TokenCreated = 0,
    BuySell = 1,
    LongShort = 2,
    ForceLiquidate = 3,
    FullClose = 4,
    PartialClose = 5,
    MilestoneDiscount = 6,
}

#[derive(Debug, thiserror::Error)]
#[error("stored event: {0}")]
pub struct StoredEventError(String);

/// The stored bytes of `record`.
pub fn encode(record: &EventRecord) -> Vec<u8> {
    let meta = &record.meta;
    let mut out = Vec::with_capacity(160);
    out.push(FORMAT);
    out.extend_from_slice(&meta.timestamp.unix_millis().to_le_bytes());
    out.extend_from_slice(&meta.slot.to_le_bytes());
    let time_source = match meta.time_source {
        None => 0,
        Some(TimeSource::BlockTime) => 1,
        Some(TimeSource::Received) => 2,
    };
    let tx_index_source = match meta.tx_index_source {
        None => 0,
        Some(TxIndexSource::Block) => 1,
        Some(TxIndexSource::Unavailable) => 2,
    };
    let flags = u8::from(meta.tx_index.is_some()) | time_source << 1 | tx_index_source << 3;
    out.push(flags);
    if let Some(tx_index) = meta.tx_index {
        out.extend_from_slice(&tx_index.to_le_bytes());
    }
    let written = match &record.event {
        SpinPetEvent::TokenCreated(e) => write(&mut out, Kind::TokenCreated, e),
        SpinPetEvent::BuySell(e) => write(&mut out, Kind::BuySell, e),
        SpinPetEvent::LongShort(e) => write(&mut out, Kind::LongShort, e),
        SpinPetEvent::ForceLiquidate(e) => write(&mut out, Kind::ForceLiquidate, e),
        SpinPetEvent::FullClose(e) => write(&mut out, Kind::FullClose, e),
        SpinPetEvent::PartialClose(e) => write(&mut out, Kind::PartialClose, e),
        SpinPetEvent::MilestoneDiscount(e) => write(&mut out, Kind::MilestoneDiscount, e),
    };
    written.expect("writing to a Vec cannot fail");
    out
}

fn write<T: BorshSerialize>(out: &mut Vec<u8>, kind: Kind, event: &T) -> borsh::io::Result<()> {
    out.push(kind as u8);
    event.serialize(out)
}

/// The event stored under `id` as `bytes` (binary, or JSON written by an older version).
pub fn decode(id: &EventId, bytes: &[u8]) -> Result<EventRecord, StoredEventError> {
    if bytes.first() != Some(&FORMAT) {
        let json = std::str::from_utf8(bytes).map_err(|err| StoredEventError(err.to_string()))?;
        return parse_stored(json).map_err(|err| StoredEventError(err.to_string()));
    }
    let short = || StoredEventError(format!("record of {} bytes is truncated", bytes.len()));
    let fixed = bytes.get(..FIXED_LEN).ok_or_else(short)?;
    let timestamp = i64::from_le_bytes(fixed[1..9].try_into().expect("8 bytes"));
    let slot = u64::from_le_bytes(fixed[9..17].try_into().expect("8 bytes"));
    let flags = fixed[17];
    let mut rest = &bytes[FIXED_LEN..];
    let tx_index = if flags & HAS_TX_INDEX != 0 {
        let (index, after) = rest.split_first_chunk::<4>().ok_or_else(short)?;
        rest = after;
        Some(u32::from_le_bytes(*index))
    } else {
        None
    };
    let time_source = match (flags >> 1) & 3 {
        0 => None,
        1 => Some(TimeSource::BlockTime),
        _ => Some(TimeSource::Received),
    };
    let tx_index_source = match (flags >> 3) & 3 {
        0 => None,
        1 => Some(TxIndexSource::Block),
        _ => Some(TxIndexSource::Unavailable),
    };
    let (&kind, mut body) = rest.split_first().ok_or_else(short)?;
    let body = &mut body;
    let event = match kind {
        0 => read(body).map(SpinPetEvent::TokenCreated),
        1 => read(body).map(SpinPetEvent::BuySell),
        2 => read(body).map(SpinPetEvent::LongShort),
        3 => read(body).map(SpinPetEvent::ForceLiquidate),
        4 => read(body).map(SpinPetEvent::FullClose),
        5 => read(body).map(SpinPetEvent::PartialClose),
        6 => read(body).map(SpinPetEvent::MilestoneDiscount),
        other => return Err(StoredEventError(format!("unknown kind {other}"))),
    }?;
    if !body.is_empty() {
        return Err(StoredEventError(format!(
            "{} bytes after the event's fields",
            body.len()
        )));
    }
    Ok(EventRecord {
        event,
        meta: EventMeta {
            timestamp: EventTime(timestamp),
            signature: Signature::from_bytes(id.signature),
            slot,
            event_index: id.event_index,
            tx_index,
            time_source,
            tx_index_source,
        },
    })
}

fn read<T: BorshDeserialize>(body: &mut &[u8]) -> Result<T, StoredEventError> {
    T::deserialize(body).map_err(|err| StoredEventError(err.to_string()))
}

/// The event's time (Unix milliseconds) straight from its stored bytes: read at a fixed offset from a
/// binary record, parsed from an older JSON one; `None` if the bytes are neither.
pub fn time_ms(bytes: &[u8]) -> Option<i64> {
    if bytes.first() == Some(&FORMAT) {
        let raw = bytes.get(TIMESTAMP_AT..TIMESTAMP_AT + 8)?;
        return Some(i64::from_le_bytes(raw.try_into().ok()?));
    }
    #[derive(serde::Deserialize)]
    struct Timestamp {
        timestamp: EventTime,
    }
    serde_json::from_slice::<Timestamp>(bytes)
        .ok()
        .map(|t| t.timestamp.unix_millis())
}

/// Whether the stored bytes are a `TokenCreated` event (kept whatever the retention: it names its token).
pub fn is_token_created(bytes: &[u8]) -> bool {
    if bytes.first() == Some(&FORMAT) {
        let Some(flags) = bytes.get(FIXED_LEN - 1) else {
            return false;
        };
        let kind_at = FIXED_LEN + if flags & HAS_TX_INDEX != 0 { 4 } else { 0 };
        return bytes.get(kind_at) == Some(&(Kind::TokenCreated as u8));
    }
    const TAG: &[u8] = b"\"event_type\":\"TokenCreated\"";
    bytes.windows(TAG.len()).any(|window| window == TAG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::simulator::SimulatedMarket;

    #[test]
    fn every_kind_round_trips_and_is_smaller_than_its_json() {
        let mut market = SimulatedMarket::new(3, 4);
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..400 {
            let mut record = market.next_event(1_764_000_000_000 + i);
            if i % 2 == 0 {
                record.meta.tx_index = Some(i as u32);
                record.meta.time_source = Some(TimeSource::BlockTime);
                record.meta.tx_index_source = Some(TxIndexSource::Unavailable);
            }
            let bytes = encode(&record);
            assert_eq!(decode(&record.id(), &bytes).unwrap(), record);
            assert_eq!(time_ms(&bytes), Some(record.meta.timestamp.unix_millis()));
            assert_eq!(
                is_token_created(&bytes),
                matches!(record.event, SpinPetEvent::TokenCreated(_))
            );
            assert!(bytes.len() * 2 < record.to_json().len(), "{record:?}");
            kinds.insert(record.event.event_type());
        }
        assert!(kinds.len() >= 4, "the simulator made {kinds:?}");
    }

    #[test]
    fn json_written_before_is_read_and_dated() {
        let record = SimulatedMarket::new(5, 1).next_event(1_764_000_000_123);
        let json = record.to_json();
        assert_eq!(decode(&record.id(), json.as_bytes()).unwrap(), record);
        assert_eq!(time_ms(json.as_bytes()), Some(1_764_000_000_123));
    }

    #[test]
    fn truncated_and_unknown_records_are_errors_not_panics() {
        let record = SimulatedMarket::new(7, 1).next_event(1_764_000_000_000);
        let bytes = encode(&record);
        for cut in 1..bytes.len() {
            assert!(decode(&record.id(), &bytes[..cut]).is_err(), "cut at {cut}");
            let _ = time_ms(&bytes[..cut]);
            let _ = is_token_created(&bytes[..cut]);
        }
        let mut unknown = bytes.clone();
        let kind_at = FIXED_LEN + if bytes[17] & HAS_TX_INDEX != 0 { 4 } else { 0 };
        unknown[kind_at] = 99;
        assert!(
            decode(&record.id(), &unknown)
                .unwrap_err()
                .to_string()
                .contains("unknown kind 99")
        );
    }
}
