//! The retention task: keeps what `[retention]` says and removes the rest so that the disk shrinks
//! (the store side: [`crate`]'s `retention` module), and refreshes the store's size in `/metrics`.
//!
//! A pass, every `retention.check_every`: candles past their interval's retention and trades past
//! `retention.trades` are range-deleted (per series, per mint); the events' compaction filter is given
//! the new cutoff of `retention.events`; then one slice of each retained family is compacted, so a sweep
//! of [`sweep_slices`] passes rewrites every file once and nothing deleted stays on disk longer than
//! `retention.* + sweep`. Passes run on a blocking thread; the pipeline's writes go on meanwhile.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{CandleStore, SWEPT_FAMILIES, StoreError};
use kline_config::{Keep, RetentionConfig};
use kline_core::stats::StoreStats;

/// The longest a sweep (every slice of every family compacted once) may take.
const MAX_SWEEP: Duration = Duration::from_secs(86_400);
/// How often the size gauges are refreshed (at least; also after each pass).
const SIZE_REFRESH: Duration = Duration::from_secs(15);

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Candle series that had something to delete.
    pub series_pruned: usize,
    /// Trades deleted.
    pub trades_pruned: usize,
}

/// One pass's deletes at `now_ms` (no compaction): candles that ended and trades made before their windows
/// are range-deleted, and the events' cutoff is set for the next compactions.
pub fn prune_once(
    store: &CandleStore,
    config: &RetentionConfig,
    now_ms: i64,
) -> Result<PassReport, StoreError> {
    let mut report = PassReport::default();
    store.set_event_cutoff(config.events.cutoff_ms(now_ms));
    // A candle goes once it *ended* before the cutoff: a retention shorter than the interval never deletes
    // the candle still open.
    let candle_rules: Vec<_> = config
        .candles
        .iter()
        .filter_map(|(interval, keep)| {
            let cutoff_secs = keep.cutoff_ms(now_ms)?.div_euclid(1000);
            Some((*interval, cutoff_secs - interval.duration_secs()))
        })
        .collect();
    let trade_cutoff = config.trades.cutoff_ms(now_ms);
    if candle_rules.is_empty() && trade_cutoff.is_none() {
        return Ok(report);
    }
    for (mint, _) in store.symbols()? {
        for (interval, cutoff_secs) in &candle_rules {
            report.series_pruned +=
                usize::from(store.prune_series(&mint, *interval, *cutoff_secs)?);
        }
        if let Some(cutoff) = trade_cutoff {
            report.trades_pruned += store.prune_trades(&mint, cutoff)?;
        }
    }
    Ok(report)
}

/// Passes per sweep: enough that a sweep takes about a quarter of the shortest retention (between one
/// pass and [`MAX_SWEEP`]), so expired data leaves the disk soon after it expires without rewriting the
/// store on every pass.
pub fn sweep_slices(config: &RetentionConfig) -> usize {
    let shortest = [config.events, config.trades]
        .into_iter()
        .chain(config.candles.values().copied())
        .filter_map(|keep| match keep {
            Keep::For(period) => Some(period),
            Keep::Forever => None,
        })
        .min();
    let Some(shortest) = shortest else {
        return 1;
    };
    let sweep = (shortest / 4).clamp(config.check_every, MAX_SWEEP.max(config.check_every));
    let slices = sweep.as_secs_f64() / config.check_every.as_secs_f64();
    (slices.ceil() as usize).clamp(1, 256)
}

/// Runs passes every `config.check_every` until `shutdown`, refreshing the size gauges in between.
pub async fn run(
    store: Arc<CandleStore>,
    config: RetentionConfig,
    stats: Arc<StoreStats>,
    shutdown: CancellationToken,
) {
    let slices = sweep_slices(&config);
    let config = Arc::new(config);
    let mut pass = 0usize;
    let mut next_pass = tokio::time::Instant::now() + config.check_every;
    loop {
        let wake = next_pass.min(tokio::time::Instant::now() + SIZE_REFRESH);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(wake) => {}
        }
        let due = tokio::time::Instant::now() >= next_pass;
        let (store, pass_config, stats) = (store.clone(), config.clone(), stats.clone());
        let work = tokio::task::spawn_blocking(move || {
            let report = due
                .then(|| run_pass(&store, &pass_config, pass, slices, &stats))
                .transpose();
            refresh_sizes(&store, &stats);
            report
        });
        match work.await {
            Ok(Ok(Some(report))) => {
                tracing::info!(
                    series = report.series_pruned,
                    trades = report.trades_pruned,
                    slice = pass % slices,
                    slices,
                    "retention pass done"
                );
            }
            Ok(Ok(None)) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "retention pass failed"),
            Err(err) => tracing::error!(error = %err, "retention task panicked"),
        }
        if due {
            pass += 1;
            next_pass = tokio::time::Instant::now() + config.check_every;
        }
    }
}

fn run_pass(
    store: &CandleStore,
    config: &RetentionConfig,
    pass: usize,
    slices: usize,
    stats: &StoreStats,
) -> Result<PassReport, StoreError> {
    let report = prune_once(store, config, kline_core::clock::now_ms())?;
    for family in SWEPT_FAMILIES {
        store.compact_slice(family, pass, slices)?;
    }
    stats.retention_passes.inc();
    stats.series_pruned.inc_by(report.series_pruned as u64);
    stats.trades_pruned.inc_by(report.trades_pruned as u64);
    Ok(report)
}

fn refresh_sizes(store: &CandleStore, stats: &StoreStats) {
    match store.family_bytes() {
        Ok(families) => {
            for family in families {
                let gauge = |place| {
                    stats
                        .family_bytes
                        .get_or_create(&vec![("family", family.family), ("where", place)])
                        .clone()
                };
                gauge("disk").set(family.on_disk);
                gauge("memory").set(family.in_memory);
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot read the store's sizes"),
    }
    stats.data_dir_bytes.set(directory_bytes(store.path()));
    match filesystem_space(store.path()) {
        Ok(space) => {
            stats.fs_size_bytes.set(space.size);
            stats.fs_avail_bytes.set(space.available);
        }
        Err(err) => tracing::warn!(error = %err, "cannot read the data directory's file system"),
    }
}

/// The file system holding a directory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilesystemSpace {
    pub size: u64,
    /// What an unprivileged process may still write (`f_bavail`: the root reserve excluded).
    pub available: u64,
}

/// `statvfs(2)` of `dir`.
pub fn filesystem_space(dir: &Path) -> std::io::Result<FilesystemSpace> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` is written by the call before it is read.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    // 64-bit fields on the 64-bit Linux targets kline builds for.
    let block = stat.f_frsize;
    Ok(FilesystemSpace {
        size: stat.f_blocks.saturating_mul(block),
        available: stat.f_bavail.saturating_mul(block),
    })
}

/// Bytes of the files under `dir` (recursively; what cannot be read counts 0).
pub fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod space_tests {
    use super::*;

    #[test]
    fn the_data_directorys_file_system_has_a_size_and_room_within_it() {
        let dir = tempfile::tempdir().unwrap();
        let space = filesystem_space(dir.path()).unwrap();
        assert!(space.size > 0, "{space:?}");
        assert!(space.available <= space.size, "{space:?}");
        assert!(filesystem_space(&dir.path().join("missing")).is_err());
    }
}
