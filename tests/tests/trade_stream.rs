//! The live trade stream over real sockets: `subscribe_trades` on `/ws` gets the latest trades, then every
//! stored price event of the mint exactly once per connection, in block order, however many candle
//! subscriptions of the mint the connection also holds; a reconnect that resumes after the last trade seen
//! gets exactly the missing ones.

use std::time::Duration;

use kline_protocol::{
    ClientRequest, Interval, ServerPayload, SubscribeRequest, SubscribeTradesRequest, Symbol,
    Trade, TradeId, TradesSnapshot, UnsubscribeTradesRequest,
};
use kline_tests::ws::Client;
use kline_tests::{KlineServer, ServerProcess, post_events};
use serde_json::{Value, json};

const MINT: [u8; 32] = [21; 32];

fn b58(bytes: &[u8]) -> String {
    bs58::encode(bytes).into_string()
}

/// Three BuySell transactions per slot from `first_slot` on, `slots` slots, in block order (their
/// signatures sort against it, so the signature rule would get the order wrong).
fn chain(start_secs: i64, first_slot: u64, slots: u64) -> Vec<Value> {
    let mut events = Vec::new();
    for s in first_slot..first_slot + slots {
        for position in 0..3u32 {
            let mut signature = [0u8; 64];
            signature[0] = 250 - position as u8;
            signature[1..9].copy_from_slice(&s.to_be_bytes());
            let n = s * 3 + u64::from(position);
            events.push(json!({
                "event_type": "BuySell", "payer": b58(&[3; 32]), "mint_account": b58(&MINT),
                "is_buy": n % 2 == 0, "token_amount": 35_000_000u64 + n, "sol_amount": 1_000_000_000u64 + n,
                "latest_price": (279_590_000_000_000_000_000u128 + u128::from(n) * 1_000_000_000_000_000).to_string(),
                "timestamp": start_secs + s as i64, "signature": b58(&signature), "slot": 330_000_000 + s,
                "event_index": 0, "tx_index": position * 4,
            }));
        }
    }
    events
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}:0", e["signature"].as_str().unwrap()))
        .collect()
}

async fn post(server: &ServerProcess, events: &[Value]) {
    let body: String = events.iter().map(|e| e.to_string() + "\n").collect();
    let (status, report) = post_events(server, body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["accepted"].as_u64(),
        Some(events.len() as u64),
        "{report}"
    );
}

/// A server by its address (for a task that cannot borrow the process).
struct At(std::net::SocketAddr);

impl KlineServer for At {
    fn addr(&self) -> std::net::SocketAddr {
        self.0
    }
}

fn start_server(dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start(
        &dir.join("db"),
        &["--set", "source.simulator.enabled=false"],
    )
}

fn start_secs() -> i64 {
    kline_protocol::response::unix_millis_now() / 1000 / 60 * 60 - 600
}

/// Reads until the trades snapshot of the mint; skips candle messages.
async fn snapshot(client: &mut Client) -> TradesSnapshot {
    loop {
        match client.recv().await.payload {
            ServerPayload::TradesSnapshot(snapshot) => return snapshot,
            ServerPayload::Trade(trade) => panic!("a trade before the snapshot: {}", trade.id),
            ServerPayload::Error(error) => panic!("error: {}", error.message),
            _ => {}
        }
    }
}

/// Reads live trades (skipping every other message) until `count` came.
async fn live_trades(client: &mut Client, count: usize) -> Vec<Trade> {
    let mut trades = Vec::new();
    while trades.len() < count {
        match client.recv().await.payload {
            ServerPayload::Trade(trade) => trades.push(*trade),
            ServerPayload::TradesSnapshot(_) => panic!("a second snapshot"),
            _ => {}
        }
    }
    trades
}

fn trade_ids(trades: &[Trade]) -> Vec<String> {
    trades.iter().map(|t| t.id.to_string()).collect()
}

/// Nothing more arrives for a moment: proves no trade came twice after the last expected one. (A negative
/// can only be checked by waiting; the positive checks above never sleep.)
async fn no_more_trades(client: &mut Client) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(next) = tokio::time::timeout_at(deadline, client.recv()).await {
        if let ServerPayload::Trade(trade) = next.payload {
            panic!("an extra trade {}", trade.id);
        }
    }
}

