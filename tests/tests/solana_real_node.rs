//! The `solana` source against a node that behaves like a real provider's: blocks that become available
//! only a while after their transactions were notified, calls rate-limited with 429, a dropped WebSocket
//! and a SIGKILL in between. Every run must end with each candle exactly as the block order makes it (equal
//! to a reference server fed the same events over HTTP), and a candle must be pushed before its block is
//! known, then corrected to the block's order.

use std::time::Duration;

use kline_protocol::{
    ClientRequest, Interval, ServerMessage, ServerPayload, SubscribeRequest, Symbol,
};
use kline_tests::fake_solana::FakeSolana;
use kline_tests::spinpet_script::{crowded_slots, key, price_of, server_args};
use kline_tests::ws::Client;
use kline_tests::{KlineServer, ServerProcess, candle_values, get_json, post_events, wait_until};
use serde_json::Value;

const SLOTS: u64 = 40;
const PER_SLOT: u32 = 5;
const SETTLE: Duration = Duration::from_secs(90);

async fn solana_health(server: &ServerProcess) -> Value {
    get_json(&server.url("/health")).await["sources"]["solana"].clone()
}

async fn stored_events(server: &ServerProcess) -> u64 {
    get_json(&server.url("/health")).await["pipeline"]["events_accepted"]
        .as_u64()
        .unwrap_or(0)
}

async fn wait_live(server: &ServerProcess) {
    wait_until("the source goes live", SETTLE, || async {
        solana_health(server).await["state"] == "live"
    })
    .await;
}

