//! The stream's backoff ([`backon`]): reconnects towards Redis and snapshot retries wait from
//! `stream.reconnect_min_ms`, doubling to `stream.reconnect_max_ms`, each delay jittered up to twice as
//! long. Every edge loses Redis at the same moment when Redis restarts; the jitter spreads their
//! reconnects (and their snapshot requests to the writer) instead of sending them all at once.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

use kline_config::StreamConfig;

/// Retries without limit (the caller stops on shutdown), jittered.
pub fn policy(config: &StreamConfig) -> ExponentialBuilder {
    let min = config.reconnect_min_ms.max(1);
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(min))
        .with_max_delay(Duration::from_millis(config.reconnect_max_ms.max(min)))
        .with_jitter()
        .without_max_times()
}

/// The first delay of [`policy`]: between `reconnect_min_ms` and twice that, at random. Waited after a
/// connection that worked fails, before connecting again.
pub fn first_delay(config: &StreamConfig) -> Duration {
    policy(config)
        .build()
        .next()
        .expect("the policy retries without limit")
}

/// Waits `delay`; `false` when `shutdown` came first.
pub async fn pause(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_config::Config;

    #[test]
    fn delays_double_up_to_the_maximum_and_are_jittered_apart() {
        let config = StreamConfig {
            reconnect_min_ms: 100,
            reconnect_max_ms: 800,
            ..Config::defaults().stream
        };
        let delays: Vec<u128> = policy(&config)
            .build()
            .take(8)
            .map(|delay| delay.as_millis())
            .collect();
        for (delay, base) in delays.iter().zip([100, 200, 400, 800, 800, 800, 800, 800]) {
            assert!((base..=2 * base).contains(delay), "{delays:?}");
        }
        // Edges that lost Redis together do not come back in step.
        let firsts: std::collections::HashSet<u128> =
            (0..20).map(|_| first_delay(&config).as_millis()).collect();
        assert!(firsts.len() > 1, "{firsts:?}");
    }
}
