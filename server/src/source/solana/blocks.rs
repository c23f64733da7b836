//! Where a transaction sits in its block: `getBlock` per slot, cached, bounded, retried.
//!
//! One `getBlock(slot, {transactionDetails: "signatures", rewards: false})` gives the block's signatures in
//! execution order and its `blockTime`; the position of a signature in that list is the transaction's
//! `tx_index`, which orders the transactions of one slot (and with them a candle's open and close).
//!
//! - Cached per slot: a block keeps only a map from a 64-bit hash of each signature to its position
//!   (~24 bytes per transaction instead of the 88-character signatures), so `solana.block_cache_slots`
//!   blocks of a few thousand transactions stay within a few MB. The oldest slot is evicted first. Two
//!   signatures of one block with the same hash (odds ~1e-13 per block) would share a position; the
//!   signature then still breaks the tie.
//! - Retried: a node may not have a block yet (`Block not available`); the call is repeated up to
//!   `solana.block_retries` times, `solana.block_retry_ms` apart. A slot whose block could not be read is
//!   remembered as unavailable too, so it costs its retries once.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::rpc::{BlockSignatures, RpcClient, RpcError};
use crate::stats::Counter;

/// What the source keeps of one block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockPositions {
    /// `blockTime`, Unix seconds, when the node knows it.
    pub block_time: Option<i64>,
    /// Signature hash → position in the block.
    positions: HashMap<u64, u32>,
}

impl BlockPositions {
    pub fn from_signatures(block: &BlockSignatures) -> BlockPositions {
        let positions = block
            .signatures
            .iter()
            .enumerate()
            .map(|(index, signature)| (signature_hash(signature), index as u32))
            .collect();
        BlockPositions {
            block_time: block.block_time,
            positions,
        }
    }

    /// The position of `signature` in the block, if it is in it.
    pub fn position(&self, signature: &str) -> Option<u32> {
        self.positions.get(&signature_hash(signature)).copied()
    }
}

/// A 64-bit hash of the signature's text (SipHash with fixed keys: the same in every process).
fn signature_hash(signature: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    signature.hash(&mut hasher);
    hasher.finish()
}

/// Limits of the cache and the retries (from `[source.solana]`).
#[derive(Debug, Clone, Copy)]
pub struct BlockSettings {
    pub cache_slots: usize,
    pub retries: u32,
    pub retry_ms: u64,
}

/// Blocks of recent slots; `None` entries are slots whose block the node could not give.
pub struct BlockCache {
    settings: BlockSettings,
    blocks: BTreeMap<u64, Option<BlockPositions>>,
}

impl BlockCache {
    pub fn new(settings: BlockSettings) -> BlockCache {
        BlockCache {
            settings,
            blocks: BTreeMap::new(),
        }
    }

    /// The block of `slot`, from the cache or the node (retried); `None` if the node could not give it
    /// (counted in `unavailable`, once per slot).
    pub async fn get(
        &mut self,
        rpc: &RpcClient,
        slot: u64,
        unavailable: &Counter,
    ) -> Option<&BlockPositions> {
        if !self.blocks.contains_key(&slot) {
            let fetched = self.fetch(rpc, slot).await;
            if fetched.is_none() {
                unavailable.inc();
            }
            while self.blocks.len() >= self.settings.cache_slots.max(1) {
                self.blocks.pop_first();
            }
            self.blocks.insert(slot, fetched);
        }
        self.blocks.get(&slot)?.as_ref()
    }

    async fn fetch(&self, rpc: &RpcClient, slot: u64) -> Option<BlockPositions> {
        let mut attempt = 0;
        loop {
            match rpc.block_signatures(slot).await {
                Ok(block) => return Some(BlockPositions::from_signatures(&block)),
                Err(err) if attempt < self.settings.retries => {
                    attempt += 1;
                    tracing::debug!(slot, attempt, error = %err, "solana source: getBlock failed, retrying");
                    tokio::time::sleep(Duration::from_millis(self.settings.retry_ms)).await;
                }
                Err(err) => {
                    log_unavailable(slot, &err);
                    return None;
                }
            }
        }
    }
}

fn log_unavailable(slot: u64, err: &RpcError) {
    tracing::warn!(slot, error = %err, "solana source: no block for the slot; its transactions are ordered by signature");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_the_order_of_the_block_signatures() {
        // Signatures sharing their first bytes (as tools' made-up ones do) still have their own places.
        let signatures: Vec<String> = (0..5u8)
            .map(|i| {
                let mut bytes = [7; 64];
                bytes[63] = i;
                bs58::encode(bytes).into_string()
            })
            .collect();
        let block = BlockPositions::from_signatures(&BlockSignatures {
            block_time: Some(1_764_000_000),
            signatures: signatures.clone(),
        });
        assert_eq!(block.position(&signatures[3]), Some(3));
        assert_eq!(block.position(&signatures[0]), Some(0));
        assert_eq!(block.position(&bs58::encode([9; 64]).into_string()), None);
        assert_eq!(block.block_time, Some(1_764_000_000));
    }
}
