//! Byte layouts of RocksDB keys. Candle keys sort by (mint, interval, time), so a series is one contiguous,
//! time-ordered range and "newest N before T" or "all since T" are bounded range scans.

use kline_protocol::Interval;

use crate::aggregator::CandleKey;
use crate::event::EventId;

/// mint (32) + interval index (1) + time (8, big-endian with the sign bit flipped so negatives sort first).
pub const CANDLE_KEY_LEN: usize = 41;
/// signature (64) + event_index (4, big-endian).
pub const EVENT_KEY_LEN: usize = 68;

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

pub fn event_key(id: &EventId) -> [u8; EVENT_KEY_LEN] {
    let mut out = [0u8; EVENT_KEY_LEN];
    out[..64].copy_from_slice(&id.signature);
    out[64..].copy_from_slice(&id.event_index.to_be_bytes());
    out
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
    fn series_are_contiguous() {
        let a = series_key(&[1; 32], Interval::S1, i64::MAX);
        let b = series_key(&[1; 32], Interval::S15, i64::MIN);
        assert!(
            a < b,
            "every s1 candle sorts before every s15 candle of the mint"
        );
    }
}
