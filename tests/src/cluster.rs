//! A writer → Redis → edges cluster of real processes for the multi-node tests (`tests/multi_node*.rs`):
//! one `redis-server`, a writer and two edges, each node on its own data directory under one temporary
//! directory; a steady ingest into the writer; clients that follow every series on an edge; and the checks
//! that clients and edges hold exactly the writer's history. Everything waits for conditions (batches
//! posted, `kline_stream_*` metrics, what the clients hold), never for fixed times.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::{Candle, Interval};
use tokio_util::sync::CancellationToken;

use crate::follower::{CandleValues, Follower, Series, candle_values};
use crate::redis::RedisServer;
use crate::{KlineServer, ServerProcess, TOKEN, get_json, metric, wait_until};

pub const MINTS: usize = 3;
/// What every client subscribes to, for each mint.
pub const INTERVALS: [Interval; 3] = [Interval::S1, Interval::S15, Interval::M1];
/// The ingest posts one event per mint every tick.
pub const TICK: Duration = Duration::from_millis(100);
/// Batches posted between two steps of a scenario (~2 s at one per tick).
pub const STEP: u64 = 20;
/// The longest any awaited condition may take.
pub const WAIT: Duration = Duration::from_secs(60);
pub const A: usize = 0;
pub const B: usize = 1;

/// The processes of one test, each node with its own data dir under one temporary directory.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub redis: RedisServer,
    pub writer: ServerProcess,
    pub writer_args: Vec<String>,
    /// `None` while an edge is down.
    pub edges: [Option<ServerProcess>; 2],
    pub edge_addrs: [SocketAddr; 2],
    /// Each edge's own settings, beside [`Cluster::edge_args`]'s.
    pub edge_extra: [Vec<String>; 2],
}

impl Cluster {
    /// Redis, the writer (with `writer_extra` settings) and two edges, the edges ready.
    pub async fn start(writer_extra: &[&str]) -> Cluster {
        Cluster::start_with(RedisServer::start(), writer_extra).await
    }

    pub async fn start_with(redis: RedisServer, writer_extra: &[&str]) -> Cluster {
        Cluster::start_with_edges(redis, writer_extra, [&[], &[]]).await
    }

    /// Like [`Cluster::start_with`], each edge with settings of its own (`edge_extra[A]`, `edge_extra[B]`).
    pub async fn start_with_edges(
        redis: RedisServer,
        writer_extra: &[&str],
        edge_extra: [&[&str]; 2],
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut writer_args = settings(&[
            "source.simulator.enabled=false",
            "node.role=writer",
            &format!("stream.redis_url={}", redis.url()),
        ]);
        writer_args.extend(settings(writer_extra));
        let writer = spawn(&dir.path().join("writer"), "127.0.0.1:0", &writer_args);
        let mut cluster = Cluster {
            edge_addrs: [writer.addr; 2],
            dir,
            redis,
            writer,
            writer_args,
            edges: [None, None],
            edge_extra: edge_extra.map(settings),
        };
        for edge in [A, B] {
            cluster.start_edge(edge, "127.0.0.1:0").await;
        }
        cluster
    }

    pub fn edge_args(&self, edge: usize) -> Vec<String> {
        let mut args = settings(&[
            "source.simulator.enabled=false",
            "ingest.enabled=false",
            "node.role=edge",
            &format!("stream.redis_url={}", self.redis.url()),
            &format!("stream.snapshot_url=http://{}", self.writer.internal_addr()),
        ]);
        args.extend(self.edge_extra[edge].iter().cloned());
        args
    }

    pub fn edge_dir(&self, edge: usize) -> PathBuf {
        self.dir.path().join(["edge-a", "edge-b"][edge])
    }

    pub async fn start_edge(&mut self, edge: usize, bind: &str) {
        self.launch_edge(edge, bind);
        wait_until_ready(self.edge(edge)).await;
    }

    /// Starts an edge and returns once it listens, ready or not.
    pub fn launch_edge(&mut self, edge: usize, bind: &str) {
        let process = spawn(&self.edge_dir(edge), bind, &self.edge_args(edge));
        self.edge_addrs[edge] = process.addr;
        self.edges[edge] = Some(process);
    }

    pub fn edge(&self, edge: usize) -> &ServerProcess {
        self.edges[edge].as_ref().expect("the edge is running")
    }

    /// SIGKILL.
    pub fn kill_edge(&mut self, edge: usize) {
        self.edges[edge].take().expect("the edge is running").kill();
    }

