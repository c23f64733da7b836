//! What the source holds between a transaction's notification and its write: the transaction itself
//! ([`HeardTx`]), and how late notifications arrive after their block's time ([`ReceiptLag`]), which
//! dates the provisional push.

use std::collections::VecDeque;

use super::blocks::BlockPositions;

/// A transaction heard (live) or fetched (backfill), waiting for its block.
#[derive(Debug, Clone)]
pub struct HeardTx {
    pub signature: String,
    pub slot: u64,
    pub failed: bool,
    pub logs: Vec<String>,
    /// The transaction's own `blockTime` (a backfill's `getTransaction` has it; a notification has not).
    pub block_time: Option<i64>,
    /// Unix ms when it reached the server.
    pub received_at_ms: i64,
}

/// Lag samples kept.
const SAMPLES: usize = 64;

/// How long after its block's time a notification arrives: the median of recent samples of
/// (receipt − block time), less half a second because a block time is whole seconds (the block was made
/// somewhere in that second). On a local node this is ~0; on a remote provider at `confirmed`, typically
/// 0.5–1.5 s. Without samples, 0.
#[derive(Debug, Default)]
pub struct ReceiptLag {
    samples: VecDeque<i64>,
    lag_ms: i64,
}

impl ReceiptLag {
    /// Notes that a transaction of `block` arrived at `received_at_ms`.
    pub fn observe(&mut self, block: &BlockPositions, received_at_ms: i64) {
        let Some(block_time) = block.block_time else {
            return;
        };
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(received_at_ms - block_time * 1000);
        let mut sorted: Vec<i64> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        self.lag_ms = (sorted[sorted.len() / 2] - 500).max(0);
    }

    /// The block time (whole seconds, in ms) of a transaction heard at `received_at_ms`.
    pub fn estimate_block_time_ms(&self, received_at_ms: i64) -> i64 {
        (received_at_ms - self.lag_ms).div_euclid(1000) * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::solana::rpc::BlockSignatures;

    fn block(block_time: i64) -> BlockPositions {
        BlockPositions::from_signatures(&BlockSignatures {
            block_time: Some(block_time),
            signatures: Vec::new(),
        })
    }

    #[test]
    fn the_estimate_takes_away_the_usual_lag() {
        let mut lag = ReceiptLag::default();
        assert_eq!(
            lag.estimate_block_time_ms(10_700),
            10_000,
            "no samples: the receipt"
        );
        // A node 1.2 s behind: blocks of second 100 arrive at 101.2 .. 102.1.
        for received in [101_200, 101_500, 101_800, 102_100, 101_650] {
            lag.observe(&block(100), received);
        }
        assert_eq!(lag.lag_ms, 1150);
        assert_eq!(lag.estimate_block_time_ms(101_700), 100_000);
        assert_eq!(lag.estimate_block_time_ms(102_900), 101_000);
    }
}
