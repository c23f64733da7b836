//! Where a transaction sits in its block: `getBlock` per slot, several slots at once, cached, bounded.
//!
//! One `getBlock(slot, {transactionDetails: "signatures", rewards: false})` gives the block's signatures in
//! execution order and its `blockTime`; the position of a signature in that list is the transaction's
//! `tx_index`, which orders the transactions of one slot (and with them a candle's open and close).
//!
//! - Concurrent: [`BlockCache::want`] asks for a slot's block; up to `solana.block_concurrency` slots are
//!   fetched at once (the rest wait their turn, oldest first), so a slow node costs each block its own
//!   delay, not the sum of all of them. [`BlockCache::next_fetched`] yields each slot as its answer lands.
//! - Retried for as long as it takes ([`RpcClient::retrying`]): "Block not available", 429 and lost
//!   connections are passing. Only a final refusal (e.g. -32009, a slot missing from the node's storage)
//!   leaves a slot without a block, counted in `blocks_unavailable`.
//! - Cached per slot: a block keeps only a map from a 64-bit hash of each signature to its position
//!   (~24 bytes per transaction instead of the 88-character signatures), so `solana.block_cache_slots`
//!   blocks of a few thousand transactions stay within a few MB. The oldest slot is evicted first. Two
//!   signatures of one block with the same hash (odds ~1e-13 per block) would share a position; the
//!   signature then still breaks the tie.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::rpc::{BlockSignatures, RpcClient};
use kline_core::stats::Counter;

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

/// Limits of the cache and of the look-ups (from `[source.solana]`).
#[derive(Debug, Clone, Copy)]
pub struct BlockSettings {
    pub cache_slots: usize,
    /// Slots fetched at once.
    pub concurrency: usize,
}

/// What a fetch yields: the slot and its block (`None`: the node refused it for good).
type Fetch = Pin<Box<dyn Future<Output = (u64, Option<BlockPositions>)> + Send>>;

/// Blocks of recent slots, and the look-ups in flight. `None` entries are slots whose block the node
/// refused for good.
pub struct BlockCache {
    settings: BlockSettings,
    rpc: RpcClient,
    unavailable: Counter,
    blocks: BTreeMap<u64, Option<BlockPositions>>,
    /// Slots wanted but not yet asked for (over the concurrency limit), oldest first.
    queued: VecDeque<u64>,
    /// Slots queued or in flight.
    wanted: HashSet<u64>,
    in_flight: FuturesUnordered<Fetch>,
}

impl BlockCache {
    /// `unavailable`: counts slots the node refused for good.
    pub fn new(settings: BlockSettings, rpc: RpcClient, unavailable: Counter) -> BlockCache {
        BlockCache {
            settings,
            rpc,
            unavailable,
            blocks: BTreeMap::new(),
            queued: VecDeque::new(),
            wanted: HashSet::new(),
            in_flight: FuturesUnordered::new(),
        }
    }

    /// The block of `slot` if it was fetched: `Some(None)` if the node refused it for good, `None` if it is
    /// not known yet (see [`BlockCache::want`]).
    pub fn get(&self, slot: u64) -> Option<Option<&BlockPositions>> {
        self.blocks.get(&slot).map(Option::as_ref)
    }

    /// Asks for `slot`'s block unless it is cached or already asked for.
    pub fn want(&mut self, slot: u64) {
        if self.blocks.contains_key(&slot) || !self.wanted.insert(slot) {
            return;
        }
        self.queued.push_back(slot);
        self.start_queued();
    }

    /// Slots being fetched or waiting to be.
    pub fn pending(&self) -> usize {
        self.wanted.len()
    }

    /// Waits for the next fetched block and caches it; returns its slot. Pending forever when nothing is
    /// being fetched (for `select!`).
    pub async fn next_fetched(&mut self) -> u64 {
        let Some((slot, block)) = self.in_flight.next().await else {
            return std::future::pending().await;
        };
        if block.is_none() {
            self.unavailable.inc();
        }
        self.wanted.remove(&slot);
        while self.blocks.len() >= self.settings.cache_slots.max(1) {
            self.blocks.pop_first();
        }
        self.blocks.insert(slot, block);
        self.start_queued();
        slot
    }

    /// Forgets look-ups in flight (their session ended); cached blocks stay.
    pub fn cancel(&mut self) {
        self.in_flight = FuturesUnordered::new();
        self.queued.clear();
        self.wanted.clear();
    }

    fn start_queued(&mut self) {
        while self.in_flight.len() < self.settings.concurrency.max(1) {
            let Some(slot) = self.queued.pop_front() else {
                return;
            };
            let rpc = self.rpc.clone();
            self.in_flight.push(Box::pin(async move {
                let block = rpc
                    .retrying("getBlock", || rpc.block_signatures(slot))
                    .await;
                match block {
                    Ok(block) => (slot, Some(BlockPositions::from_signatures(&block))),
                    Err(err) => {
                        tracing::warn!(slot, error = %err, "solana source: the node refused the slot's block; its transactions are ordered by signature");
                        (slot, None)
                    }
                }
            }));
        }
    }
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
