//! The ticker stream through the real server (issue 26, item 2): `subscribe_tickers` gets a snapshot,
//! then at most one `tickers` message a second however fast events come, and the 24-hour numbers equal
//! a reference computed here from the events posted (over the h1 buckets of the current hour and the 23
//! before, events older than that left out); a client that never reads is closed with 4008 while a
//! reader goes on; the stream is refused without `h1` candles and beyond `kline.max_ticker_subscriptions`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kline_core::event::{EventRecord, SpinPetEvent, scaled_price, whole_units};
use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::{
    ClientRequest, CloseCode, ErrorCode, ServerPayload, SubscribeTickersRequest, Ticker,
    UnsubscribeTickersRequest,
};
use kline_tests::ws::{Client, Received};
use kline_tests::{KlineServer, ServerProcess, metric, post_events, wait_until};

const MINTS: usize = 3;
const HOUR_MS: i64 = 3_600_000;

/// Posts `events` and checks that every one was stored.
async fn post(server: &ServerProcess, events: &[EventRecord]) {
    let body: String = events.iter().map(|e| e.to_json() + "\n").collect();
    let (status, report) = post_events(server, body).await;
    let all = report["accepted"].as_u64() == Some(events.len() as u64);
    assert!(status == 200 && all, "{status}: {report}");
}

fn now_ms() -> i64 {
    kline_protocol::response::unix_millis_now()
}

/// A mint's numbers as the test computes them from the events, by the protocol's definition.
#[derive(Debug, Default, Clone, Copy)]
struct Reference {
    last: f64,
    open: Option<f64>,
    high: f64,
    low: f64,
    volume: f64,
    quote_volume: f64,
    count: u64,
}

/// Tokens and SOL an event traded (the volume rule of docs/protocol.md), in whole units.
fn traded(event: &SpinPetEvent) -> (f64, f64) {
    let (tokens, sol) = match event {
        SpinPetEvent::BuySell(e) => (e.token_amount, e.sol_amount),
        SpinPetEvent::LongShort(e) => (e.lock_lp_token_amount, e.lock_lp_sol_amount),
        SpinPetEvent::FullClose(e) => (e.final_token_amount, e.final_sol_amount),
        SpinPetEvent::PartialClose(e) => (e.final_token_amount, e.final_sol_amount),
        _ => (0, 0),
    };
    (whole_units(tokens.into(), 6), whole_units(sol.into(), 9))
}

