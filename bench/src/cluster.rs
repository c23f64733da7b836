//! A writer and its edges over a real `redis-server` (issue 16, docs/scaling.md), each `kline-server` started
//! like the bench's single server (release binary, temporary data dir): the path `fanout --through-edge`
//! measures and the stream the `stream` scenario loads.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kline_tests::redis::RedisServer;

use serde_json::{Value, json};

use crate::process::{ProcSample, ProcessProbe, cpu_percent};
use crate::report::{metric_value, round};
use crate::server::ServerUnderTest;

/// Redis and the writer; edges are started on demand.
pub struct StreamCluster {
    pub writer: ServerUnderTest,
    pub redis: RedisServer,
    /// `--server-set` pairs, for every node.
    extra: Vec<String>,
}

impl StreamCluster {
    /// Starts redis-server and a writer publishing to it. `extra` (`--set` arguments) goes to every node,
    /// `writer_extra` to the writer only.
    pub fn start(extra: &[String], writer_extra: &[String]) -> anyhow::Result<StreamCluster> {
        let redis = RedisServer::start();
        let mut args = extra.to_vec();
        args.extend(settings(&["node.role=writer", &redis_url(&redis)]));
        args.extend_from_slice(writer_extra);
        let writer = ServerUnderTest::start(&args)?;
        Ok(StreamCluster {
            writer,
            redis,
            extra: extra.to_vec(),
        })
    }

    /// Starts an edge with an empty replica. With `snapshots`, it may load a snapshot from the writer;
    /// without, it can only apply the stream (what the `stream` scenario times).
    pub fn start_edge(&self, snapshots: bool) -> anyhow::Result<ServerUnderTest> {
        let mut args = self.extra.clone();
        let snapshot_url = if snapshots {
            format!("stream.snapshot_url={}", self.writer.internal_base_url()?)
        } else {
            "stream.snapshot_url=".to_owned()
        };
        args.extend(settings(&[
            "node.role=edge",
            "ingest.enabled=false",
            &redis_url(&self.redis),
            &snapshot_url,
        ]));
        ServerUnderTest::start(&args)
    }

    /// The `/proc` probe of redis-server.
    pub fn redis_probe(&self) -> Option<ProcessProbe> {
        self.redis.pid().map(ProcessProbe::single)
    }

    /// The writer's and Redis's CPU, and what the writer has published so far.
    pub async fn sample(&self) -> UpstreamSample {
        let writer_metric = |name| async move { metric(&self.writer, name).await.unwrap_or(0.0) };
        UpstreamSample {
            at: Instant::now(),
            writer: self.writer.sample(),
            redis: self.redis_probe().and_then(|probe| probe.sample()),
            published_groups: writer_metric("kline_stream_published_seq").await,
            published_bytes: writer_metric("kline_stream_published_bytes_total").await,
        }
    }

    /// Waits until Redis acknowledged every group the writer committed; returns that group number.
    pub async fn wait_until_published(&self, timeout: Duration) -> anyhow::Result<u64> {
        let started = Instant::now();
        loop {
            let committed = metric(&self.writer, "kline_stream_committed_seq").await?;
            if committed > 0.0
                && metric(&self.writer, "kline_stream_published_seq").await? == committed
            {
                return Ok(committed as u64);
            }
            if started.elapsed() > timeout {
                bail!("the writer did not publish its outbox within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `edge` applied every group the writer committed.
    pub async fn wait_until_applied(
        &self,
        edge: &ServerUnderTest,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let committed = metric(&self.writer, "kline_stream_committed_seq").await?;
            if committed > 0.0 && metric(edge, "kline_stream_applied_seq").await? == committed {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!("the edge did not apply the writer's groups within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What the upstream of an edge did up to a moment: for its share of a run through the edge.
pub struct UpstreamSample {
    at: Instant,
    writer: Option<ProcSample>,
    redis: Option<ProcSample>,
    published_groups: f64,
    published_bytes: f64,
}

impl UpstreamSample {
    /// Writer and Redis CPU, and the stream's groups and bytes per second, from `self` to `later`.
    pub fn figures_until(&self, later: &UpstreamSample) -> Value {
        let cpu = |a: Option<ProcSample>, b: Option<ProcSample>| {
            a.zip(b).map(|(a, b)| round(cpu_percent(&a, &b)))
        };
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let groups = later.published_groups - self.published_groups;
        let bytes = later.published_bytes - self.published_bytes;
        json!({
            "writer_cpu_percent_of_one_core_during_load": cpu(self.writer, later.writer),
            "redis_cpu_percent_of_one_core_during_load": cpu(self.redis, later.redis),
            "stream_groups_per_sec": round(groups / secs),
            "stream_bytes_per_sec": round(bytes / secs),
            "stream_bytes_per_group": (groups > 0.0).then(|| round(bytes / groups)),
        })
    }
}

/// Waits until `edge` answers `/ready` with 200.
pub async fn wait_until_ready(edge: &ServerUnderTest, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let url = format!("{}/ready", edge.base_url);
    loop {
        let response = reqwest::get(&url).await;
        if response.as_ref().is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let body = match response {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(err) => err.to_string(),
            };
            bail!("the edge was not ready within {timeout:?}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The current value of an unlabelled metric of `server` (0 when absent).
pub async fn metric(server: &ServerUnderTest, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{}/metrics", server.base_url))
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("GET {}/metrics", server.base_url))?
        .text()
        .await?;
    Ok(metric_value(&text, name).unwrap_or(0.0))
}

fn redis_url(redis: &RedisServer) -> String {
    format!("stream.redis_url={}", redis.url())
}

fn settings(pairs: &[&str]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|pair| ["--set".to_owned(), (*pair).to_owned()])
        .collect()
}
