//! The chart page (`GET /`, `GET /chart`) end to end: its assets over HTTP, and the page itself in a real
//! headless chromium (driven over WebDriver) against the real `kline-server` with the simulator, through
//! a server restart, its indicators against a reference computation, and its watchlist against a market
//! the test posts. The page's read-only hook `window.__kline` tells what the chart holds.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kline_core::simulated_market::SimulatedMarket;
use kline_tests::webdriver::Browser;
use kline_tests::{KlineServer, ServerProcess, free_local_addr, get_json, post_events};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[path = "browser/indicators.rs"]
mod indicators;
#[path = "browser/watchlist.rs"]
mod watchlist;

const SIMULATOR: &[&str] = &[
    "--set",
    "source.simulator.events_per_sec=50",
    "--set",
    "source.simulator.mints=3",
];

const LIGHTWEIGHT_CHARTS: &str = "/chart/assets/lightweight-charts-5.2.1.standalone.production.js";
const LIGHTWEIGHT_CHARTS_SHA256: &str =
    "e21cc5caa0226ef30bd8549c50b9ef926615f2a4ee6b4e486353477a55f598cf";

/// Polls `check` until it gives `Ok`; panics after `timeout` with the last `Err` (what was seen).
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("timed out waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A headless chromium and a server with the simulator off (the test posts its own market), on a fresh
/// data directory. The fields drop in order: the browser, the server, then the server's directory.
struct QuietServerPage {
    browser: Browser,
    server: ServerProcess,
    _data: tempfile::TempDir,
}

impl QuietServerPage {
    /// `None` when there is no chromium to drive (the test skips; under CI, `Browser::start` fails instead).
    async fn start() -> Option<QuietServerPage> {
        let browser = Browser::start(1280, 720).await?;
        let data = tempfile::tempdir().unwrap();
        let server = ServerProcess::start(
            &data.path().join("db"),
            &["--set", "source.simulator.enabled=false"],
        );
        Some(QuietServerPage {
            browser,
            server,
            _data: data,
        })
    }
}

/// The page's state as its hook shows it (`null` until the page's module has run).
async fn page(browser: &Browser) -> Value {
    browser
        .execute(
            "const k = window.__kline; if (!k) return null;
             return {status: k.status, subscription: k.subscription, counts: k.counts,
                     lastSubscribe: k.lastSubscribe, lastBar: k.lastBar, times: k.bars.map(b => b.time),
                     hasOlder: k.hasOlder, priceLabels: k.priceLabels, errors: k.errors,
                     volumes: k.volumeBars, legend: document.getElementById('legend').textContent,
                     trades: k.trades, lastTradesSubscribe: k.lastTradesSubscribe,
                     statusLine: document.getElementById('status').textContent};",
        )
        .await
}

async fn newest_candle(server: &ServerProcess, mint: &str, interval: &str) -> Value {
    let url = server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval={interval}&limit=1"
    ));
    get_json(&url).await["data"][0].clone()
}

/// The page's newest bar equals the server's newest candle (both move: poll until they agree).
async fn wait_for_last_bar_to_match(
    browser: &Browser,
    server: &ServerProcess,
    mint: &str,
    interval: &str,
) {
    wait_for(
        &format!("the chart's last bar to equal /api/v1/klines's newest {interval} candle"),
        Duration::from_secs(20),
        || async {
            let bar = page(browser).await["lastBar"].clone();
            let candle = newest_candle(server, mint, interval).await;
            let same = ["time", "open", "high", "low", "close"]
                .iter()
                .all(|key| bar[key] == candle[key] && !bar[key].is_null());
            if same {
                Ok(())
            } else {
                Err(format!("chart {bar} vs REST {candle}"))
            }
        },
    )
    .await;
}

/// Posts one event for `mint` stamped now (another seed's event, so its signature is new); returns the
/// candle time (s1) it lands in.
async fn post_event_now(server: &ServerProcess, mint: &str, market: &mut SimulatedMarket) -> i64 {
    let now = kline_protocol::response::unix_millis_now();
    let mut event: Value = serde_json::from_str(&market.next_event_for(0, now).to_json()).unwrap();
    event["mint_account"] = Value::from(mint);
    let (status, body) = post_events(server, event.to_string()).await;
    assert_eq!(
        (status, &body["accepted"]),
        (200, &Value::from(1)),
        "{body}"
    );
    now / 1000
}

