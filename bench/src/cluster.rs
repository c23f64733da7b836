//! A writer and its edges over a real `redis-server` (issue 16, docs/scaling.md), each `kline-server` started
//! like the bench's single server (release binary, temporary data dir): the path `fanout --through-edge`
//! measures and the stream the `stream` scenario loads.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kline_tests::redis::RedisServer;

use crate::process::ProcessProbe;
use crate::report::metric_value;
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
            format!("stream.snapshot_url={}", self.writer.base_url)
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
