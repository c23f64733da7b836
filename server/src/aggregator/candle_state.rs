//! The full state of one candle: OHLC plus which events set `open` and `close`, so the result does not
//! depend on the order in which the events of a bucket arrive.

use kline_protocol::{Candle, Interval};

/// Where an event sits in time. `open` is the price of the smallest key in the bucket, `close` of the
/// largest. The order is the block's: (block time, slot, position of the transaction in its block, event
/// index in the transaction). An event whose position is unknown sorts after the positioned ones of its
/// slot ([`NO_TX_INDEX`]), and ties are broken by the transaction signature, so the order is total and the
/// same whatever order the events arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OrderKey {
    pub ts_ms: i64,
    pub slot: u64,
    /// Position of the transaction in its block, [`NO_TX_INDEX`] when unknown.
    pub tx_index: u32,
    pub event_index: u32,
    /// The first 8 bytes of the signature, big-endian.
    pub tiebreak: u64,
}

/// `OrderKey::tx_index` of an event whose transaction position is unknown.
pub const NO_TX_INDEX: u32 = u32::MAX;

impl OrderKey {
    pub fn new(
        ts_ms: i64,
        slot: u64,
        tx_index: Option<u32>,
        event_index: u32,
        signature: &[u8; 64],
    ) -> OrderKey {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&signature[..8]);
        OrderKey {
            ts_ms,
            slot,
            tx_index: tx_index.unwrap_or(NO_TX_INDEX),
            event_index,
            tiebreak: u64::from_be_bytes(prefix),
        }
    }

    /// The key of a stored event.
    pub fn of_event(meta: &crate::event::EventMeta) -> OrderKey {
        OrderKey::new(
            meta.timestamp.unix_millis(),
            meta.slot,
            meta.tx_index,
            meta.event_index,
            &meta.signature.to_bytes(),
        )
    }
}

/// Identifies one candle: a mint's series at one interval, and the bucket start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CandleKey {
    pub mint: [u8; 32],
    pub interval: Interval,
    /// Bucket start, Unix seconds.
    pub time: i64,
}

impl CandleKey {
    /// The candle of `interval` that contains `ts_ms`.
    pub fn containing(mint: [u8; 32], interval: Interval, ts_ms: i64) -> CandleKey {
        CandleKey {
            mint,
            interval,
            time: interval.bucket_start(ts_ms.div_euclid(1000)),
        }
    }

    /// Unix ms at which the bucket ends.
    pub fn end_ms(&self) -> i64 {
        (self.time + self.interval.duration_secs()) * 1000
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandleState {
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub open_key: OrderKey,
    pub close_key: OrderKey,
    pub update_count: u32,
    pub is_final: bool,
}

impl CandleState {
    /// A candle made of one event.
    pub fn first(time: i64, price: f64, key: OrderKey) -> CandleState {
        CandleState {
            time,
            open: price,
            high: price,
            low: price,
            close: price,
            open_key: key,
            close_key: key,
            update_count: 1,
            is_final: false,
        }
    }

    /// Adds one (not yet counted) event.
    pub fn apply(&mut self, price: f64, key: OrderKey) {
        if key < self.open_key {
            self.open = price;
            self.open_key = key;
        }
        if key > self.close_key {
            self.close = price;
            self.close_key = key;
        }
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.update_count = self.update_count.saturating_add(1);
    }

    /// The wire form.
    pub fn to_candle(&self) -> Candle {
        Candle::new(
            self.time,
            [self.open, self.high, self.low, self.close],
            self.update_count,
            self.is_final,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ts_ms: i64) -> OrderKey {
        OrderKey {
            ts_ms,
            ..OrderKey::default()
        }
    }

    #[test]
    fn open_and_close_follow_event_order_not_arrival_order() {
        let mut candle = CandleState::first(0, 2.0, key(500));
        candle.apply(1.0, key(100)); // earlier event arrives later: it is the open
        candle.apply(3.0, key(900));
        candle.apply(0.5, key(700));
        assert_eq!(
            (candle.open, candle.high, candle.low, candle.close),
            (1.0, 3.0, 0.5, 3.0)
        );
        assert_eq!(candle.update_count, 4);
    }

    #[test]
    fn keys_order_by_time_slot_block_position_index_then_signature() {
        let a = OrderKey::new(1, 5, None, 0, &[9; 64]);
        let b = OrderKey::new(1, 6, Some(3), 7, &[9; 64]);
        let c = OrderKey::new(1, 6, Some(4), 0, &[0; 64]);
        let d = OrderKey::new(1, 6, None, 0, &[0; 64]);
        let e = OrderKey::new(1, 6, None, 1, &[0; 64]);
        let f = OrderKey::new(1, 6, None, 1, &[1; 64]);
        assert!(
            a < b && b < c,
            "the block position decides within a slot, not the signature"
        );
        assert!(
            c < d,
            "an unknown position sorts after the known ones of its slot"
        );
        assert!(
            d < e && e < f,
            "without positions: event index, then signature"
        );
    }

    #[test]
    fn candle_key_buckets_and_ends() {
        let key = CandleKey::containing([0; 32], Interval::M1, 1_700_000_123_456);
        assert_eq!(key.time, 1_700_000_100);
        assert_eq!(key.end_ms(), 1_700_000_160_000);
    }
}