/// Per mint, over the window starting at `window_start` (Unix s). `events` ascend by time.
fn reference(events: &[EventRecord], window_start: i64) -> HashMap<String, Reference> {
    let mut out: HashMap<String, Reference> = HashMap::new();
    for event in events {
        let Some(raw) = event.event.latest_price() else {
            continue;
        };
        let price = scaled_price(raw, 28).unwrap();
        let entry = out.entry(event.event.mint().to_string()).or_default();
        entry.last = price;
        if event.meta.timestamp.unix_millis() < window_start * 1000 {
            continue;
        }
        if entry.open.is_none() {
            (entry.high, entry.low) = (price, price);
        }
        entry.open.get_or_insert(price);
        entry.high = entry.high.max(price);
        entry.low = entry.low.min(price);
        let (tokens, sol) = traded(&event.event);
        entry.volume += tokens;
        entry.quote_volume += sol;
        entry.count += 1;
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Whether `ticker` is what `expected` says.
fn matches(ticker: &Ticker, expected: &Reference) -> bool {
    let open = expected.open.unwrap_or(expected.last);
    let (high, low) = match expected.open {
        Some(_) => (expected.high, expected.low),
        None => (expected.last, expected.last),
    };
    close(ticker.last_price, expected.last)
        && close(ticker.open_price, open)
        && close(ticker.high_price, high)
        && close(ticker.low_price, low)
        && close(ticker.price_change, expected.last - open)
        && close(
            ticker.price_change_percent,
            (expected.last - open) / open * 100.0,
        )
        && close(ticker.volume, expected.volume)
        && close(ticker.quote_volume, expected.quote_volume)
        && ticker.trade_count == expected.count
}

async fn subscribe(client: &mut Client) -> kline_protocol::TickersSnapshot {
    client
        .subscribe_tickers()
        .await
        .expect("subscribe_tickers answered")
}

fn server(dir: &std::path::Path, extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--set", "source.simulator.enabled=false"];
    args.extend_from_slice(extra);
    ServerProcess::start(&dir.join("db"), &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_then_at_most_one_message_a_second_with_the_reference_24h_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &[]);
    let mut client = Client::connect(&server.ws_url()).await;
    let snapshot = subscribe(&mut client).await;
    assert!(snapshot.data.is_empty(), "no mint yet: {snapshot:?}");

    let mut market = SimulatedMarket::new(12, MINTS);
    let started = Instant::now();
    let now = now_ms();
    // Thirty hours of history, one event per mint every 20 minutes: the first six hours fall before
    // the window, and every event of a past hour is a late correction of a final h1 candle.
    let mut events: Vec<EventRecord> = (0..MINTS)
        .map(|index| market.token_created(index, now - 31 * HOUR_MS))
        .collect();
    post(&server, &events).await;
    let mut history = Vec::new();
    for step in 0..90 {
        for index in 0..MINTS {
            let ts = now - 30 * HOUR_MS + step * 20 * 60_000 + index as i64;
            history.push(market.next_event_for(index, ts));
        }
    }
    post(&server, &history).await;
    events.extend(history);
    // Then events as fast as they come, for this hour: one per mint every 20 ms for a few seconds.
    let mut live = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..150 {
        tick.tick().await;
        let ts = now_ms();
        let batch: Vec<_> = (0..MINTS)
            .map(|index| market.next_event_for(index, ts + index as i64))
            .collect();
        post(&server, &batch).await;
        live += batch.len();
        events.extend(batch);
    }

    // Read updates until the client's tickers are the reference's (or fail with the difference).
    let mut held: HashMap<String, Ticker> = HashMap::new();
    let mut messages = 0;
    let mut window_start = snapshot.window_start;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let expected = loop {
        let expected = reference(&events, window_start);
        if expected.len() == MINTS
            && expected
                .iter()
                .all(|(mint, r)| held.get(mint).is_some_and(|t| matches(t, r)))
        {
            break expected;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "tickers never matched: held {held:#?}, expected {expected:#?}"
        );
        match client.recv_within(left).await {
            Received::Message(message) => match message.payload {
                ServerPayload::Tickers(update) => {
                    messages += 1;
                    window_start = update.window_start;
                    for ticker in update.data {
                        held.insert(ticker.symbol.to_string(), ticker);
                    }
                }
                other => panic!("unexpected {other:?}"),
            },
            Received::Closed(code) => panic!("closed with {code:?}"),
        }
    };
    let elapsed = started.elapsed().as_secs();
    // Coalesced: at most one message a second, one message carrying every mint that changed.
    assert!(
        messages <= elapsed + 2,
        "{messages} messages in {elapsed} s"
    );
    assert!(
        live >= 20 * messages as usize,
        "{live} live events came as {messages} messages"
    );
    // The window left the first hours out; every mint is named.
    for (mint, r) in &expected {
        let all = events
            .iter()
            .filter(|e| e.event.latest_price().is_some() && e.event.mint().to_string() == *mint)
            .count() as u64;
        assert!(
            r.count < all,
            "{mint}: the events before the window are not counted"
        );
        let ticker = &held[mint];
        assert!(
            ticker
                .name
                .as_ref()
                .is_some_and(|n| n.as_str().starts_with("Simulated "))
        );
    }
    // A second subscriber's snapshot holds the same numbers.
    let mut second = Client::connect(&server.ws_url()).await;
    let snapshot = subscribe(&mut second).await;
    assert_eq!(snapshot.data.len(), MINTS);
    for ticker in &snapshot.data {
        assert!(
            matches(ticker, &expected[&ticker.symbol.to_string()]),
            "{ticker:?}"
        );
    }
    // Unsubscribing is confirmed, and no round follows the confirmation.
    second
        .send(&ClientRequest::UnsubscribeTickers(
            UnsubscribeTickersRequest::new(),
        ))
        .await;
    loop {
        match second.recv().await.payload {
            ServerPayload::TickersUnsubscribed(confirmed) => {
                assert!(confirmed.success);
                break;
            }
            ServerPayload::Tickers(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // A round after the confirmation reaches the first client; the second gets none before its pong.
    post(&server, &[market.next_event_for(0, now_ms())]).await;
    while !matches!(client.recv().await.payload, ServerPayload::Tickers(_)) {}
    second.send(&ClientRequest::Ping).await;
    let after = second.recv().await.payload;
    assert!(
        matches!(after, ServerPayload::Pong(_)),
        "nothing but the pong after tickers_unsubscribed: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticker_subscriber_that_never_reads_is_closed_with_4008_while_a_reader_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // Rounds of many mints (~0.5 MB each): a few fill the socket buffers of a client that never reads
    // (up to 4 MB here), then the next one finds no room in a small outbox.
    let server = server(
        dir.path(),
        &[
            "--set",
            "websocket.outbox_max_bytes=65536",
            "--set",
            "kline.intervals=[\"h1\"]",
        ],
    );
    const MANY: usize = 1500;
    let mut market = SimulatedMarket::new(40, MANY);
    let now = now_ms();
    let mut setup: Vec<EventRecord> = (0..MANY)
        .map(|index| market.token_created(index, now - 2000))
        .collect();
    setup.extend((0..MANY).map(|index| market.next_event_for(index, now - 1000)));
    post(&server, &setup).await;
    let mut reader = Client::connect(&server.ws_url()).await;
    // The hub learns the mints through the feed: subscribe (again) until its snapshot has them all.
    let deadline = Instant::now() + Duration::from_secs(30);
    while subscribe(&mut reader).await.data.len() < MANY {
        assert!(
            Instant::now() < deadline,
            "the ticker hub never had every mint"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut slow = Client::connect_never_reading(&server).await;
    slow.send(&ClientRequest::SubscribeTickers(
        SubscribeTickersRequest::new(),
    ))
    .await;
    wait_until("both subscribed", Duration::from_secs(30), || async {
        metric(&server, "kline_ticker_subscriptions_active").await == 2.0
    })
    .await;
    // Every mint trades before each round, until the server gives the slow client up.
    let mut rounds = 0;
    while metric(&server, "kline_slow_client_closes_total").await < 1.0 {
        let ts = now_ms();
        let batch: Vec<_> = (0..MANY)
            .map(|i| market.next_event_for(i, ts + i as i64 % 1000))
            .collect();
        post(&server, &batch).await;
        if let Received::Message(message) = reader.recv_within(Duration::from_secs(10)).await
            && matches!(message.payload, ServerPayload::Tickers(_))
        {
            rounds += 1;
        }
        assert!(
            rounds < 60,
            "the slow client was not closed after {rounds} rounds"
        );
    }
    assert_eq!(
        slow.close_code(Duration::from_secs(30)).await,
        Some(CloseCode::TooSlow.as_u16())
    );
    wait_until(
        "the slow client left the ticker hub",
        Duration::from_secs(30),
        || async { metric(&server, "kline_ticker_subscriptions_active").await == 1.0 },
    )
    .await;
    // The reader still gets rounds.
    post(&server, &[market.next_event_for(0, now_ms())]).await;
    loop {
        match reader.recv().await.payload {
            ServerPayload::Tickers(update) if !update.data.is_empty() => break,
            _ => {}
        }
    }
}

async fn refused(client: &mut Client) -> kline_protocol::ErrorData {
    match client.subscribe_tickers().await {
        Ok(_) => panic!("the subscription was not refused"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn the_stream_is_refused_without_h1_candles_and_beyond_the_node_limit() {
    let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let without_h1 = server(dir.path(), &["--set", "kline.intervals=[\"s1\",\"m1\"]"]);
    let error = refused(&mut Client::connect(&without_h1.ws_url()).await).await;
    assert_eq!(error.code, ErrorCode::SubscriptionRefused);
    assert!(error.message.contains("h1"), "{}", error.message);
    assert_eq!(error.msg_type.as_deref(), Some("subscribe_tickers"));

    let limited = server(
        other_dir.path(),
        &["--set", "kline.max_ticker_subscriptions=1"],
    );
    let mut first = Client::connect(&limited.ws_url()).await;
    subscribe(&mut first).await;
    subscribe(&mut first).await; // subscribing again is not a second subscription
    let mut second = Client::connect(&limited.ws_url()).await;
    let error = refused(&mut second).await;
    assert_eq!(error.code, ErrorCode::SubscriptionRefused);
    assert!(
        error.message.contains("kline.max_ticker_subscriptions"),
        "{}",
        error.message
    );
    first
        .send(&ClientRequest::UnsubscribeTickers(
            UnsubscribeTickersRequest::new(),
        ))
        .await;
    while !matches!(
        first.recv().await.payload,
        ServerPayload::TickersUnsubscribed(_)
    ) {}
    subscribe(&mut second).await;
}
