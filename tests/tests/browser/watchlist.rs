//! The watchlist beside the chart (issue 26, items 3 and 5), in a real headless chromium against the real
//! server with the simulator off and a market the test posts: the rows show the tickers, names and prices
//! posted (a token without a name by its short address; a name made of markup as text), a new trade moves
//! its row, the sparklines are seeded from the last hour's candles, sorting by name and by change orders
//! the rows as computed here, the filter narrows them, a star puts a row first and survives a reload, and
//! a click on a row opens that mint's chart.

use std::time::Duration;

use kline_core::event::{EventRecord, SpinPetEvent, scaled_price};
use kline_core::simulated_market::SimulatedMarket;
use kline_tests::webdriver::Browser;
use kline_tests::{KlineServer, ServerProcess, post_events};
use serde_json::Value;

use super::{QuietServerPage, target_dir, wait_for};

const HOSTILE_NAME: &str = "<script>window.__pwned = 1</script>Evil";
/// Mint 0 is named with markup, 1 and 2 keep the simulator's names, 3 never announces itself.
const MINTS: usize = 4;
const MINUTE_MS: i64 = 60_000;

/// What the test posted: the market, every event, and each mint's ticker and name (if announced).
struct Posted {
    market: SimulatedMarket,
    events: Vec<EventRecord>,
    names: Vec<Option<(String, String)>>,
}

impl Posted {
    fn mint(&self, index: usize) -> String {
        self.market.mints()[index].to_string()
    }

    /// Mint `index`'s last price and 24h change in percent, by the protocol's definition (every event
    /// posted lies in the window).
    fn last_and_change(&self, index: usize) -> (f64, f64) {
        let mint = self.mint(index);
        let prices: Vec<f64> = self
            .events
            .iter()
            .filter(|e| e.event.mint().to_string() == mint)
            .filter_map(|e| e.event.latest_price())
            .map(|raw| scaled_price(raw, 28).unwrap())
            .collect();
        let (open, last) = (prices[0], *prices.last().unwrap());
        (last, (last - open) / open * 100.0)
    }

    /// The text a row is named by: `TICKER · name`, or the address.
    fn label(&self, index: usize) -> String {
        match &self.names[index] {
            Some((ticker, name)) => format!("{ticker} · {name}"),
            None => self.mint(index),
        }
    }

    /// The mints in the order of `key` (ascending; ties by address), as the page sorts them.
    fn order_by<K: PartialOrd>(&self, key: impl Fn(usize) -> K) -> Vec<String> {
        let mut order: Vec<usize> = (0..MINTS).collect();
        order.sort_by(|&a, &b| {
            key(a)
                .partial_cmp(&key(b))
                .unwrap()
                .then(self.mint(a).cmp(&self.mint(b)))
        });
        order.into_iter().map(|index| self.mint(index)).collect()
    }

    async fn post(&mut self, server: &ServerProcess, events: Vec<EventRecord>) {
        let body: String = events.iter().map(|e| e.to_json() + "\n").collect();
        let (status, report) = post_events(server, body).await;
        let all = report["accepted"].as_u64() == Some(events.len() as u64);
        assert!(status == 200 && all, "{status}: {report}");
        self.events.extend(events);
    }
}

/// Three mints announce themselves; every mint trades at 50, 30 and 10 minutes ago and now, so each has
/// a sparkline of more than one minute and its own 24h change.
async fn post_market(server: &ServerProcess) -> Posted {
    let mut posted = Posted {
        market: SimulatedMarket::new(26, MINTS),
        events: Vec::new(),
        names: Vec::new(),
    };
    let now = kline_protocol::response::unix_millis_now();
    let mut events = Vec::new();
    for index in 0..MINTS {
        if index == 3 {
            posted.names.push(None);
            continue;
        }
        let mut created = posted.market.token_created(index, now - 55 * MINUTE_MS);
        let SpinPetEvent::TokenCreated(token) = &mut created.event else {
            unreachable!("token_created makes a TokenCreated")
        };
        if index == 0 {
            token.name = HOSTILE_NAME.into();
        }
        posted
            .names
            .push(Some((token.symbol.clone(), token.name.clone())));
        events.push(created);
    }
    for minutes_ago in [50, 30, 10, 0] {
        for index in 0..MINTS {
            let ts = now - minutes_ago * MINUTE_MS - 1000 + index as i64;
            events.push(posted.market.next_event_for(index, ts));
        }
    }
    posted.post(server, events).await;
    posted
}

