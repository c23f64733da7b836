//! Reading one [`Sample`] of the running server: its data directory on disk, its RSS and open
//! descriptors from `/proc`, its pipeline queue from `/health`, counters and gauges from `/metrics`, and
//! the clients' latencies since the previous sample (the shared histogram is taken and reset).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::series::Sample;
use crate::clients::Shared;
use crate::process::ProcessProbe;
use crate::report::metric_value;

pub struct Sampler {
    pub http: reqwest::Client,
    pub base_url: String,
    pub pid: u32,
    pub data_dir: PathBuf,
    pub shared: Arc<Shared>,
    /// `--sample-metric` names, read from `/metrics` as they are.
    pub extra_metrics: Vec<String>,
    /// (when, `kline_events_ingested_total`) at the previous sample.
    previous_ingested: Option<(Instant, f64)>,
    previous_deliveries: u64,
}

impl Sampler {
    pub fn new(
        http: reqwest::Client,
        base_url: String,
        pid: u32,
        data_dir: PathBuf,
        shared: Arc<Shared>,
        extra_metrics: Vec<String>,
    ) -> Sampler {
        Sampler {
            http,
            base_url,
            pid,
            data_dir,
            shared,
            extra_metrics,
            previous_ingested: None,
            previous_deliveries: 0,
        }
    }

    /// One sample, `elapsed` into the load.
    pub async fn sample(&mut self, elapsed: Duration) -> Sample {
        let dir = self.data_dir.clone();
        let (disk_bytes, disk_apparent_bytes) =
            tokio::task::spawn_blocking(move || disk_usage(&dir))
                .await
                .unwrap_or_default();
        let metrics = self.get_text("/metrics").await.unwrap_or_default();
        let health: Value = self
            .get_text("/health")
            .await
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let metric = |name: &str| metric_value(&metrics, name);
        let now = Instant::now();
        let ingested = metric("kline_events_ingested_total");
        let events_per_sec = ingested
            .zip(self.previous_ingested)
            .map(|(total, (then, before))| {
                (total - before) / now.duration_since(then).as_secs_f64().max(1e-3)
            });
        self.previous_ingested = ingested.map(|total| (now, total));
        let (deliveries, p50, p99) = self.latency_window();
        Sample {
            elapsed,
            disk_bytes,
            disk_apparent_bytes,
            rss_kib: ProcessProbe::single(self.pid).sample().map(|s| s.rss_kib),
            open_fds: open_fds(self.pid),
            queued_batches: health["pipeline"]["queued_batches"].as_f64(),
            connections_active: metric("kline_connections_active"),
            events_per_sec,
            deliveries,
            latency_p50_ms: p50,
            latency_p99_ms: p99,
            feed_lagged_total: metric("kline_feed_lagged_total"),
            slow_client_closes_total: metric("kline_slow_client_closes_total"),
            extra: self.extra_metrics.iter().map(|name| metric(name)).collect(),
        }
    }

    /// (deliveries, p50 ms, p99 ms) since the previous call; the clients' histogram starts again empty.
    fn latency_window(&mut self) -> (u64, Option<f64>, Option<f64>) {
        let window = {
            let mut histogram = self.shared.latency_us.lock().unwrap();
            let window = histogram.clone();
            histogram.reset();
            window
        };
        let total = self.shared.deliveries.load(Ordering::Relaxed);
        let deliveries = total - self.previous_deliveries;
        self.previous_deliveries = total;
        if window.is_empty() {
            return (deliveries, None, None);
        }
        let ms = |q: f64| Some(window.value_at_quantile(q) as f64 / 1000.0);
        (deliveries, ms(0.5), ms(0.99))
    }

    async fn get_text(&self, path: &str) -> Option<String> {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        response.text().await.ok()
    }
}

/// (allocated bytes, apparent bytes) of every file under `dir`. Files RocksDB deletes during the walk
/// are skipped.
pub fn disk_usage(dir: &Path) -> (u64, u64) {
    let mut totals = (0, 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                totals.0 += meta.blocks() * 512;
                totals.1 += meta.len();
            }
        }
    }
    totals
}

/// Entries of `/proc/<pid>/fd` (None: the process is gone).
fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_adds_up_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![1u8; 5_000]).unwrap();
        let (allocated, apparent) = disk_usage(dir.path());
        assert_eq!(apparent, 15_000);
        assert!(allocated >= 15_000, "{allocated}");
        assert_eq!(disk_usage(&dir.path().join("missing")), (0, 0));
    }

    #[test]
    fn this_process_has_open_descriptors() {
        assert!(open_fds(std::process::id()).unwrap() >= 3);
        assert_eq!(open_fds(u32::MAX), None);
    }
}
