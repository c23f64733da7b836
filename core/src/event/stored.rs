//! The stored form of an event: a compact binary record, the value of the `events` family. Its key holds the
//! event's index and the first [`SIGNATURE_HEAD`] bytes of its signature (`kline_store::keys`); the record
//! holds the rest of the signature, so the signature is stored once.
//!
//! Layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | [`FORMAT`] (2: a record written before, whose key holds the whole signature and which holds none of it; a JSON value, older still, starts with `{`) |
//! | 8 | `timestamp`, Unix milliseconds (`i64`): at a fixed offset, so retention reads it without decoding |
//! | 8 | `slot` |
//! | 1 | flags: bit 0 `tx_index` present; bits 1–2 `time_source` (0 none, 1 block time, 2 received); bits 3–4 `tx_index_source` (0 none, 1 block, 2 unavailable) |
//! | 4 | `tx_index`, only when present |
//! | 48 | the signature after its head (format 3 only) |
//! | 1 | the event's kind ([`Kind`]) |
//! | … | the event's fields in Borsh, the IDL's order: the program's own on-chain encoding |
//!
//! A BuySell event takes 168 bytes this way (48 of them the signature's tail) against ~420 as JSON, and
//! costs no JSON serialization on the pipeline thread. Records of format 2 and JSON values are still read;
//! the store rewrites them into this format once, when it opens a store written before.

use borsh::{BorshDeserialize, BorshSerialize};

use super::{
    EventMeta, EventRecord, EventTime, Signature, SpinPetEvent, TimeSource, TxIndexSource,
    parse_stored,
};

/// The first byte of a binary record.
pub const FORMAT: u8 = 3;
/// The first byte of a binary record written before [`FORMAT`]: no signature in it (its key held it whole).
pub const FORMAT_WITHOUT_SIGNATURE: u8 = 2;
/// How many bytes of an event's signature its key holds (`kline_store::keys`); the record holds the rest.
pub const SIGNATURE_HEAD: usize = 16;
const SIGNATURE_TAIL: usize = 64 - SIGNATURE_HEAD;
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
    out.extend_from_slice(&meta.signature.to_bytes()[SIGNATURE_HEAD..]);
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

