//! Issue 24, items 2 and 4: what a load balancer and the edges see when a node comes back, Redis hangs, or
//! the writer loses its store. One redis-server, a writer and two edges, all real processes; every step
//! waits for a condition (batches posted, `/ready`, `/health`, `kline_stream_*` metrics), never a fixed time.
//! - a restarted edge far behind the stream is not ready until it has read how far behind it is, and then
//!   not before it is within `stream.max_lag_groups` — polled from the moment it listens;
//! - Redis stopped with SIGSTOP: both edges report how stale they are; the one with
//!   `stream.stale_policy = "unready"` leaves the load balancer, the one with `"serve"` stays; both recover
//!   after SIGCONT and end with the writer's history;
//! - the writer restarted on a wiped store, or on a backup older than the stream: it starts a new epoch,
//!   the edges load a snapshot, and its new groups reach them.

use kline_tests::cluster::{
    A, B, Cluster, STEP, SteadyIngest, WAIT, assert_edges_hold_every_candle_of_the_writer,
    assert_edges_hold_the_writers_history, stream_health,
};
use kline_tests::redis::RedisServer;
use kline_tests::{KlineServer, ServerProcess, metric, wait_until};

/// Edge A's lag limit in the readiness test: far less than the groups it misses while down.
const MAX_LAG: f64 = 5.0;
/// Groups the writer may have committed since the edge last read the head: with no ingest it still
/// commits a group when candles turn final.
const SLACK: f64 = 3.0;