/// The watchlist as drawn (`[]` until the page's module has run).
async fn rows(browser: &Browser) -> Vec<Value> {
    let rows = browser
        .execute("return window.__kline?.watchlist ?? [];")
        .await;
    rows.as_array().cloned().unwrap_or_default()
}

fn symbols(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|row| row["symbol"].as_str().unwrap().to_owned())
        .collect()
}

fn row_of<'a>(rows: &'a [Value], mint: &str) -> &'a Value {
    rows.iter()
        .find(|row| row["symbol"] == mint)
        .unwrap_or_else(|| panic!("no row of {mint}: {rows:?}"))
}

/// Waits until the rows, in order, are the mints `expected`.
async fn wait_for_order(browser: &Browser, what: &str, expected: &[String]) -> Vec<Value> {
    wait_for(what, Duration::from_secs(20), || async {
        let rows = rows(browser).await;
        if symbols(&rows) == expected {
            Ok(rows)
        } else {
            Err(format!("{:?}, expected {expected:?}", symbols(&rows)))
        }
    })
    .await
}

/// The page's own price text for `price` (price-format.js, tested on its own).
async fn price_text(browser: &Browser, price: f64) -> String {
    let text = browser
        .execute(&format!("return window.__kline.formatPrice({price:e}, 4);"))
        .await;
    text.as_str().unwrap().to_owned()
}

/// Whether `row` shows `price` and `change` (the change to its two decimals, coloured by its sign).
async fn shows(browser: &Browser, row: &Value, price: f64, change: f64) -> bool {
    let shown_change: f64 = row["change"]
        .as_str()
        .and_then(|text| text.trim_end_matches('%').parse().ok())
        .unwrap_or(f64::NAN);
    let colour = if change > 0.0 { "up" } else { "down" };
    row["price"] == price_text(browser, price).await.as_str()
        && (shown_change - change).abs() <= 0.005 + 1e-9
        && row["changeClass"]
            .as_str()
            .is_some_and(|class| class.ends_with(colour))
}

