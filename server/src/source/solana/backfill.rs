//! The backfill: every transaction between the stored cursor and the live edge, stored oldest first, in
//! memory that does not grow with the gap.
//!
//! 1. **Scan**: `getSignaturesForAddress(program, until = cursor)` pages back from now to the cursor,
//!    `solana.backfill_page` signatures a page. Of each page only a [`PageMark`] is kept (its newest
//!    signature and its length), never the page itself.
//! 2. **Cap**: the newest `solana.max_backfill` signatures are backfilled. A gap longer than that (days of
//!    downtime) has its older part *skipped and recorded*, never skipped in silence: the scan goes on to the
//!    cursor counting (nothing kept), and the [`SkippedGap`] (slot range, count, the signatures at both ends)
//!    goes to `/health`, `/metrics` (`kline_solana_backfill_skipped_total`) and a warning. Counting costs one
//!    call per page, a `backfill_page`-th of what backfilling those signatures would.
//! 3. **Fill**: the pages are read again, oldest first: the page below a mark is
//!    `getSignaturesForAddress(before = mark, limit = len − 1)`, the chain's settled past, so the same
//!    signatures the scan saw. Each page goes through the line [`BACKFILL_CHUNK`] transactions at a time
//!    (transactions and blocks fetched concurrently, one write with the cursor per chunk), so a crash or a
//!    lost connection mid-way resumes after the last chunk written. A transaction the listing already says
//!    failed is not fetched: it stores nothing, it only moves the cursor.
//!
//! Memory: the marks (`max_backfill / backfill_page` of them at most, ~150 bytes each: 20,000 and ~3 MB
//! with the defaults, for some 5.5 hours at 1,000 transactions/s), one page of signatures and one chunk of
//! transactions with their blocks. Time is what a long gap costs: each signature is a `getTransaction`
//! (plus a `getBlock` per slot), all within `solana.requests_per_sec`.

use std::collections::VecDeque;
use std::future::Future;

use futures_util::StreamExt;
use serde::Serialize;

use super::rpc::{RpcClient, SignatureInfo};
use super::waiting::HeardTx;
use super::{BACKFILL_CHUNK, Cursor, SolanaStatus, Source, SourceError};
use kline_config::SolanaConfig;
use kline_core::clock::now_ms;

/// One page of the gap as the scan saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct PageMark {
    /// The page's newest signature.
    pub newest: SignatureInfo,
    /// Signatures of the page to backfill: the newest `len` (all of the page, unless the cap cuts it).
    pub len: usize,
}

/// The older part of a gap longer than `solana.max_backfill`, not backfilled. Both ends are inclusive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedGap {
    pub signatures: u64,
    /// Slot of the oldest skipped signature.
    pub first_slot: u64,
    /// Slot of the newest skipped signature.
    pub last_slot: u64,
    pub oldest_signature: String,
    pub newest_signature: String,
    /// Unix ms when the gap was found.
    pub found_at_ms: i64,
}

/// What a scan found between the cursor and now.
#[derive(Debug, Default, PartialEq)]
pub struct BackfillPlan {
    /// Newest page first.
    marks: Vec<PageMark>,
    /// Signatures to backfill.
    pub signatures: u64,
    pub skipped: Option<SkippedGap>,
}

impl BackfillPlan {
    /// The pages to backfill, oldest first.
    pub fn pages_oldest_first(&self) -> impl Iterator<Item = &PageMark> {
        self.marks.iter().rev()
    }

    /// Notes `listed` (a page's part past the cap, newest first) as skipped.
    fn skip(&mut self, listed: &[SignatureInfo]) {
        let (Some(newest), Some(oldest)) = (listed.first(), listed.last()) else {
            return;
        };
        let gap = self.skipped.get_or_insert_with(|| SkippedGap {
            signatures: 0,
            first_slot: oldest.slot,
            last_slot: newest.slot,
            oldest_signature: String::new(),
            newest_signature: newest.signature.clone(),
            found_at_ms: now_ms(),
        });
        gap.signatures += listed.len() as u64;
        gap.first_slot = oldest.slot;
        gap.oldest_signature.clone_from(&oldest.signature);
    }
}

/// Pages back from now to the cursor with `page(before)` (newest first, at most `page_size` signatures
/// strictly older than `before`, `None`: from now), keeping one [`PageMark`] per page of the newest
/// `max_backfill` signatures and only a count of the rest.
pub async fn scan<F, Fut, E>(
    page_size: usize,
    max_backfill: u64,
    mut page: F,
) -> Result<BackfillPlan, E>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Vec<SignatureInfo>, E>>,
{
    let mut plan = BackfillPlan::default();
    let mut before = None;
    loop {
        let listed = page(before.take()).await?;
        let Some(oldest) = listed.last() else {
            break;
        };
        let keep = max_backfill
            .saturating_sub(plan.signatures)
            .min(listed.len() as u64) as usize;
        if keep > 0 {
            plan.marks.push(PageMark {
                newest: listed[0].clone(),
                len: keep,
            });
            plan.signatures += keep as u64;
        }
        plan.skip(&listed[keep..]);
        if listed.len() < page_size {
            break;
        }
        before = Some(oldest.signature.clone());
    }
    Ok(plan)
}

/// Gaps kept for `/health`, newest last.
const RECENT_GAPS: usize = 8;

/// The gaps skipped since the start (see the module docs).
#[derive(Debug, Default)]
pub struct SkippedGaps {
    recent: VecDeque<SkippedGap>,
}

impl SkippedGaps {
    fn record(&mut self, gap: SkippedGap) {
        if self.recent.len() == RECENT_GAPS {
            self.recent.pop_front();
        }
        self.recent.push_back(gap);
    }

