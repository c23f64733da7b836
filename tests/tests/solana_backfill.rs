//! The `solana` source's backfill across a long gap, against the fake node: a gap longer than the old
//! in-memory limit (100,000 signatures) is backfilled completely, each event once, candle for candle equal
//! to a reference fed the same events over HTTP; a gap longer than `max_backfill` is backfilled for its
//! newest `max_backfill` signatures and the rest is reported in `/health` and `/metrics`, not skipped in
//! silence.

use std::time::Duration;

use base64::Engine;
use kline_protocol::Interval;
use kline_tests::fake_solana::{FakeSolana, FakeTx};
use kline_tests::spinpet_script::{PROGRAM, buy_sell, key, server_args};
use kline_tests::{
    KlineServer, ServerProcess, candle_values, get_json, metric, post_events, wait_until,
};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(120);
const FIRST_SLOT: u64 = 320_000_000;

/// A transaction of the script: `i`-th of the chain, `per_slot` to a slot (a slot a second), with a
/// BuySell of mint `key(0)` unless `failed`.
fn transaction(
    i: u64,
    per_slot: u64,
    first_block_time: i64,
    failed: bool,
) -> (FakeTx, Option<Value>) {
    let signature =
        bs58::encode([&key(20_000 + i)[..], &i.to_be_bytes(), &[7; 24]].concat()).into_string();
    let slot = FIRST_SLOT + i / per_slot;
    let tx_index = (i % per_slot) as u32;
    let block_time = first_block_time + (i / per_slot) as i64;
    if failed {
        let tx = FakeTx {
            signature,
            slot,
            tx_index,
            block_time,
            failed,
            logs: Vec::new(),
        };
        return (tx, None);
    }
    let price = 279_590_000_000_000_000_000u128 + u128::from(i) * 1_000_000_000_000_000;
    let mut event = buy_sell(key(0), key(77), price, block_time, &signature, slot, 0);
    event.json["tx_index"] = json!(tx_index);
    let logs = vec![
        format!("Program {PROGRAM} invoke [1]"),
        format!(
            "Program data: {}",
            base64::engine::general_purpose::STANDARD.encode(&event.borsh)
        ),
        format!("Program {PROGRAM} success"),
    ];
    let tx = FakeTx {
        signature,
        slot,
        tx_index,
        block_time,
        failed,
        logs,
    };
    (tx, Some(event.json))
}

/// `count` transactions, `per_slot` to a slot; those for which `real(i)` holds carry an event, the others
/// failed (a bonding curve's slippage failures: listed, never fetched). Returns the script and the events'
/// JSON.
fn chain(count: u64, per_slot: u64, real: impl Fn(u64) -> bool) -> (Vec<FakeTx>, Vec<Value>) {
    let first_block_time = kline_protocol::response::unix_millis_now() / 1000 - 3 * 3600;
    let mut transactions = Vec::with_capacity(count as usize);
    let mut events = Vec::new();
    for i in 0..count {
        let (tx, event) = transaction(i, per_slot, first_block_time, !real(i));
        transactions.push(tx);
        events.extend(event);
    }
    (transactions, events)
}

async fn solana_health(server: &ServerProcess) -> Value {
    get_json(&server.url("/health")).await["sources"]["solana"].clone()
}

