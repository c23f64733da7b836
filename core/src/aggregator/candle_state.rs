//! The full state of one candle: OHLC plus which events set `open` and `close`, so the result does not
//! depend on the order in which the events of a bucket arrive, and the traded amounts summed exactly.

use kline_protocol::{Candle, Interval};

use super::PriceTick;
use crate::event::{SOL_DECIMALS, TOKEN_DECIMALS, whole_units};

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

/// Traded amounts in base units (token: 6 decimals, SOL: 9), summed in 128 bits: 2^64 events of the
/// largest u64 amount fit, so a sum never overflows or rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Volume {
    pub tokens: u128,
    pub sol: u128,
    pub taker_buy_tokens: u128,
    pub taker_buy_sol: u128,
}

impl Volume {
    fn add(&mut self, tick: &PriceTick) {
        let (tokens, sol) = (
            u128::from(tick.trade.token_amount),
            u128::from(tick.trade.sol_amount),
        );
        self.tokens += tokens;
        self.sol += sol;
        if tick.trade.is_buy {
            self.taker_buy_tokens += tokens;
            self.taker_buy_sol += sol;
        }
    }

    /// `[volume, quote_volume, taker_buy_volume, taker_buy_quote_volume]` in whole tokens and SOL, each the
    /// nearest `f64` to the exact sum.
    pub fn to_wire(&self) -> [f64; 4] {
        [
            whole_units(self.tokens, TOKEN_DECIMALS),
            whole_units(self.sol, SOL_DECIMALS),
            whole_units(self.taker_buy_tokens, TOKEN_DECIMALS),
            whole_units(self.taker_buy_sol, SOL_DECIMALS),
        ]
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
    pub volume: Volume,
}

impl CandleState {
    /// A candle made of one event.
    pub fn first(time: i64, tick: &PriceTick) -> CandleState {
        let (price, key) = (tick.price, tick.key);
        let mut volume = Volume::default();
        volume.add(tick);
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
            volume,
        }
    }

    /// Adds one (not yet counted) event.
    pub fn apply(&mut self, tick: &PriceTick) {
        let (price, key) = (tick.price, tick.key);
        self.volume.add(tick);
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
        .with_volumes(self.volume.to_wire())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::TradeAmounts;

    fn tick(ts_ms: i64, price: f64) -> PriceTick {
        traded(ts_ms, price, 0, 0, false)
    }

    fn traded(ts_ms: i64, price: f64, tokens: u64, sol: u64, is_buy: bool) -> PriceTick {
        PriceTick {
            mint: [0; 32],
            price,
            key: OrderKey {
                ts_ms,
                ..OrderKey::default()
            },
            trade: TradeAmounts {
                token_amount: tokens,
                sol_amount: sol,
                is_buy,
            },
        }
    }

    #[test]
    fn open_and_close_follow_event_order_not_arrival_order() {
        let mut candle = CandleState::first(0, &tick(500, 2.0));
        candle.apply(&tick(100, 1.0)); // earlier event arrives later: it is the open
        candle.apply(&tick(900, 3.0));
        candle.apply(&tick(700, 0.5));
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
    fn volumes_near_u64_max_sum_exactly_and_round_once() {
        let max = u64::MAX;
        let mut candle = CandleState::first(0, &traded(1, 1.0, max, max, true));
        candle.apply(&traded(2, 1.0, max - 1, max, false));
        candle.apply(&traded(3, 1.0, max, 1, true));
        let m = u128::from(max);
        assert_eq!(
            candle.volume,
            Volume {
                tokens: 3 * m - 1,
                sol: 2 * m + 1,
                taker_buy_tokens: 2 * m,
                taker_buy_sol: m + 1,
            }
        );
        let wire = candle.to_candle();
        // The exact decimals, parsed once: the nearest f64 to the true sums.
        let exact = |s: &str| s.parse::<f64>().unwrap().to_bits();
        assert_eq!(wire.volume.to_bits(), exact("55340232221128.654844"));
        assert_eq!(wire.quote_volume.to_bits(), exact("36893488147.419103231"));
        assert_eq!(
            wire.taker_buy_volume.to_bits(),
            exact("36893488147419.10323")
        );
        assert_eq!(
            wire.taker_buy_quote_volume.to_bits(),
            exact("18446744073.709551616")
        );
        assert!(wire.is_consistent());
    }

    #[test]
    fn candle_key_buckets_and_ends() {
        let key = CandleKey::containing([0; 32], Interval::M1, 1_700_000_123_456);
        assert_eq!(key.time, 1_700_000_100);
        assert_eq!(key.end_ms(), 1_700_000_160_000);
    }
}
