//! `GET /api/kline` against the existing Spin Pet server's contract, field by field
//! (`/work/shared/spinpet/upstream-interfaces.md`, section "REST `GET /api/kline`"), on the in-process server.

use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::Interval;
use kline_tests::{InProcessServer, KlineServer, candle_values, post_events};
use serde_json::{Value, json};

/// Candles of the series in the test: one event per second, so one `s1` candle per event.
const CANDLES: usize = 7;

/// A server holding `CANDLES` final `s1` candles of one mint (an hour old), and that mint.
async fn server_with_series() -> (InProcessServer, String) {
    let server = InProcessServer::start(&[]);
    let mut market = SimulatedMarket::new(77, 1);
    let start = (kline_protocol::response::unix_millis_now() - 3_600_000) / 1000 * 1000;
    let body: String = (0..CANDLES)
        .map(|i| {
            market
                .next_event_for(0, start + i as i64 * 1000 + 250)
                .to_json()
                + "\n"
        })
        .collect();
    let (status, report) = post_events(&server, body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], CANDLES, "{report}");
    (server, market.mints()[0].to_string())
}

async fn get(server: &impl KlineServer, query: &str) -> (u16, String, String) {
    let response = reqwest::get(server.url(&format!("/api/kline?{query}")))
        .await
        .expect("GET /api/kline");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

async fn get_ok(server: &impl KlineServer, query: &str) -> Value {
    let (status, content_type, body) = get(server, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert_eq!(content_type, "application/json", "{query}");
    serde_json::from_str(&body).unwrap()
}

fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap_or_else(|| panic!("an object: {object}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// The series as `/api/v1/klines` has it, oldest first, as upstream's kline objects.
async fn expected_klines(server: &impl KlineServer, mint: &str) -> Vec<Value> {
    let history = kline_tests::get_json(&server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval=s1&limit=1000"
    )))
    .await;
    let candles = history["data"].as_array().unwrap();
    assert_eq!(candles.len(), CANDLES);
    assert_eq!(
        candle_values(server, mint, Interval::S1).await.len(),
        CANDLES
    );
    candles
        .iter()
        .map(|c| {
            json!({
                "time": c["time"], "open": c["open"], "high": c["high"], "low": c["low"],
                "close": c["close"], "volume": c["volume"], "is_final": c["is_final"],
                "update_count": c["update_count"],
            })
        })
        .collect()
}

#[tokio::test]
async fn default_query_answers_upstreams_fields_newest_first() {
    let (server, mint) = server_with_series().await;
    let oldest_first = expected_klines(&server, &mint).await;
    let answer = get_ok(&server, &format!("mint={mint}&interval=s1")).await;

    assert_eq!(keys(&answer), ["data", "message", "success"]);
    assert_eq!(answer["success"], true);
    assert_eq!(answer["message"], "Operation successful");
    let data = &answer["data"];
    assert_eq!(
        keys(data),
        [
            "has_next",
            "has_prev",
            "interval",
            "klines",
            "limit",
            "mint_account",
            "page",
            "total"
        ]
    );
    assert_eq!(data["total"], CANDLES);
    assert_eq!(data["page"], 1);
    assert_eq!(data["limit"], 50);
    assert_eq!(data["has_next"], false);
    assert_eq!(data["has_prev"], false);
    assert_eq!(data["interval"], "s1");
    assert_eq!(data["mint_account"], mint.as_str());
    let klines = data["klines"].as_array().unwrap();
    for kline in klines {
        assert_eq!(
            keys(kline),
            [
                "close",
                "high",
                "is_final",
                "low",
                "open",
                "time",
                "update_count",
                "volume"
            ]
        );
        assert_eq!(kline["is_final"], true, "an hour-old candle is final");
    }
    let newest_first: Vec<Value> = oldest_first.into_iter().rev().collect();
    assert_eq!(klines, &newest_first);
}

#[tokio::test]
async fn pages_sort_the_whole_series_first_so_time_asc_page_one_is_the_oldest() {
    let (server, mint) = server_with_series().await;
    let oldest_first = expected_klines(&server, &mint).await;
    let newest_first: Vec<Value> = oldest_first.iter().rev().cloned().collect();
    let page = |order: &str, page: usize| {
        let query = format!("mint={mint}&interval=s1&limit=3&page={page}&order_by={order}");
        let server = &server;
        async move { get_ok(server, &query).await["data"].clone() }
    };

    let desc1 = page("time_desc", 1).await;
    assert_eq!(desc1["klines"].as_array().unwrap(), &newest_first[0..3]);
    assert_eq!(
        (desc1["has_next"].clone(), desc1["has_prev"].clone()),
        (json!(true), json!(false))
    );
    let desc3 = page("time_desc", 3).await;
    assert_eq!(desc3["klines"].as_array().unwrap(), &newest_first[6..7]);
    assert_eq!(
        (desc3["has_next"].clone(), desc3["has_prev"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(desc3["page"], 3);
    assert_eq!(desc3["limit"], 3);
    assert_eq!(desc3["total"], CANDLES);

    let asc1 = page("time_asc", 1).await;
    assert_eq!(asc1["klines"].as_array().unwrap(), &oldest_first[0..3]);
    let asc2 = page("time_asc", 2).await;
    assert_eq!(asc2["klines"].as_array().unwrap(), &oldest_first[3..6]);
    assert_eq!(
        (asc2["has_next"].clone(), asc2["has_prev"].clone()),
        (json!(true), json!(true))
    );

    let beyond = page("time_desc", 4).await;
    assert_eq!(beyond["klines"], json!([]));
    assert_eq!(beyond["has_next"], false);
    assert_eq!(beyond["total"], CANDLES);

    let unknown = get_ok(
        &server,
        "mint=So11111111111111111111111111111111111111112&interval=m5",
    )
    .await;
    assert_eq!(unknown["success"], true);
    assert_eq!(unknown["data"]["klines"], json!([]));
    assert_eq!(unknown["data"]["total"], 0);
    assert_eq!(unknown["data"]["interval"], "m5");
}

#[tokio::test]
async fn invalid_values_are_http_200_with_success_false_upstreams_message_and_zeroed_data() {
    let server = InProcessServer::start(&[]);
    let mint = "So11111111111111111111111111111111111111112";
    let zeroed = json!({
        "klines": [], "total": 0, "page": 0, "limit": 0, "has_next": false, "has_prev": false,
        "interval": "", "mint_account": ""
    });
    let cases = [
        (
            "mint=&interval=s1".to_string(),
            "mint parameter cannot be empty",
        ),
        (
            format!("mint={mint}&interval=x9"),
            "interval parameter must be one of: s1, s15, s30, m1, m5, m15, h1, h4, d1",
        ),
        (
            format!("mint={mint}&interval=s1&limit=1001"),
            "limit cannot exceed 1000",
        ),
        (
            format!("mint={mint}&interval=s1&page=0"),
            "page must be greater than 0",
        ),
        (
            format!("mint={mint}&interval=s1&order_by=newest"),
            "order_by must be 'time_asc' or 'time_desc'",
        ),
    ];
    for (query, message) in cases {
        let answer = get_ok(&server, &query).await;
        assert_eq!(
            answer,
            json!({ "success": false, "data": zeroed, "message": message }),
            "{query}"
        );
    }
    // Our one addition: a mint that is not a public key says so (upstream answered an empty series).
    let answer = get_ok(&server, "mint=not-base58!&interval=s1").await;
    assert_eq!(answer["success"], false);
    assert_eq!(answer["data"], zeroed);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("mint parameter is not a valid mint address"),
        "{answer}"
    );
    // A limit of exactly 1000 is allowed.
    let answer = get_ok(&server, &format!("mint={mint}&interval=s1&limit=1000")).await;
    assert_eq!(answer["success"], true);
}

#[tokio::test]
async fn missing_or_non_integer_parameters_are_axums_http_400_text() {
    let server = InProcessServer::start(&[]);
    let mint = "So11111111111111111111111111111111111111112";
    for query in [
        "interval=s1".to_string(),
        format!("mint={mint}"),
        format!("mint={mint}&interval=s1&page=abc"),
        format!("mint={mint}&interval=s1&limit=-1"),
    ] {
        let (status, content_type, body) = get(&server, &query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            content_type.starts_with("text/plain"),
            "{query}: {content_type}"
        );
        assert!(
            body.starts_with("Failed to deserialize query string: "),
            "{query}: {body}"
        );
    }
}
