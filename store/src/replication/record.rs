//! One stream entry: what one committed write group of the writer changed in the data the edges replicate
//! (candle states, trades with their events, symbol stats, token names), and its binary encoding: a format
//! byte, then
//! the record in borsh, deflated (level 1: a record repeats its mints, keys and JSON field names, and
//! comes out 5–6× smaller, which is what every edge reads from Redis and what Redis keeps).
//!
//! Values are carried in the store's own encodings (`crate::codec`, `crate::keys`), so an edge writes them
//! as the writer did; candle states are decoded on the edge to apply only newer ones.

use std::io::Read;

use borsh::{BorshDeserialize, BorshSerialize};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use crate::{SymbolStats, codec, keys, names};
use kline_core::aggregator::{CandleKey, CandleState};
use kline_core::names::TokenName;

/// The content of one committed group, numbered by the writer's outbox.
#[derive(Debug, Clone, Default, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct GroupRecord {
    /// The group's number: 1, 2, 3… with no gap.
    pub seq: u64,
    /// Unix µs when the writer sealed the group (just before its write), for the hop's latency.
    pub committed_at_us: i64,
    pub candles: Vec<CandleEntry>,
    pub trades: Vec<TradeEntry>,
    pub symbols: Vec<SymbolEntry>,
    /// Since format 3.
    pub names: Vec<NameEntry>,
}

/// A record of the formats before names ([`FORMAT_TRADE_JSON`], [`FORMAT_BORSH_DEFLATE`]): the same fields
/// without `names`.
#[derive(BorshDeserialize)]
struct RecordWithoutNames {
    seq: u64,
    committed_at_us: i64,
    candles: Vec<CandleEntry>,
    trades: Vec<TradeEntry>,
    symbols: Vec<SymbolEntry>,
}

impl From<RecordWithoutNames> for GroupRecord {
    fn from(old: RecordWithoutNames) -> GroupRecord {
        GroupRecord {
            seq: old.seq,
            committed_at_us: old.committed_at_us,
            candles: old.candles,
            trades: old.trades,
            symbols: old.symbols,
            names: Vec::new(),
        }
    }
}

/// A candle's new state.
#[derive(Debug, Clone, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct CandleEntry {
    /// `crate::keys::candle_key`.
    pub key: Vec<u8>,
    /// `crate::codec::encode_candle`.
    pub value: Vec<u8>,
    /// Whether the writer published it live (a late correction of a final candle is stored, not pushed).
    pub publish: bool,
    /// Unix ms when the event behind this state reached the writer, if an event produced it.
    pub received_at_ms: Option<i64>,
}

/// A trade and the event it came from.
#[derive(Debug, Clone, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct TradeEntry {
    pub mint: [u8; 32],
    /// `crate::keys::trade_key` of the trade.
    pub key: Vec<u8>,
    /// `crate::keys::event_key` of the event.
    pub event_key: Vec<u8>,
    /// The trade-index value (`crate::TradeValue`; from a writer before format 2, the protocol `Trade` as
    /// JSON, which `TradeValue::decode` reads too).
    pub value: Vec<u8>,
    /// The stored event, JSON.
    pub event_json: String,
}

/// A mint's symbol stats after the group.
#[derive(Debug, Clone, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct SymbolEntry {
    pub mint: [u8; 32],
    /// `crate::codec::encode_symbol`.
    pub value: Vec<u8>,
}

/// A token's name, stored by the group.
#[derive(Debug, Clone, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct NameEntry {
    pub mint: [u8; 32],
    /// `crate::names::encode_name`.
    pub value: Vec<u8>,
}

/// An entry that is not a valid record (a different writer version, or corruption).
#[derive(Debug, thiserror::Error)]
#[error("stream entry is not a valid group record: {0}")]
pub struct BadRecord(pub String);

/// The first byte of an encoded record: the rest is the borsh record, deflated (raw deflate, RFC 1951).
/// Another value is a format this build does not know (an entry of a newer writer, or of the builds before
/// the format byte): the edge refuses it and loads a snapshot instead.
const FORMAT_WITH_NAMES: u8 = 3;
/// The layout before token names (no `names` field): still read, as a record without names.
const FORMAT_BORSH_DEFLATE: u8 = 2;
/// The same layout from a writer whose trade values were the whole trade as JSON (borsh writes a `String`
/// and a `Vec<u8>` alike): still read, and `TradeValue::decode` reads those values.
const FORMAT_TRADE_JSON: u8 = 1;

/// The most bytes a record may inflate to: the biggest group, at full-speed ingest, is a few megabytes.
const MAX_RECORD_BYTES: u64 = 256 << 20;

