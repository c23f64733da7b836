//! The byte layout of stored candle values and symbol metadata (little-endian, fixed size, versioned).
//!
//! Candle values: version 3 (current) adds the four volume sums (u128 each) to version 2, which stores
//! order keys with the transaction's block position. Older values are still read: version 1 (before
//! positions) gives keys [`NO_TX_INDEX`], versions 1 and 2 (before volumes) a zero volume.

use kline_core::aggregator::{CandleState, NO_TX_INDEX, OrderKey, Volume};

const CANDLE_VERSION: u8 = 3;
const ORDER_KEY_LEN: usize = 32;
const ORDER_KEY_LEN_V1: usize = 28;
const VOLUME_LEN: usize = 4 * 16;
pub const CANDLE_VALUE_LEN: usize = candle_value_len(ORDER_KEY_LEN) + VOLUME_LEN;

const fn candle_value_len(order_key_len: usize) -> usize {
    1 + 4 * 8 + 4 + 1 + 2 * order_key_len + 8
}

/// What a stored value could not be decoded as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt {what} value ({len} bytes)")]
pub struct CorruptValue {
    pub what: &'static str,
    pub len: usize,
}

pub fn encode_candle(state: &CandleState) -> [u8; CANDLE_VALUE_LEN] {
    let mut out = [0u8; CANDLE_VALUE_LEN];
    let mut w = Writer {
        buf: &mut out,
        at: 0,
    };
    w.put(&[CANDLE_VERSION]);
    for price in [state.open, state.high, state.low, state.close] {
        w.put(&price.to_le_bytes());
    }
    w.put(&state.update_count.to_le_bytes());
    w.put(&[u8::from(state.is_final)]);
    w.order_key(&state.open_key);
    w.order_key(&state.close_key);
    w.put(&state.time.to_le_bytes());
    let volume = &state.volume;
    for sum in [
        volume.tokens,
        volume.sol,
        volume.taker_buy_tokens,
        volume.taker_buy_sol,
    ] {
        w.put(&sum.to_le_bytes());
    }
    out
}

pub fn decode_candle(bytes: &[u8]) -> Result<CandleState, CorruptValue> {
    let corrupt = CorruptValue {
        what: "candle",
        len: bytes.len(),
    };
    let (with_position, with_volume) = match bytes.first() {
        Some(&CANDLE_VERSION) if bytes.len() == CANDLE_VALUE_LEN => (true, true),
        Some(2) if bytes.len() == candle_value_len(ORDER_KEY_LEN) => (true, false),
        Some(1) if bytes.len() == candle_value_len(ORDER_KEY_LEN_V1) => (false, false),
        _ => return Err(corrupt),
    };
    let mut r = Reader { buf: bytes, at: 1 };
    let [open, high, low, close] = [r.f64(), r.f64(), r.f64(), r.f64()];
    let update_count = r.u32();
    let is_final = r.byte() != 0;
    let (open_key, close_key) = (r.order_key(with_position), r.order_key(with_position));
    let time = r.i64();
    let volume = if with_volume {
        Volume {
            tokens: r.u128(),
            sol: r.u128(),
            taker_buy_tokens: r.u128(),
            taker_buy_sol: r.u128(),
        }
    } else {
        Volume::default()
    };
    Ok(CandleState {
        time,
        volume,
        open,
        high,
        low,
        close,
        open_key,
        close_key,
        update_count,
        is_final,
    })
}

/// Last known price of a mint, for `GET /api/v1/symbols`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SymbolStats {
    pub last_price: f64,
    /// Order key of the event that set `last_price` (so an older event arriving later does not replace it).
    pub last_key: OrderKey,
    /// Unix ms when the mint was last updated by an event.
    pub updated_at_ms: i64,
    /// Price events seen in total.
    pub event_count: u64,
}

pub const SYMBOL_VALUE_LEN: usize = 8 + ORDER_KEY_LEN + 8 + 8;
/// Symbol values written before order keys held the block position.
const SYMBOL_VALUE_LEN_V1: usize = 8 + ORDER_KEY_LEN_V1 + 8 + 8;

pub fn encode_symbol(stats: &SymbolStats) -> [u8; SYMBOL_VALUE_LEN] {
    let mut out = [0u8; SYMBOL_VALUE_LEN];
    let mut w = Writer {
        buf: &mut out,
        at: 0,
    };
    w.put(&stats.last_price.to_le_bytes());
    w.order_key(&stats.last_key);
    w.put(&stats.updated_at_ms.to_le_bytes());
    w.put(&stats.event_count.to_le_bytes());
    out
}