    /// Starts a killed edge again on its data dir and address.
    pub async fn restart_edge(&mut self, edge: usize) {
        let addr = self.edge_addrs[edge].to_string();
        self.start_edge(edge, &addr).await;
    }

    /// SIGKILL, then the writer again on its data dir and address (where the edges and the ingest expect it).
    pub fn kill_and_restart_writer(&mut self) {
        self.writer.kill();
        self.restart_writer();
    }

    /// The writer again on its data dir and addresses, public and internal (after [`ServerProcess::kill`]).
    pub fn restart_writer(&mut self) {
        let addr = self.writer.addr.to_string();
        let internal = format!("node.internal_addr=\"{}\"", self.writer.internal_addr());
        let mut args = self.writer_args.clone();
        args.extend(settings(&[&internal]));
        self.writer = spawn(&self.writer_dir(), &addr, &args);
    }

    pub fn writer_dir(&self) -> PathBuf {
        self.dir.path().join("writer")
    }

    /// Waits until the writer has published every group it committed and every running edge has applied
    /// all of them.
    pub async fn wait_until_caught_up(&self) {
        let edges: Vec<&ServerProcess> = self.edges.iter().flatten().collect();
        wait_until(
            "every edge applied every group the writer committed",
            WAIT,
            || async {
                let committed = metric(&self.writer, "kline_stream_committed_seq").await;
                if committed < 1.0
                    || metric(&self.writer, "kline_stream_published_seq").await != committed
                {
                    return false;
                }
                for edge in &edges {
                    if metric(*edge, "kline_stream_applied_seq").await != committed {
                        return false;
                    }
                }
                true
            },
        )
        .await;
    }
}

pub fn settings(pairs: &[&str]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|pair| ["--set".to_owned(), (*pair).to_owned()])
        .collect()
}

pub fn spawn(data_dir: &std::path::Path, bind: &str, args: &[String]) -> ServerProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerProcess::start_on(data_dir, bind, &args)
}

pub async fn wait_until_ready(server: &ServerProcess) {
    let url = server.url("/ready");
    wait_until(&format!("{url} answers 200"), WAIT, || async {
        reqwest::get(&url)
            .await
            .is_ok_and(|response| response.status().is_success())
    })
    .await;
}

/// Events posted to the writer at a steady rate (one per mint every [`TICK`]) until stopped. A batch the
/// writer does not acknowledge (it is down, or died mid-request) is posted again, unchanged, until it is.
pub struct SteadyIngest {
    batches: Arc<AtomicU64>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SteadyIngest {
    pub fn start(writer: &ServerProcess) -> SteadyIngest {
        let (batches, stop) = (Arc::new(AtomicU64::new(0)), CancellationToken::new());
        let task = tokio::spawn(ingest(
            writer.url("/api/v1/events"),
            batches.clone(),
            stop.clone(),
        ));
        SteadyIngest {
            batches,
            stop,
            task,
        }
    }

    /// Waits until `more` batches past the current count are acknowledged.
    pub async fn wait_for_more(&self, more: u64) {
        let target = self.batches.load(Ordering::Acquire) + more;
        wait_until(&format!("{target} batches acknowledged"), WAIT, || async {
            self.batches.load(Ordering::Acquire) >= target
        })
        .await;
    }

    /// Stops after the batch in flight is acknowledged.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("the ingest task");
    }
}

async fn ingest(url: String, batches: Arc<AtomicU64>, stop: CancellationToken) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut market = SimulatedMarket::new(16, MINTS);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        tick.tick().await;
        let now = kline_protocol::response::unix_millis_now();
        let body: String = (0..MINTS)
            .map(|mint| market.next_event_for(mint, now).to_json() + "\n")
            .collect();
        post_until_acknowledged(&http, &url, body).await;
        batches.fetch_add(1, Ordering::AcqRel);
    }
}

