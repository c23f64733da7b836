//! The `solana` source end to end, without the internet: the real server against a local fake RPC node
//! playing a script of transactions. Live notifications, a dropped connection with transactions produced
//! meanwhile, and a server restart mid-script must all end with exactly the script's events stored, no
//! duplicates, candle for candle equal to a reference server fed the same events over HTTP.

use std::time::{Duration, Instant};

use base64::Engine;
use kline_protocol::Interval;
use kline_tests::fake_solana::{FakeSolana, FakeTx};
use kline_tests::spinpet_script::{
    PROGRAM, ScriptEvent, buy_sell, crowded_slots, key, price_of, server_args,
};
use kline_tests::tls::TestCa;
use kline_tests::{
    KlineServer, ServerProcess, candle_values, free_local_addr, get_json, metrics_text, post_events,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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

#[tokio::test]
async fn transactions_of_one_slot_follow_their_block_positions_live_backfilled_and_over_http() {
    const SLOTS: u64 = 10;
    const PER_SLOT: u32 = 4;
    let first_block_time = kline_protocol::response::unix_millis_now() / 1000 - 1800;
    let (transactions, expected) = crowded_slots(SLOTS, PER_SLOT, first_block_time);
    // Two more slots: one whose block comes late, one the node refuses for good.
    let (mut extra, _) = crowded_slots(SLOTS + 2, 2, first_block_time);
    let refused: Vec<FakeTx> = extra.drain(extra.len() - 2..).collect();
    let late: Vec<FakeTx> = extra.drain(extra.len() - 2..).collect();
    let fake = FakeSolana::start([transactions, late.clone(), refused.clone()].concat()).await;
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

    // A block the node does not have yet ("Block not available"): its transactions wait for it, however
    // long, and are stored with its time and position; nothing is stamped with the receive time.
    fake.set_blocks_available(false);
    fake.produce(2);
    wait_until(
        "the slot's transactions wait for their block",
        &server,
        |h| {
            h["sources"]["solana"]["waiting_transactions"] == 2
                && h["sources"]["solana"]["rpc_retries"].as_u64() >= Some(3)
        },
    )
    .await;
    assert_eq!(stored_events(&server).await, expected.len() as u64);
    fake.set_blocks_available(true);
    wait_stored(expected.len() as u64 + 2).await;
    // A block the node refuses for good (missing from its storage): stored without a position, saying so.
    fake.set_blocks_missing(true);
    fake.produce(2);
    wait_stored(expected.len() as u64 + 4).await;
    let solana = health(&server).await["sources"]["solana"].clone();
    assert_eq!(
        solana["blocks_unavailable"], 1,
        "one slot refused: {solana}"
    );
    assert_eq!(
        solana["reconnects"], 1,
        "only the dropped connection: {solana}"
    );
    assert!(
        server
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    );
    let store = kline_store::CandleStore::open_at(&data, false, 64).unwrap();
    let stored = |signature: &str| -> Value {
        let id = kline_core::event::EventId {
            signature: kline_core::event::Signature::parse(signature)
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
    let late_event = stored(&late[0].signature);
    assert_eq!(
        (&late_event["tx_index"], &late_event["time_source"]),
        (&json!(late[0].tx_index), &json!("block_time")),
        "{late_event}"
    );
    let unpositioned = stored(&refused[0].signature);
    assert_eq!(
        (
            unpositioned.get("tx_index"),
            &unpositioned["tx_index_source"]
        ),
        (None, &json!("unavailable")),
        "{unpositioned}"
    );
}

/// A program upgrade seen from the chain: one transaction carries an event with fields after the ones the
/// server knows (how Anchor grows an event) beside an ordinary one and an event of a kind the IDL does not
/// have; a second carries that unknown kind again. The known events are stored, candle for candle as a
/// reference fed them over HTTP; the others are counted in `/metrics`, the unknown kind logged once.
#[tokio::test]
async fn events_of_a_newer_program_version_are_counted_and_the_known_ones_stored() {
    let block_time = kline_protocol::response::unix_millis_now() / 1000 - 600;
    let price = |n: u128| 279_590_000_000_000_000_000u128 + n * 1_000_000_000_000_000;
    let unknown_kind = {
        let mut payload = Sha256::digest(b"event:PetFedEvent")[..8].to_vec();
        payload.extend_from_slice(&[3; 40]);
        payload
    };
    let data = |bytes: &[u8]| {
        format!(
            "Program data: {}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    };
    let mut transactions = Vec::new();
    let mut expected = Vec::new();
    for (n, slot) in [(0u64, 305_000_000u64), (1, 305_000_003)] {
        let signature =
            bs58::encode([&key(4200 + n)[..], &key(4300 + n)[..]].concat()).into_string();
        let mut logs = vec![format!("Program {PROGRAM} invoke [1]")];
        if n == 0 {
            let mut grown = buy_sell(key(3), key(77), price(1), block_time, &signature, slot, 0);
            grown.borsh.extend_from_slice(&[9; 24]); // fields a newer program version appended
            logs.push(data(&grown.borsh));
            expected.push(grown.json);
            logs.push(data(&unknown_kind));
            let plain = buy_sell(key(3), key(77), price(2), block_time, &signature, slot, 2);
            logs.push(data(&plain.borsh));
            expected.push(plain.json);
        } else {
            logs.push(data(&unknown_kind));
            let plain = buy_sell(
                key(3),
                key(77),
                price(3),
                block_time + 1,
                &signature,
                slot,
                1,
            );
            logs.push(data(&plain.borsh));
            expected.push(plain.json);
        }
        logs.push(format!("Program {PROGRAM} success"));
        transactions.push(FakeTx {
            signature,
            slot,
            tx_index: 0,
            block_time: block_time + n as i64,
            failed: false,
            logs,
        });
    }
    let fake = FakeSolana::start(transactions).await;
    let dir = tempfile::tempdir().unwrap();
    let args = server_args(&fake);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    wait_until("the source goes live", &server, |h| {
        h["sources"]["solana"]["state"] == "live"
    })
    .await;
    fake.produce(2);
    wait_until("the known events are stored", &server, |h| {
        h["pipeline"]["events_accepted"] == 3
    })
    .await;

    let metrics = metrics_text(&server).await;
    for line in [
        "kline_events_trailing_bytes_total 1",
        "kline_events_unknown_kind_total 2",
        "kline_solana_decode_errors_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "`{line}` in\n{metrics}");
    }
    let log = server.log_text();
    assert_eq!(
        log.matches("event of an unknown kind").count(),
        1,
        "logged once per kind:\n{log}"
    );
    assert_eq!(
        log.matches("fields after the known ones").count(),
        1,
        "{log}"
    );

    let reference = ServerProcess::start(
        &dir.path().join("reference"),
        &["--set", "source.simulator.enabled=false"],
    );
    let body: String = expected.iter().map(|e| e.to_string() + "\n").collect();
    let (status, report) = post_events(&reference, body).await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (200, Some(3)),
        "{report}"
    );
    let mint = bs58::encode(key(3)).into_string();
    for interval in Interval::ALL {
        let want = candle_values(&reference, &mint, interval).await;
        assert!(!want.is_empty());
        assert_eq!(
            candle_values(&server, &mint, interval).await,
            want,
            "{interval}"
        );
    }
}
