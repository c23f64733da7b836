//! The `solana` source end to end, without the internet: the real server against a local fake RPC node
//! playing a script of transactions. Live notifications, a dropped connection with transactions produced
//! meanwhile, and a server restart mid-script must all end with exactly the script's events stored, no
//! duplicates, candle for candle equal to a reference server fed the same events over HTTP.

use std::time::{Duration, Instant};

use base64::Engine;
use kline_protocol::Interval;
use kline_tests::fake_solana::{FakeSolana, FakeTx};
use kline_tests::tls::TestCa;
use kline_tests::{
    KlineServer, ServerProcess, candle_values, free_local_addr, get_json, metrics_text, post_events,
};
use serde_json::{Value, json};

const PROGRAM: &str = "JBMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ";
const BUY_SELL: [u8; 8] = [98, 208, 120, 60, 93, 32, 19, 180];

/// An event as the test knows it: its Borsh bytes (written here from the IDL layout) and its JSON.
struct ScriptEvent {
    borsh: Vec<u8>,
    json: Value,
}

fn key(seed: u64) -> [u8; 32] {
    std::array::from_fn(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8 + 1)
}

fn buy_sell(
    mint: [u8; 32],
    payer: [u8; 32],
    price: u128,
    block_time: i64,
    signature: &str,
    slot: u64,
    index: u32,
) -> ScriptEvent {
    let mut borsh = BUY_SELL.to_vec();
    borsh.extend_from_slice(&payer);
    borsh.extend_from_slice(&mint);
    borsh.push(1);
    borsh.extend_from_slice(&1_000_000u64.to_le_bytes());
    borsh.extend_from_slice(&50_000_000u64.to_le_bytes());
    borsh.extend_from_slice(&price.to_le_bytes());
    let json = json!({
        "event_type": "BuySell", "payer": bs58::encode(payer).into_string(), "mint_account": bs58::encode(mint).into_string(),
        "is_buy": true, "token_amount": 1_000_000u64, "sol_amount": 50_000_000u64, "latest_price": price.to_string(),
        "timestamp": block_time, "signature": signature, "slot": slot, "event_index": index,
    });
    ScriptEvent { borsh, json }
}

/// `count` transactions, one or two BuySell events each over two mints; every seventh one failed.
fn script(count: usize) -> (Vec<FakeTx>, Vec<Value>) {
    let start = kline_protocol::response::unix_millis_now() / 1000 - 3600;
    let mut transactions = Vec::new();
    let mut expected = Vec::new();
    for i in 0..count as u64 {
        let signature =
            bs58::encode([&key(1000 + i)[..], &key(5000 + i)[..]].concat()).into_string();
        let slot = 300_000_000 + i * 3;
        let block_time = start + i as i64 * 7;
        let failed = i % 7 == 6;
        let events: Vec<ScriptEvent> = (0..1 + i % 2)
            .map(|index| {
                let price = 279_590_000_000_000_000_000u128
                    + u128::from(i * 1000 + index) * 1_000_000_000_000_000;
                buy_sell(
                    key(i % 2),
                    key(77),
                    price,
                    block_time,
                    &signature,
                    slot,
                    index as u32,
                )
            })
            .collect();
        let mut logs = vec![
            "Program ComputeBudget111111111111111111111111111111 invoke [1]".to_owned(),
            "Program ComputeBudget111111111111111111111111111111 success".to_owned(),
            format!("Program {PROGRAM} invoke [1]"),
            "Program log: Instruction: Buy".to_owned(),
        ];
        for event in &events {
            logs.push(format!(
                "Program data: {}",
                base64::engine::general_purpose::STANDARD.encode(&event.borsh)
            ));
        }
        logs.push(format!(
            "Program {PROGRAM} consumed 31000 of 200000 compute units"
        ));
        logs.push(format!("Program {PROGRAM} success"));
        if !failed {
            expected.extend(events.into_iter().map(|e| e.json));
        }
        transactions.push(FakeTx {
            signature,
            slot,
            tx_index: 0,
            block_time,
            failed,
            logs,
        });
    }
    (transactions, expected)
}

