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
