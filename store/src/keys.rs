//! Byte layouts of RocksDB keys. Candle keys sort by (mint, interval, time), so a series is one contiguous,
//! time-ordered range and "newest N before T" or "all since T" are bounded range scans.
//!
//! An event is named in keys by the first [`SIGNATURE_HEAD`] bytes of its transaction's signature and its
//! index (the rest of the signature is in the event's value, [`kline_core::event::stored`]): 128 random bits
//! tell events apart as well as 512 do, and the signature is stored once instead of twice (event key and
//! trade key), which is most of what a stored event weighs. Stores written before (whole 64-byte
//! signatures in both keys: the *legacy* layout) are rewritten once when opened (`store/layout.rs`); the
//! readers still take a legacy key where one can still arrive (a snapshot of an older writer).

use kline_protocol::Interval;

use kline_core::aggregator::CandleKey;
pub use kline_core::event::stored::SIGNATURE_HEAD;
use kline_core::event::{EventId, TradePosition};

/// mint (32) + interval index (1) + time (8, big-endian with the sign bit flipped so negatives sort first).
pub const CANDLE_KEY_LEN: usize = 41;
/// signature head ([`SIGNATURE_HEAD`]) + event_index (4, big-endian).
pub const EVENT_KEY_LEN: usize = SIGNATURE_HEAD + 4;
/// The legacy layout's event key: the whole signature (64) + event_index (4, big-endian).
pub const LEGACY_EVENT_KEY_LEN: usize = 64 + 4;

pub fn candle_key(key: &CandleKey) -> [u8; CANDLE_KEY_LEN] {
    series_key(&key.mint, key.interval, key.time)
}

/// The key of `time` in the series (mint, interval); also a range bound for scans.
pub fn series_key(mint: &[u8; 32], interval: Interval, time: i64) -> [u8; CANDLE_KEY_LEN] {
    let mut out = [0u8; CANDLE_KEY_LEN];
    out[..32].copy_from_slice(mint);
    out[32] = interval.index();
    out[33..].copy_from_slice(&((time as u64) ^ (1 << 63)).to_be_bytes());
    out
}

pub fn decode_candle_key(bytes: &[u8]) -> Option<CandleKey> {
    if bytes.len() != CANDLE_KEY_LEN {
        return None;
    }
    let mut mint = [0u8; 32];
    mint.copy_from_slice(&bytes[..32]);
    let interval = Interval::from_index(bytes[32])?;
    let raw = u64::from_be_bytes(bytes[33..].try_into().ok()?);
    Some(CandleKey {
        mint,
        interval,
        time: (raw ^ (1 << 63)) as i64,
    })
}

/// Where a trade key's signature starts.
const TRADE_SIGNATURE_AT: usize = 32 + 8 + 4 + 4;
/// mint (32) + slot (8) + tx_index (4) + event_index (4), big-endian, + signature head
/// ([`SIGNATURE_HEAD`]): a mint's trades are one contiguous range in the chain's order (an unknown
/// `tx_index` is `u32::MAX`: after the known ones of its slot, as in the candles' order key), and the
/// signature makes the key unique and names the trade's event.
pub const TRADE_KEY_LEN: usize = TRADE_SIGNATURE_AT + SIGNATURE_HEAD;
/// The legacy layout's trade key: the same with the whole signature (64).
pub const LEGACY_TRADE_KEY_LEN: usize = TRADE_SIGNATURE_AT + 64;

pub fn trade_key(mint: &[u8; 32], position: &TradePosition) -> [u8; TRADE_KEY_LEN] {
    let mut out = [0u8; TRADE_KEY_LEN];
    out[..32].copy_from_slice(mint);
    out[32..40].copy_from_slice(&position.slot.to_be_bytes());
    let tx_index = position
        .tx_index
        .unwrap_or(kline_core::aggregator::NO_TX_INDEX);
    out[40..44].copy_from_slice(&tx_index.to_be_bytes());
    out[44..48].copy_from_slice(&position.event_index.to_be_bytes());
    out[TRADE_SIGNATURE_AT..].copy_from_slice(&position.signature[..SIGNATURE_HEAD]);
    out
}

/// The key of the event a trade key names (its signature and event index), in the trade key's layout
/// (a legacy trade key names a legacy event key), or `None` if `trade_key` is not a trade key.
pub fn event_key_of_trade(trade_key: &[u8]) -> Option<Vec<u8>> {
    if trade_key.len() != TRADE_KEY_LEN && trade_key.len() != LEGACY_TRADE_KEY_LEN {
        return None;
    }
    let mut out = trade_key[TRADE_SIGNATURE_AT..].to_vec();
    out.extend_from_slice(&trade_key[44..48]);
    Some(out)
}

/// A legacy trade key in this layout (the same position, the signature cut to its head); `None` if
/// `legacy` is not a legacy trade key.
pub fn trade_key_of_legacy(legacy: &[u8]) -> Option<[u8; TRADE_KEY_LEN]> {
    if legacy.len() != LEGACY_TRADE_KEY_LEN {
        return None;
    }
    legacy[..TRADE_KEY_LEN].try_into().ok()
}