/// `/ready`'s status code, or `None` while nothing answers.
async fn ready_status(server: &ServerProcess) -> Option<u16> {
    let response = reqwest::get(server.url("/ready")).await.ok()?;
    Some(response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_edge_far_behind_is_not_ready_until_it_has_caught_up_to_its_lag_limit() {
    let max_lag = format!("stream.max_lag_groups={MAX_LAG}");
    let mut cluster =
        Cluster::start_with_edges(RedisServer::start(), &[], [&[&max_lag], &[]]).await;
    let ingest = SteadyIngest::start(&cluster.writer);
    ingest.wait_for_more(STEP / 4).await;
    cluster.wait_until_caught_up().await;
    cluster.kill_edge(A);
    ingest.wait_for_more(STEP).await;
    ingest.stop().await;
    cluster.wait_until_caught_up().await;
    let committed = metric(&cluster.writer, "kline_stream_committed_seq").await;

    // Redis hangs while edge A starts, so the time between its start and its first read of the stream's
    // head lasts as long as the test needs to look at it: it must not be ready meanwhile.
    cluster.redis.pause();
    let addr = cluster.edge_addrs[A].to_string();
    cluster.launch_edge(A, &addr);
    let (edge, writer) = (cluster.edge(A), &cluster.writer);
    wait_until("edge A answers /ready", WAIT, || async {
        ready_status(edge).await.is_some()
    })
    .await;
    let health = stream_health(edge).await;
    assert_eq!(
        health["ready"], false,
        "ready before reading the head: {health}"
    );
    assert_eq!(health["head_read"], false, "{health}");
    assert!(
        committed - health["applied_seq"].as_f64().unwrap() > MAX_LAG,
        "edge A came back further behind than its limit: {health} (writer at {committed})"
    );
    cluster.redis.resume();

    // From now on, whenever /ready says 200 the replica is within the limit: the writer's number read
    // before the 200 and the edge's applied number read after it only grow, so a gap wider than the limit
    // between them means the 200 was a lie.
    wait_until("edge A is ready and caught up", WAIT, || async {
        let committed = metric(writer, "kline_stream_committed_seq").await;
        let ready = ready_status(edge).await == Some(200);
        let health = stream_health(edge).await;
        let applied = health["applied_seq"].as_f64().unwrap();
        assert!(
            !ready || committed - applied <= MAX_LAG + SLACK,
            "/ready answered 200 while {} groups behind: {health}",
            committed - applied
        );
        ready && applied >= committed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_makes_edges_stale_and_only_the_unready_policy_drains_them() {
    let stale = "stream.stale_after_ms=2000";
    let edges: [&[&str]; 2] = [&[stale], &[stale, "stream.stale_policy=unready"]];
    let cluster = Cluster::start_with_edges(RedisServer::start(), &[], edges).await;
    let ingest = SteadyIngest::start(&cluster.writer);
    ingest.wait_for_more(STEP / 2).await;

    cluster.redis.pause();
    for edge in [A, B] {
        let process = cluster.edge(edge);
        wait_until(
            &format!("edge {edge} reports itself stale"),
            WAIT,
            || async {
                let health = stream_health(process).await;
                health["stale"] == true && health["last_read_ago_ms"].as_u64() >= Some(2000)
            },
        )
        .await;
    }
    // The writer keeps taking events meanwhile (its outbox holds them).
    ingest.wait_for_more(STEP / 4).await;
    assert_eq!(
        ready_status(cluster.edge(A)).await,
        Some(200),
        "\"serve\": a stale edge stays in the load balancer"
    );
    let refused = reqwest::get(cluster.edge(B).url("/ready")).await.unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    let reason = refused.json::<serde_json::Value>().await.unwrap()["reason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap()
            .contains("no successful read from Redis"),
        "{reason}"
    );

    cluster.redis.resume();
    ingest.wait_for_more(STEP / 4).await;
    ingest.stop().await;
    for edge in [A, B] {
        let process = cluster.edge(edge);
        wait_until(&format!("edge {edge} is fresh and ready"), WAIT, || async {
            stream_health(process).await["stale"] == false
                && ready_status(process).await == Some(200)
        })
        .await;
    }
    cluster.wait_until_caught_up().await;
    assert_edges_hold_the_writers_history(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_restarted_on_a_wiped_store_starts_a_new_epoch_that_reaches_the_edges() {
    writer_on_a_new_store(NewStore::Wiped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_restored_from_an_older_backup_starts_a_new_epoch_that_reaches_the_edges() {
    writer_on_a_new_store(NewStore::Restored).await;
}

/// What the writer comes back on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NewStore {
    /// An empty data directory: a new store, with an epoch of its own.
    Wiped,
    /// A copy of its data directory taken earlier: its epoch, but behind the stream's head.
    Restored,
}

async fn writer_on_a_new_store(store: NewStore) {
    let mut cluster = Cluster::start(&[]).await;
    // One ingest throughout: it posts again what a writer down did not acknowledge, and never repeats
    // an event (a restarted ingest would, and the writer would drop them as duplicates).
    let ingest = SteadyIngest::start(&cluster.writer);
    ingest.wait_for_more(STEP).await;
    let backup = tempfile::tempdir().unwrap();
    if store == NewStore::Restored {
        cluster.writer.kill();
        copy_dir(&cluster.writer_dir(), backup.path());
        cluster.restart_writer();
        ingest.wait_for_more(STEP).await;
    }
    let old_epoch = stream_health(&cluster.writer).await["epoch"].clone();
    let mut snapshots_before = [0.0; 2];
    for edge in [A, B] {
        snapshots_before[edge] = metric(cluster.edge(edge), "kline_stream_snapshots_loaded").await;
    }

    cluster.writer.kill();
    std::fs::remove_dir_all(cluster.writer_dir()).unwrap();
    if store == NewStore::Restored {
        copy_dir(backup.path(), &cluster.writer_dir());
    }
    cluster.restart_writer();
    // Fewer new groups than the stream holds past the new store's newest: numbered after the stream's
    // head, none would ever be read.
    ingest.wait_for_more(STEP / 2).await;
    ingest.stop().await;

    cluster.wait_until_caught_up().await;
    let epoch = stream_health(&cluster.writer).await["epoch"].clone();
    assert_ne!(
        epoch, old_epoch,
        "{store:?}: the writer started a new epoch"
    );
    for edge in [A, B] {
        let process = cluster.edge(edge);
        assert_eq!(stream_health(process).await["epoch"], epoch, "edge {edge}");
        let snapshots = metric(process, "kline_stream_snapshots_loaded").await;
        assert!(
            snapshots > snapshots_before[edge],
            "edge {edge} loaded a snapshot of the new epoch"
        );
    }
    assert_edges_hold_every_candle_of_the_writer(&cluster).await;
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
