//! Simulated Spin Pet trading: a few mints whose prices follow a random walk in the program's real range
//! (~1e-8 .. 1e-5 SOL), emitting all four price-carrying events with plausible amounts. Each mint is a token
//! with a name (`Simulated Otter`, ticker `OTTER`…), announced by its `TokenCreated` event.
//!
//! [`SimulatedMarket`] is deterministic for a given seed (same mints, same sequence of events apart from
//! their timestamps), so tests and benchmarks use it as an event generator too; the server's simulator
//! source drives it in real time at a configured rate.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::event::{
    BuySell, EventMeta, EventRecord, EventTime, FullClose, LongShort, PartialClose, Pubkey,
    Signature, SpinPetEvent, TokenCreated, U128,
};
use crate::names::TokenName;

const PRICE_SCALE: f64 = 1e28;
const MIN_PRICE: f64 = 1e-8;
const MAX_PRICE: f64 = 1e-5;
/// Solana produces a slot every ~400 ms.
const SLOT_MS: i64 = 400;
const BASE_SLOT: u64 = 300_000_000;
/// What the simulated tokens are named after (a number follows past the eighth).
const ANIMALS: [&str; 8] = [
    "Otter", "Lynx", "Heron", "Marmot", "Ibex", "Gecko", "Puffin", "Tapir",
];

/// A deterministic market of `mints` tokens.
pub struct SimulatedMarket {
    seed: u64,
    rng: StdRng,
    mints: Vec<Pubkey>,
    prices: Vec<f64>,
    /// The slot of the previous event and how many events it holds, for block positions (`tx_index`).
    slot_fill: (u64, u32),
}

impl SimulatedMarket {
    pub fn new(seed: u64, mints: usize) -> SimulatedMarket {
        let mut rng = StdRng::seed_from_u64(seed);
        let mints: Vec<Pubkey> = (0..mints)
            .map(|_| Pubkey::from_bytes(&rng.random()))
            .collect();
        // New Spin Pet tokens start near 2.8e-8 SOL; spread the simulated ones over a decade or two above it.
        let prices = (0..mints.len())
            .map(|_| 2.796e-8 * 10f64.powf(rng.random_range(0.0..2.0)))
            .collect();
        SimulatedMarket {
            seed,
            rng,
            mints,
            prices,
            slot_fill: (0, 0),
        }
    }

    pub fn mints(&self) -> &[Pubkey] {
        &self.mints
    }

    /// The ticker, name and URI of mint number `index` (`OTTER`, `Simulated Otter`; `OTTER2`… past the
    /// eighth).
    fn texts(index: usize) -> (String, String, String) {
        let animal = ANIMALS[index % ANIMALS.len()];
        let round = index / ANIMALS.len();
        let suffix = if round == 0 {
            String::new()
        } else {
            (round + 1).to_string()
        };
        let ticker = format!("{}{suffix}", animal.to_uppercase());
        let uri = format!(
            "https://example.invalid/simulated/{}.json",
            ticker.to_lowercase()
        );
        (ticker, format!("Simulated {animal}{suffix}"), uri)
    }

    /// The name mint number `index` announces in its `TokenCreated` event.
    pub fn token_name(&self, index: usize) -> TokenName {
        let (ticker, name, uri) = Self::texts(index);
        TokenName::from_texts(&ticker, &name, &uri).expect("simulated names are not empty")
    }

