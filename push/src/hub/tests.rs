//! The hub with a real store, a real pipeline and real loopback sockets: a stalled shard catches up.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use kline_protocol::{Interval, ServerMessage, ServerPayload};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::*;
use crate::websocket::outbox::Outbox;
use kline_core::aggregator::CandleKey;
use kline_core::simulated_market::SimulatedMarket;
use kline_pipeline::{Pipeline, PipelineSettings};
use kline_store::HistoryQuery;
use kline_store::test_support::candle;

const T0_MS: i64 = 1_764_000_000_000;

/// A client's end of a loopback socket whose server end is an outbox; reads server frames as a client.
pub(crate) async fn connected(
    stats: &Arc<PushStats>,
) -> (Arc<Outbox>, WebSocketStream<tokio::net::TcpStream>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let outbox = Arc::new(Outbox::new(server, 1024, 64 << 20, stats.clone()));
    // The connection's writer, as a connection task runs it: it writes what the socket could not take.
    let writing = outbox.clone();
    tokio::spawn(async move {
        let settings = crate::websocket::writer::WriterSettings {
            ping_every: Some(Duration::from_secs(3600)),
            write_timeout: Duration::from_secs(10),
            min_drain_bytes_per_sec: 1,
        };
        crate::websocket::writer::run(&writing, &settings).await
    });
    let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
    (outbox, client)
}

/// Hub shards on `feed`'s inboxes over `store`, with a re-read page of `resync_page` candles.
fn start_hub(
    feed: &CandleFeed,
    store: &Arc<CandleStore>,
    stats: &Arc<PushStats>,
    shutdown: &CancellationToken,
    resync_page: usize,
) -> (Hub, Vec<std::thread::JoinHandle<()>>) {
    let settings = HubSettings {
        queue_capacity: 64,
        final_hold: Duration::from_millis(200),
        resync_page,
    };
    spawn(
        feed,
        store.clone(),
        settings,
        stats.clone(),
        shutdown.clone(),
    )
}

/// Per candle time of one series: the states a client received, in order.
type Received = BTreeMap<i64, Vec<(u32, bool)>>;

