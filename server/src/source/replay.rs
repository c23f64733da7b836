//! `kline-server replay FILE`: loads an NDJSON file of events (plain or gzip) through the same pipeline as
//! every other source. Idempotent: events already stored are counted as duplicates, so replaying a file
//! twice adds nothing.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use kline_core::clock::now_ms;
use kline_core::event::{EventRecord, ParseLimits, parse_event};
use kline_pipeline::Pipeline;
use kline_store::StoreError;

/// Events written per RocksDB batch during a replay.
const REPLAY_BATCH: usize = 2048;
/// Rejections listed one by one in the summary (the rest are only counted).
const LISTED_REJECTIONS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    pub lines: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// (1-based line number, reason) of the first rejections.
    pub rejections: Vec<(usize, String)>,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} events read: {} stored, {} already stored (duplicates), {} rejected",
            self.lines, self.accepted, self.duplicates, self.rejected
        )?;
        for (line, reason) in &self.rejections {
            writeln!(f, "  line {line}: {reason}")?;
        }
        if self.rejected > self.rejections.len() {
            writeln!(
                f,
                "  … and {} more rejections",
                self.rejected - self.rejections.len()
            )?;
        }
        Ok(())
    }
}

/// Replays `path` into the pipeline, showing a progress bar when `show_progress`.
pub fn replay_file(
    path: &Path,
    pipeline: &mut Pipeline,
    price_scale: u32,
    show_progress: bool,
) -> Result<ReplaySummary, ReplayError> {
    let read_error = |source| ReplayError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = if show_progress {
        ProgressBar::new(size)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta} {msg}")
            .expect("valid template"),
    );
    let mut raw = BufReader::new(progress.wrap_read(file));
    let gzip = raw
        .fill_buf()
        .map_err(read_error)?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };

    let mut summary = ReplaySummary::default();
    let mut batch: Vec<EventRecord> = Vec::with_capacity(REPLAY_BATCH);
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(read_error)?;
        if line.trim().is_empty() {
            continue;
        }
        summary.lines += 1;
        let limits = ParseLimits {
            now_ms: now_ms(),
            price_scale,
        };
        match parse_event(&line, &limits) {
            Ok(event) => batch.push(event),
            Err(err) => {
                summary.rejected += 1;
                if summary.rejections.len() < LISTED_REJECTIONS {
                    summary.rejections.push((index + 1, err.to_string()));
                }
            }
        }
        if batch.len() == REPLAY_BATCH {
            store(pipeline, &mut batch, &mut summary)?;
            progress.set_message(format!("{} stored", summary.accepted));
        }
    }
    store(pipeline, &mut batch, &mut summary)?;
    progress.finish_and_clear();
    Ok(summary)
}

fn store(
    pipeline: &mut Pipeline,
    batch: &mut Vec<EventRecord>,
    summary: &mut ReplaySummary,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let events = std::mem::take(batch);
    let report = pipeline.ingest(std::slice::from_ref(&events), now_ms())?[0];
    summary.accepted += report.accepted;
    summary.duplicates += report.duplicates;
    Ok(())
}
