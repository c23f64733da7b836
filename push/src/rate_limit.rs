//! A connection's request budget, the same on every transport ([`RequestBudget`]): a token bucket of
//! `websocket.rate_limit_burst` tokens refilled at `rate_limit_per_sec`, each request costing tokens by the
//! candles it reads ([`request_cost`] for `/ws`; Socket.IO's `kline_socketio::wire::request_cost` by the same
//! rule; both [`history_cost`]); a refused request gets error 1004, and `rate_limit_strikes` refusals in a
//! row end the connection (`/ws`: close 1008; Socket.IO: disconnected from `/kline`).

use std::time::Instant;

use kline_config::WebSocketConfig;

/// What [`RequestBudget::charge`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Paid: handle the request.
    Allowed,
    /// Not enough tokens: answer 1004, drop the request.
    Refused,
    /// Refused `rate_limit_strikes` times in a row: end the connection.
    Exhausted,
}

/// A connection's token bucket and its refusals in a row.
#[derive(Debug)]
pub struct RequestBudget {
    bucket: TokenBucket,
    strikes: u32,
    max_strikes: u32,
}

impl RequestBudget {
    pub fn new(config: &WebSocketConfig, now: Instant) -> RequestBudget {
        RequestBudget {
            bucket: TokenBucket::new(config.rate_limit_burst, config.rate_limit_per_sec, now),
            strikes: 0,
            max_strikes: config.rate_limit_strikes,
        }
    }

    /// Charges a request of `cost` tokens. A paid request clears the strikes.
    pub fn charge(&mut self, now: Instant, cost: u32) -> Charge {
        if self.bucket.allow_n(now, cost) {
            self.strikes = 0;
            return Charge::Allowed;
        }
        self.strikes += 1;
        if self.strikes >= self.max_strikes {
            Charge::Exhausted
        } else {
            Charge::Refused
        }
    }
}

#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(burst: u32, per_sec: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            capacity: f64::from(burst),
            per_sec,
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        self.allow_n(now, 1)
    }

    /// Takes `cost` tokens if there are that many (a cost above the burst needs a full bucket).
    pub fn allow_n(&mut self, now: Instant, cost: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.last = now;
        let cost = f64::from(cost).min(self.capacity);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// Candles per extra token: a `history` or `subscribe` costs 1 + its candles / 100 (a 1000-candle history
/// costs 11, the default 100 costs 2); a `subscribe_tickers` (a snapshot of every mint) 11; anything else
/// costs 1.
const CANDLES_PER_TOKEN: u64 = 100;

/// The cost of a request that reads `candles` candles (`history`, or a `subscribe`'s snapshot): 1, plus 1
/// per 100 candles (at most the protocol's maximum).
pub fn history_cost(candles: u64) -> u32 {
    1 + (candles.min(u64::from(kline_protocol::MAX_HISTORY_LIMIT)) / CANDLES_PER_TOKEN) as u32
}

/// The tokens a text request costs. Read from the JSON before the request is parsed for real (an
/// unparseable request costs 1 and gets its error); a request without `limit` counts the protocol's default.
pub fn request_cost(text: &str) -> u32 {
    #[derive(serde::Deserialize)]
    struct Shape {
        #[serde(alias = "type")]
        msg_type: Option<String>,
        limit: Option<serde_json::Value>,
    }
    let Ok(shape) = serde_json::from_str::<Shape>(text) else {
        return 1;
    };
    match shape.msg_type.as_deref() {
        Some("history" | "subscribe") => {
            let candles = shape
                .limit
                .and_then(|limit| limit.as_u64())
                .unwrap_or(u64::from(kline_protocol::DEFAULT_HISTORY_LIMIT));
            history_cost(candles)
        }
        // Every mint's ticker: priced like the largest history.
        Some("subscribe_tickers") => history_cost(u64::from(kline_protocol::MAX_HISTORY_LIMIT)),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_histories_cost_more_than_pings() {
        assert_eq!(request_cost(r#"{"msg_type":"ping"}"#), 1);
        assert_eq!(request_cost(r#"{"msg_type":"history","limit":1000}"#), 11);
        assert_eq!(request_cost(r#"{"type":"subscribe","limit":1}"#), 1);
        assert_eq!(request_cost(r#"{"msg_type":"history","limit":99999}"#), 11);
        assert_eq!(request_cost("{not json"), 1);
        assert_eq!(request_cost(r#"{"msg_type":"subscribe_tickers"}"#), 11);
        let start = Instant::now();
        let mut bucket = TokenBucket::new(200, 20.0, start);
        let histories = (0..100).filter(|_| bucket.allow_n(start, 11)).count();
        assert_eq!(
            histories, 18,
            "a burst of 200 tokens pays for 18 large histories"
        );
        assert!(bucket.allow(start), "2 tokens left for pings");
    }

    use std::time::Duration;

    use super::*;

    #[test]
    fn strikes_in_a_row_exhaust_the_budget_and_a_paid_request_clears_them() {
        let mut config = kline_config::Config::defaults().websocket;
        (config.rate_limit_burst, config.rate_limit_strikes) = (2, 3);
        let start = Instant::now();
        let mut budget = RequestBudget::new(&config, start);
        assert_eq!(budget.charge(start, 2), Charge::Allowed);
        assert_eq!(budget.charge(start, 1), Charge::Refused);
        assert_eq!(budget.charge(start, 1), Charge::Refused);
        let later = start + Duration::from_millis(100);
        assert_eq!(budget.charge(later, 1), Charge::Allowed, "refilled");
        assert_eq!(budget.charge(later, 2), Charge::Refused);
        assert_eq!(budget.charge(later, 2), Charge::Refused);
        assert_eq!(budget.charge(later, 2), Charge::Exhausted);
    }

    #[test]
    fn burst_then_sustained_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(200, 20.0, start);
        assert!(
            (0..200).all(|_| bucket.allow(start)),
            "a front-end may subscribe to 100 pairs at once"
        );
        assert!(!bucket.allow(start));
        let later = start + Duration::from_millis(500);
        assert_eq!(
            (0..20).filter(|_| bucket.allow(later)).count(),
            10,
            "20/s refill"
        );
        let much_later = later + Duration::from_secs(3600);
        assert_eq!(
            (0..1000).filter(|_| bucket.allow(much_later)).count(),
            200,
            "refill caps at burst"
        );
    }
}
