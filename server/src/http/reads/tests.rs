//! The REST reads on a real listener: what a request costs on a long series, the read permits, and the
//! symbol pages.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use kline_protocol::{Interval, Symbol};
use serde_json::Value;

use super::*;
use kline_config::{Keep, RetentionConfig};
use kline_store::SymbolStats;
use kline_store::test_support::write_series;

/// Unix s of the series' first candle.
const T0: i64 = 1_700_000_000;

/// Serves the read routes of `store` (with `config`) on a loopback port; returns its base URL.
async fn serve(store: Arc<CandleStore>, config: &Config) -> (String, ReadSide) {
    let reads = ReadSide::new(store, config, &StoreStats::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = routes(reads.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, reads)
}

fn put_symbol(store: &CandleStore, mint: [u8; 32], updated_at_ms: i64) {
    let mut batch = store.batch();
    let stats = SymbolStats {
        last_price: 1.0,
        last_key: kline_core::aggregator::OrderKey::default(),
        updated_at_ms,
        event_count: 1,
    };
    batch.put_symbol(&mint, &stats);
    store.write(batch).unwrap();
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_candle_series_answers_api_kline_reading_only_the_page() {
    const CANDLES: i64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let mint = [42; 32];
    let written = Instant::now();
    write_series(&store, mint, Interval::S1, T0..T0 + CANDLES, 50_000);
    put_symbol(&store, mint, 1);
    eprintln!("1M candles written in {:?}", written.elapsed());
    let (url, _) = serve(store.clone(), &Config::defaults()).await;
    let symbol = Symbol::from_bytes(&mint);
    let page = |query: &str| format!("{url}/api/kline?mint={symbol}&interval=s1{query}");

    let read_before = store.candles_read();
    let asked = Instant::now();
    let (status, _, body) = get(&page("")).await;
    eprintln!("GET /api/kline (page 1 of 1M): {:?}", asked.elapsed());
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["total"], CANDLES);
    assert_eq!(data["klines"].as_array().unwrap().len(), 50);
    assert_eq!(data["klines"][0]["time"], T0 + CANDLES - 1, "newest first");
    assert_eq!(data["has_next"], true);
    assert_eq!(
        store.candles_read() - read_before,
        50,
        "page one reads its 50 candles, not the series"
    );

    // The last page of time_desc holds the oldest candles: read from the oldest end.
    let read_before = store.candles_read();
    let (_, _, body) = get(&page("&page=20000")).await;
    assert_eq!(body["data"]["klines"][49]["time"], T0);
    assert_eq!(body["data"]["has_next"], false);
    assert_eq!(store.candles_read() - read_before, 50);

    // The middle of the series: found by the bucket counts, not by stepping over half a million candles.
    let read_before = store.candles_read();
    let (_, _, body) = get(&page("&page=10000")).await;
    assert_eq!(body["data"]["klines"][0]["time"], T0 + CANDLES / 2 + 49);
    let read = store.candles_read() - read_before;
    assert!(
        read < 4096 + 50,
        "{read} candles read for a page in the middle"
    );

    // Retention keeps the newest 250,000 seconds: `total` is what it kept.
    let now_ms = (T0 + CANDLES) * 1000;
    let keep = Keep::For(Duration::from_secs(250_000));
    let retention = RetentionConfig {
        events: keep,
        trades: keep,
        candles: [(Interval::S1, keep)].into(),
        check_every: Duration::from_secs(60),
    };
    let report = kline_store::sweeper::prune_once(&store, &retention, now_ms).unwrap();
    assert_eq!(report.series_pruned, 1);
    let kept = store.count_series_candles(&mint, Interval::S1).unwrap();
    assert!(kept < 260_000 && kept > 240_000, "{kept}");
    let (_, _, body) = get(&page("&order_by=time_asc&limit=1")).await;
    assert_eq!(
        body["data"]["total"], kept,
        "the answer's total is the kept count"
    );
    assert_eq!(
        body["data"]["klines"][0]["time"],
        T0 + CANDLES - kept as i64,
        "the oldest kept candle comes first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_finds_no_permit_within_the_wait_gets_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let mint = [5; 32];
    write_series(&store, mint, Interval::M1, (0..3).map(|i| T0 + i * 60), 10);
    let mut config = Config::defaults();
    config.rest.max_concurrent_reads = 1;
    config.rest.read_wait_ms = 50;
    let (url, reads) = serve(store.clone(), &config).await;
    let symbol = Symbol::from_bytes(&mint);
    let routes = [
        format!("{url}/api/v1/klines?symbol={symbol}&interval=m1"),
        format!("{url}/api/kline?mint={symbol}&interval=m1"),
        format!("{url}/api/v1/trades?symbol={symbol}"),
    ];

    // One long read holds the only permit.
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let holder = {
        let (reads, store) = (reads.clone(), store.clone());
        tokio::spawn(async move {
            reads
                .permits
                .read(&store, move |_| {
                    started_tx.send(()).unwrap();
                    let _ = released.recv();
                    Ok(())
                })
                .await
        })
    };
    tokio::task::spawn_blocking(move || started.recv().unwrap())
        .await
        .unwrap();
    for route in &routes {
        let (status, headers, body) = get(route).await;
        assert_eq!(status, 503, "{route}: {body}");
        assert_eq!(headers["retry-after"], "1", "{route}");
    }
    let refused = reads.permits.refused();
    assert_eq!(refused, 3, "each refusal is counted");

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    for route in &routes {
        let (status, _, body) = get(route).await;
        assert_eq!(status, 200, "{route}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_come_in_pages_linked_by_a_cursor_and_without_parameters_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    for i in 0..25u8 {
        put_symbol(&store, [i + 1; 32], 1_000 + i64::from(i));
    }
    let mut config = Config::defaults();
    config.rest.symbols_default_limit = 10;
    config.rest.symbols_max_limit = 20;
    let (url, _) = serve(store.clone(), &config).await;

    let mut seen = Vec::new();
    let mut next = Some("/api/v1/symbols".to_owned());
    let mut pages = Vec::new();
    while let Some(path) = next.take() {
        let (status, headers, body) = get(&format!("{url}{path}")).await;
        assert_eq!(status, 200, "{path}: {body}");
        let page = body.as_array().unwrap();
        pages.push(page.len());
        for entry in page {
            assert_eq!(
                entry
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                [
                    "event_count",
                    "last_event_time",
                    "last_price",
                    "name",
                    "symbol",
                    "ticker",
                    "updated_at_ms",
                    "uri"
                ],
                "the old shape, plus the token's names (issue 26)"
            );
            assert!(entry["name"].is_null(), "no TokenCreated stored: {entry}");
            seen.push(entry["updated_at_ms"].as_i64().unwrap());
        }
        next = headers.get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with(">; rel=\"next\""), "{link}");
            let end = link.find('>').expect("a Link header's URL ends with >");
            link[1..end].to_owned()
        });
    }
    assert_eq!(pages, [10, 10, 5], "the default page, then the rest");
    let newest_first: Vec<i64> = (0..25).rev().map(|i| 1_000 + i).collect();
    assert_eq!(seen, newest_first, "every mint once, newest first");

    let (status, headers, body) = get(&format!("{url}/api/v1/symbols?limit=20")).await;
    assert_eq!((status, body.as_array().unwrap().len()), (200, 20));
    assert!(headers.contains_key("link"));
    for bad in ["limit=21", "limit=0", "cursor=nonsense"] {
        let (status, _, body) = get(&format!("{url}/api/v1/symbols?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}
