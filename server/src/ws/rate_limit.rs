//! A token bucket for incoming messages: `burst` tokens, refilled at `per_sec`.

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
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
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