impl GroupRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(vec![FORMAT_WITH_NAMES], Compression::fast());
        borsh::to_writer(&mut encoder, self).expect("records serialize into memory");
        encoder.finish().expect("deflating into memory")
    }

    pub fn decode(bytes: &[u8]) -> Result<GroupRecord, BadRecord> {
        let bad = |err: borsh::io::Error| BadRecord(err.to_string());
        match bytes.split_first() {
            Some((&FORMAT_WITH_NAMES, deflated)) => {
                borsh::from_slice(&inflate(deflated)?).map_err(bad)
            }
            Some((&(FORMAT_BORSH_DEFLATE | FORMAT_TRADE_JSON), deflated)) => {
                borsh::from_slice::<RecordWithoutNames>(&inflate(deflated)?)
                    .map(GroupRecord::from)
                    .map_err(bad)
            }
            Some((format, _)) => Err(BadRecord(format!("unknown record format {format}"))),
            None => Err(BadRecord("an empty entry".into())),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.candles.is_empty()
            && self.trades.is_empty()
            && self.symbols.is_empty()
            && self.names.is_empty()
    }

    pub fn add_name(&mut self, mint: &[u8; 32], name: &TokenName) {
        self.names.push(NameEntry {
            mint: *mint,
            value: names::encode_name(name),
        });
    }

    pub fn add_candle(
        &mut self,
        key: &CandleKey,
        state: &CandleState,
        publish: bool,
        received_at_ms: Option<i64>,
    ) {
        self.candles.push(CandleEntry {
            key: keys::candle_key(key).to_vec(),
            value: codec::encode_candle(state).to_vec(),
            publish,
            received_at_ms,
        });
    }

    pub fn add_symbol(&mut self, mint: &[u8; 32], stats: &SymbolStats) {
        self.symbols.push(SymbolEntry {
            mint: *mint,
            value: codec::encode_symbol(stats).to_vec(),
        });
    }
}

/// The borsh bytes of a deflated record, at most [`MAX_RECORD_BYTES`].
fn inflate(deflated: &[u8]) -> Result<Vec<u8>, BadRecord> {
    let mut plain = Vec::with_capacity(deflated.len() * 3);
    DeflateDecoder::new(deflated)
        .take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut plain)
        .map_err(|err| BadRecord(format!("inflating: {err}")))?;
    if plain.len() as u64 > MAX_RECORD_BYTES {
        return Err(BadRecord(format!(
            "inflates to more than {MAX_RECORD_BYTES} bytes"
        )));
    }
    Ok(plain)
}

impl CandleEntry {
    /// The candle's key and state.
    pub fn decode(&self) -> Result<(CandleKey, CandleState), BadRecord> {
        let key = keys::decode_candle_key(&self.key)
            .ok_or_else(|| BadRecord(format!("candle key of {} bytes", self.key.len())))?;
        let state = codec::decode_candle(&self.value).map_err(|err| BadRecord(err.to_string()))?;
        Ok((key, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_protocol::Interval;

    #[test]
    fn a_record_survives_encoding_and_a_truncated_one_is_refused() {
        let key = CandleKey {
            mint: [7; 32],
            interval: Interval::S1,
            time: 1_700_000_000,
        };
        let tick = kline_core::aggregator::PriceTick {
            mint: [7; 32],
            price: 1.5,
            key: kline_core::aggregator::OrderKey::default(),
            trade: kline_core::event::TradeAmounts::default(),
        };
        let state = CandleState::first(key.time, &tick);
        let mut record = GroupRecord {
            seq: 42,
            committed_at_us: 1_700_000_000_123_456,
            ..GroupRecord::default()
        };
        record.add_candle(&key, &state, true, Some(5));
        record.trades.push(TradeEntry {
            mint: [7; 32],
            key: vec![2; keys::TRADE_KEY_LEN],
            event_key: vec![1; keys::EVENT_KEY_LEN],
            value: crate::TradeValue::encode(1.5, 1_000).to_vec(),
            event_json: "{\"a\":1}".into(),
        });
        record.add_name(
            &[7; 32],
            &TokenName::from_texts("PET", "Spin Pet", "").unwrap(),
        );
        let bytes = record.encode();
        let back = GroupRecord::decode(&bytes).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.candles[0].decode().unwrap(), (key, state));
        for broken in [&bytes[..bytes.len() - 3], &bytes[..1], &[][..]] {
            let err = GroupRecord::decode(broken).unwrap_err();
            assert!(
                err.to_string().contains("not a valid group record"),
                "{err}"
            );
        }
        // The plain borsh of the builds before the format byte (or a newer writer's format) is refused
        // with a reason, not misread.
        let plain = borsh::to_vec(&record).unwrap();
        let err = GroupRecord::decode(&plain).unwrap_err();
        assert!(
            err.to_string().contains("unknown record format 42"),
            "{err}"
        );
    }

    /// A record of a writer before names (format 2: the same layout without `names`) still decodes.
    #[test]
    fn a_record_without_names_still_decodes() {
        #[derive(BorshSerialize)]
        struct Old {
            seq: u64,
            committed_at_us: i64,
            candles: Vec<CandleEntry>,
            trades: Vec<TradeEntry>,
            symbols: Vec<SymbolEntry>,
        }
        let old = Old {
            seq: 9,
            committed_at_us: 5,
            candles: Vec::new(),
            trades: Vec::new(),
            symbols: vec![SymbolEntry {
                mint: [4; 32],
                value: vec![1, 2, 3],
            }],
        };
        let mut encoder = DeflateEncoder::new(vec![FORMAT_BORSH_DEFLATE], Compression::fast());
        borsh::to_writer(&mut encoder, &old).unwrap();
        let record = GroupRecord::decode(&encoder.finish().unwrap()).unwrap();
        assert_eq!((record.seq, record.symbols.len()), (9, 1));
        assert!(record.names.is_empty());
        // And a format-3 record is not read as the old layout.
        assert_eq!(
            GroupRecord::decode(&GroupRecord::default().encode()).unwrap(),
            GroupRecord::default()
        );
    }
}