    /// Mint number `index`'s `TokenCreated` event, stamped `ts_ms`. Its identity depends only on the seed and
    /// `index`, so emitting it again (every start) is a duplicate the pipeline drops.
    pub fn token_created(&self, index: usize, ts_ms: i64) -> EventRecord {
        let mut rng = StdRng::seed_from_u64(
            self.seed ^ 0x9E37_79B9_7F4A_7C15_u64.wrapping_mul(index as u64 + 1),
        );
        let mut key = || Pubkey::from_bytes(&rng.random());
        let (payer, curve, pool_token, pool_sol, fees, base_fees, params) =
            (key(), key(), key(), key(), key(), key(), key());
        let mut signature = [0u8; 64];
        rng.fill(&mut signature[..]);
        let (symbol, name, uri) = Self::texts(index);
        EventRecord {
            event: SpinPetEvent::TokenCreated(TokenCreated {
                payer,
                mint_account: self.mints[index].clone(),
                curve_account: curve,
                pool_token_account: pool_token,
                pool_sol_account: pool_sol,
                fee_recipient: fees,
                base_fee_recipient: base_fees,
                params_account: params,
                swap_fee: 100,
                borrow_fee: 300,
                fee_discount_flag: 0,
                name,
                symbol,
                uri,
            }),
            meta: EventMeta {
                timestamp: EventTime(ts_ms),
                signature: Signature::from_bytes(signature),
                slot: BASE_SLOT + (ts_ms / SLOT_MS).rem_euclid(1 << 40) as u64,
                event_index: 0,
                tx_index: None,
                time_source: None,
                tx_index_source: None,
            },
        }
    }

    /// The next event, stamped `ts_ms`, for a randomly chosen mint.
    pub fn next_event(&mut self, ts_ms: i64) -> EventRecord {
        let index = self.rng.random_range(0..self.mints.len());
        self.next_event_for(index, ts_ms)
    }

    /// The next event for mint number `index`.
    pub fn next_event_for(&mut self, index: usize, ts_ms: i64) -> EventRecord {
        let step: f64 = self.rng.random_range(-0.02..0.02);
        let price = (self.prices[index] * (1.0 + step)).clamp(MIN_PRICE, MAX_PRICE);
        self.prices[index] = price;
        let latest_price = U128((price * PRICE_SCALE) as u128);
        let mint = self.mints[index].clone();
        let sol_amount: u64 = self.rng.random_range(10_000_000..5_000_000_000);
        // Tokens have 6 decimals, SOL 9: tokens = sol / price, in base units.
        let token_amount = ((sol_amount as f64 / 1e9) / price * 1e6) as u64;
        let event = match self.rng.random_range(0..20) {
            0..12 => SpinPetEvent::BuySell(BuySell {
                payer: self.key(),
                mint_account: mint,
                is_buy: self.rng.random(),
                token_amount,
                sol_amount,
                latest_price,
            }),
            12..15 => SpinPetEvent::LongShort(self.long_short(
                mint,
                latest_price,
                sol_amount,
                token_amount,
                ts_ms,
            )),
            15..18 => SpinPetEvent::FullClose(FullClose {
                payer: self.key(),
                user_sol_account: self.key(),
                mint_account: mint,
                is_close_long: self.rng.random(),
                final_token_amount: token_amount,
                final_sol_amount: sol_amount,
                user_close_profit: sol_amount / 20,
                latest_price,
                order_pda: self.key(),
            }),
            _ => {
                let order =
                    self.long_short(mint.clone(), latest_price, sol_amount, token_amount, ts_ms);
                SpinPetEvent::PartialClose(PartialClose {
                    payer: order.payer,
                    user_sol_account: self.key(),
                    mint_account: mint,
                    is_close_long: order.order_type == 1,
                    final_token_amount: token_amount / 2,
                    final_sol_amount: sol_amount / 2,
                    user_close_profit: sol_amount / 40,
                    latest_price,
                    order_pda: order.order_pda,
                    order_type: order.order_type,
                    mint: order.mint,
                    user: order.user,
                    lock_lp_start_price: order.lock_lp_start_price,
                    lock_lp_end_price: order.lock_lp_end_price,
                    lock_lp_sol_amount: order.lock_lp_sol_amount,
                    lock_lp_token_amount: order.lock_lp_token_amount,
                    start_time: order.start_time,
                    end_time: order.end_time,
                    margin_sol_amount: order.margin_sol_amount,
                    borrow_amount: order.borrow_amount,
                    position_asset_amount: order.position_asset_amount,
                    borrow_fee: order.borrow_fee,
                })
            }
        };
        let slot = BASE_SLOT + (ts_ms / SLOT_MS).rem_euclid(1 << 40) as u64;
        // Consecutive events of one slot are consecutive transactions of its block.
        self.slot_fill = match self.slot_fill {
            (last, count) if last == slot => (slot, count + 1),
            _ => (slot, 0),
        };
        EventRecord {
            event,
            meta: EventMeta {
                timestamp: EventTime(ts_ms),
                signature: Signature::from_bytes(self.signature_bytes()),
                slot,
                event_index: 0,
                tx_index: Some(self.slot_fill.1),
                time_source: None,
                tx_index_source: None,
            },
        }
    }