#[tokio::test]
async fn chart_page_watchlist_moves_sorts_filters_stars_and_opens_charts() {
    let Some(quiet) = QuietServerPage::start().await else {
        return;
    };
    let (browser, server) = (&quiet.browser, &quiet.server);
    let mut posted = post_market(server).await;
    browser.goto(&server.url("/chart?interval=m1")).await;

    // Every mint, highest 24h change first, each row with the name and the numbers posted.
    let by_change = posted.order_by(|index| -posted.last_and_change(index).1);
    let seen = wait_for_order(browser, "every mint by change", &by_change).await;
    for index in 0..MINTS {
        let row = row_of(&seen, &posted.mint(index));
        let (ticker, name) = posted.names[index].clone().unwrap_or_else(|| {
            let mint = posted.mint(index);
            (
                format!("{}…{}", &mint[..4], &mint[mint.len() - 4..]),
                "".into(),
            )
        });
        assert_eq!(
            (&row["ticker"], &row["name"]),
            (&ticker.into(), &name.into()),
            "{row}"
        );
        let (last, change) = posted.last_and_change(index);
        assert!(
            shows(browser, row, last, change).await,
            "{row}: {last:e}, {change}%"
        );
    }
    // The markup in a name is text: no element of it, no script of it ran.
    let markup = browser
        .execute(
            "return {scripts: document.querySelectorAll('script').length, pwned: window.__pwned ?? null};",
        )
        .await;
    assert_eq!(markup, serde_json::json!({"scripts": 2, "pwned": null}));
    // The chart's mint is the one row highlighted.
    let current = browser
        .execute("return window.__kline.subscription.symbol;")
        .await;
    let highlighted: Vec<&Value> = seen.iter().filter(|row| row["current"] == true).collect();
    assert_eq!(highlighted.len(), 1, "{seen:?}");
    assert_eq!(highlighted[0]["symbol"], current);

    // Each sparkline is seeded from its mint's last hour (one read per row): more than one level.
    wait_for(
        "every sparkline seeded",
        Duration::from_secs(20),
        || async {
            let rows = rows(browser).await;
            let levels = |row: &Value| -> usize {
                let points = row["sparkline"].as_str().unwrap_or("");
                let mut ys: Vec<&str> = points
                    .split(' ')
                    .filter_map(|p| p.split(',').nth(1))
                    .collect();
                ys.sort_unstable();
                ys.dedup();
                ys.len()
            };
            if rows.len() == MINTS
                && rows
                    .iter()
                    .all(|row| row["seeded"] == true && levels(row) > 1)
            {
                Ok(())
            } else {
                Err(format!("{rows:?}"))
            }
        },
    )
    .await;
    let reads = browser
        .execute("return window.__kline.counts.sparklineRequests;")
        .await;
    assert_eq!(reads, MINTS, "one seed read per row");

    // A new trade moves its row.
    let trade = posted
        .market
        .next_event_for(2, kline_protocol::response::unix_millis_now());
    posted.post(server, vec![trade]).await;
    let (last, change) = posted.last_and_change(2);
    let moved = posted.mint(2);
    wait_for(
        "the new trade in its row",
        Duration::from_secs(20),
        || async {
            let rows = rows(browser).await;
            let row = row_of(&rows, &moved).clone();
            if shows(browser, &row, last, change).await {
                Ok(())
            } else {
                Err(format!("{row}: {last:e}, {change}%"))
            }
        },
    )
    .await;

    // Sorting: by name (A to Z), then by change again (highest first).
    browser
        .click("#watchlist th button[data-sort='name']")
        .await;
    let by_name = posted.order_by(|index| posted.label(index).to_lowercase());
    wait_for_order(browser, "the rows by name", &by_name).await;
    browser
        .click("#watchlist th button[data-sort='change']")
        .await;
    let by_change = posted.order_by(|index| -posted.last_and_change(index).1);
    wait_for_order(browser, "the rows by change", &by_change).await;

    // The filter narrows the rows, by ticker (case-insensitive) or by address.
    let (ticker, _) = posted.names[1].clone().unwrap();
    browser
        .type_into("#watchlist-filter", &ticker.to_lowercase())
        .await;
    wait_for_order(browser, "the filtered rows", &[posted.mint(1)]).await;
    let unnamed = posted.mint(3);
    browser.type_into("#watchlist-filter", &unnamed[..10]).await;
    wait_for_order(
        browser,
        "the row found by address",
        std::slice::from_ref(&unnamed),
    )
    .await;
    browser
        .execute(
            "const box = document.getElementById('watchlist-filter');
             box.value = ''; box.dispatchEvent(new Event('input')); return null;",
        )
        .await;
    wait_for_order(browser, "every row again", &by_change).await;

    // A star puts the last row first, and it is still first after a reload.
    let last_row = by_change.last().unwrap().clone();
    browser
        .click(&format!(
            "#watchlist-rows tr[data-symbol='{last_row}'] button.star"
        ))
        .await;
    let starred_first: Vec<String> = std::iter::once(last_row.clone())
        .chain(by_change.iter().filter(|m| **m != last_row).cloned())
        .collect();
    wait_for_order(browser, "the starred row first", &starred_first).await;
    let path = target_dir().join("kline-chart-watchlist.png");
    std::fs::write(&path, browser.screenshot().await).expect("screenshot written");
    eprintln!("chart screenshot with the watchlist: {}", path.display());
    browser.goto(&server.url("/chart?interval=m1")).await;
    let seen = wait_for_order(
        browser,
        "the starred row first after a reload",
        &starred_first,
    )
    .await;
    assert_eq!(seen[0]["starred"], true, "{seen:?}");
    assert!(
        seen[1..].iter().all(|row| row["starred"] == false),
        "{seen:?}"
    );

    // A click on a row opens its chart, titled with its name; the row is highlighted.
    let clicked = posted.mint(1);
    let (ticker, name) = posted.names[1].clone().unwrap();
    let title = format!(
        "{ticker} · {name} ({}…{})",
        &clicked[..4],
        &clicked[clicked.len() - 4..]
    );
    browser
        .click(&format!(
            "#watchlist-rows tr[data-symbol='{clicked}'] td.name"
        ))
        .await;
    wait_for(
        "the clicked mint's chart",
        Duration::from_secs(20),
        || async {
            let page = browser
                .execute(
                    "const k = window.__kline;
                 return {title: k.title, symbol: k.subscription.symbol, url: location.search,
                         current: k.watchlist.filter(r => r.current).map(r => r.symbol)};",
                )
                .await;
            let opened = page["title"] == title.as_str()
                && page["symbol"] == clicked.as_str()
                && page["url"]
                    .as_str()
                    .is_some_and(|url| url.contains(&format!("symbol={clicked}")))
                && page["current"] == serde_json::json!([clicked]);
            if opened {
                Ok(())
            } else {
                Err(page.to_string())
            }
        },
    )
    .await;
}
