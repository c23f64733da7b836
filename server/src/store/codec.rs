//! The byte layout of stored candle values and symbol metadata (little-endian, fixed size, versioned).

use crate::aggregator::{CandleState, OrderKey};

const CANDLE_VERSION: u8 = 1;
const ORDER_KEY_LEN: usize = 28;
pub const CANDLE_VALUE_LEN: usize = 1 + 4 * 8 + 4 + 1 + 2 * ORDER_KEY_LEN + 8;

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
    for key in [state.open_key, state.close_key] {
        w.put(&key.ts_ms.to_le_bytes());
        w.put(&key.slot.to_le_bytes());
        w.put(&key.event_index.to_le_bytes());
        w.put(&key.tiebreak.to_le_bytes());
    }
    w.put(&state.time.to_le_bytes());
    out
}

pub fn decode_candle(bytes: &[u8]) -> Result<CandleState, CorruptValue> {
    let corrupt = CorruptValue {
        what: "candle",
        len: bytes.len(),
    };
    if bytes.len() != CANDLE_VALUE_LEN || bytes[0] != CANDLE_VERSION {
        return Err(corrupt);
    }
    let mut r = Reader { buf: bytes, at: 1 };
    let [open, high, low, close] = [r.f64(), r.f64(), r.f64(), r.f64()];
    let update_count = r.u32();
    let is_final = r.byte() != 0;
    let mut key = || OrderKey {
        ts_ms: r.i64(),
        slot: r.u64(),
        event_index: r.u32(),
        tiebreak: r.u64(),
    };
    let (open_key, close_key) = (key(), key());
    Ok(CandleState {
        time: r.i64(),
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

pub fn encode_symbol(stats: &SymbolStats) -> [u8; SYMBOL_VALUE_LEN] {
    let mut out = [0u8; SYMBOL_VALUE_LEN];
    let mut w = Writer {
        buf: &mut out,
        at: 0,
    };
    w.put(&stats.last_price.to_le_bytes());
    w.put(&stats.last_key.ts_ms.to_le_bytes());
    w.put(&stats.last_key.slot.to_le_bytes());
    w.put(&stats.last_key.event_index.to_le_bytes());
    w.put(&stats.last_key.tiebreak.to_le_bytes());
    w.put(&stats.updated_at_ms.to_le_bytes());
    w.put(&stats.event_count.to_le_bytes());
    out
}

pub fn decode_symbol(bytes: &[u8]) -> Result<SymbolStats, CorruptValue> {
    if bytes.len() != SYMBOL_VALUE_LEN {
        return Err(CorruptValue {
            what: "symbol",
            len: bytes.len(),
        });
    }
    let mut r = Reader { buf: bytes, at: 0 };
    Ok(SymbolStats {
        last_price: r.f64(),
        last_key: OrderKey {
            ts_ms: r.i64(),
            slot: r.u64(),
            event_index: r.u32(),
            tiebreak: r.u64(),
        },
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
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.take())
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
                event_index: 3,
                tiebreak: 4,
            },
            close_key: OrderKey {
                ts_ms: 5,
                slot: 6,
                event_index: 7,
                tiebreak: u64::MAX,
            },
            update_count: 42,
            is_final: true,
        };
        assert_eq!(decode_candle(&encode_candle(&state)), Ok(state));
        assert!(decode_candle(&[1, 2, 3]).is_err());
    }

    #[test]
    fn symbol_round_trips() {
        let stats = SymbolStats {
            last_price: 1.5e-7,
            last_key: OrderKey {
                ts_ms: 9,
                slot: 8,
                event_index: 7,
                tiebreak: 6,
            },
            updated_at_ms: 1_700_000_000_000,
            event_count: 12,
        };
        assert_eq!(decode_symbol(&encode_symbol(&stats)), Ok(stats));
    }
}