    fn long_short(
        &mut self,
        mint: Pubkey,
        latest_price: U128,
        sol: u64,
        tokens: u64,
        ts_ms: i64,
    ) -> LongShort {
        let start = (ts_ms / 1000) as u32;
        LongShort {
            payer: self.key(),
            mint_account: mint.clone(),
            order_pda: self.key(),
            latest_price,
            order_type: self.rng.random_range(1..=2),
            mint,
            user: self.key(),
            lock_lp_start_price: latest_price,
            lock_lp_end_price: U128(latest_price.0 / 10 * 11),
            lock_lp_sol_amount: sol,
            lock_lp_token_amount: tokens,
            start_time: start,
            end_time: start + 86_400,
            margin_sol_amount: sol / 5,
            borrow_amount: sol / 5 * 4,
            position_asset_amount: tokens,
            borrow_fee: 300,
        }
    }

    fn key(&mut self) -> Pubkey {
        Pubkey::from_bytes(&self.rng.random())
    }

    fn signature_bytes(&mut self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        self.rng.fill(&mut bytes[..]);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ParseLimits, parse_event};

    #[test]
    fn same_seed_same_market() {
        let mut a = SimulatedMarket::new(7, 3);
        let mut b = SimulatedMarket::new(7, 3);
        assert_eq!(a.mints(), b.mints());
        for i in 0..50 {
            assert_eq!(
                a.next_event(1_700_000_000_000 + i),
                b.next_event(1_700_000_000_000 + i)
            );
        }
        assert_ne!(SimulatedMarket::new(8, 3).mints(), a.mints());
    }

    #[test]
    fn every_mint_has_a_name_and_one_token_created_event_per_seed() {
        let market = SimulatedMarket::new(7, 10);
        let limits = ParseLimits {
            now_ms: 1_700_000_000_000,
            price_scale: 28,
        };
        let created = market.token_created(9, 1_700_000_000_000);
        assert_eq!(parse_event(&created.to_json(), &limits).unwrap(), created);
        assert_eq!(created.event.mint(), &market.mints()[9]);
        let name = market.token_name(9);
        assert_eq!(name.ticker.unwrap().as_str(), "LYNX2");
        assert_eq!(name.name.unwrap().as_str(), "Simulated Lynx2");
        let again = SimulatedMarket::new(7, 10).token_created(9, 1_700_000_999_000);
        assert_eq!(again.id(), created.id(), "the same identity every start");
        assert_ne!(market.token_created(8, 0).id(), created.id());
    }

    #[test]
    fn events_are_valid_and_in_the_real_price_range() {
        let mut market = SimulatedMarket::new(1, 8);
        let limits = ParseLimits {
            now_ms: 1_700_000_000_000,
            price_scale: 28,
        };
        let mut kinds = std::collections::HashSet::new();
        for i in 0..400 {
            let event = market.next_event(1_700_000_000_000 + i);
            let parsed = parse_event(&event.to_json(), &limits).expect("simulated events validate");
            assert_eq!(parsed, event, "JSON round trip");
            let price = event.event.latest_price().unwrap() as f64 / 1e28;
            assert!(
                (MIN_PRICE * 0.99..=MAX_PRICE * 1.01).contains(&price),
                "{price}"
            );
            kinds.insert(event.event.event_type());
        }
        assert_eq!(kinds.len(), 4, "all four price events appear: {kinds:?}");
    }
}
