//! The stream end to end in one process, against a real `redis-server` (skipped with a message when the
//! binary is missing): a writer's pipeline with its outbox and publisher, and edge replicas that must end
//! with the writer's candles, trades and symbols — through a Redis restart that loses everything, and
//! through a snapshot when the stream no longer reaches back. [`breaks`]: a gap in mid-read, a stalled
//! snapshot source.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kline_protocol::Interval;
use tokio_util::sync::CancellationToken;

use super::redis::Entry;
use super::{publisher, replica, snapshot};
use kline_config::{Config, StreamConfig};
use kline_core::simulated_market::SimulatedMarket;
use kline_pipeline::feed::CandleFeed;
use kline_pipeline::stats::PipelineStats;
use kline_pipeline::{Pipeline, PipelineSettings};
use kline_store::replication::outbox::Outbox;
use kline_store::replication::{ReadinessPolicy, StreamStatus};
use kline_store::{CandleStore, HistoryQuery};

mod breaks;

const T0_MS: i64 = 1_764_000_000_000;

struct Redis {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut redis = Redis {
            port,
            child: None,
            dir: tempfile::tempdir().ok()?,
        };
        redis.spawn().then_some(redis)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!("redis-server is not installed; skipping");
            return false;
        };
        self.child = Some(child);
        wait_for("redis answers", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        true
    }

    /// Stops Redis without saving (its data is gone) and starts it again, empty, on the same port.
    fn restart_empty(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(self.spawn());
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stream_config(redis: &Redis, snapshot_url: String) -> StreamConfig {
    StreamConfig {
        redis_url: redis.url(),
        snapshot_url,
        reconnect_min_ms: 20,
        reconnect_max_ms: 200,
        ..Config::defaults().stream
    }
}

struct Edge {
    _dir: tempfile::TempDir,
    store: Arc<CandleStore>,
    status: Arc<StreamStatus>,
}

fn start_edge(config: StreamConfig, feed: CandleFeed, shutdown: &CancellationToken) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let status = Arc::new(StreamStatus::default());
    replica::spawn(
        store.clone(),
        feed,
        config,
        status.clone(),
        shutdown.child_token(),
    );
    Edge {
        _dir: dir,
        store,
        status,
    }
}

/// A writer's pipeline: its store, its outbox, no readers of its feed.
fn writer_pipeline(
    store: &Arc<CandleStore>,
    outbox: Outbox,
    intervals: Vec<Interval>,
    finality_grace_ms: u64,
) -> Pipeline {
    let settings = PipelineSettings {
        intervals,
        finality_grace_ms,
        price_scale_decimals: 28,
    };
    Pipeline::open(
        store.clone(),
        settings,
        CandleFeed::unread(),
        Arc::new(PipelineStats::default()),
    )
    .unwrap()
    .with_outbox(outbox)
}

