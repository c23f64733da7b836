//! What each price event traded against the pool: the amounts that count as volume, and the side.
//!
//! The rule, from the IDL's field names (the program emits no "volume" field of its own):
//!
//! | event | tokens | SOL | taker buy when |
//! |---|---|---|---|
//! | BuySell | `token_amount` | `sol_amount` | `is_buy` |
//! | LongShort | `lock_lp_token_amount` | `lock_lp_sol_amount` | `order_type == 1` (a long) |
//! | FullClose, PartialClose | `final_token_amount` | `final_sol_amount` | `!is_close_long` (closing a short buys back) |
//!
//! Why these: a buy or sell swaps `token_amount` against `sol_amount` with the pool. Opening a long or a
//! short swaps against the curve between `lock_lp_start_price` and `lock_lp_end_price`, and the program
//! locks exactly the liquidity that swap went through: `lock_lp_token_amount` / `lock_lp_sol_amount` (the
//! `LpPair` the instruction passes). The margin, the borrowed amount and the position size are not pool
//! flow. A close swaps the position back: `final_token_amount` / `final_sol_amount`; `user_close_profit`
//! is a payout, not a trade. `order_type` 1 is a long and 2 a short (the program's convention; the IDL has
//! no enum for it). ForceLiquidate, TokenCreated and MilestoneDiscount carry no price and no volume.

use kline_protocol::{Side, Trade, TradeId, TradeKind};

use super::{EventRecord, SpinPetEvent};

/// Where a trade sits in its mint's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradePosition {
    pub slot: u64,
    pub tx_index: Option<u32>,
    pub event_index: u32,
    pub signature: [u8; 64],
}

impl TradePosition {
    /// Where `trade` sits in its mint's index.
    pub fn of_trade(trade: &kline_protocol::Trade) -> TradePosition {
        TradePosition {
            slot: trade.slot,
            tx_index: trade.tx_index,
            event_index: trade.event_index,
            signature: trade.id.signature_bytes(),
        }
    }

    /// The block order of trades, as their keys sort (an unknown `tx_index` after the known ones).
    pub fn order(&self) -> (u64, u32, u32, [u8; 64]) {
        (
            self.slot,
            self.tx_index.unwrap_or(crate::aggregator::NO_TX_INDEX),
            self.event_index,
            self.signature,
        )
    }
}

/// Decimals of a Spin Pet token amount.
pub const TOKEN_DECIMALS: u32 = 6;
/// Decimals of a SOL amount (lamports).
pub const SOL_DECIMALS: u32 = 9;

/// The amounts one event traded against the pool, in base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TradeAmounts {
    pub token_amount: u64,
    pub sol_amount: u64,
    /// The taker bought tokens from the pool.
    pub is_buy: bool,
}

impl SpinPetEvent {
    /// What the event traded, for the four price events (see the module's rule).
    pub fn trade_amounts(&self) -> Option<TradeAmounts> {
        match self {
            SpinPetEvent::BuySell(e) => Some(TradeAmounts {
                token_amount: e.token_amount,
                sol_amount: e.sol_amount,
                is_buy: e.is_buy,
            }),
            SpinPetEvent::LongShort(e) => Some(TradeAmounts {
                token_amount: e.lock_lp_token_amount,
                sol_amount: e.lock_lp_sol_amount,
                is_buy: e.order_type == 1,
            }),
            SpinPetEvent::FullClose(e) => Some(TradeAmounts {
                token_amount: e.final_token_amount,
                sol_amount: e.final_sol_amount,
                is_buy: !e.is_close_long,
            }),
            SpinPetEvent::PartialClose(e) => Some(TradeAmounts {
                token_amount: e.final_token_amount,
                sol_amount: e.final_sol_amount,
                is_buy: !e.is_close_long,
            }),
            _ => None,
        }
    }
}

impl EventRecord {
    /// The trade this event is, for the four price events; `price`: its `latest_price` in SOL per token.
    pub fn to_trade(&self, price: f64) -> Option<Trade> {
        let amounts = self.event.trade_amounts()?;
        let (event_type, payer) = match &self.event {
            SpinPetEvent::BuySell(e) => (TradeKind::BuySell, &e.payer),
            SpinPetEvent::LongShort(e) => (TradeKind::LongShort, &e.payer),
            SpinPetEvent::FullClose(e) => (TradeKind::FullClose, &e.payer),
            SpinPetEvent::PartialClose(e) => (TradeKind::PartialClose, &e.payer),
            _ => return None,
        };
        let meta = &self.meta;
        Some(Trade {
            id: TradeId::from_encoded(
                meta.signature.as_str(),
                meta.signature.to_bytes(),
                meta.event_index,
            ),
            symbol: self.event.mint().clone(),
            time: meta.timestamp.unix_millis(),
            slot: meta.slot,
            tx_index: meta.tx_index,
            event_index: meta.event_index,
            signature: meta.signature.as_str().to_owned(),
            event_type,
            side: if amounts.is_buy {
                Side::Buy
            } else {
                Side::Sell
            },
            price,
            token_amount: whole_units(u128::from(amounts.token_amount), TOKEN_DECIMALS),
            sol_amount: whole_units(u128::from(amounts.sol_amount), SOL_DECIMALS),
            payer: payer.clone(),
        })
    }

    /// Where the event sits in its mint's trade index.
    pub fn trade_position(&self) -> TradePosition {
        TradePosition {
            slot: self.meta.slot,
            tx_index: self.meta.tx_index,
            event_index: self.meta.event_index,
            signature: self.meta.signature.to_bytes(),
        }
    }
}

/// `raw / 10^decimals` as the `f64` nearest to the exact decimal value.
///
/// Up to 2^53 (and `decimals` ≤ 22) both `raw` and `10^decimals` are exact `f64`s, and IEEE division rounds
/// their exact quotient once: that is the nearest `f64` already, with no allocation (the hot path: every
/// candle update converts four sums). Beyond, `raw as f64` would round first, so the exact decimal is
/// formatted and parsed, which rounds once.
pub fn whole_units(raw: u128, decimals: u32) -> f64 {
    const EXACT: u128 = 1 << 53;
    if raw <= EXACT && decimals <= 22 {
        return raw as f64 / 10f64.powi(decimals as i32);
    }
    format!("{raw}e-{decimals}")
        .parse()
        .expect("an integer with an exponent is a valid float literal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_units_are_correctly_rounded() {
        assert_eq!(whole_units(1_500_000, TOKEN_DECIMALS), 1.5);
        assert_eq!(whole_units(0, SOL_DECIMALS), 0.0);
        let big = u128::from(u64::MAX) * 3;
        let exact: f64 = "55340232221128.654845".parse().unwrap();
        assert_eq!(whole_units(big, TOKEN_DECIMALS).to_bits(), exact.to_bits());
        // Both paths give the nearest f64 to the exact decimal, on either side of 2^53.
        let around = (1u128 << 53) - 2_000..(1u128 << 53) + 2_000;
        for raw in around.chain([1, 7, 999_999, 123_456_789_012_345]) {
            for decimals in [TOKEN_DECIMALS, SOL_DECIMALS] {
                let parsed: f64 = format!("{raw}e-{decimals}").parse().unwrap();
                assert_eq!(
                    whole_units(raw, decimals).to_bits(),
                    parsed.to_bits(),
                    "{raw}e-{decimals}"
                );
            }
        }
    }
}