/// Plays `SLOTS` crowded slots against a server on `fake` (dropping the node's connections a third of the
/// way, and SIGKILLing the server two thirds of the way if `kill`), waits for every event to be stored,
/// and checks every interval's candles against a reference fed the same events over HTTP.
async fn every_candle_in_block_order(
    fake: &FakeSolana,
    expected: &[Value],
    kill: bool,
) -> (tempfile::TempDir, ServerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let args = server_args(fake);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = ServerProcess::start(&data, &args);
    wait_live(&server).await;
    for slot in 0..SLOTS {
        fake.produce(PER_SLOT as usize);
        if slot == SLOTS / 3 {
            fake.drop_connections();
        }
        if kill && slot == 2 * SLOTS / 3 {
            // Killed once something is stored: a first start that dies before its first write has no
            // cursor to backfill from (it starts at the live edge).
            wait_until("a first write", SETTLE, || async {
                stored_total(&server).await > 0
            })
            .await;
            server.kill();
            fake.produce(PER_SLOT as usize); // while the server is down
            server = ServerProcess::start(&data, &args);
            wait_live(&server).await;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let total = u64::from(PER_SLOT) * SLOTS;
    let deadline = std::time::Instant::now() + SETTLE;
    while stored_total(&server).await < total {
        assert!(
            std::time::Instant::now() < deadline,
            "not every event was stored: {}",
            get_json(&server.url("/health")).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let reference = ServerProcess::start(
        &dir.path().join("reference"),
        &["--set", "source.simulator.enabled=false"],
    );
    let body: String = expected.iter().map(|e| e.to_string() + "\n").collect();
    let (status, report) = post_events(&reference, body).await;
    assert_eq!((status, report["accepted"].as_u64()), (200, Some(total)));
    let mint = bs58::encode(key(0)).into_string();
    for interval in Interval::ALL {
        assert_eq!(
            candle_values(&server, &mint, interval).await,
            candle_values(&reference, &mint, interval).await,
            "{interval}: wrong or missing candles"
        );
    }
    (dir, server)
}

/// Events of the script's mint the store holds (the sum of its day candles' update counts; unlike
/// `events_accepted`, it survives a restart).
async fn stored_total(server: &ServerProcess) -> u64 {
    let mint = bs58::encode(key(0)).into_string();
    let body = get_json(&server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval=d1&limit=10"
    )))
    .await;
    body["data"]
        .as_array()
        .map(|candles| {
            candles
                .iter()
                .map(|c| c["update_count"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// The script: `SLOTS` slots of `PER_SLOT` transactions of one mint, delivered in the reverse of their
/// block order, block times from 100 s ago.
fn script() -> (Vec<kline_tests::fake_solana::FakeTx>, Vec<Value>) {
    let first_block_time = kline_protocol::response::unix_millis_now() / 1000 - 100;
    crowded_slots(SLOTS, PER_SLOT, first_block_time)
}

#[tokio::test]
async fn blocks_available_late_lose_no_candle_across_a_drop_and_a_sigkill() {
    let (transactions, expected) = script();
    let fake = FakeSolana::start(transactions).await;
    fake.set_block_delay(Duration::from_millis(1500));
    let (_dir, server) = every_candle_in_block_order(&fake, &expected, true).await;
    let solana = solana_health(&server).await;
    assert!(
        solana["rpc_retries"].as_u64() > Some(0),
        "blocks were asked for before they were available: {solana}"
    );
    assert_eq!(solana["blocks_unavailable"], 0, "{solana}");
}

#[tokio::test]
async fn rate_limited_calls_lose_no_candle_and_never_reconnect() {
    let (transactions, expected) = script();
    let fake = FakeSolana::start(transactions).await;
    fake.set_rate_limit(20, 1);
    let (_dir, server) = every_candle_in_block_order(&fake, &expected, false).await;
    let solana = solana_health(&server).await;
    assert!(fake.rate_limited_calls() > 0);
    assert!(solana["rpc_rate_limited"].as_u64() > Some(0), "{solana}");
    assert_eq!(
        solana["reconnects"], 1,
        "only the dropped connection: {solana}"
    );
}

/// The next `kline_data` on `client`, skipping other messages.
async fn next_update(client: &mut Client) -> kline_protocol::KlineData {
    loop {
        if let ServerMessage {
            payload: ServerPayload::KlineData(update),
            ..
        } = client.recv().await
        {
            return update;
        }
    }
}

/// A `/ws` client of `server` subscribed to `mint`'s h1 candles (one candle holds a whole test's events).
async fn subscribed(server: &ServerProcess, mint: [u8; 32]) -> Client {
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .send(&ClientRequest::Subscribe(SubscribeRequest::new(
            Symbol::from_bytes(&mint),
            Interval::H1,
        )))
        .await;
    while !matches!(
        client.recv().await.payload,
        ServerPayload::SubscriptionConfirmed(_)
    ) {}
    client
}

#[tokio::test]
async fn a_candle_is_pushed_before_its_block_is_known_then_corrected_to_block_order() {
    const TXS: u32 = 4;
    let now = kline_protocol::response::unix_millis_now() / 1000;
    let (transactions, expected) = crowded_slots(1, TXS, now);
    let fake = FakeSolana::start(transactions).await;
    fake.set_blocks_available(false);
    let dir = tempfile::tempdir().unwrap();
    let args = server_args(&fake);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    wait_live(&server).await;

    let mint = key(0);
    let mut client = subscribed(&server, mint).await;
    fake.produce(TXS as usize);

    // Pushed at once: every price is in the candle while the block is still unknown and nothing is stored.
    let mut update = next_update(&mut client).await;
    while update.data.update_count < TXS {
        update = next_update(&mut client).await;
    }
    let prices: Vec<f64> = expected.iter().map(price_of).collect();
    let highest = prices.iter().copied().fold(f64::MIN, f64::max);
    let lowest = prices.iter().copied().fold(f64::MAX, f64::min);
    assert_eq!((update.data.high, update.data.low), (highest, lowest));
    assert!(!update.data.is_final);
    assert_eq!(stored_events(&server).await, 0, "pushed before stored");
    assert_eq!(solana_health(&server).await["waiting_transactions"], TXS);

    // The block arrives: the events are stored, and the candle is pushed again with the block's order.
    // The script delivers the transactions in the reverse of their block order, and their signatures
    // sort that way too: only the block position gives this open and close.
    fake.set_blocks_available(true);
    let by_position = |pick: fn(&Value, &Value) -> bool| {
        expected
            .iter()
            .reduce(|a, b| if pick(a, b) { a } else { b })
            .map(price_of)
            .unwrap()
    };
    let block_first = by_position(|a, b| a["tx_index"].as_u64() < b["tx_index"].as_u64());
    let block_last = by_position(|a, b| a["tx_index"].as_u64() > b["tx_index"].as_u64());
    let corrected = loop {
        let update = next_update(&mut client).await;
        if (update.data.open, update.data.close) == (block_first, block_last) {
            break update;
        }
    };
    assert_eq!(corrected.data.update_count, TXS);
    wait_until("the events are stored", SETTLE, || async {
        stored_events(&server).await == u64::from(TXS)
    })
    .await;
    let mint_text = bs58::encode(mint).into_string();
    let history = candle_values(&server, &mint_text, Interval::H1).await;
    assert_eq!(history.len(), 1);
    let pipeline = get_json(&server.url("/health")).await["pipeline"].clone();
    assert!(
        pipeline["provisional_events"].as_u64() >= Some(u64::from(TXS)),
        "{pipeline}"
    );
}

/// A node's burst of notifications reaches the server as several reads; they are pushed as one update per
/// candle (`solana.gather_idle_ms`), not one per read.
#[tokio::test]
async fn a_burst_of_notifications_is_pushed_as_one_update() {
    const TXS: u32 = 4;
    let now = kline_protocol::response::unix_millis_now() / 1000;
    let (transactions, _) = crowded_slots(1, TXS, now);
    let fake = FakeSolana::start(transactions).await;
    // Nothing is stored meanwhile: every update the client gets is a provisional push.
    fake.set_blocks_available(false);
    let dir = tempfile::tempdir().unwrap();
    let mut args = server_args(&fake);
    args.extend(
        [
            "source.solana.gather_idle_ms=400",
            "source.solana.gather_max_ms=1000",
        ]
        .into_iter()
        .flat_map(|set| ["--set".to_owned(), set.to_owned()]),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    wait_live(&server).await;
    let mut client = subscribed(&server, key(0)).await;

    // Two reads' worth: half the slot, a pause well inside the idle gap, the other half.
    fake.produce(TXS as usize / 2);
    tokio::time::sleep(Duration::from_millis(60)).await;
    fake.produce(TXS as usize / 2);
    let update = next_update(&mut client).await;
    assert_eq!(
        update.data.update_count, TXS,
        "the first push holds the whole burst: {update:?}"
    );
    assert_eq!(stored_events(&server).await, 0, "all of it provisional");
}

#[tokio::test]
async fn a_backfill_keeps_to_the_request_budget() {
    const BUDGET: usize = 50;
    let (transactions, _) = script();
    let fake = FakeSolana::start(transactions).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = server_args(&fake);
    args.extend([
        "--set".to_owned(),
        format!("source.solana.requests_per_sec={BUDGET}"),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    wait_live(&server).await;
    // A few slots live (the cursor), then the rest while the connection is down: the backfill asks for
    // every page of signatures, every transaction and every block (some 250 calls, in pages of 4).
    fake.produce(5 * PER_SLOT as usize);
    wait_until("the live slots are stored", SETTLE, || async {
        stored_total(&server).await == u64::from(5 * PER_SLOT)
    })
    .await;
    fake.drop_connections();
    fake.produce(((SLOTS - 5) * u64::from(PER_SLOT)) as usize);
    wait_until("the backfill stored everything", SETTLE, || async {
        stored_total(&server).await == SLOTS * u64::from(PER_SLOT)
    })
    .await;
    let times = fake.rpc_call_times();
    assert!(
        times.len() > 4 * BUDGET,
        "the budget was binding: {} calls",
        times.len()
    );
    // A second's worth of burst, then the rate: at most two seconds' worth in any one-second window
    // (without the budget, the backfill makes all of them within one).
    let busiest = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && t.duration_since(*start) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest <= 2 * BUDGET,
        "{busiest} calls within one second, budget {BUDGET}/s"
    );
}