/// Posts one trade of `mint` stamped now; returns its trade id.
async fn post_trade_now(
    server: &ServerProcess,
    mint: &str,
    market: &mut SimulatedMarket,
) -> String {
    let now = kline_protocol::response::unix_millis_now();
    let mut event: Value = serde_json::from_str(&market.next_event_for(0, now).to_json()).unwrap();
    event["mint_account"] = Value::from(mint);
    // The last transaction of the current slot: the simulator's trades of this slot may already have been
    // pushed, and a trade that sorts before a pushed one is late (REST has it; the stream does not push it).
    event["tx_index"] = Value::from(1_000_000);
    let (status, body) = post_events(server, event.to_string()).await;
    assert_eq!(
        (status, &body["accepted"]),
        (200, &Value::from(1)),
        "{body}"
    );
    format!(
        "{}:{}",
        event["signature"].as_str().unwrap(),
        event["event_index"].as_u64().unwrap_or(0)
    )
}

fn times(state: &Value) -> Vec<i64> {
    state["times"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// `target/` (next to the test's profile directory), where a person can find the screenshot.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

async fn wait_for_first_symbol(server: &ServerProcess) -> String {
    wait_for("a simulated symbol", Duration::from_secs(20), || async {
        let symbols = get_json(&server.url("/api/v1/symbols")).await;
        symbols[0]["symbol"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| symbols.to_string())
    })
    .await
}

#[tokio::test]
async fn chart_page_and_its_assets_are_served_with_types_and_caching() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("db"), &[]);
    let http = reqwest::Client::new();

    for path in ["/", "/chart?symbol=abc&interval=m5"] {
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let html = response.text().await.unwrap();
        assert!(html.contains("/chart/assets/chart-page.js"), "{html}");
    }

    let library = http
        .get(server.url(LIGHTWEIGHT_CHARTS))
        .send()
        .await
        .unwrap();
    assert_eq!(library.status(), 200);
    assert_eq!(
        library.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        library.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = library.headers()["etag"].clone();
    let bytes = library.bytes().await.unwrap();
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest, LIGHTWEIGHT_CHARTS_SHA256,
        "the vendored file was changed"
    );

    let revalidated = http
        .get(server.url(LIGHTWEIGHT_CHARTS))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);

    let notice = http
        .get(server.url("/chart/assets/lightweight-charts-5.2.1-NOTICE.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        notice.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert!(notice.text().await.unwrap().contains("TradingView, Inc."));

    let missing = http
        .get(server.url("/chart/assets/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.text().await.unwrap(),
        "no chart asset named `nothing.js`"
    );
}

#[tokio::test]
async fn chart_page_draws_live_candles_pages_back_and_resumes_after_a_restart() {
    let Some(browser) = Browser::start(1280, 720).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let addr = free_local_addr();
    let mut server = ServerProcess::start_on(&data, &addr, SIMULATOR);
    let mint = wait_for_first_symbol(&server).await;

    // A page size of 5 with 12+ candles stored: the first page leaves the chart's left edge empty, so the
    // page must load older pages (`history` with `to`) as it would when the user scrolls left.
    wait_for(
        "12 s1 candles in the store",
        Duration::from_secs(30),
        || async {
            let url = server.url(&format!(
                "/api/v1/klines?symbol={mint}&interval=s1&limit=12"
            ));
            let count = get_json(&url).await["total_count"].as_u64().unwrap_or(0);
            if count >= 12 {
                Ok(())
            } else {
                Err(format!("{count} candles"))
            }
        },
    )
    .await;
    browser
        .goto(&server.url(&format!("/chart?symbol={mint}&interval=s1&limit=5&tz=utc")))
        .await;

    // History drawn, older pages loaded, no duplicate.
    let state = wait_for(
        "history drawn and older pages loaded",
        Duration::from_secs(20),
        || async {
            let state = page(&browser).await;
            let drawn = state["status"] == "connected"
                && state["subscription"]["confirmed"] == true
                && state["counts"]["olderPages"].as_u64() >= Some(1)
                && times(&state).len() >= 12;
            if drawn {
                Ok(state)
            } else {
                Err(state.to_string())
            }
        },
    )
    .await;
    let drawn = times(&state);
    assert!(
        drawn.windows(2).all(|w| w[0] < w[1]),
        "bars not strictly ascending: {drawn:?}"
    );
    assert_eq!(state["lastSubscribe"]["limit"], 5, "{state}");

    // Live updates arrive, and the last bar is the server's newest candle.
    let updates = state["counts"]["updates"].as_u64().unwrap();
    wait_for("live updates", Duration::from_secs(10), || async {
        let state = page(&browser).await;
        let now = state["counts"]["updates"].as_u64().unwrap_or(0);
        if now >= updates + 5 {
            Ok(())
        } else {
            Err(state["counts"].to_string())
        }
    })
    .await;
    wait_for_last_bar_to_match(&browser, &server, &mint, "s1").await;
    // The volume histogram: one bar per candle, the newest equal to the server's newest candle's volume.
    wait_for(
        "the volume histogram to match the candles and /api/v1/klines",
        Duration::from_secs(20),
        || async {
            let state = page(&browser).await;
            let volumes = state["volumes"].as_array().cloned().unwrap_or_default();
            let volume_times: Vec<i64> =
                volumes.iter().filter_map(|v| v["time"].as_i64()).collect();
            let candle = newest_candle(&server, &mint, "s1").await;
            let last = volumes.last().cloned().unwrap_or_default();
            let matches = volume_times == times(&state)
                && last["time"] == candle["time"]
                && last["value"] == candle["volume"]
                && candle["volume"].as_f64() > Some(0.0)
                && state["legend"].as_str().is_some_and(|l| l.contains("V "));
            if matches {
                Ok(())
            } else {
                Err(format!(
                    "{} volume bars for {} candles, last {last} vs REST {candle}; legend {}",
                    volumes.len(),
                    times(&state).len(),
                    state["legend"]
                ))
            }
        },
    )
    .await;
    // At ~17 events/s per mint, a candle's `is_final` update comes after the next candle's first update:
    // the page applies it as a historical update (the chart would throw on a plain `update()`).
    wait_for(
        "a late final applied as a historical update",
        Duration::from_secs(20),
        || async {
            let counts = page(&browser).await["counts"].clone();
            if counts["historicalUpdates"].as_u64() >= Some(1) {
                Ok(())
            } else {
                Err(counts.to_string())
            }
        },
    )
    .await;

    // Price labels: significant digits, and not all the same.
    let labels = wait_for("price axis labels", Duration::from_secs(10), || async {
        let labels = page(&browser).await["priceLabels"].clone();
        let labels: Vec<String> = serde_json::from_value(labels.clone()).unwrap_or_default();
        if labels.len() >= 2 {
            Ok(labels)
        } else {
            Err(format!("{labels:?}"))
        }
    })
    .await;
    let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
    assert_eq!(
        distinct.len(),
        labels.len(),
        "repeated price labels: {labels:?}"
    );
    assert!(
        labels
            .iter()
            .all(|l| l.starts_with("0.0") && l.chars().any(|c| ('₀'..='₉').contains(&c))),
        "simulated prices are below 0.001 and should be labelled like 0.0₆1668: {labels:?}"
    );
    let formatted = browser
        .execute("return [2.796e-8, 1e-9, 1.2346e-5, 0.0123456].map(p => window.__kline.formatPrice(p, 4));")
        .await;
    assert_eq!(
        formatted,
        serde_json::json!(["0.0₇2796", "0.0₈1000", "0.0₄1235", "0.01235"])
    );

    let screenshot = browser.screenshot().await;
    assert!(
        screenshot.starts_with(b"\x89PNG"),
        "the screenshot is not a PNG"
    );
    let path = target_dir().join("kline-chart.png");
    std::fs::write(&path, &screenshot).expect("screenshot written");
    eprintln!(
        "chart screenshot: {} (status line: {})",
        path.display(),
        page(&browser).await["statusLine"]
    );

    // The trades list beside the chart: the symbol's latest trades in the chain's order (newest first),
    // and a trade stored now appears in it live.
    let mut trader = SimulatedMarket::new(777, 1);
    let posted = post_trade_now(&server, &mint, &mut trader).await;
    let state = wait_for(
        "the posted trade in the trades list",
        Duration::from_secs(10),
        || async {
            let state = page(&browser).await;
            let listed = state["trades"].as_array().cloned().unwrap_or_default();
            if listed.iter().any(|row| row["id"] == posted.as_str()) {
                Ok(state)
            } else {
                Err(format!("{} rows, not {posted}", listed.len()))
            }
        },
    )
    .await;
    let listed: Vec<String> = state["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_str().unwrap().to_owned())
        .collect();
    let rest = get_json(&server.url(&format!("/api/v1/trades?symbol={mint}&limit=1000"))).await;
    let stored: Vec<&str> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let positions: Vec<usize> = listed
        .iter()
        .map(|id| {
            stored
                .iter()
                .position(|s| s == id)
                .unwrap_or_else(|| panic!("listed trade {id} is not stored"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "the trades list is newest first in the chain's order, once each: {positions:?}"
    );
    let row = &state["trades"][0]["text"];
    assert!(
        row.as_str()
            .is_some_and(|t| t.contains("buy") || t.contains("sell")),
        "{row}"
    );

    // Server restart: the page reconnects and resumes from its newest bar, no gap and no duplicate; its
    // watchlist subscribes to the tickers again (one snapshot per connection).
    let connections = state["counts"]["connections"].as_u64().unwrap();
    let exit = server.terminate(Duration::from_secs(30));
    assert!(
        exit.is_some_and(|s| s.success()),
        "server did not stop cleanly: {exit:?}"
    );
    let held = wait_for(
        "the page to notice the restart",
        Duration::from_secs(10),
        || async {
            let state = page(&browser).await;
            if state["status"] == "reconnecting" {
                Ok(state)
            } else {
                Err(state["status"].to_string())
            }
        },
    )
    .await;
    let newest_held = *times(&held).last().expect("bars held");
    server = ServerProcess::start_on(&data, &addr, SIMULATOR);
    let mut market = SimulatedMarket::new(4242, 1);
    post_event_now(&server, &mint, &mut market).await;
    let resumed = wait_for(
        "a resume after the restart",
        Duration::from_secs(30),
        || async {
            let state = page(&browser).await;
            let resumed = state["counts"]["connections"].as_u64() == Some(connections + 1)
                && state["counts"]["resumes"].as_u64() >= Some(1)
                && state["counts"]["tickerSnapshots"].as_u64() == Some(connections + 1)
                && state["subscription"]["confirmed"] == true;
            if resumed {
                Ok(state)
            } else {
                Err(state.to_string())
            }
        },
    )
    .await;
    assert_eq!(resumed["lastSubscribe"]["from"], newest_held, "{resumed}");
    assert!(resumed["lastSubscribe"]["limit"].is_null(), "{resumed}");
    // The restarted simulator replays its seed's events (all duplicates now), so new candles come from
    // ingest: three seconds with an event each, every one seen live by the page.
    for _ in 0..3 {
        let newest = post_event_now(&server, &mint, &mut market).await;
        wait_for_last_bar_to_match(&browser, &server, &mint, "s1").await;
        wait_for("the next second", Duration::from_secs(3), || async {
            let now = kline_protocol::response::unix_millis_now() / 1000;
            if now > newest {
                Ok(())
            } else {
                Err(format!("{now}"))
            }
        })
        .await;
    }
    let state = page(&browser).await;
    let drawn = times(&state);
    let (first, last) = (drawn[0], *drawn.last().unwrap());
    let url = server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval=s1&from={first}&limit=1000"
    ));
    let stored: Vec<i64> = get_json(&url).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["time"].as_i64())
        .filter(|t| *t <= last)
        .collect();
    assert_eq!(
        drawn, stored,
        "the chart's bars differ from the stored candles (gap or duplicate)"
    );

    // Switching interval (a click on the m1 button) resubscribes.
    let subscribes = state["counts"]["subscribes"].as_u64().unwrap();
    browser
        .click("#intervals button[data-interval=\"m1\"]")
        .await;
    let state = wait_for("the m1 subscription", Duration::from_secs(10), || async {
        let state = page(&browser).await;
        let switched = state["subscription"]["interval"] == "m1"
            && state["subscription"]["confirmed"] == true
            && state["lastSubscribe"]["interval"] == "m1"
            && state["counts"]["subscribes"].as_u64() == Some(subscribes + 1)
            && !times(&state).is_empty();
        if switched {
            Ok(state)
        } else {
            Err(state.to_string())
        }
    })
    .await;
    assert_eq!(
        state["lastSubscribe"]["limit"], 5,
        "a new pair starts from a snapshot: {state}"
    );
    wait_for_last_bar_to_match(&browser, &server, &mint, "m1").await;
    let location = browser.execute("return location.search;").await;
    assert!(
        location.as_str().unwrap().contains("interval=m1"),
        "{location}"
    );

    let state = page(&browser).await;
    assert_eq!(
        state["errors"],
        serde_json::json!([]),
        "the page reported errors"
    );
}
