//! The `solana` source end to end, without the internet: the real server against a local fake RPC node
//! playing a script of transactions. Live notifications, a dropped connection with transactions produced
//! meanwhile, and a server restart mid-script must all end with exactly the script's events stored, no
//! duplicates, candle for candle equal to a reference server fed the same events over HTTP.

use std::time::{Duration, Instant};

use base64::Engine;
use kline_protocol::Interval;
use kline_tests::fake_solana::{FakeSolana, FakeTx};
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
    let (transactions, expected) = script(90);
    let fake = FakeSolana::start(transactions).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let addr = free_local_addr();
    let args = server_args(&fake);
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