fn server_args(fake: &FakeSolana) -> Vec<String> {
    [
        "source.simulator.enabled=false",
        "source.solana.enabled=true",
        &format!("source.solana.ws_url=\"{}\"", fake.ws_url()),
        &format!("source.solana.rpc_url=\"{}\"", fake.rpc_url()),
        "source.solana.reconnect_min_ms=100",
        "source.solana.reconnect_max_ms=1000",
        "source.solana.backfill_page=4",
    ]
    .iter()
    .flat_map(|s| ["--set".to_owned(), s.to_string()])
    .collect()
}

async fn health(server: &ServerProcess) -> Value {
    get_json(&server.url("/health")).await
}

async fn wait_until(what: &str, server: &ServerProcess, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = health(server).await;
        if check(&health) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stored_events(server: &ServerProcess) -> u64 {
    health(server).await["pipeline"]["events_accepted"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn live_reconnect_backfill_and_restart_store_exactly_the_script() {
    let (transactions, _) = script(90);
    let fake = FakeSolana::start(transactions).await;
    live_reconnect_backfill_and_restart(fake, Vec::new()).await;
}

/// The same script through a node that speaks only TLS (`wss://`, `https://`) with a certificate of a CA
/// the server trusts through `source.solana.ca_file`: the same events, candle for candle.
#[tokio::test]
async fn the_same_over_tls_with_a_private_ca() {
    let ca = TestCa::new();
    let (transactions, _) = script(90);
    let fake = FakeSolana::start_tls(transactions, &ca.issue("node", &["localhost"])).await;
    let ca_file = format!(
        "source.solana.ca_file={:?}",
        ca.ca_file.display().to_string()
    );
    live_reconnect_backfill_and_restart(fake, vec!["--set".into(), ca_file]).await;
}

async fn live_reconnect_backfill_and_restart(fake: FakeSolana, extra_args: Vec<String>) {
    let (_, expected) = script(90);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let addr = free_local_addr();
    let mut args = server_args(&fake);
    args.extend(extra_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = ServerProcess::start_on(&data, &addr, &args);
    wait_until("the source goes live", &server, |h| {
        h["sources"]["solana"]["state"] == "live"
    })
    .await;

    // Live.
    fake.produce(20);
    fake.send_garbage();
    let events_in = |txs: usize| -> u64 {
        // Events of the first `txs` non-failed transactions, as the script made them.
        let (script, _) = script(90);
        script[..txs]
            .iter()
            .filter(|t| !t.failed)
            .map(|t| {
                t.logs
                    .iter()
                    .filter(|l| l.starts_with("Program data:"))
                    .count() as u64
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_events(&server).await < events_in(20) {
        assert!(
            Instant::now() < deadline,
            "live events not stored: {}",
            health(&server).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after_live = health(&server).await;
    assert!(
        after_live["sources"]["solana"]["bad_notifications"]
            .as_u64()
            .unwrap()
            >= 2,
        "garbage counted: {after_live}"
    );
    assert_eq!(
        after_live["sources"]["solana"]["state"], "live",
        "garbage did not stop the listener"
    );

    // The connection drops; transactions keep coming while nobody listens.
    fake.drop_connections();
    fake.produce(25);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_events(&server).await < events_in(45) {
        assert!(
            Instant::now() < deadline,
            "backfill after reconnect: {}",
            health(&server).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        health(&server).await["sources"]["solana"]["backfilled"]
            .as_u64()
            .unwrap()
            >= 25
    );
    fake.produce(15);

    // The whole server restarts mid-script; more transactions happen while it is down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    );
    fake.produce(20);
    let server = ServerProcess::start_on(&data, &addr, &args);
    wait_until("live again after the restart", &server, |h| {
        h["sources"]["solana"]["state"] == "live"
    })
    .await;
    fake.produce(10);
    let total = events_in(90);
    assert_eq!(total as usize, expected.len());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let symbols = get_json(&server.url("/api/v1/symbols")).await;
        let stored: u64 = symbols
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["event_count"].as_u64().unwrap())
            .sum();
        if stored == total {
            break;
        }
        assert!(stored < total, "duplicates stored: {stored} > {total}");
        assert!(
            Instant::now() < deadline,
            "{stored} of {total} events stored: {}",
            health(&server).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Candle for candle equal to a reference fed the script's events over HTTP.
    let reference = ServerProcess::start(
        &dir.path().join("reference"),
        &["--set", "source.simulator.enabled=false"],
    );
    let body: String = expected.iter().map(|e| e.to_string() + "\n").collect();
    let (status, report) = post_events(&reference, body).await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (200, Some(total)),
        "{report}"
    );
    for mint in [key(0), key(1)] {
        let mint = bs58::encode(mint).into_string();
        for interval in Interval::ALL {
            let want = candle_values(&reference, &mint, interval).await;
            assert!(!want.is_empty());
            assert_eq!(
                candle_values(&server, &mint, interval).await,
                want,
                "{mint} {interval}"
            );
        }
    }
    let metrics = metrics_text(&server).await;
    assert!(metrics.contains("kline_solana_live 1"), "{metrics}");
}

/// Slots of `per_slot` transactions of one mint (one BuySell each). Within a slot the script delivers the
/// transactions in the reverse of their block order, and their signatures sort in the reverse of it too, so
/// only the block position can put them in order. Returns the script and the events' JSON with `tx_index`.
fn crowded_slots(slots: u64, per_slot: u32, first_block_time: i64) -> (Vec<FakeTx>, Vec<Value>) {
    let mut transactions = Vec::new();
    let mut expected = Vec::new();
    for s in 0..slots {
        let slot = 310_000_000 + s * 2;
        let block_time = first_block_time + s as i64 * 2;
        for position in (0..per_slot).rev() {
            // Block position 0 gets the largest signature.
            let mut signature_bytes = key(9000 + s * 100 + u64::from(position)).to_vec();
            signature_bytes.extend_from_slice(&key(7000 + s));
            signature_bytes[0] = 200 - position as u8;
            let signature = bs58::encode(&signature_bytes).into_string();
            let price = 279_590_000_000_000_000_000u128
                + u128::from(s * 100 + u64::from(position)) * 1_000_000_000_000_000;
            let tx_index = position * 3 + 1; // other programs' transactions in between
            let mut event = buy_sell(key(0), key(77), price, block_time, &signature, slot, 0);
            event.json["tx_index"] = json!(tx_index);
            transactions.push(FakeTx {
                signature,
                slot,
                tx_index,
                block_time,
                failed: false,
                logs: vec![
                    format!("Program {PROGRAM} invoke [1]"),
                    format!(
                        "Program data: {}",
                        base64::engine::general_purpose::STANDARD.encode(&event.borsh)
                    ),
                    format!("Program {PROGRAM} success"),
                ],
            });
            expected.push(event.json);
        }
    }
    (transactions, expected)
}

fn price_of(json: &Value) -> f64 {
    format!("{}e-28", json["latest_price"].as_str().unwrap())
        .parse()
        .unwrap()
}

#[tokio::test]
async fn transactions_of_one_slot_follow_their_block_positions_live_backfilled_and_over_http() {
    const SLOTS: u64 = 10;
    const PER_SLOT: u32 = 4;
    let first_block_time = kline_protocol::response::unix_millis_now() / 1000 - 1800;
    let (transactions, expected) = crowded_slots(SLOTS, PER_SLOT, first_block_time);
    // One more slot, produced while the node cannot serve blocks.
    let (mut blockless, _) = crowded_slots(SLOTS + 1, 2, first_block_time);
    let blockless: Vec<FakeTx> = blockless.drain(blockless.len() - 2..).collect();
    let fake = FakeSolana::start([transactions, blockless.clone()].concat()).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let args = server_args(&fake);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = ServerProcess::start(&data, &args);
    wait_until("the source goes live", &server, |h| {
        h["sources"]["solana"]["state"] == "live"
    })
    .await;
    let wait_stored = |count: u64| {
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while stored_events(server).await < count {
                assert!(Instant::now() < deadline, "{}", health(server).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // Half live, half backfilled after a dropped connection.
    let half = (SLOTS / 2 * u64::from(PER_SLOT)) as usize;
    fake.produce(half);
    wait_stored(half as u64).await;
    fake.drop_connections();
    fake.produce(expected.len() - half);
    wait_stored(expected.len() as u64).await;

    // Each s1 candle is one slot: open and close are the first and last transaction of its block.
    let mint = bs58::encode(key(0)).into_string();
    let history = get_json(&server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval=s1&limit=1000"
    )))
    .await;
    let candles = history["data"].as_array().unwrap();
    assert_eq!(candles.len(), SLOTS as usize);
    for (s, candle) in candles.iter().enumerate() {
        let slot_events = &expected[s * PER_SLOT as usize..(s + 1) * PER_SLOT as usize];
        let first = slot_events
            .iter()
            .min_by_key(|e| e["tx_index"].as_u64())
            .unwrap();
        let last = slot_events
            .iter()
            .max_by_key(|e| e["tx_index"].as_u64())
            .unwrap();
        assert_eq!(
            candle["open"].as_f64(),
            Some(price_of(first)),
            "slot {s}: {candle}"
        );
        assert_eq!(
            candle["close"].as_f64(),
            Some(price_of(last)),
            "slot {s}: {candle}"
        );
    }

    // The same events over HTTP with `tx_index`, in another order, give the same candles.
    let reference = ServerProcess::start(
        &dir.path().join("reference"),
        &["--set", "source.simulator.enabled=false"],
    );
    let mut shuffled = expected.clone();
    shuffled.sort_by_key(|e| e["signature"].as_str().unwrap().to_owned());
    let body: String = shuffled.iter().map(|e| e.to_string() + "\n").collect();
    let (status, report) = post_events(&reference, body).await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (200, Some(expected.len() as u64))
    );
    for interval in Interval::ALL {
        assert_eq!(
            candle_values(&server, &mint, interval).await,
            candle_values(&reference, &mint, interval).await,
            "{interval}"
        );
    }

    // A node that cannot serve blocks: the events are stored without a position, and say so.
    fake.set_blocks_available(false);
    fake.produce(2);
    wait_stored(expected.len() as u64 + 2).await;
    assert_eq!(
        health(&server).await["sources"]["solana"]["blocks_unavailable"],
        1,
        "one slot without its block"
    );
    assert!(
        server
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    );
    let store = kline_server::store::CandleStore::open_at(&data, false, 64).unwrap();
    let stored = |signature: &str| -> Value {
        let id = kline_server::event::EventId {
            signature: kline_server::event::Signature::parse(signature)
                .unwrap()
                .to_bytes(),
            event_index: 0,
        };
        serde_json::from_str(&store.event_json(&id).unwrap().unwrap()).unwrap()
    };
    let positioned = stored(expected[0]["signature"].as_str().unwrap());
    assert_eq!(
        (
            &positioned["tx_index"],
            &positioned["tx_index_source"],
            &positioned["time_source"]
        ),
        (
            &expected[0]["tx_index"],
            &json!("block"),
            &json!("block_time")
        ),
        "{positioned}"
    );
    let unpositioned = stored(&blockless[0].signature);
    assert_eq!(
        (
            unpositioned.get("tx_index"),
            &unpositioned["tx_index_source"]
        ),
        (None, &json!("unavailable")),
        "{unpositioned}"
    );
}