pub fn decode_symbol(bytes: &[u8]) -> Result<SymbolStats, CorruptValue> {
    let with_position = match bytes.len() {
        SYMBOL_VALUE_LEN => true,
        SYMBOL_VALUE_LEN_V1 => false,
        len => {
            return Err(CorruptValue {
                what: "symbol",
                len,
            });
        }
    };
    let mut r = Reader { buf: bytes, at: 0 };
    Ok(SymbolStats {
        last_price: r.f64(),
        last_key: r.order_key(with_position),
        updated_at_ms: r.i64(),
        event_count: r.u64(),
    })
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    fn order_key(&mut self, key: &OrderKey) {
        self.put(&key.ts_ms.to_le_bytes());
        self.put(&key.slot.to_le_bytes());
        self.put(&key.tx_index.to_le_bytes());
        self.put(&key.event_index.to_le_bytes());
        self.put(&key.tiebreak.to_le_bytes());
    }
}

/// Reads fixed-size fields; callers check the total length first.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let out: [u8; N] = self.buf[self.at..self.at + N]
            .try_into()
            .expect("length checked");
        self.at += N;
        out
    }
    fn byte(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.take())
    }
    /// An order key; `with_position`: the layout that stores `tx_index` (version 2 on).
    fn order_key(&mut self, with_position: bool) -> OrderKey {
        OrderKey {
            ts_ms: self.i64(),
            slot: self.u64(),
            tx_index: if with_position {
                self.u32()
            } else {
                NO_TX_INDEX
            },
            event_index: self.u32(),
            tiebreak: self.u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_round_trips() {
        let state = CandleState {
            time: 1_700_000_000,
            open: 2.796e-8,
            high: 3e-8,
            low: 1e-9,
            close: 2.5e-8,
            open_key: OrderKey {
                ts_ms: 1,
                slot: 2,
                tx_index: 10,
                event_index: 3,
                tiebreak: 4,
            },
            close_key: OrderKey {
                ts_ms: 5,
                slot: 6,
                tx_index: NO_TX_INDEX,
                event_index: 7,
                tiebreak: u64::MAX,
            },
            update_count: 42,
            is_final: true,
            volume: Volume {
                tokens: u128::from(u64::MAX) * 3,
                sol: 7,
                taker_buy_tokens: 1,
                taker_buy_sol: u128::MAX,
            },
        };
        assert_eq!(decode_candle(&encode_candle(&state)), Ok(state));
        assert!(decode_candle(&[1, 2, 3]).is_err());
    }

    #[test]
    fn version_1_candles_and_symbols_are_still_read() {
        // Version 1: the same fields, order keys without `tx_index` (ts, slot, event_index, tiebreak).
        let key_v1 = |ts: i64, slot: u64, index: u32, tiebreak: u64| {
            [
                &ts.to_le_bytes()[..],
                &slot.to_le_bytes(),
                &index.to_le_bytes(),
                &tiebreak.to_le_bytes(),
            ]
            .concat()
        };
        let mut v1 = vec![1u8];
        for price in [1.0f64, 2.0, 0.5, 1.5] {
            v1.extend_from_slice(&price.to_le_bytes());
        }
        v1.extend_from_slice(&9u32.to_le_bytes());
        v1.push(1);
        v1.extend(key_v1(10, 20, 1, 30));
        v1.extend(key_v1(11, 21, 2, 31));
        v1.extend_from_slice(&1_700_000_000i64.to_le_bytes());
        let state = decode_candle(&v1).unwrap();
        assert_eq!(
            (state.open, state.close, state.update_count, state.is_final),
            (1.0, 1.5, 9, true)
        );
        assert_eq!(
            state.close_key,
            OrderKey {
                ts_ms: 11,
                slot: 21,
                tx_index: NO_TX_INDEX,
                event_index: 2,
                tiebreak: 31
            }
        );
        assert_eq!(state.time, 1_700_000_000);
        assert_eq!(
            state.volume,
            Volume::default(),
            "no volume was recorded then"
        );

        let mut symbol_v1 = 1.5f64.to_le_bytes().to_vec();
        symbol_v1.extend(key_v1(10, 20, 1, 30));
        symbol_v1.extend_from_slice(&5i64.to_le_bytes());
        symbol_v1.extend_from_slice(&6u64.to_le_bytes());
        let stats = decode_symbol(&symbol_v1).unwrap();
        assert_eq!(
            (
                stats.last_key.tx_index,
                stats.updated_at_ms,
                stats.event_count
            ),
            (NO_TX_INDEX, 5, 6)
        );
    }

    #[test]
    fn symbol_round_trips() {
        let stats = SymbolStats {
            last_price: 1.5e-7,
            last_key: OrderKey {
                ts_ms: 9,
                slot: 8,
                tx_index: 3,
                event_index: 7,
                tiebreak: 6,
            },
            updated_at_ms: 1_700_000_000_000,
            event_count: 12,
        };
        assert_eq!(decode_symbol(&encode_symbol(&stats)), Ok(stats));
    }
}
