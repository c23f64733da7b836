//! Which mints' sparklines to seed from their `m1` history, and when, within the server's rate limit.
//!
//! The server allows a connection 20 tokens a second with bursts of 200 (`websocket.rate_limit_*`), a
//! `history` of 61 candles costing 1–2 of them, and answers error 1004 beyond. The policy:
//!
//! 1. **Only rows on screen** are seeded, each at most once per connection (a reconnect starts afresh: the
//!    ticks missed while away left holes that the history fills).
//! 2. **A client-side bucket** of [`BURST`] requests refilled at [`PER_SEC`] a second bounds the requests:
//!    at most ~80 tokens at once and ~8 a second, well under half the server's limit, leaving the rest to
//!    the chart. A row the bucket cannot pay for now is not queued: it is asked for on a later call (the
//!    app calls on every frame tick while the list is shown), so nothing grows with the number of mints.
//! 3. **Replies are told apart** by their `subscription_id`, `spark:<mint>` ([`seed_reply`]), which the
//!    server echoes in `history_data` and in `error`; the chart's own requests carry none, so a seed never
//!    touches the chart, even on the chart's own mint and interval.
//! 4. **A refused seed** (an `error` with that id, 1004 say) un-marks its mint: it is asked again once on
//!    screen and in budget. A seed that never comes back costs nothing more than its empty hour.
//!
//! 61 candles rather than 60: the newest minute before the hour carries its close into the hour's first
//! minutes, so a mint that traded an hour ago gets a whole line, not one that starts halfway.

use std::collections::HashSet;
use std::time::Instant;

use kline_protocol::{HistoryRequest, Interval, SubscriptionId, Symbol};

/// Requests the bucket holds when full.
pub const BURST: f64 = 40.0;
/// Requests the bucket gains a second.
pub const PER_SEC: f64 = 4.0;
/// `m1` candles asked for per mint: the hour and the minute before it.
pub const SEED_CANDLES: u32 = super::sparkline::MINUTES as u32 + 1;
const PREFIX: &str = "spark:";

/// The mint a seed's reply (`history_data` or `error`) is for, from its `subscription_id`; `None` for
/// anything that is not a seed's reply.
pub fn seed_reply(subscription_id: Option<&str>) -> Option<Symbol> {
    Symbol::parse(subscription_id?.strip_prefix(PREFIX)?).ok()
}

/// The seeds asked for on this connection and the budget left.
#[derive(Debug, Clone)]
pub struct SparklineSeeder {
    requested: HashSet<Symbol>,
    tokens: f64,
    refilled: Instant,
}

impl SparklineSeeder {
    pub fn new(now: Instant) -> SparklineSeeder {
        SparklineSeeder {
            requested: HashSet::new(),
            tokens: BURST,
            refilled: now,
        }
    }

    /// A new connection: every mint may be seeded again (the budget is the client's, so it carries over).
    pub fn reset(&mut self) {
        self.requested.clear();
    }

    /// A seed was refused: `symbol` may be asked for again.
    pub fn forget(&mut self, symbol: &Symbol) {
        self.requested.remove(symbol);
    }

    /// The requests to send now for the rows on screen, `on_screen` in screen order, within the budget.
    pub fn requests(&mut self, on_screen: &[Symbol], now: Instant) -> Vec<HistoryRequest> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * PER_SEC).min(BURST);
        self.refilled = now;
        let mut requests = Vec::new();
        for symbol in on_screen {
            if self.tokens < 1.0 {
                break;
            }
            if self.requested.contains(symbol) {
                continue;
            }
            let Some(request) = seed_request(symbol) else {
                continue;
            };
            self.tokens -= 1.0;
            self.requested.insert(symbol.clone());
            requests.push(request);
        }
        requests
    }
}

fn seed_request(symbol: &Symbol) -> Option<HistoryRequest> {
    let id = SubscriptionId::new(format!("{PREFIX}{symbol}")).ok()?;
    HistoryRequest::new(symbol.clone(), Interval::M1)
        .with_subscription_id(id)
        .with_limit(SEED_CANDLES)
        .ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn mints(count: u8) -> Vec<Symbol> {
        (1..=count).map(|n| Symbol::from_bytes(&[n; 32])).collect()
    }

    #[test]
    fn a_burst_then_the_refill_rate_and_each_mint_once() {
        let start = Instant::now();
        let mut seeder = SparklineSeeder::new(start);
        let screen = mints(60);
        let first = seeder.requests(&screen, start);
        assert_eq!(first.len(), BURST as usize, "the burst, in screen order");
        assert_eq!(first[0].symbol, screen[0]);
        assert!(seeder.requests(&screen, start).is_empty(), "spent");
        let later = seeder.requests(&screen, start + Duration::from_secs(2));
        assert_eq!(later.len(), (2.0 * PER_SEC) as usize);
        assert_eq!(later[0].symbol, screen[BURST as usize]);
        // Long idle: the bucket is full again, and what was asked is not asked twice.
        let rest = seeder.requests(&screen, start + Duration::from_secs(600));
        assert_eq!(rest.len(), 60 - BURST as usize - 8);
        assert!(
            seeder
                .requests(&screen, start + Duration::from_secs(1200))
                .is_empty()
        );
    }

    #[test]
    fn a_refused_seed_and_a_reconnect_ask_again() {
        let start = Instant::now();
        let mut seeder = SparklineSeeder::new(start);
        let screen = mints(2);
        assert_eq!(seeder.requests(&screen, start).len(), 2);
        seeder.forget(&screen[1]);
        let again = seeder.requests(&screen, start);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].symbol, screen[1]);
        seeder.reset();
        assert_eq!(seeder.requests(&screen, start).len(), 2);
    }

    #[test]
    fn requests_are_m1_61_candles_and_their_replies_are_recognised() {
        let start = Instant::now();
        let mut seeder = SparklineSeeder::new(start);
        let screen = mints(1);
        let request = seeder.requests(&screen, start).remove(0);
        assert_eq!(
            (request.interval, request.limit),
            (Interval::M1, Some(SEED_CANDLES))
        );
        let id = request.subscription_id.as_ref().map(SubscriptionId::as_str);
        assert_eq!(seed_reply(id), Some(screen[0].clone()));
        assert_eq!(seed_reply(None), None, "the chart's history carries no id");
        assert_eq!(seed_reply(Some("spark:nonsense")), None);
        assert_eq!(seed_reply(Some("chart")), None);
    }
}
