//! Volume and trades through the real server: events ingested over HTTP in a shuffled order come back as
//! candles with exact volumes (`/api/v1/klines`, the legacy `/api/kline` in its old shape) and as the
//! mint's trades in the chain's order, newest first, paged with `before` (`/api/v1/trades`).

use std::collections::BTreeSet;

use kline_tests::{KlineServer, ServerProcess, get_json, post_events};
use serde_json::{Value, json};

const MINT: [u8; 32] = [11; 32];

fn b58(bytes: &[u8]) -> String {
    bs58::encode(bytes).into_string()
}

/// Slots of three BuySell transactions each, with block positions against their signatures' order; the
/// last transaction trades `u64::MAX` lamports. Returned in chain order.
fn chain(start_secs: i64) -> Vec<Value> {
    let mut events = Vec::new();
    for s in 0..6u64 {
        for position in 0..3u32 {
            let mut signature = [0u8; 64];
            signature[0] = 250 - (s * 3) as u8 - position as u8; // sorts against the chain order
            signature[1..9].copy_from_slice(&s.to_be_bytes());
            signature[9] = position as u8;
            let n = s * 3 + u64::from(position);
            let sol: u64 = if n == 17 { u64::MAX } else { 1_000_000_000 + n };
            events.push(json!({
                "event_type": "BuySell", "payer": b58(&[3; 32]), "mint_account": b58(&MINT),
                "is_buy": n % 2 == 0, "token_amount": 35_000_000u64 + n, "sol_amount": sol,
                "latest_price": (279_590_000_000_000_000_000u128 + u128::from(n) * 1_000_000_000_000_000).to_string(),
                "timestamp": start_secs + s as i64, "signature": b58(&signature), "slot": 320_000_000 + s,
                "event_index": 0, "tx_index": position * 5,
            }));
        }
    }
    events
}

#[tokio::test]
async fn trades_page_back_in_chain_order_and_candles_carry_exact_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("db"),
        &["--set", "source.simulator.enabled=false"],
    );
    let start = kline_protocol::response::unix_millis_now() / 1000 / 60 * 60 - 600;
    let events = chain(start);
    let mut shuffled = events.clone();
    shuffled.sort_by_key(|e| e["signature"].as_str().unwrap().to_owned());
    let body: String = shuffled.iter().map(|e| e.to_string() + "\n").collect();
    let (status, report) = post_events(&server, body).await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (200, Some(18)),
        "{report}"
    );

    // Trades: newest first, three per page, every one exactly once, in the chain's order.
    let mint = b58(&MINT);
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut url = server.url(&format!("/api/v1/trades?symbol={mint}&limit=3"));
        if let Some(id) = &before {
            url.push_str(&format!("&before={id}"));
        }
        let page = get_json(&url).await;
        let trades = page["data"].as_array().unwrap_or_else(|| panic!("{page}"));
        assert!(trades.len() <= 3);
        seen.extend(trades.iter().cloned());
        before = trades.last().map(|t| t["id"].as_str().unwrap().to_owned());
        if page["has_more"] != true {
            break;
        }
    }
    let order: Vec<&str> = seen
        .iter()
        .map(|t| t["signature"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = events
        .iter()
        .rev()
        .map(|e| e["signature"].as_str().unwrap())
        .collect();
    assert_eq!(order, expected, "newest first, in block order");
    let newest = &seen[0];
    assert_eq!(newest["event_type"], "BuySell");
    assert_eq!(newest["side"], "sell");
    assert_eq!(newest["tx_index"], 10);
    assert_eq!(newest["payer"], b58(&[3; 32]));
    assert_eq!(newest["sol_amount"].as_f64(), Some(u64::MAX as f64 / 1e9));
    assert_eq!(newest["token_amount"].as_f64(), Some(35.000017));
    assert_eq!(newest["time"].as_i64(), Some((start + 5) * 1000));

    // Volumes: every candle's sums equal the events' amounts, computed here independently.
    let klines = get_json(&server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval=m15&limit=10"
    )))
    .await;
    let candles = klines["data"].as_array().unwrap();
    let times: BTreeSet<i64> = candles
        .iter()
        .map(|c| c["time"].as_i64().unwrap())
        .collect();
    for candle in candles {
        let time = candle["time"].as_i64().unwrap();
        let in_candle: Vec<&Value> = events
            .iter()
            .filter(|e| e["timestamp"].as_i64().unwrap() / 900 * 900 == time)
            .collect();
        let sum = |field: &str, buys_only: bool| -> u128 {
            in_candle
                .iter()
                .filter(|e| !buys_only || e["is_buy"] == true)
                .map(|e| u128::from(e[field].as_u64().unwrap()))
                .sum()
        };
        let whole =
            |raw: u128, decimals: u32| -> f64 { format!("{raw}e-{decimals}").parse().unwrap() };
        assert_eq!(
            candle["volume"].as_f64(),
            Some(whole(sum("token_amount", false), 6)),
            "{candle}"
        );
        assert_eq!(
            candle["quote_volume"].as_f64(),
            Some(whole(sum("sol_amount", false), 9)),
            "{candle}"
        );
        assert_eq!(
            candle["taker_buy_volume"].as_f64(),
            Some(whole(sum("token_amount", true), 6))
        );
        assert_eq!(
            candle["taker_buy_quote_volume"].as_f64(),
            Some(whole(sum("sol_amount", true), 9))
        );
    }
    assert!(!times.is_empty());

    // The legacy route keeps its candle shape, with the volume filled in.
    let legacy =
        get_json(&server.url(&format!("/api/kline?mint={mint}&interval=m15&limit=5"))).await;
    let first = &legacy["data"]["klines"][0];
    let keys: BTreeSet<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "is_final",
            "update_count"
        ]),
        "{first}"
    );
    assert!(first["volume"].as_f64().unwrap() > 0.0);

    // Bad requests say what was wrong.
    let client = reqwest::Client::new();
    for (query, says) in [
        (
            format!("symbol={mint}&limit=0"),
            "`limit` must be an integer from 1 to 1000",
        ),
        (
            format!("symbol={mint}&before=nope"),
            "`before`: trade id `nope`",
        ),
        (
            format!("symbol={mint}&before={}:0", b58(&[1; 64])),
            "no trade",
        ),
        ("limit=5".to_owned(), "missing `symbol`"),
    ] {
        let response = client
            .get(server.url(&format!("/api/v1/trades?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
}
