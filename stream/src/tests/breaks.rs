//! Edges facing a stream that does not simply continue their replica, against a real `redis-server`: a gap
//! in the middle of one read, and a snapshot source that stalls. The stream is written by hand from a
//! writer's outbox, so each test chooses exactly which groups it holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::StreamExt;
use kline_protocol::Interval;
use tokio_util::sync::CancellationToken;

use super::{Redis, T0_MS, contents, start_edge, stream_config, wait_until, writer_pipeline};
use crate::redis::RedisStream;
use crate::snapshot;
use kline_config::StreamConfig;
use kline_core::simulated_market::SimulatedMarket;
use kline_pipeline::feed::CandleFeed;
use kline_store::CandleStore;
use kline_store::replication::ReadinessPolicy;
use kline_store::replication::StreamStatus;
use kline_store::replication::epoch;
use kline_store::replication::outbox::Outbox;

const SEED: u64 = 21;
const MINTS: usize = 3;

/// A writer's store with `groups` committed groups (one event each) in its outbox, not published.
struct Writer {
    _dir: tempfile::TempDir,
    store: Arc<CandleStore>,
    epoch: u64,
}

impl Writer {
    fn with_groups(groups: i64) -> Writer {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
        let outbox = Outbox::open(&store, 1000, Arc::new(StreamStatus::default())).unwrap();
        let mut pipeline = writer_pipeline(&store, outbox, vec![Interval::S1, Interval::M1], 0);
        let mut market = SimulatedMarket::new(SEED, MINTS);
        for i in 0..groups {
            let events = vec![market.next_event(T0_MS + i * 700)];
            pipeline.ingest(&[events], T0_MS + i * 700).unwrap();
        }
        let epoch = epoch::open_writer(&store).unwrap();
        Writer {
            _dir: dir,
            store,
            epoch,
        }
    }

    /// Appends the outbox's groups that `keep` selects to the stream, under the writer's epoch.
    async fn publish_only(&self, config: &StreamConfig, keep: impl Fn(u64) -> bool) {
        let records: Vec<_> = self
            .store
            .outbox_from(1, usize::MAX, usize::MAX)
            .unwrap()
            .into_iter()
            .filter(|(seq, _)| keep(*seq))
            .collect();
        let mut stream = RedisStream::connect(config, &CancellationToken::new())
            .await
            .unwrap();
        stream.append(&records, self.epoch).await.unwrap();
    }

    /// `GET /internal/snapshot` of the writer's store.
    fn snapshot_routes(&self) -> Router {
        let service = snapshot::SnapshotService::new(
            self.store.clone(),
            Default::default(),
            2,
            std::time::Duration::from_secs(30),
        );
        snapshot::routes(service)
    }

    fn contents(&self) -> Vec<String> {
        contents(&self.store, &SimulatedMarket::new(SEED, MINTS))
    }
}

/// Serves `router` on a loopback port; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_middle_of_a_read_applies_what_continues_then_loads_a_snapshot() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let shutdown = CancellationToken::new();
    let writer = Writer::with_groups(40);
    let snapshot_url = serve(writer.snapshot_routes()).await;
    let config = stream_config(&redis, snapshot_url);
    // Groups 4 and 5 never reached the stream (the outbox overflowed while Redis was away, say): a new
    // edge's first read brings 1–3 and 6–40 at once.
    writer
        .publish_only(&config, |seq| !(4..=5).contains(&seq))
        .await;
    let edge = start_edge(config.clone(), CandleFeed::unread(), &shutdown);
    wait_until("the edge holds group 40", || {
        edge.status.applied_seq.get() == 40
    })
    .await;
    assert_eq!(edge.status.snapshots_loaded.get(), 1);
    // Groups 1–3 were applied from that read (each one's hop is timed), the rest came with the snapshot.
    let (_, hops, _) = edge.status.hop.buckets_seconds();
    assert_eq!(hops, 3);
    assert_eq!(edge.status.epoch(), writer.epoch);
    assert_eq!(
        contents(&edge.store, &SimulatedMarket::new(SEED, MINTS)),
        writer.contents()
    );
    let in_step = ReadinessPolicy {
        max_lag_groups: 0,
        ..ReadinessPolicy::of(&config)
    };
    wait_until("the edge is ready", || {
        edge.status.readiness(&in_step).is_ok()
    })
    .await;
    shutdown.cancel();
}

/// A snapshot source that stalls: the first request gets no answer at all, the second its headers and two
/// bytes of body, then nothing; later ones the real snapshot of `upstream`.
struct StallingSource {
    requests: AtomicUsize,
    upstream: String,
}

async fn stalling_snapshot(State(source): State<Arc<StallingSource>>) -> Response {
    match source.requests.fetch_add(1, Ordering::SeqCst) {
        0 => std::future::pending().await,
        1 => {
            let start = futures_util::stream::once(async { Ok(Bytes::from_static(&[64, 0])) });
            let body =
                start.chain(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
            Body::from_stream(body).into_response()
        }
        _ => {
            let url = format!("{}/internal/snapshot", source.upstream);
            let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
            body.into_response()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_snapshot_download_times_out_and_is_retried() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let shutdown = CancellationToken::new();
    let writer = Writer::with_groups(20);
    let upstream = serve(writer.snapshot_routes()).await;
    let source = Arc::new(StallingSource {
        requests: AtomicUsize::new(0),
        upstream,
    });
    let stalling = Router::new()
        .route("/internal/snapshot", get(stalling_snapshot))
        .with_state(source.clone());
    let config = StreamConfig {
        snapshot_read_timeout_ms: 300,
        ..stream_config(&redis, serve(stalling).await)
    };
    // The stream was trimmed past group 1: a new edge needs a snapshot.
    writer.publish_only(&config, |seq| seq > 10).await;
    let edge = start_edge(config, CandleFeed::unread(), &shutdown);
    wait_until("the edge holds group 20", || {
        edge.status.applied_seq.get() == 20
    })
    .await;
    assert_eq!(
        edge.status.snapshot_failures.get(),
        2,
        "two stalls, two retries"
    );
    assert_eq!(source.requests.load(Ordering::SeqCst), 3);
    assert_eq!(edge.status.snapshots_loaded.get(), 1);
    assert_eq!(
        contents(&edge.store, &SimulatedMarket::new(SEED, MINTS)),
        writer.contents()
    );
    shutdown.cancel();
}