/// The event stored as `bytes` (binary, or JSON written by an older version) under a key holding
/// `key_signature` (the signature's head, or the whole signature in the legacy layout) and `event_index`.
pub fn decode(
    key_signature: &[u8],
    event_index: u32,
    bytes: &[u8],
) -> Result<EventRecord, StoredEventError> {
    let format = bytes.first().copied();
    if format != Some(FORMAT) && format != Some(FORMAT_WITHOUT_SIGNATURE) {
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
    let mut signature = [0u8; 64];
    if format == Some(FORMAT) {
        let (tail, after) = rest
            .split_first_chunk::<SIGNATURE_TAIL>()
            .ok_or_else(short)?;
        rest = after;
        let head = key_signature.get(..SIGNATURE_HEAD).ok_or_else(|| {
            StoredEventError(format!("key of {} signature bytes", key_signature.len()))
        })?;
        signature[..SIGNATURE_HEAD].copy_from_slice(head);
        signature[SIGNATURE_HEAD..].copy_from_slice(tail);
    } else {
        signature = key_signature.try_into().map_err(|_| {
            StoredEventError(format!(
                "a record without its signature under a key of {} signature bytes",
                key_signature.len()
            ))
        })?;
    }
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
            signature: Signature::from_bytes(signature),
            slot,
            event_index,
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
    if is_binary(bytes) {
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
    if is_binary(bytes) {
        return kind_at(bytes).and_then(|at| bytes.get(at)) == Some(&(Kind::TokenCreated as u8));
    }
    const TAG: &[u8] = b"\"event_type\":\"TokenCreated\"";
    bytes.windows(TAG.len()).any(|window| window == TAG)
}

/// Whether the stored bytes can be the event of `signature`: a record of [`FORMAT`] holds the signature's
/// tail, which must match (its key matched the head); older values are not checked (their key held it all).
pub fn holds_signature(bytes: &[u8], signature: &[u8; 64]) -> bool {
    if bytes.first() != Some(&FORMAT) {
        return true;
    }
    let Some(tail_at) = kind_at(bytes).map(|at| at - SIGNATURE_TAIL) else {
        return false;
    };
    bytes.get(tail_at..tail_at + SIGNATURE_TAIL) == Some(&signature[SIGNATURE_HEAD..])
}

fn is_binary(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(&FORMAT | &FORMAT_WITHOUT_SIGNATURE))
}

/// Where a binary record's kind byte is.
fn kind_at(bytes: &[u8]) -> Option<usize> {
    let flags = bytes.get(FIXED_LEN - 1)?;
    let tx_index = if flags & HAS_TX_INDEX != 0 { 4 } else { 0 };
    let tail = if bytes[0] == FORMAT {
        SIGNATURE_TAIL
    } else {
        0
    };
    Some(FIXED_LEN + tx_index + tail)
}

/// Helpers for the tests of this crate and of the crates above it (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod test_support {
    use super::*;

    /// `record` as the versions before format 3 stored it (no signature in the record).
    pub fn encode_without_signature(record: &EventRecord) -> Vec<u8> {
        let mut bytes = encode(record);
        let tail_at = kind_at(&bytes).unwrap() - SIGNATURE_TAIL;
        bytes.drain(tail_at..tail_at + SIGNATURE_TAIL);
        bytes[0] = FORMAT_WITHOUT_SIGNATURE;
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::encode_without_signature;
    use super::*;
    use crate::simulated_market::SimulatedMarket;

    /// `record` decoded from `bytes` under its key in this layout.
    fn decode_keyed(record: &EventRecord, bytes: &[u8]) -> Result<EventRecord, StoredEventError> {
        let id = record.id();
        decode(&id.signature[..SIGNATURE_HEAD], id.event_index, bytes)
    }

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
            assert_eq!(decode_keyed(&record, &bytes).unwrap(), record);
            assert_eq!(time_ms(&bytes), Some(record.meta.timestamp.unix_millis()));
            assert_eq!(
                is_token_created(&bytes),
                matches!(record.event, SpinPetEvent::TokenCreated(_))
            );
            assert!(holds_signature(&bytes, &record.id().signature));
            assert!(bytes.len() * 2 < record.to_json().len(), "{record:?}");
            kinds.insert(record.event.event_type());
        }
        assert!(kinds.len() >= 4, "the simulator made {kinds:?}");
    }

    #[test]
    fn a_record_holds_the_signature_after_the_head_its_key_holds() {
        let record = SimulatedMarket::new(5, 1).next_event(1_764_000_000_123);
        let bytes = encode(&record);
        let mut other = record.id().signature;
        assert!(holds_signature(&bytes, &other));
        other[63] ^= 1;
        assert!(!holds_signature(&bytes, &other), "same head, other tail");
        let mut head = record.id().signature[..SIGNATURE_HEAD].to_vec();
        head[0] ^= 1;
        let decoded = decode(&head, 0, &bytes).unwrap();
        assert_eq!(
            decoded.meta.signature.to_bytes()[..SIGNATURE_HEAD],
            head[..]
        );
        assert_eq!(
            decoded.meta.signature.to_bytes()[SIGNATURE_HEAD..],
            record.id().signature[SIGNATURE_HEAD..]
        );
    }

    #[test]
    fn records_written_before_are_read_under_their_whole_signature_key() {
        let record = SimulatedMarket::new(5, 1).next_event(1_764_000_000_123);
        let id = record.id();
        let bytes = encode_without_signature(&record);
        assert_eq!(
            decode(&id.signature, id.event_index, &bytes).unwrap(),
            record
        );
        assert_eq!(time_ms(&bytes), Some(1_764_000_000_123));
        assert!(
            holds_signature(&bytes, &[0; 64]),
            "not checked: its key held it"
        );
        let err = decode(&id.signature[..SIGNATURE_HEAD], id.event_index, &bytes).unwrap_err();
        assert!(err.to_string().contains("without its signature"), "{err}");
    }

    #[test]
    fn json_written_before_is_read_and_dated() {
        let record = SimulatedMarket::new(5, 1).next_event(1_764_000_000_123);
        let json = record.to_json();
        assert_eq!(decode_keyed(&record, json.as_bytes()).unwrap(), record);
        assert_eq!(time_ms(json.as_bytes()), Some(1_764_000_000_123));
    }

    #[test]
    fn truncated_and_unknown_records_are_errors_not_panics() {
        let record = SimulatedMarket::new(7, 1).next_event(1_764_000_000_000);
        let bytes = encode(&record);
        for cut in 1..bytes.len() {
            assert!(
                decode_keyed(&record, &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
            let _ = time_ms(&bytes[..cut]);
            let _ = is_token_created(&bytes[..cut]);
            let _ = holds_signature(&bytes[..cut], &record.id().signature);
        }
        let mut unknown = bytes.clone();
        unknown[kind_at(&bytes).unwrap()] = 99;
        assert!(
            decode_keyed(&record, &unknown)
                .unwrap_err()
                .to_string()
                .contains("unknown kind 99")
        );
    }
}