/// Events of the script's mint the store holds.
async fn stored_total(server: &ServerProcess) -> u64 {
    let symbols = get_json(&server.url("/api/v1/symbols")).await;
    symbols
        .as_array()
        .map(|all| {
            all.iter()
                .map(|s| s["event_count"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// [`stored_total`] once it counts at least `want`: `/api/v1/symbols` is a list refreshed at most every
/// `rest.symbols_refresh_ms`, so it may trail the store for that long.
async fn settled_total(server: &ServerProcess, want: u64) -> u64 {
    wait_until("the symbol list counts what is stored", SETTLE, || async {
        stored_total(server).await >= want
    })
    .await;
    stored_total(server).await
}

/// Starts a server on `fake` with `extra` settings, lets it hear the first `live` transactions (its
/// cursor), drops its connection and produces the next `gap` while nobody listens.
async fn cursor_then_gap(
    fake: &FakeSolana,
    dir: &tempfile::TempDir,
    live: usize,
    live_events: u64,
    gap: usize,
    extra: &[&str],
) -> ServerProcess {
    let mut args = server_args(fake);
    args.extend(
        extra
            .iter()
            .flat_map(|s| ["--set".to_owned(), s.to_string()]),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    wait_until("the source goes live", SETTLE, || async {
        solana_health(&server).await["state"] == "live"
    })
    .await;
    fake.produce(live);
    wait_until("the live transactions are stored", SETTLE, || async {
        stored_total(&server).await == live_events
    })
    .await;
    fake.drop_connections();
    fake.produce(gap);
    server
}

#[tokio::test]
async fn a_gap_longer_than_the_old_limit_is_backfilled_completely() {
    // 100,050 signatures after the cursor, in pages of 1000. Events at the oldest end of the gap (those a
    // backfill cut at 100,000 would drop), in its middle and at its newest end; the rest failed.
    const LIVE: u64 = 4;
    const GAP: u64 = 100_050;
    let real = |i: u64| {
        let gap = i.wrapping_sub(LIVE);
        i < LIVE || gap < 20 || gap % 10_000 == 5_000 || gap >= GAP - 10
    };
    let (transactions, expected) = chain(LIVE + GAP, 500, real);
    let fake = FakeSolana::start(transactions).await;
    let dir = tempfile::tempdir().unwrap();
    let server = cursor_then_gap(
        &fake,
        &dir,
        LIVE as usize,
        LIVE,
        GAP as usize,
        &[
            "source.solana.backfill_page=1000",
            "source.solana.requests_per_sec=0",
        ],
    )
    .await;
    let total = expected.len() as u64;
    wait_until("the whole gap is stored", SETTLE, || async {
        let health = solana_health(&server).await;
        health["backfilled"].as_u64() >= Some(GAP) && health["state"] == "live"
    })
    .await;
    assert_eq!(
        settled_total(&server, total).await,
        total,
        "each event once"
    );
    let health = solana_health(&server).await;
    assert_eq!(health["backfill_skipped"], 0, "{health}");
    assert_eq!(health["backfill_pending"], 0, "{health}");
    assert_eq!(health["backfill_skipped_recent"], json!([]), "{health}");

    let reference = ServerProcess::start(
        &dir.path().join("reference"),
        &["--set", "source.simulator.enabled=false"],
    );
    let body: String = expected.iter().map(|e| e.to_string() + "\n").collect();
    let (status, report) = post_events(&reference, body).await;
    assert_eq!((status, report["accepted"].as_u64()), (200, Some(total)));
    let mint = bs58::encode(key(0)).into_string();
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

#[tokio::test]
async fn a_gap_longer_than_max_backfill_is_reported_in_health_and_metrics() {
    // After a cursor of 6 transactions, a gap of 100 in pages of 4 with max_backfill = 42: the newest 42
    // are backfilled (the cap cuts a page), the oldest 58 are skipped and reported.
    const LIVE: u64 = 6;
    const GAP: u64 = 100;
    const CAP: u64 = 42;
    let real = |i: u64| i % 7 != 6;
    let (transactions, expected) = chain(LIVE + GAP, 3, real);
    let events_of = |range: std::ops::Range<u64>| range.filter(|i| real(*i)).count() as u64;
    let skipped: Vec<&FakeTx> = transactions[LIVE as usize..(LIVE + GAP - CAP) as usize]
        .iter()
        .collect();
    let fake = FakeSolana::start(transactions.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = cursor_then_gap(
        &fake,
        &dir,
        LIVE as usize,
        events_of(0..LIVE),
        GAP as usize,
        &[&format!("source.solana.max_backfill={CAP}")],
    )
    .await;
    wait_until("the newest signatures are backfilled", SETTLE, || async {
        let health = solana_health(&server).await;
        health["backfilled"].as_u64() >= Some(CAP) && health["state"] == "live"
    })
    .await;
    let want = events_of(0..LIVE) + events_of(LIVE + GAP - CAP..LIVE + GAP);
    assert_eq!(
        settled_total(&server, want).await,
        want,
        "{}\n{}",
        get_json(&server.url("/health")).await,
        server.log_text()
    );
    assert!(want < expected.len() as u64);

    let health = solana_health(&server).await;
    assert_eq!(health["backfill_skipped"], GAP - CAP, "{health}");
    assert_eq!(health["backfill_gaps_skipped"], 1, "{health}");
    let gap = &health["backfill_skipped_recent"][0];
    let (oldest, newest) = (skipped[0], skipped[skipped.len() - 1]);
    assert_eq!(gap["signatures"], GAP - CAP, "{gap}");
    assert_eq!(
        (&gap["first_slot"], &gap["last_slot"]),
        (&json!(oldest.slot), &json!(newest.slot)),
        "{gap}"
    );
    assert_eq!(
        (&gap["oldest_signature"], &gap["newest_signature"]),
        (&json!(oldest.signature), &json!(newest.signature)),
        "{gap}"
    );
    assert_eq!(
        metric(&server, "kline_solana_backfill_skipped_total").await,
        (GAP - CAP) as f64
    );
    assert_eq!(
        metric(&server, "kline_solana_backfill_gaps_skipped_total").await,
        1.0
    );
    let log = server.log_text();
    assert!(
        log.contains("longer than max_backfill") && log.contains(&newest.slot.to_string()),
        "a warning with the slot range:\n{log}"
    );
}
