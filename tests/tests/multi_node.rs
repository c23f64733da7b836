//! Issue 16, item 5: one redis-server, a writer and two edges, all real processes. Clients of the edges end
//! with exactly the writer's history, and so does every edge's replica, whatever fails mid-stream:
//! - an edge is SIGKILLed: its clients resume on the other edge with `from`; restarted after the stream
//!   moved past what it missed, it loads a snapshot from the writer and catches up;
//! - Redis is shut down without saving and restarted empty: the writer republishes what the edges miss,
//!   or, when more groups were committed meanwhile than its outbox keeps, the edges load snapshots with
//!   their clients connected;
//! - the writer is SIGKILLed and restarted on its address: the ingest retries the POST that failed (the
//!   writer drops events it already stored, by identity) and the outbox republishes the tail.
//!
//! Events go to the writer at a steady rate from a task. The test waits for conditions (batches posted,
//! `kline_stream_*` metrics, what the clients hold), never for fixed times.

use std::time::Duration;

use kline_tests::cluster::{
    A, B, Cluster, MINTS, STEP, SteadyIngest, WAIT, assert_clients_hold_the_writers_history,
    assert_edges_hold_the_writers_history, followers_on, stop_all, wait_until_subscribed,
};
use kline_tests::redis::RedisServer;
use kline_tests::{KlineServer, metric, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_killed_mid_stream_costs_its_clients_a_reconnect_and_nothing_else() {
    // A short stream (10 groups; small Redis stream nodes so `MAXLEN ~` trims that close): while edge A
    // is down the stream moves past the groups it misses, so on restart it must load a snapshot.
    let redis = RedisServer::start_with(&["--stream-node-max-entries", "4"]);
    let mut cluster = Cluster::start_with(redis, &["stream.max_len=10"]).await;
    let mut followers = followers_on(&cluster, &[A, A, A]).await;
    let ingest = SteadyIngest::start(&cluster.writer);
    ingest.wait_for_more(STEP).await;
    wait_until("every client has live candles", WAIT, || async {
        followers.iter().all(|f| f.candles_held() >= MINTS)
    })
    .await;

    cluster.kill_edge(A);
    let edge_b = cluster.edge(B).ws_url();
    for follower in &mut followers {
        follower.wait_disconnected(Duration::from_secs(10)).await;
        follower.connect(&edge_b).await;
    }
    wait_until_subscribed(&followers).await;
    ingest.wait_for_more(STEP).await;
    ingest.stop().await;

    cluster.restart_edge(A).await;
    cluster.wait_until_caught_up().await;
    assert!(
        metric(cluster.edge(A), "kline_stream_snapshots_loaded").await >= 1.0,
        "edge A came back behind the stream's first group and loaded a snapshot"
    );
    assert_clients_hold_the_writers_history(&cluster.writer, &followers).await;
    assert_edges_hold_the_writers_history(&cluster).await;
    stop_all(followers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_mid_stream_loses_no_update() {
    redis_restarted_empty(Outbox::KeepsTheGap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_after_the_outbox_overflowed_edges_load_snapshots_and_lose_no_update()
{
    redis_restarted_empty(Outbox::Overflows).await;
}

/// Whether the writer's outbox still holds every group committed while Redis was gone.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outbox {
    /// It does (the default `stream.max_len`): the writer republishes exactly what the edges miss.
    KeepsTheGap,
    /// It keeps 10 groups and more are committed during the outage: the edges must load snapshots, with
    /// their clients connected.
    Overflows,
}

async fn redis_restarted_empty(outbox: Outbox) {
    let mut cluster = match outbox {
        Outbox::KeepsTheGap => Cluster::start(&[]).await,
        Outbox::Overflows => {
            let redis = RedisServer::start_with(&["--stream-node-max-entries", "4"]);
            Cluster::start_with(redis, &["stream.max_len=10"]).await
        }
    };
    let followers = followers_on(&cluster, &[A, A, B, B]).await;
    let ingest = SteadyIngest::start(&cluster.writer);
    ingest.wait_for_more(STEP).await;
    // New edges of a writer with nothing committed yet may have loaded its (empty) snapshot at start.
    let mut snapshots_before = [0.0; 2];
    for edge in [A, B] {
        snapshots_before[edge] = metric(cluster.edge(edge), "kline_stream_snapshots_loaded").await;
    }

    cluster.redis.shutdown_nosave();
    // The writer keeps taking events while Redis is gone; its outbox holds them (the newest 10 only when
    // it overflows).
    let backlog = match outbox {
        Outbox::KeepsTheGap => 1.0,
        Outbox::Overflows => 11.0,
    };
    ingest.wait_for_more(STEP).await;
    wait_until(
        &format!("the writer committed {backlog} groups Redis never acknowledged"),
        WAIT,
        || async {
            let writer = &cluster.writer;
            metric(writer, "kline_stream_committed_seq").await
                - metric(writer, "kline_stream_published_seq").await
                >= backlog
        },
    )
    .await;
    cluster.redis.restart();
    ingest.wait_for_more(STEP).await;
    ingest.stop().await;

    cluster.wait_until_caught_up().await;
    for edge in [A, B] {
        let snapshots = metric(cluster.edge(edge), "kline_stream_snapshots_loaded").await
            - snapshots_before[edge];
        match outbox {
            Outbox::KeepsTheGap => assert_eq!(
                snapshots, 0.0,
                "the writer republished what Redis lost: edge {edge} needed no snapshot"
            ),
            Outbox::Overflows => assert!(
                snapshots >= 1.0,
                "the stream restarted past edge {edge}'s groups: it loaded a snapshot"
            ),
        }
    }
    assert_clients_hold_the_writers_history(&cluster.writer, &followers).await;
    assert_edges_hold_the_writers_history(&cluster).await;
    stop_all(followers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_killed_and_restarted_mid_stream_loses_its_edges_clients_no_update() {
    // A batch that failed while the writer was down arrives a few seconds late: a finality grace longer
    // than the restart keeps its s1 candle open, so the correction is pushed live as for any event.
    let mut cluster = Cluster::start(&["kline.finality_grace_ms=30000"]).await;
    let followers = followers_on(&cluster, &[A, A, B, B]).await;
    let ingest = SteadyIngest::start(&cluster.writer);
    ingest.wait_for_more(STEP).await;

    cluster.kill_and_restart_writer();
    ingest.wait_for_more(STEP).await;
    ingest.stop().await;

    cluster.wait_until_caught_up().await;
    assert_clients_hold_the_writers_history(&cluster.writer, &followers).await;
    assert_edges_hold_the_writers_history(&cluster).await;
    stop_all(followers).await;
}

/// The names of `market`'s mints as a node serves them: `GET /api/v1/symbols` on every role;
/// `connection_success.symbol_names` and the ticker snapshot where clients connect (`with_push`).
async fn assert_serves_names(server: &ServerProcess, market: &SimulatedMarket, with_push: bool) {
    use kline_protocol::{ClientRequest, ServerPayload, SubscribeTickersRequest};
    let expected: Vec<(String, String, String)> = (0..market.mints().len())
        .map(|index| {
            let name = market.token_name(index);
            (
                market.mints()[index].to_string(),
                name.ticker.unwrap().as_str().to_owned(),
                name.name.unwrap().as_str().to_owned(),
            )
        })
        .collect();
    let list = get_json(&server.url("/api/v1/symbols")).await;
    for (mint, ticker, name) in &expected {
        let entry = list
            .as_array()
            .and_then(|list| list.iter().find(|e| e["symbol"] == mint.as_str()))
            .unwrap_or_else(|| panic!("{mint} is not listed: {list}"));
        assert_eq!((&entry["ticker"], &entry["name"]), (&ticker.as_str().into(), &name.as_str().into()));
    }
    if !with_push {
        return;
    }
    let mut client = kline_tests::ws::Client::connect(&server.ws_url()).await;
    let ServerPayload::ConnectionSuccess(hello) = client.recv().await.payload else {
        panic!("connection_success first");
    };
    client
        .send(&ClientRequest::SubscribeTickers(SubscribeTickersRequest::new()))
        .await;
    let snapshot = loop {
        if let ServerPayload::TickersSnapshot(snapshot) = client.recv().await.payload {
            break snapshot;
        }
    };
    for (mint, ticker, name) in &expected {
        let named = hello
            .symbol_names
            .iter()
            .find(|n| n.symbol.as_str() == mint)
            .unwrap_or_else(|| panic!("{mint} not in connection_success: {hello:?}"));
        assert_eq!(named.ticker.as_ref().map(|t| t.as_str()), Some(ticker.as_str()));
        assert_eq!(named.name.as_ref().map(|t| t.as_str()), Some(name.as_str()));
        let listed = snapshot
            .data
            .iter()
            .find(|t| t.symbol.as_str() == mint)
            .unwrap_or_else(|| panic!("{mint} not in the ticker snapshot: {snapshot:?}"));
        assert_eq!(listed.name.as_ref().map(|t| t.as_str()), Some(name.as_str()));
    }
}

/// Issue 26: token names reach the edges through the stream and through a snapshot, and survive the
/// restart of an edge and of the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_names_reach_the_edges_by_stream_and_snapshot_and_survive_restarts() {
    // A short stream (see the first test), so an edge that starts again from nothing after more groups
    // must load a snapshot.
    let redis = RedisServer::start_with(&["--stream-node-max-entries", "4"]);
    let mut cluster = Cluster::start_with(redis, &["stream.max_len=10"]).await;
    let mut market = SimulatedMarket::new(26, 2);
    let now = kline_protocol::response::unix_millis_now();
    let mut events: Vec<_> = (0..2).map(|i| market.token_created(i, now - 2000)).collect();
    events.extend((0..2).map(|i| market.next_event_for(i, now - 1000)));
    let body: String = events.iter().map(|e| e.to_json() + "\n").collect();
    let (status, report) = kline_tests::post_events(&cluster.writer, body).await;
    assert_eq!((status, report["accepted"].as_u64()), (200, Some(4)), "{report}");
    cluster.wait_until_caught_up().await;
    assert_serves_names(&cluster.writer, &market, false).await;
    for edge in [A, B] {
        assert_serves_names(cluster.edge(edge), &market, true).await;
    }

    // Edge B starts again from nothing once the stream has moved on: it loads a snapshot, which carries
    // the names.
    cluster.kill_edge(B);
    std::fs::remove_dir_all(cluster.edge_dir(B)).unwrap();
    for step in 0..20 {
        let event = market.next_event_for(step % 2, kline_protocol::response::unix_millis_now());
        let (status, report) = kline_tests::post_events(&cluster.writer, event.to_json()).await;
        assert_eq!(status, 200, "{report}");
    }
    cluster.restart_edge(B).await;
    cluster.wait_until_caught_up().await;
    assert!(metric(cluster.edge(B), "kline_stream_snapshots_loaded").await >= 1.0);
    assert_serves_names(cluster.edge(B), &market, true).await;

    // Edge A keeps them in its replica, the writer in its store.
    cluster.kill_edge(A);
    cluster.restart_edge(A).await;
    cluster.kill_and_restart_writer();
    wait_until_ready(&cluster.writer).await;
    cluster.wait_until_caught_up().await;
    assert_serves_names(&cluster.writer, &market, false).await;
    assert_serves_names(cluster.edge(A), &market, true).await;
}