async fn post_until_acknowledged(http: &reqwest::Client, url: &str, body: String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let sent = http.post(url).bearer_auth(TOKEN).body(body.clone()).send();
        if let Ok(response) = sent.await {
            let status = response.status();
            assert!(
                status.is_success() || status.is_server_error(),
                "the writer refused a batch: {status}"
            );
            // A 5xx (the writer is shutting down or its queue is full) is retried like a lost connection.
            if status.is_success()
                && let Ok(report) = response.json::<serde_json::Value>().await
            {
                let taken = report["accepted"].as_u64().unwrap_or(0)
                    + report["duplicates"].as_u64().unwrap_or(0);
                assert_eq!(taken, MINTS as u64, "every event is stored once: {report}");
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the writer acknowledged no batch for {WAIT:?}"
        );
        // The writer is down or restarting: try again shortly.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every (mint, interval) the clients follow.
pub fn followed_series() -> Vec<Series> {
    let market = SimulatedMarket::new(16, MINTS);
    market
        .mints()
        .iter()
        .flat_map(|mint| INTERVALS.map(|interval| (mint.clone(), interval)))
        .collect()
}

/// Clients connected to `edges` (one per entry), each following every series, all subscribed.
pub async fn followers_on(cluster: &Cluster, edges: &[usize]) -> Vec<Follower> {
    let mut followers = Vec::new();
    for edge in edges {
        let mut follower = Follower::new(followed_series());
        follower.connect(&cluster.edge(*edge).ws_url()).await;
        followers.push(follower);
    }
    wait_until_subscribed(&followers).await;
    followers
}

pub async fn wait_until_subscribed(followers: &[Follower]) {
    wait_until("every client is subscribed", WAIT, || async {
        followers.iter().all(Follower::is_subscribed)
    })
    .await;
}

/// The candles a server stores for `series` (up to 1000; the test makes far fewer).
pub async fn stored(server: &ServerProcess, (mint, interval): &Series) -> Vec<CandleValues> {
    let url = server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval={interval}&limit=1000"
    ));
    let body = get_json(&url).await;
    let candles: Vec<Candle> = serde_json::from_value(body["data"].clone())
        .unwrap_or_else(|err| panic!("history of {mint} {interval}: {err}: {body}"));
    assert!(candles.len() < 1000, "the test's history fits one page");
    candles.iter().map(candle_values).collect()
}

/// Waits until every client holds exactly the writer's candles of every series it follows, then asserts it
/// (so a timeout shows the first difference).
pub async fn assert_clients_hold_the_writers_history(
    writer: &ServerProcess,
    followers: &[Follower],
) {
    let series = followed_series();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut history = Vec::new();
        for one in &series {
            history.push(stored(writer, one).await);
        }
        assert!(
            history.iter().all(|candles| !candles.is_empty()),
            "every followed series has candles"
        );
        let agree = followers
            .iter()
            .all(|f| series.iter().zip(&history).all(|(s, h)| f.values(s) == *h));
        if agree {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            for (client, follower) in followers.iter().enumerate() {
                for ((mint, interval), want) in series.iter().zip(&history) {
                    let held = follower.values(&(mint.clone(), *interval));
                    assert_eq!(&held, want, "client {client}, {mint} {interval}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every running edge's REST history equals the writer's, in every interval of the followed mints.
pub async fn assert_edges_hold_the_writers_history(cluster: &Cluster) {
    compare_edges_with_the_writer(cluster, |edge, (mint, interval), held, want| {
        assert_eq!(held, want, "edge {edge}: {mint} {interval}");
    })
    .await;
}

/// Every candle the writer holds, each running edge holds the same; an edge may also hold older candles
/// the writer lacks (history a writer restarted on a wiped or restored store lost).
pub async fn assert_edges_hold_every_candle_of_the_writer(cluster: &Cluster) {
    compare_edges_with_the_writer(cluster, |edge, (mint, interval), held, want| {
        for candle in want {
            let same = held.iter().find(|c| c.0 == candle.0);
            assert_eq!(same, Some(candle), "edge {edge}: {mint} {interval}");
        }
    })
    .await;
}

/// Calls `check(edge, series, held, want)` with each running edge's candles and the writer's, for every
/// interval of the followed mints.
async fn compare_edges_with_the_writer(
    cluster: &Cluster,
    check: impl Fn(usize, &Series, &[CandleValues], &[CandleValues]),
) {
    let market = SimulatedMarket::new(16, MINTS);
    for mint in market.mints() {
        for interval in Interval::ALL {
            let series = (mint.clone(), interval);
            let want = stored(&cluster.writer, &series).await;
            assert!(!want.is_empty(), "{mint} {interval} has candles");
            for (edge, process) in cluster.edges.iter().enumerate() {
                let process = process.as_ref().expect("every edge runs at the end");
                check(edge, &series, &stored(process, &series).await, &want);
            }
        }
    }
}

pub async fn stop_all(followers: Vec<Follower>) {
    for mut follower in followers {
        follower.stop().await;
    }
}

/// The `stream` object of a node's `/health`.
pub async fn stream_health(server: &ServerProcess) -> serde_json::Value {
    get_json(&server.url("/health")).await["stream"].clone()
}
