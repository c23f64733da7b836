//! Issue 26, item 1, across nodes: token names reach the edges through the stream (a name stored while
//! they follow) and through a snapshot (an edge started from nothing after the stream moved on), and stay
//! on every node across the restart of an edge and of the writer. A redis-server, a writer and two edges,
//! all real processes ([`kline_tests::cluster`]).

use kline_core::simulated_market::SimulatedMarket;
use kline_tests::cluster::{A, B, Cluster, wait_until_ready};
use kline_tests::redis::RedisServer;
use kline_tests::{KlineServer, ServerProcess, get_json, metric};

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
        assert_eq!(
            (&entry["ticker"], &entry["name"]),
            (&ticker.as_str().into(), &name.as_str().into())
        );
    }
    if !with_push {
        return;
    }
    let mut client = kline_tests::ws::Client::connect(&server.ws_url()).await;
    let ServerPayload::ConnectionSuccess(hello) = client.recv().await.payload else {
        panic!("connection_success first");
    };
    client
        .send(&ClientRequest::SubscribeTickers(
            SubscribeTickersRequest::new(),
        ))
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
        assert_eq!(
            named.ticker.as_ref().map(|t| t.as_str()),
            Some(ticker.as_str())
        );
        assert_eq!(named.name.as_ref().map(|t| t.as_str()), Some(name.as_str()));
        let listed = snapshot
            .data
            .iter()
            .find(|t| t.symbol.as_str() == mint)
            .unwrap_or_else(|| panic!("{mint} not in the ticker snapshot: {snapshot:?}"));
        assert_eq!(
            listed.name.as_ref().map(|t| t.as_str()),
            Some(name.as_str())
        );
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
    let mut events: Vec<_> = (0..2)
        .map(|i| market.token_created(i, now - 2000))
        .collect();
    events.extend((0..2).map(|i| market.next_event_for(i, now - 1000)));
    let body: String = events.iter().map(|e| e.to_json() + "\n").collect();
    let (status, report) = kline_tests::post_events(&cluster.writer, body).await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (200, Some(4)),
        "{report}"
    );
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
