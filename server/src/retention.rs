//! The retention task: deletes candles older than their interval's configured retention, in the
//! background (RocksDB range deletes, which do not block the pipeline's writes).

use std::sync::Arc;
use std::time::Duration;

use kline_protocol::Interval;
use tokio_util::sync::CancellationToken;

use crate::config::StorageConfig;
use crate::stats::PipelineStats;
use crate::store::{CandleStore, StoreError};

/// One pass: for every known mint and every interval with a retention, drop candles older than
/// `now - days`. Returns the number of series that had something to delete.
pub fn prune_once(
    store: &CandleStore,
    config: &StorageConfig,
    now_secs: i64,
) -> Result<usize, StoreError> {
    let mut pruned = 0;
    let rules: Vec<(Interval, i64)> = config
        .retention_days
        .iter()
        .map(|(interval, days)| (*interval, now_secs - i64::from(*days) * 86_400))
        .collect();
    if rules.is_empty() {
        return Ok(0);
    }
    for (mint, _) in store.symbols()? {
        for (interval, cutoff) in &rules {
            pruned += usize::from(store.prune_series(&mint, *interval, *cutoff)?);
        }
    }
    Ok(pruned)
}

/// Runs [`prune_once`] every `retention_check_secs` until `shutdown`.
pub async fn run(
    store: Arc<CandleStore>,
    config: StorageConfig,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) {
    let period = Duration::from_secs(config.retention_check_secs.max(1));
    let config = Arc::new(config);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
        let (store, config) = (store.clone(), config.clone());
        let now = crate::pipeline::service::now_ms() / 1000;
        match tokio::task::spawn_blocking(move || prune_once(&store, &config, now)).await {
            Ok(Ok(pruned)) => {
                PipelineStats::add(&stats.series_pruned, pruned);
                tracing::info!(series = pruned, "retention pass done");
            }
            Ok(Err(err)) => tracing::error!(error = %err, "retention pass failed"),
            Err(err) => tracing::error!(error = %err, "retention task panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::pipeline::{Pipeline, PipelineSettings};
    use crate::source::simulator::SimulatedMarket;
    use crate::store::HistoryQuery;

    #[test]
    fn old_candles_go_recent_ones_and_unlisted_intervals_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
        let settings = PipelineSettings {
            intervals: vec![Interval::S1, Interval::M5],
            finality_grace_ms: 0,
            price_scale_decimals: 28,
        };
        let feed = crate::feed::CandleFeed::unread();
        let mut pipeline = Pipeline::open(store.clone(), settings, feed, Arc::default()).unwrap();
        let now_secs = 1_764_000_000;
        let mut market = SimulatedMarket::new(9, 1);
        let old = market.next_event((now_secs - 10 * 86_400) * 1000);
        let recent = market.next_event((now_secs - 3600) * 1000);
        pipeline
            .ingest(&[vec![old, recent]], now_secs * 1000)
            .unwrap();

        let mut config = Config::defaults().storage;
        config.retention_days = [(Interval::S1, 7)].into();
        assert_eq!(prune_once(&store, &config, now_secs).unwrap(), 1);
        let mint = market.mints()[0].to_bytes();
        let all = HistoryQuery {
            from: None,
            to: None,
            limit: 100,
        };
        let s1 = store.history(&mint, Interval::S1, all).unwrap().candles;
        assert_eq!(s1.len(), 1, "the 10-day-old s1 candle is gone");
        assert!(s1[0].time > now_secs - 7 * 86_400);
        assert_eq!(
            store
                .history(&mint, Interval::M5, all)
                .unwrap()
                .candles
                .len(),
            2,
            "m5 kept"
        );
        assert_eq!(store.count_events().unwrap(), 2, "events are always kept");
        assert_eq!(
            prune_once(&store, &config, now_secs).unwrap(),
            0,
            "nothing left to prune"
        );
    }
}
