//! The soak's samples as a table: one [`Sample`] per tick, written as CSV, and the plateau verdict of
//! each plotted series (pure: no I/O but the writer it is given).
//!
//! # Plateau
//! A series has plateaued when the mean of its last window is at most the mean of its first window
//! after warm-up, plus a tolerance ([`Series::tolerance`] of that mean, plus [`Series::slack`] in its unit).
//! Warm-up is one window (the retention window: nothing is deleted before it has passed once); the two
//! windows compared are each that long, shortened to half of what follows the warm-up on a short run.

use std::io::Write;
use std::time::Duration;

/// What the soak read at one tick. `None`: could not be read (the server was gone, a field was missing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Since the load started.
    pub elapsed: Duration,
    /// The data directory's allocated size (blocks, what `du` shows).
    pub disk_bytes: u64,
    /// The sum of its files' lengths.
    pub disk_apparent_bytes: u64,
    pub rss_kib: Option<u64>,
    pub open_fds: Option<u64>,
    /// `/health`'s `pipeline.queued_batches`: ingest batches waiting for the pipeline's thread.
    pub queued_batches: Option<f64>,
    pub connections_active: Option<f64>,
    /// Events stored per second over the window (`kline_events_ingested_total`).
    pub events_per_sec: Option<f64>,
    /// Updates the clients timed in the window.
    pub deliveries: u64,
    /// Event-to-client latency over the window (None: nothing delivered in it).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub feed_lagged_total: Option<f64>,
    pub slow_client_closes_total: Option<f64>,
    /// The `--sample-metric` series, in the order given.
    pub extra: Vec<Option<f64>>,
}

/// The CSV's fixed columns, before the `--sample-metric` ones.
const COLUMNS: [&str; 13] = [
    "elapsed_s",
    "disk_bytes",
    "disk_apparent_bytes",
    "rss_kib",
    "open_fds",
    "queued_batches",
    "connections_active",
    "events_per_sec",
    "deliveries",
    "latency_p50_ms",
    "latency_p99_ms",
    "feed_lagged_total",
    "slow_client_closes_total",
];

