//! Reads of one candle series, each stepping over no more entries than it answers (plus, for a deep page
//! of the whole series, the skipped ones), counted in [`CandleStore::candles_read`]:
//! - [`CandleStore::history`]: the newest N in a time range (`history`, subscription snapshots, REST);
//! - [`CandleStore::series_page`]: a page of the whole series by offset, with its length (the old server's
//!   `GET /api/kline`, Socket.IO's `history_data`);
//! - [`CandleStore::candles_after`]: the oldest N from a time on (the hub's catch-up, page after page).

use kline_protocol::Interval;
use rocksdb::{IteratorMode, ReadOptions};

use super::{
    CF_CANDLES, CandleStore, HistoryPage, HistoryQuery, SeriesPage, StoreError, codec, keys,
};
use kline_core::aggregator::CandleState;

impl CandleStore {
    fn note_candles_read(&self, entries: usize) {
        self.candles_read.inc_by(entries as u64);
    }

    /// The newest `query.limit` candles of a series in `[from, to)`, ascending. Reads at most `limit + 1`
    /// entries, however long the series is.
    pub fn history(
        &self,
        mint: &[u8; 32],
        interval: Interval,
        query: HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(
            keys::series_key(mint, interval, query.from.unwrap_or(i64::MIN)).to_vec(),
        );
        read.set_iterate_upper_bound(
            keys::series_key(mint, interval, query.to.unwrap_or(i64::MAX)).to_vec(),
        );
        let mut candles = Vec::with_capacity(query.limit.min(1024) + 1);
        for item in self
            .db
            .iterator_cf_opt(self.cf(CF_CANDLES), read, IteratorMode::End)
        {
            if candles.len() > query.limit {
                break;
            }
            let (_, value) = item?;
            candles.push(codec::decode_candle(&value)?);
        }
        self.note_candles_read(candles.len());
        let has_more = candles.len() > query.limit;
        candles.truncate(query.limit);
        candles.reverse();
        Ok(HistoryPage { candles, has_more })
    }

    /// One page of a whole series in the given order, and the series' length: skips `offset` candles from
    /// the newest (`newest_first`) or the oldest end, takes `limit` (the existing server's `GET /api/kline`
    /// answers with `total`). The length is the kept count (`series_counts`), read from the same snapshot
    /// as the candles. A deep page is found from whichever end of the series is nearer by summing bucket
    /// counts ([`CandleStore::rank_start`]): it steps over fewer than `BUCKET_SLOTS` (4096) candles before
    /// its own, however long the series.
    pub fn series_page(
        &self,
        mint: &[u8; 32],
        interval: Interval,
        newest_first: bool,
        offset: usize,
        limit: usize,
    ) -> Result<SeriesPage, StoreError> {
        let snapshot = self.db.snapshot();
        let total =
            usize::try_from(self.series_count_at(mint, interval, &snapshot)?).unwrap_or(usize::MAX);
        let take = limit.min(total.saturating_sub(offset));
        if take == 0 {
            return Ok(SeriesPage {
                candles: Vec::new(),
                total,
            });
        }
        // The page's candles, counted from the other end, start after `total - offset - take` candles.
        let from_other_end = total - offset - take;
        let (newest_first_scan, skip) = if offset <= from_other_end {
            (newest_first, offset)
        } else {
            (!newest_first, from_other_end)
        };
        let (bound, skip) = match skip {
            0 => (None, 0),
            skip => self.rank_start(mint, interval, newest_first_scan, skip as u64, &snapshot)?,
        };
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        let (mut lower, mut upper) = (i64::MIN, i64::MAX);
        match bound {
            Some(time) if newest_first_scan => upper = time,
            Some(time) => lower = time,
            None => {}
        }
        let mut read = ReadOptions::default();
        read.set_snapshot(&snapshot);
        read.set_iterate_lower_bound(keys::series_key(mint, interval, lower).to_vec());
        read.set_iterate_upper_bound(keys::series_key(mint, interval, upper).to_vec());
        let mode = if newest_first_scan {
            IteratorMode::End
        } else {
            IteratorMode::Start
        };
        let mut candles = Vec::with_capacity(take);
        let mut stepped = 0;
        for item in self.db.iterator_cf_opt(self.cf(CF_CANDLES), read, mode) {
            let (_, value) = item?;
            stepped += 1;
            if stepped > skip {
                candles.push(codec::decode_candle(&value)?);
                if candles.len() == take {
                    break;
                }
            }
        }
        self.note_candles_read(stepped);
        if newest_first_scan != newest_first {
            candles.reverse();
        }
        Ok(SeriesPage { candles, total })
    }

    /// The oldest `limit` candles of a series with `time >= from`, ascending (reads at most `limit`
    /// entries), and the time to go on from when more may follow: the next page starts there.
    pub fn candles_after(
        &self,
        mint: &[u8; 32],
        interval: Interval,
        from: i64,
        limit: usize,
    ) -> Result<(Vec<CandleState>, Option<i64>), StoreError> {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(keys::series_key(mint, interval, from).to_vec());
        read.set_iterate_upper_bound(keys::series_key(mint, interval, i64::MAX).to_vec());
        let mut candles = Vec::with_capacity(limit.min(1024));
        for item in self
            .db
            .iterator_cf_opt(self.cf(CF_CANDLES), read, IteratorMode::Start)
        {
            let (_, value) = item?;
            candles.push(codec::decode_candle(&value)?);
            if candles.len() >= limit {
                break;
            }
        }
        self.note_candles_read(candles.len());
        let next = match candles.last() {
            Some(last) if candles.len() >= limit => Some(last.time.saturating_add(1)),
            _ => None,
        };
        Ok((candles, next))
    }
}