/// Reads `client` until it holds a final state of every candle in `expected`; panics after 20 s.
async fn read_until_final(
    client: &mut WebSocketStream<tokio::net::TcpStream>,
    expected: &BTreeMap<(SeriesId, i64), (u32, bool)>,
) -> BTreeMap<SeriesId, Received> {
    let mut received: BTreeMap<SeriesId, Received> = BTreeMap::new();
    let all_final = |received: &BTreeMap<SeriesId, Received>| {
        expected.keys().all(|(series, time)| {
            received
                .get(series)
                .and_then(|candles| candles.get(time))
                .is_some_and(|states| states.iter().any(|(_, is_final)| *is_final))
        })
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !all_final(&received) {
        let Ok(next) = tokio::time::timeout_at(deadline, client.next()).await else {
            let missing: Vec<_> = expected
                .keys()
                .filter(|(series, time)| {
                    !received
                        .get(series)
                        .and_then(|candles| candles.get(time))
                        .is_some_and(|states| states.iter().any(|(_, is_final)| *is_final))
                })
                .map(|(series, time)| (series.1, *time))
                .collect();
            panic!("{} finals never arrived: {missing:?}", missing.len());
        };
        let Some(Ok(Message::Text(text))) = next else {
            panic!("the client got {next:?} instead of updates");
        };
        let ServerPayload::KlineData(update) = ServerMessage::parse(&text).unwrap().payload else {
            panic!("not an update: {text}");
        };
        let series = (update.symbol.to_bytes(), update.interval);
        received
            .entry(series)
            .or_default()
            .entry(update.data.time)
            .or_default()
            .push((update.data.update_count, update.data.is_final));
    }
    received
}

/// Three clients on one shard, which is stalled while two minutes of events (two mints, two intervals)
/// are written and every candle becomes final; then it resumes. With an inbox that holds `capacity`
/// candles, every client must end with exactly the store's candles: the newest state of each, each final
/// once, no older state after a newer one, and nobody closed.
async fn stalled_shard_catches_up(capacity: usize) -> Arc<PushStats> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let feed = CandleFeed::new(1, capacity);
    let intervals = [Interval::S1, Interval::S15];
    let settings = PipelineSettings {
        intervals: intervals.to_vec(),
        finality_grace_ms: 2000,
        price_scale_decimals: 28,
    };
    let mut pipeline =
        Pipeline::open(store.clone(), settings, feed.clone(), Arc::default()).unwrap();
    let stats = Arc::new(PushStats::default());
    let shutdown = CancellationToken::new();
    let (hub, threads) = start_hub(&feed, &store, &stats, &shutdown, 500);
    let mut market = SimulatedMarket::new(2, 7);
    let all_series: Vec<SeriesKey> = market
        .mints()
        .iter()
        .flat_map(|mint| intervals.map(|interval| (mint.clone(), interval)))
        .collect();
    let mut clients = Vec::new();
    for conn in 0..3 {
        let (outbox, client) = connected(&stats).await;
        for series in &all_series {
            hub.subscribe(conn, series.clone(), Subscriber::WebSocket(outbox.clone()))
                .await;
        }
        clients.push((outbox, client));
    }

    // A few updates flow before the stall, so the stall starts mid-candle.
    for i in 0..8 {
        let at = T0_MS + i * 250;
        pipeline
            .ingest(&[vec![market.next_event_for(0, at)]], at + 10)
            .unwrap();
    }
    let resume = hub.pause_shard_of(0).await;
    for i in 8..480 {
        let at = T0_MS + i * 250;
        let event = market.next_event_for((i % 2) as usize, at);
        pipeline.ingest(&[vec![event]], at + 10).unwrap();
    }
    pipeline.finalize(T0_MS + 200_000).unwrap();
    drop(resume);

    let mut expected = BTreeMap::new();
    for (symbol, interval) in &all_series {
        let page = store
            .history(
                &symbol.to_bytes(),
                *interval,
                HistoryQuery {
                    from: None,
                    to: None,
                    limit: 1000,
                },
            )
            .unwrap();
        for candle in page.candles {
            assert!(candle.is_final);
            expected.insert(
                ((symbol.to_bytes(), *interval), candle.time),
                (candle.update_count, candle.is_final),
            );
        }
    }
    // Up to 2 mints × (120 s1 + 8 s15) candles: a few seconds have no price event (other event kinds).
    assert!(expected.len() > 200, "{} candles", expected.len());
    for (outbox, client) in &mut clients {
        let received = read_until_final(client, &expected).await;
        for ((series, time), stored) in &expected {
            let states = &received[series][time];
            assert_eq!(states.last(), Some(stored), "the last state is the store's");
            assert_eq!(
                states.iter().filter(|(_, is_final)| *is_final).count(),
                1,
                "candle {time}: final exactly once ({states:?})"
            );
            assert!(
                states.windows(2).all(|pair| pair[0] < pair[1]),
                "candle {time}: never an older state after a newer one ({states:?})"
            );
        }
        assert!(!outbox.is_closed(), "nobody is closed for the shard's lag");
    }
    shutdown.cancel();
    for thread in threads {
        thread.join().unwrap();
    }
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_shard_with_room_skips_intermediate_states_and_delivers_every_final_once() {
    let stats = stalled_shard_catches_up(100_000).await;
    assert!(stats.feed_coalesced.get() > 0);
    assert_eq!(stats.feed_lagged.get(), 0);
    assert_eq!(stats.slow_client_closes.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_shard_whose_inbox_overflows_catches_up_from_the_store() {
    let stats = stalled_shard_catches_up(8).await;
    assert!(
        stats.feed_lagged.get() > 0,
        "the inbox overflowed and series were re-read"
    );
    assert_eq!(stats.slow_client_closes.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_after_a_snapshot_delivers_every_candle_however_long_the_lag() {
    const LAG: i64 = 2_500;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let feed = CandleFeed::new(1, 100);
    let stats = Arc::new(PushStats::default());
    let shutdown = CancellationToken::new();
    let page = kline_config::Config::defaults().websocket.hub_resync_page;
    let (hub, threads) = start_hub(&feed, &store, &stats, &shutdown, page);
    let mint = [9; 32];
    let series: SeriesId = (mint, Interval::S1);
    let (outbox, mut client) = connected(&stats).await;
    let key = (Symbol::from_bytes(&mint), Interval::S1);
    hub.subscribe(1, key, Subscriber::WebSocket(outbox.clone()))
        .await;

    // What an edge's snapshot wrote: 2,500 s1 candles the hub never saw, each final.
    let t0 = T0_MS / 1000;
    let mut batch = store.batch();
    let mut expected = BTreeMap::new();
    for time in t0..t0 + LAG {
        let mut state = candle(time, 1);
        state.is_final = true;
        let candle_key = CandleKey {
            mint,
            interval: Interval::S1,
            time,
        };
        batch.put_candle(&candle_key, &state);
        expected.insert((series, time), (1, true));
    }
    store.write(batch).unwrap();
    feed.resync(&[(series, t0)].into());

    let received = read_until_final(&mut client, &expected).await;
    assert_eq!(
        received[&series].len(),
        LAG as usize,
        "every candle of the lag, none more"
    );
    assert!(!outbox.is_closed());
    assert_eq!(stats.feed_lagged.get(), 1, "one resync, read in pages");
    shutdown.cancel();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// A final of the s1 series of mint `n` at `time`.
fn final_of(n: u8, time: i64) -> Arc<CandleUpdate> {
    Arc::new(CandleUpdate::new(
        Symbol::from_bytes(&[n; 32]),
        Interval::S1,
        kline_protocol::Candle::new(time, [1.0; 4], 1, true),
        0,
        None,
        false,
    ))
}

#[tokio::test(start_paused = true)]
async fn due_finals_go_a_few_series_per_round_and_the_rest_ride_with_their_next_update() {
    let mut held = HeldFinals::new(Duration::from_millis(200));
    let series: Vec<SeriesId> = (1..=6u8).map(|n| final_of(n, 0).series()).collect();
    for (n, id) in (1..=6u8).zip(&series) {
        assert!(held.hold(*id, vec![final_of(n, 0)]).is_none(), "held");
    }
    let due_at = Instant::now() + Duration::from_millis(200);
    assert_eq!(held.next_due(), Some(due_at));
    assert!(
        held.take_due(due_at - Duration::from_millis(1), 4)
            .is_empty(),
        "not due yet"
    );

    let first: Vec<SeriesId> = held
        .take_due(due_at, 4)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(first, series[..4], "oldest first, at most 4");
    // Series 5 gets an update before the next round: its final goes with it, not on its own.
    assert_eq!(held.take(&series[4]).len(), 1);
    let rest: Vec<SeriesId> = held
        .take_due(due_at, 4)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(rest, [series[5]]);
    assert_eq!(held.next_due(), None, "nothing left");
}
