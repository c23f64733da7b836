//! A token bucket for incoming messages: `burst` tokens, refilled at `per_sec`; each request costs tokens
//! by what it asks the server to do ([`request_cost`]).

use std::time::Instant;

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
/// costs 11, the default 100 costs 2); anything else costs 1.
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