/// Every series' candles, the symbols and every mint's trades, as comparable values.
fn contents(store: &CandleStore, market: &SimulatedMarket) -> Vec<String> {
    let mut out = Vec::new();
    for mint in market.mints() {
        let mint = mint.to_bytes();
        for interval in [Interval::S1, Interval::M1] {
            let query = HistoryQuery {
                from: None,
                to: None,
                limit: 100_000,
            };
            out.push(format!(
                "{:?}",
                store.history(&mint, interval, query).unwrap()
            ));
        }
        out.push(format!("{:?}", store.trades(&mint, None, 100_000).unwrap()));
    }
    out.push(format!("{:?}", store.symbols().unwrap()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_end_with_the_writers_data_through_a_redis_restart_and_a_snapshot() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let shutdown = CancellationToken::new();
    let writer_dir = tempfile::tempdir().unwrap();
    let writer = Arc::new(CandleStore::open_at(writer_dir.path(), false, 64).unwrap());
    let status = Arc::new(StreamStatus::default());
    let outbox = Outbox::open(&writer, 1000, status.clone()).unwrap();
    let committed = outbox.committed();
    let mut pipeline = writer_pipeline(&writer, outbox, vec![Interval::S1, Interval::M1], 0);
    // The writer's snapshot endpoint, on a loopback port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let snapshot_url = format!("http://{}", listener.local_addr().unwrap());
    let routes = snapshot::routes(snapshot::SnapshotService::new(
        writer.clone(),
        Default::default(),
        2,
        Duration::from_secs(30),
    ));
    tokio::spawn(async move { axum::serve(listener, routes).await });
    let config = stream_config(&redis, snapshot_url);
    tokio::spawn(publisher::run(
        writer.clone(),
        config.clone(),
        committed,
        status.clone(),
        shutdown.child_token(),
    ));
    // Edge A's trade feed watches the first mint, as its trade hub would for a subscriber.
    let mut market = SimulatedMarket::new(11, 3);
    let watched = market.mints()[0].to_bytes();
    let feed_a = CandleFeed::new(1, 100_000);
    feed_a.trades().watch(watched);

    let mut ingest = |from: i64, count: i64| {
        for i in from..from + count {
            let events = vec![market.next_event(T0_MS + i * 700)];
            pipeline.ingest(&[events], T0_MS + i * 700).unwrap();
        }
    };
    ingest(0, 150);
    // Edge A starts once the stream holds group 1, so it reads every group from the stream (a new edge that
    // finds the stream empty loads a snapshot first: the writer may hold what the stream lost).
    wait_until("the first group is published", || {
        status.published_seq.get() >= 1
    })
    .await;
    let edge_a = start_edge(config.clone(), feed_a.clone(), &shutdown);
    let caught_up = |edge: &Edge| edge.status.applied_seq.get() == status.committed_seq.get();
    wait_until("edge A applied the first groups", || caught_up(&edge_a)).await;
    assert!(status.committed_seq.get() >= 150);

    // Redis loses everything: the publisher republishes the outbox, edge A reads on after what it has.
    redis.restart_empty();
    ingest(150, 100);
    wait_until("edge A applied the groups after the restart", || {
        caught_up(&edge_a)
    })
    .await;
    assert_eq!(status.published_seq.get(), status.committed_seq.get());

    // A stream that no longer reaches back to group 1: a new edge loads a snapshot, then reads on.
    let mut raw = redis::Client::open(config.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("XTRIM")
        .arg(&config.key)
        .arg("MAXLEN")
        .arg(10)
        .query_async(&mut raw)
        .await
        .unwrap();
    let edge_b = start_edge(config.clone(), CandleFeed::unread(), &shutdown);
    ingest(250, 50);
    wait_until("edge B caught up", || caught_up(&edge_b)).await;
    wait_until("edge A caught up", || caught_up(&edge_a)).await;
    assert_eq!(edge_b.status.snapshots_loaded.get(), 1);
    // Edge A timed the hop of every group it applied from the stream (all of them: it never needed a
    // snapshot).
    let (_, hops, _) = edge_a.status.hop.buckets_seconds();
    assert_eq!(hops, status.committed_seq.get() as u64);
    assert_eq!(edge_a.status.snapshots_loaded.get(), 0);
    let in_step = ReadinessPolicy {
        max_lag_groups: 0,
        ..ReadinessPolicy::of(&config)
    };
    assert!(edge_a.status.readiness(&in_step).is_ok() && edge_b.status.readiness(&in_step).is_ok());

    let market = SimulatedMarket::new(11, 3);
    let expected = contents(&writer, &market);
    assert!(
        expected.iter().any(|series| series.len() > 1000),
        "the writer holds data"
    );
    assert_eq!(contents(&edge_a.store, &market), expected, "edge A");
    assert_eq!(contents(&edge_b.store, &market), expected, "edge B");
    // Redis loses everything while the writer is idle: the publisher notices on its own (no commit
    // follows) and republishes, so a new edge without a snapshot source still ends with everything.
    redis.restart_empty();
    let no_snapshots = StreamConfig {
        snapshot_url: String::new(),
        ..config.clone()
    };
    let edge_c = start_edge(no_snapshots, CandleFeed::unread(), &shutdown);
    wait_until("edge C caught up from the republished stream", || {
        caught_up(&edge_c)
    })
    .await;
    assert_eq!(edge_c.status.snapshots_loaded.get(), 0);
    assert_eq!(contents(&edge_c.store, &market), expected, "edge C");

    // Every trade of the watched mint reached edge A's trade feed once, in order; no other mint's.
    let live: Vec<_> = feed_a
        .trades()
        .drain()
        .trades
        .into_iter()
        .map(|trade| trade.trade.id.clone())
        .collect();
    let stored: Vec<_> = writer
        .trades(&watched, None, 100_000)
        .unwrap()
        .trades
        .into_iter()
        .rev()
        .map(|trade| trade.id)
        .collect();
    assert!(stored.len() > 50);
    assert_eq!(live, stored);
    shutdown.cancel();
}

/// What every edge reads from Redis: the records of `fanout`-sized groups (5 events, 9 intervals) are at
/// least twice smaller deflated than their borsh, and decode to what the pipeline wrote.
#[test]
fn records_are_stored_and_streamed_deflated() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 256).unwrap());
    let outbox = Outbox::open(&store, 1000, Arc::new(StreamStatus::default())).unwrap();
    let mut pipeline = writer_pipeline(&store, outbox, Interval::ALL.to_vec(), 2000);
    let mut market = SimulatedMarket::new(4, 100);
    for group in 0..50 {
        let events: Vec<_> = (0..5)
            .map(|i| market.next_event(T0_MS + group * 1000 + i))
            .collect();
        pipeline.ingest(&[events], T0_MS + group * 1000).unwrap();
    }
    let records = store.outbox_from(1, usize::MAX, usize::MAX).unwrap();
    assert_eq!(records.len(), 50);
    let (mut deflated, mut plain) = (0, 0);
    for (seq, bytes) in &records {
        let record = kline_store::replication::record::GroupRecord::decode(bytes).unwrap();
        assert_eq!(record.seq, *seq);
        assert_eq!(record.trades.len(), 5);
        assert!(record.candles.len() >= Interval::ALL.len());
        deflated += bytes.len();
        plain += borsh::to_vec(&record).unwrap().len();
    }
    assert!(
        deflated * 2 < plain,
        "records of 5 events: {deflated} bytes deflated, {plain} in borsh"
    );
}