/// The legacy layout's trade key (tests write stores as older versions did).
#[cfg(any(test, feature = "test-support"))]
pub fn legacy_trade_key(mint: &[u8; 32], position: &TradePosition) -> Vec<u8> {
    let mut out = trade_key(mint, position)[..TRADE_SIGNATURE_AT].to_vec();
    out.extend_from_slice(&position.signature);
    out
}

pub fn event_key(id: &EventId) -> [u8; EVENT_KEY_LEN] {
    let mut out = [0u8; EVENT_KEY_LEN];
    out[..SIGNATURE_HEAD].copy_from_slice(&id.signature[..SIGNATURE_HEAD]);
    out[SIGNATURE_HEAD..].copy_from_slice(&id.event_index.to_be_bytes());
    out
}

/// The legacy layout's key of `id` (a store written before the signature head is read through it).
pub fn legacy_event_key(id: &EventId) -> [u8; LEGACY_EVENT_KEY_LEN] {
    let mut out = [0u8; LEGACY_EVENT_KEY_LEN];
    out[..64].copy_from_slice(&id.signature);
    out[64..].copy_from_slice(&id.event_index.to_be_bytes());
    out
}

/// What an `events` key holds: the signature bytes it carries (the head, or in the legacy layout the
/// whole signature) and the event index; `None` if `bytes` is not an event key.
pub fn split_event_key(bytes: &[u8]) -> Option<(&[u8], u32)> {
    if bytes.len() != EVENT_KEY_LEN && bytes.len() != LEGACY_EVENT_KEY_LEN {
        return None;
    }
    let (signature, index) = bytes.split_at(bytes.len() - 4);
    Some((signature, u32::from_be_bytes(index.try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_keys_round_trip_and_sort_by_time() {
        let times = [-5, 0, 1, 59, 1_700_000_000, i64::MAX / 2];
        let keys: Vec<_> = times
            .iter()
            .map(|&time| {
                candle_key(&CandleKey {
                    mint: [3; 32],
                    interval: Interval::H4,
                    time,
                })
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (key, time) in keys.iter().zip(times) {
            assert_eq!(decode_candle_key(key).unwrap().time, time);
        }
    }

    #[test]
    fn trade_keys_sort_in_chain_order_within_their_mint() {
        let at = |slot, tx_index, event_index, sig: u8| {
            trade_key(
                &[5; 32],
                &TradePosition {
                    slot,
                    tx_index,
                    event_index,
                    signature: [sig; 64],
                },
            )
        };
        let ordered = [
            at(7, Some(2), 1, 9),
            at(7, Some(3), 0, 1),
            at(7, None, 0, 0),
            at(7, None, 0, 1),
            at(8, Some(0), 0, 0),
        ];
        assert!(ordered.windows(2).all(|w| w[0] < w[1]));
        let other_mint = trade_key(
            &[6; 32],
            &TradePosition {
                slot: 0,
                tx_index: Some(0),
                event_index: 0,
                signature: [0; 64],
            },
        );
        assert!(ordered.iter().all(|key| *key < other_mint));
    }

    #[test]
    fn a_trade_key_names_its_event() {
        let position = TradePosition {
            slot: 9,
            tx_index: Some(4),
            event_index: 3,
            signature: [8; 64],
        };
        let event = EventId {
            signature: [8; 64],
            event_index: 3,
        };
        let trade = trade_key(&[5; 32], &position);
        assert_eq!(event_key_of_trade(&trade), Some(event_key(&event).to_vec()));
        assert_eq!(event_key_of_trade(&trade[1..]), None);
        assert_eq!(
            split_event_key(&event_key(&event)),
            Some((&[8u8; 16][..], 3))
        );
    }

    #[test]
    fn a_legacy_trade_key_names_its_legacy_event_and_rekeys_to_the_same_position() {
        let mut signature = [0u8; 64];
        signature
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8);
        let position = TradePosition {
            slot: 9,
            tx_index: None,
            event_index: 2,
            signature,
        };
        let event = EventId {
            signature,
            event_index: 2,
        };
        let legacy = legacy_trade_key(&[5; 32], &position);
        assert_eq!(legacy.len(), LEGACY_TRADE_KEY_LEN);
        assert_eq!(
            event_key_of_trade(&legacy),
            Some(legacy_event_key(&event).to_vec())
        );
        assert_eq!(
            split_event_key(&legacy_event_key(&event)),
            Some((&signature[..], 2))
        );
        assert_eq!(
            trade_key_of_legacy(&legacy),
            Some(trade_key(&[5; 32], &position))
        );
        assert_eq!(trade_key_of_legacy(&trade_key(&[5; 32], &position)), None);
    }

    #[test]
    fn series_are_contiguous() {
        let a = series_key(&[1; 32], Interval::S1, i64::MAX);
        let b = series_key(&[1; 32], Interval::S15, i64::MIN);
        assert!(
            a < b,
            "every s1 candle sorts before every s15 candle of the mint"
        );
    }
}