/// Writes a header line, then one row per sample; a value that could not be read is an empty cell.
pub fn write_csv(
    out: &mut impl Write,
    extra_names: &[String],
    samples: &[Sample],
) -> std::io::Result<()> {
    let header: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .chain(extra_names.iter().map(String::as_str))
        .collect();
    writeln!(out, "{}", header.join(","))?;
    for s in samples {
        let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        let mut row = vec![
            format!("{:.1}", s.elapsed.as_secs_f64()),
            s.disk_bytes.to_string(),
            s.disk_apparent_bytes.to_string(),
            cell(s.rss_kib.map(|v| v as f64)),
            cell(s.open_fds.map(|v| v as f64)),
            cell(s.queued_batches),
            cell(s.connections_active),
            cell(s.events_per_sec.map(|v| (v * 10.0).round() / 10.0)),
            s.deliveries.to_string(),
            cell(s.latency_p50_ms),
            cell(s.latency_p99_ms),
            cell(s.feed_lagged_total),
            cell(s.slow_client_closes_total),
        ];
        row.extend(s.extra.iter().map(|v| cell(*v)));
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}

/// A series that should plateau: what is plotted and judged.
pub struct Series {
    pub label: &'static str,
    pub unit: &'static str,
    pub value: fn(&Sample) -> Option<f64>,
    /// The last window's mean may exceed the first's by this fraction of it…
    pub tolerance: f64,
    /// …plus this much, in the series' unit (a series near zero has no meaningful fraction).
    pub slack: f64,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Disk, RSS, open fds, queue depth and p99, in the order they are plotted.
pub const PLATEAU_SERIES: [Series; 5] = [
    Series {
        label: "data dir on disk",
        unit: "MB",
        value: |s| Some(s.disk_bytes as f64 / MIB),
        tolerance: 0.10,
        slack: 4.0,
    },
    Series {
        label: "server RSS",
        unit: "MB",
        value: |s| s.rss_kib.map(|kib| kib as f64 / 1024.0),
        tolerance: 0.10,
        slack: 8.0,
    },
    Series {
        label: "open fds",
        unit: "",
        value: |s| s.open_fds.map(|n| n as f64),
        tolerance: 0.05,
        slack: 4.0,
    },
    Series {
        label: "pipeline queue depth",
        unit: "batches",
        value: |s| s.queued_batches,
        tolerance: 0.10,
        slack: 1.0,
    },
    Series {
        label: "event-to-client p99",
        unit: "ms",
        value: |s| s.latency_p99_ms,
        tolerance: 0.25,
        slack: 2.0,
    },
];

/// One series' verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub label: &'static str,
    pub unit: &'static str,
    /// None: no sample of the window had a value.
    pub first_mean: Option<f64>,
    pub last_mean: Option<f64>,
    pub plateaued: Option<bool>,
}

/// The two windows compared: `[warm_up, warm_up + span)` and `(end - span, end]`, or None when the run
/// is no longer than the warm-up.
pub fn compared_windows(
    samples: &[Sample],
    warm_up: Duration,
) -> Option<((Duration, Duration), (Duration, Duration))> {
    let end = samples.last()?.elapsed;
    let after = end.checked_sub(warm_up).filter(|d| !d.is_zero())?;
    let span = warm_up.min(after / 2);
    Some(((warm_up, warm_up + span), (end - span, end)))
}

/// Each [`PLATEAU_SERIES`]' means over the [`compared_windows`] and whether it plateaued.
pub fn plateaus(samples: &[Sample], warm_up: Duration) -> Vec<Verdict> {
    let windows = compared_windows(samples, warm_up);
    PLATEAU_SERIES
        .iter()
        .map(|series| {
            let mean_over = |(from, to): (Duration, Duration), last: bool| {
                mean(samples.iter().filter_map(|s| {
                    let inside = s.elapsed >= from
                        && if last {
                            s.elapsed > from
                        } else {
                            s.elapsed < to
                        };
                    inside.then(|| (series.value)(s)).flatten()
                }))
            };
            let (first_mean, last_mean) = match windows {
                Some((first, last)) => (mean_over(first, false), mean_over(last, true)),
                None => (None, None),
            };
            let plateaued = first_mean
                .zip(last_mean)
                .map(|(first, last)| last <= first * (1.0 + series.tolerance) + series.slack);
            Verdict {
                label: series.label,
                unit: series.unit,
                first_mean,
                last_mean,
                plateaued,
            }
        })
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
    (count > 0).then(|| sum / f64::from(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample every 5 s for `minutes`, disk from `disk(t)` MB, RSS flat at 200 MB.
    fn run(minutes: u64, disk: impl Fn(f64) -> f64) -> Vec<Sample> {
        (0..=minutes * 12)
            .map(|tick| {
                let t = tick as f64 * 5.0;
                Sample {
                    elapsed: Duration::from_secs(tick * 5),
                    disk_bytes: (disk(t) * MIB) as u64,
                    rss_kib: Some(200 * 1024),
                    open_fds: Some(1050),
                    queued_batches: Some(0.0),
                    latency_p99_ms: (tick > 0).then_some(20.0),
                    ..Sample::default()
                }
            })
            .collect()
    }

    fn verdict<'a>(verdicts: &'a [Verdict], label: &str) -> &'a Verdict {
        verdicts.iter().find(|v| v.label == label).unwrap()
    }

    #[test]
    fn a_disk_that_levels_off_after_the_retention_window_has_plateaued() {
        // Grows 1 MB/s for two minutes, then holds at 120 MB with a sawtooth of compactions.
        let samples = run(20, |t| {
            if t < 120.0 {
                t
            } else {
                120.0 + 6.0 * ((t / 30.0).sin())
            }
        });
        let verdicts = plateaus(&samples, Duration::from_secs(120));
        let disk = verdict(&verdicts, "data dir on disk");
        assert_eq!(disk.plateaued, Some(true), "{disk:?}");
        assert!((disk.first_mean.unwrap() - 120.0).abs() < 6.0);
        assert!(
            verdicts.iter().all(|v| v.plateaued == Some(true)),
            "{verdicts:?}"
        );
    }

    #[test]
    fn a_disk_that_keeps_growing_has_not() {
        let samples = run(20, |t| t * 0.1);
        let verdicts = plateaus(&samples, Duration::from_secs(120));
        let disk = verdict(&verdicts, "data dir on disk");
        assert_eq!(disk.plateaued, Some(false), "{disk:?}");
        assert!(disk.last_mean.unwrap() > 5.0 * disk.first_mean.unwrap());
        assert_eq!(verdict(&verdicts, "server RSS").plateaued, Some(true));
    }

    #[test]
    fn a_short_run_compares_halves_of_what_follows_the_warm_up_and_a_run_within_it_gives_no_verdict()
     {
        let samples = run(1, |_| 1.0);
        let (first, last) = compared_windows(&samples, Duration::from_secs(20)).unwrap();
        assert_eq!(first, (Duration::from_secs(20), Duration::from_secs(40)));
        assert_eq!(last, (Duration::from_secs(40), Duration::from_secs(60)));
        let verdicts = plateaus(&samples, Duration::from_secs(120));
        assert!(verdicts.iter().all(|v| v.plateaued.is_none()));
    }

    #[test]
    fn the_csv_has_a_header_and_one_row_per_sample_with_empty_cells_for_what_was_not_read() {
        let mut samples = run(1, |_| 2.0);
        samples[0].extra = vec![Some(3.0)];
        samples[1].extra = vec![None];
        samples.truncate(2);
        let mut out = Vec::new();
        write_csv(&mut out, &["kline_x".to_owned()], &samples).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("elapsed_s,disk_bytes,disk_apparent_bytes,rss_kib,open_fds,"));
        assert!(lines[0].ends_with(",kline_x"));
        let columns = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == columns));
        assert_eq!(lines[1].split(',').nth(1), Some("2097152"));
        // The first sample has no latency yet, the second no extra metric.
        assert_eq!(lines[1].split(',').nth(10), Some(""));
        assert_eq!(lines[2].split(',').nth(10), Some("20"));
        assert!(lines[1].ends_with(",3") && lines[2].ends_with(','));
    }
}
