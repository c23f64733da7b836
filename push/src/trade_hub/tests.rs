//! The trade hub with a real store, a real pipeline and real loopback sockets: a feed that overflows and
//! a gate that overflows both end with every trade once, in block order.

use futures_util::StreamExt;
use kline_protocol::{Interval, ServerMessage, ServerPayload};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::hub::tests::connected;
use kline_core::simulated_market::SimulatedMarket;
use kline_pipeline::feed::CandleFeed;
use kline_pipeline::{Pipeline, PipelineSettings};

const T0_MS: i64 = 1_764_000_000_000;

/// Reads `count` trade frames (nothing else is sent to these clients); panics after 10 s.
async fn read_trades(client: &mut WebSocketStream<TcpStream>, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while ids.len() < count {
        let next = tokio::time::timeout_at(deadline, client.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} trades arrived", ids.len()));
        let Some(Ok(Message::Text(text))) = next else {
            panic!("the client got {next:?} instead of trades");
        };
        match ServerMessage::parse(&text).unwrap().payload {
            ServerPayload::Trade(trade) => ids.push(trade.id.to_string()),
            other => panic!("not a trade: {other:?}"),
        }
    }
    ids
}

/// The stored trades of `mint`, oldest first (block order), as ids.
fn stored_ids(store: &CandleStore, mint: &[u8; 32]) -> Vec<String> {
    let page = store.trades(mint, None, 1000).unwrap();
    page.trades.iter().rev().map(|t| t.id.to_string()).collect()
}

#[tokio::test]
async fn an_overflowing_feed_and_an_overflowing_gate_still_deliver_every_trade_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    // Four trades fit in the feed and in a gate; every group below brings more.
    let feed = CandleFeed::new(1, 4);
    let settings = PipelineSettings {
        intervals: vec![Interval::S1],
        finality_grace_ms: 2000,
        price_scale_decimals: 28,
    };
    let mut pipeline =
        Pipeline::open(store.clone(), settings, feed.clone(), Arc::default()).unwrap();
    let stats = Arc::new(PushStats::default());
    let shutdown = CancellationToken::new();
    let (hub, thread) = spawn(
        feed.trades().clone(),
        store.clone(),
        16,
        4,
        stats.clone(),
        shutdown.clone(),
    );
    let mut market = SimulatedMarket::new(1, 3);
    let mint = market.mints()[0].to_bytes();
    let mut group = |market: &mut SimulatedMarket, from: i64, n: i64| {
        let events: Vec<_> = (from..from + n)
            .map(|i| market.next_event_for(0, T0_MS + i * 10))
            .collect();
        pipeline.ingest(&[events], T0_MS + (from + n) * 10).unwrap();
    };
    group(&mut market, 0, 3);

    // Client 1: a snapshot of the 3 stored trades, then 30 in one group (the feed overflows).
    let (outbox, mut first) = connected(&stats).await;
    hub.join(1, mint, Subscriber::WebSocket(outbox.clone()))
        .await;
    let newest = store.trades(&mint, None, 1).unwrap().trades[0].clone();
    hub.open(
        1,
        mint,
        Some(TradePosition::of_trade(&newest)),
        Box::new(|| {}),
    )
    .await;
    group(&mut market, 3, 30);
    let stored = stored_ids(&store, &mint);
    assert_eq!(read_trades(&mut first, 30).await, stored[3..]);
    assert!(stats.trade_feed_lagged.get() >= 1, "the feed overflowed");

    // Client 2 joins; 30 more come while its gate is closed (the gate overflows); then it opens after
    // the trades it "read" (the first 33).
    let (outbox, mut second) = connected(&stats).await;
    hub.join(2, mint, Subscriber::WebSocket(outbox.clone()))
        .await;
    group(&mut market, 33, 30);
    let stored = stored_ids(&store, &mint);
    assert_eq!(read_trades(&mut first, 30).await, stored[33..]);
    let snapshot_newest = store.trades(&mint, None, 31).unwrap().trades[30].clone();
    assert_eq!(snapshot_newest.id.to_string(), stored[32]);
    hub.open(
        2,
        mint,
        Some(TradePosition::of_trade(&snapshot_newest)),
        Box::new(|| {}),
    )
    .await;
    assert_eq!(read_trades(&mut second, 30).await, stored[33..]);

    // Both stay live, and nothing came twice: the next trade is the next frame of each.
    group(&mut market, 63, 1);
    let stored = stored_ids(&store, &mint);
    assert_eq!(read_trades(&mut first, 1).await, stored[63..]);
    assert_eq!(read_trades(&mut second, 1).await, stored[63..]);

    // Client 3's gate holds two trades; its snapshot (read meanwhile) saw the first: only the second
    // follows it, then the stream.
    let (outbox, mut third) = connected(&stats).await;
    hub.join(3, mint, Subscriber::WebSocket(outbox.clone()))
        .await;
    group(&mut market, 64, 2);
    let stored = stored_ids(&store, &mint);
    assert_eq!(read_trades(&mut first, 2).await, stored[64..]);
    let seen_by_snapshot = store.trades(&mint, None, 2).unwrap().trades[1].clone();
    assert_eq!(seen_by_snapshot.id.to_string(), stored[64]);
    let snapshot_sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reply = {
        let sent = snapshot_sent.clone();
        Box::new(move || sent.store(true, std::sync::atomic::Ordering::SeqCst))
    };
    hub.open(
        3,
        mint,
        Some(TradePosition::of_trade(&seen_by_snapshot)),
        reply,
    )
    .await;
    assert!(snapshot_sent.load(std::sync::atomic::Ordering::SeqCst));
    group(&mut market, 66, 1);
    let stored = stored_ids(&store, &mint);
    assert_eq!(read_trades(&mut third, 2).await, stored[65..]);
    assert_eq!(stats.trade_subscriptions_active.get(), 3);

    // Leaving empties the index and the feed stops keeping the mint's trades.
    hub.leave(1, mint).await;
    hub.leave(2, mint).await;
    hub.disconnect(3, vec![mint]).await;
    assert!(!feed.trades().any_watched());
    assert_eq!(stats.trade_subscriptions_active.get(), 0);
    shutdown.cancel();
    thread.join().unwrap();
}