/// Edge apply throughput without Redis in between: 100,000 events through a writer's pipeline, then its
/// outbox records applied to a replica in reads of `stream.read_count`.
/// `cargo test --release --workspace --lib measure_apply -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a test"]
fn measure_apply_rate() {
    let writer_dir = tempfile::tempdir().unwrap();
    let writer = Arc::new(CandleStore::open_at(writer_dir.path(), false, 256).unwrap());
    let status = Arc::new(StreamStatus::default());
    // fanout's shape by default (1,000 events/s committed in groups of ~5); `KLINE_GROUP_EVENTS=4000` is
    // ingest at full speed (groups of up to pipeline.max_batch_events).
    let group_events: i64 = std::env::var("KLINE_GROUP_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let groups = (100_000 / group_events) as u64;
    let outbox = Outbox::open(&writer, groups, status.clone()).unwrap();
    let mut pipeline = writer_pipeline(&writer, outbox, Interval::ALL.to_vec(), 2000);
    let mut market = SimulatedMarket::new(3, 100);
    for group in 0..groups as i64 {
        let events: Vec<_> = (0..group_events)
            .map(|i| market.next_event(T0_MS + group * group_events + i))
            .collect();
        pipeline
            .ingest(&[events], T0_MS + group * group_events)
            .unwrap();
    }
    let records = writer.outbox_from(1, usize::MAX, usize::MAX).unwrap();
    let bytes: usize = records.iter().map(|(_, r)| r.len()).sum();
    let groups_read = records.len();
    if let Ok(path) = std::env::var("KLINE_DUMP_RECORD") {
        std::fs::write(path, &records[records.len() / 2].1).unwrap();
    }
    let edge_dir = tempfile::tempdir().unwrap();
    let edge = Arc::new(CandleStore::open_at(edge_dir.path(), false, 256).unwrap());
    let mut replica = super::apply::Replica::open(
        edge,
        CandleFeed::unread(),
        Arc::new(StreamStatus::default()),
    )
    .unwrap();
    let started = Instant::now();
    let mut written = 0;
    let entries: Vec<Entry> = records
        .into_iter()
        .map(|(seq, record)| Entry {
            seq,
            epoch: 0,
            record,
        })
        .collect();
    for read in entries.chunks(Config::defaults().stream.read_count) {
        written += replica.apply(read).unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{} groups, {written} candle states, {:.0} B/record: applied in {elapsed:.2} s = {:.0} candle updates/s, {:.0} groups/s",
        groups_read,
        bytes as f64 / groups_read as f64,
        written as f64 / elapsed,
        groups_read as f64 / elapsed
    );
}