    /// The last few, oldest first.
    pub fn recent(&self) -> Vec<SkippedGap> {
        self.recent.iter().cloned().collect()
    }
}

impl SolanaStatus {
    /// Counts a skipped gap and keeps it for `/health`.
    fn record_skipped(&self, gap: &SkippedGap) {
        self.backfill_skipped.inc_by(gap.signatures);
        self.backfill_gaps_skipped.inc();
        self.skipped_gaps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(gap.clone());
    }
}

impl Source<'_> {
    /// Fills the gap between the newest transaction known and now (see the module docs).
    pub(super) async fn backfill(&mut self) -> Result<(), SourceError> {
        // After the newest transaction known: the last of the line (heard before a reconnect), else the
        // cursor.
        let newest_heard = self.line.back().map(|tx| Cursor {
            signature: tx.signature.clone(),
            slot: tx.slot,
        });
        let Some(cursor) = newest_heard.or_else(|| self.cursor.clone()) else {
            tracing::info!("solana source: no cursor yet; starting at the live edge");
            return Ok(());
        };
        let plan = scan_gap(&self.rpc, self.config, &cursor).await?;
        if let Some(gap) = &plan.skipped {
            self.status.record_skipped(gap);
            tracing::warn!(
                skipped = gap.signatures,
                first_slot = gap.first_slot,
                last_slot = gap.last_slot,
                oldest = %gap.oldest_signature,
                newest = %gap.newest_signature,
                max_backfill = self.config.max_backfill,
                "solana source: the gap is longer than max_backfill; its oldest signatures are skipped"
            );
        }
        tracing::info!(
            missed = plan.signatures,
            since_slot = cursor.slot,
            "solana source: backfilling"
        );
        self.status.backfill_pending.set(plan.signatures);
        let mut until = cursor.signature;
        for mark in plan.pages_oldest_first() {
            let page = page_below(&self.rpc, &self.config.program_id, mark, &until).await?;
            for chunk in page.chunks(BACKFILL_CHUNK) {
                self.backfill_chunk(chunk).await?;
                self.status.backfill_pending.dec_by(chunk.len() as u64);
            }
            until.clone_from(&mark.newest.signature);
        }
        self.status.backfill_pending.set(0);
        Ok(())
    }

    /// Fetches `chunk`'s transactions (those listed as failed need none) and stores them, after what the
    /// line already holds, before returning.
    async fn backfill_chunk(&mut self, chunk: &[SignatureInfo]) -> Result<(), SourceError> {
        let fetched: Vec<_> = futures_util::stream::iter(chunk.iter().cloned())
            .map(|info| {
                let rpc = self.rpc.clone();
                async move {
                    if info.failed {
                        return Ok::<_, SourceError>((info, None));
                    }
                    let tx = rpc
                        .retrying("getTransaction", || rpc.transaction(&info.signature))
                        .await?;
                    let Some(tx) = tx else {
                        return Err(SourceError::Protocol(format!(
                            "the node does not have transaction {} yet",
                            info.signature
                        )));
                    };
                    Ok((info, Some(tx)))
                }
            })
            .buffered(self.config.block_concurrency.max(1))
            .collect()
            .await;
        for fetched in fetched {
            let (info, tx) = fetched?;
            let heard = match tx {
                Some(tx) => HeardTx {
                    signature: info.signature,
                    slot: tx.slot,
                    failed: tx.failed || info.failed,
                    logs: tx.logs,
                    block_time: tx.block_time,
                    received_at_ms: now_ms(),
                },
                None => HeardTx {
                    signature: info.signature,
                    slot: info.slot,
                    failed: true,
                    logs: Vec::new(),
                    block_time: info.block_time,
                    received_at_ms: now_ms(),
                },
            };
            if !heard.failed {
                self.blocks.want(heard.slot);
            }
            self.line.push_back(heard);
        }
        // The line (what was heard before, then this chunk) is stored before the next chunk is read.
        loop {
            self.store_ready().await?;
            if self.line.is_empty() {
                break;
            }
            self.blocks.next_fetched().await;
        }
        self.settle_writes(true).await?;
        SolanaStatus::add(&self.status.backfilled, chunk.len());
        Ok(())
    }
}

/// The scan of the gap after `cursor` (the `Source` itself is not `Sync`: its parts are passed).
async fn scan_gap(
    rpc: &RpcClient,
    config: &SolanaConfig,
    cursor: &Cursor,
) -> Result<BackfillPlan, SourceError> {
    let (program, page_size) = (&config.program_id, config.backfill_page);
    let until = cursor.signature.as_str();
    let plan = scan(page_size, config.max_backfill, |before| async move {
        rpc.retrying("getSignaturesForAddress", || {
            rpc.signatures_for_address(program, Some(until), before.as_deref(), page_size)
        })
        .await
    })
    .await?;
    Ok(plan)
}

/// The signatures of `mark`'s page, oldest first: the `len − 1` below its newest (and newer than `until`,
/// the page before), then the newest.
async fn page_below(
    rpc: &RpcClient,
    program: &str,
    mark: &PageMark,
    until: &str,
) -> Result<Vec<SignatureInfo>, SourceError> {
    let mut page = if mark.len > 1 {
        rpc.retrying("getSignaturesForAddress", || {
            rpc.signatures_for_address(
                program,
                Some(until),
                Some(&mark.newest.signature),
                mark.len - 1,
            )
        })
        .await?
    } else {
        Vec::new()
    };
    page.reverse();
    page.push(mark.newest.clone());
    Ok(page)
}

#[cfg(test)]
mod tests;