#[tokio::test]
async fn every_trade_arrives_once_per_connection_in_block_order_while_it_subscribes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path());
    let start = start_secs();
    let before = chain(start, 0, 4);
    post(&server, &before).await;
    let later = chain(start, 4, 20);
    let symbol = Symbol::from_bytes(&MINT);

    let mut client = Client::connect(&server.ws_url()).await;
    // Two candle subscriptions of the mint: trades still come once.
    for interval in [Interval::S1, Interval::M1] {
        client
            .send(&ClientRequest::Subscribe(SubscribeRequest::new(
                symbol.clone(),
                interval,
            )))
            .await;
    }
    // Trades committed while the subscription is read and opened: the gate decides which side each is on.
    let poster = {
        let later = later.clone();
        let addr = server.addr();
        tokio::spawn(async move {
            let target = At(addr);
            for slot in later.chunks(3) {
                let body: String = slot.iter().map(|e| e.to_string() + "\n").collect();
                let (status, _) = post_events(&target, body).await;
                assert_eq!(status, 200);
            }
        })
    };
    client
        .send(&ClientRequest::SubscribeTrades(
            SubscribeTradesRequest::new(symbol.clone())
                .with_limit(5)
                .unwrap(),
        ))
        .await;
    let snapshot = snapshot(&mut client).await;
    poster.await.unwrap();

    let all = ids(&[before, later].concat());
    let snapshot_ids: Vec<String> = snapshot.data.iter().map(|t| t.id.to_string()).collect();
    let newest = all
        .iter()
        .position(|id| *id == snapshot_ids[0])
        .expect("the snapshot's newest is a posted trade");
    let mut expected_snapshot: Vec<String> = all[newest + 1 - 5..=newest].to_vec();
    expected_snapshot.reverse();
    assert_eq!(
        snapshot_ids, expected_snapshot,
        "the latest 5, newest first"
    );
    assert!(snapshot.has_more);

    let rest = &all[newest + 1..];
    let live = live_trades(&mut client, rest.len()).await;
    assert_eq!(
        trade_ids(&live),
        rest,
        "every later trade once, in block order"
    );
    assert!(
        live.iter()
            .all(|t| t.symbol == symbol && t.tx_index.is_some())
    );
    no_more_trades(&mut client).await;

    // Unsubscribed: trades stop, candles go on.
    client
        .send(&ClientRequest::UnsubscribeTrades(
            UnsubscribeTradesRequest::new(symbol.clone()),
        ))
        .await;
    loop {
        if let ServerPayload::TradesUnsubscribed(done) = client.recv().await.payload {
            assert!(done.success);
            break;
        }
    }
    post(&server, &chain(start, 24, 1)).await;
    no_more_trades(&mut client).await;
}

#[tokio::test]
async fn a_reconnect_resuming_after_the_last_trade_seen_gets_exactly_the_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path());
    let start = start_secs();
    let symbol = Symbol::from_bytes(&MINT);
    post(&server, &chain(start, 0, 2)).await;

    let mut client = Client::connect(&server.ws_url()).await;
    client
        .send(&ClientRequest::SubscribeTrades(
            SubscribeTradesRequest::new(symbol.clone()),
        ))
        .await;
    let first = snapshot(&mut client).await;
    assert_eq!(first.data.len(), 6);
    let batch = chain(start, 2, 4);
    post(&server, &batch[..5]).await;
    let seen = live_trades(&mut client, 5).await;
    assert_eq!(trade_ids(&seen), ids(&batch[..5]));
    drop(client);

    // Missed while away.
    post(&server, &batch[5..]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let last_seen: TradeId = seen.last().unwrap().id.clone();
    client
        .send(&ClientRequest::SubscribeTrades(
            SubscribeTradesRequest::new(symbol.clone()).with_after(last_seen),
        ))
        .await;
    let resumed = snapshot(&mut client).await;
    let mut missing = ids(&batch[5..]);
    missing.reverse();
    assert_eq!(
        resumed
            .data
            .iter()
            .map(|t| t.id.to_string())
            .collect::<Vec<_>>(),
        missing,
        "exactly the missing trades, newest first"
    );
    assert!(!resumed.has_more);
    let next = chain(start, 6, 2);
    post(&server, &next).await;
    let live = live_trades(&mut client, next.len()).await;
    assert_eq!(trade_ids(&live), ids(&next));
    no_more_trades(&mut client).await;

    // Resuming after a trade the server never stored says so.
    let unknown = TradeId::new([1; 64], 0);
    client
        .send(&ClientRequest::SubscribeTrades(
            SubscribeTradesRequest::new(symbol).with_after(unknown),
        ))
        .await;
    loop {
        if let ServerPayload::Error(error) = client.recv().await.payload {
            assert!(error.message.contains("no trade"), "{}", error.message);
            assert_eq!(error.msg_type.as_deref(), Some("subscribe_trades"));
            break;
        }
    }
}

#[tokio::test]
async fn a_trade_subscriber_that_does_not_read_is_closed_with_4008_while_a_reader_gets_every_trade()
{
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("db"),
        &[
            "--set",
            "source.simulator.enabled=false",
            "--set",
            "websocket.outbox_capacity=64",
            "--set",
            "websocket.write_timeout_ms=20000",
        ],
    );
    let symbol = Symbol::from_bytes(&MINT);
    let subscribe = ClientRequest::SubscribeTrades(SubscribeTradesRequest::new(symbol.clone()));
    let mut slow = Client::connect_never_reading(&server).await;
    slow.send(&subscribe).await;
    let mut fast = Client::connect(&server.ws_url()).await;
    fast.send(&subscribe).await;
    assert!(snapshot(&mut fast).await.data.is_empty());
    // ~15,000 trades, some MB of frames: more than the socket buffers between the server and a client
    // that never reads, so its outbox backlog fills.
    let trades = chain(
        kline_protocol::response::unix_millis_now() / 1000 - 8000,
        0,
        5000,
    );
    let reader = tokio::spawn(async move {
        let received = live_trades(&mut fast, 15_000).await;
        (fast, received)
    });
    for chunk in trades.chunks(1500) {
        post(&server, chunk).await;
    }
    let (_fast, received) = reader.await.unwrap();
    assert_eq!(
        trade_ids(&received),
        ids(&trades),
        "the reader got every trade once, in order"
    );
    assert_eq!(
        slow.close_code(Duration::from_secs(30)).await,
        Some(kline_protocol::CloseCode::TooSlow.as_u16())
    );
    let metrics = kline_tests::metrics_text(&server).await;
    assert!(
        metrics.contains("kline_slow_client_closes_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kline_trade_subscriptions_active 1\n"),
        "the slow one left the trade hub: {metrics}"
    );
}
