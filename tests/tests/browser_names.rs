//! Token names on the chart page, in a real headless chromium (issue 26, item 1): the picker finds a
//! token by its ticker or name as the user types, Enter opens it, and the titles (legend, document
//! title) read `TICKER · name (3bue…qAZQ)`. A token named with markup shows that markup as text: no
//! element is made of it and no script of it runs.

use std::time::Duration;

use kline_core::event::SpinPetEvent;
use kline_core::simulated_market::SimulatedMarket;
use kline_tests::webdriver::Browser;
use kline_tests::{KlineServer, ServerProcess, post_events, wait_until};
use serde_json::Value;

const MARKUP_NAME: &str = "<img src=x onerror=\"window.__pwned=1\">Cat";

/// Types `text` into the picker's search box and presses Enter there.
async fn search_and_enter(browser: &Browser, text: &str) {
    let script = format!(
        "const box = document.getElementById('symbol-search');
         box.value = {text:?};
         box.dispatchEvent(new Event('input'));
         box.dispatchEvent(new KeyboardEvent('keydown', {{key: 'Enter'}}));
         return null;"
    );
    browser.execute(&script).await;
}

async fn state(browser: &Browser) -> Value {
    browser
        .execute(
            "const k = window.__kline; if (!k) return null;
             return {title: k.title, picker: k.picker, documentTitle: document.title,
                     legend: document.getElementById('legend').textContent,
                     images: document.querySelectorAll('img').length,
                     pwned: window.__pwned === undefined ? null : window.__pwned,
                     errors: k.errors, subscription: k.subscription};",
        )
        .await
}

/// `3bue…qAZQ`.
fn short(mint: &str) -> String {
    format!("{}…{}", &mint[..4], &mint[mint.len() - 4..])
}

#[tokio::test]
async fn the_pages_picker_finds_tokens_by_ticker_or_name_and_titles_show_names_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("db"),
        &["--set", "source.simulator.enabled=false"],
    );
    let Some(browser) = Browser::start(1280, 720).await else {
        return;
    };
    let mut market = SimulatedMarket::new(31, 2);
    let now = kline_protocol::response::unix_millis_now();
    let mut cat = market.token_created(0, now - 2000);
    let SpinPetEvent::TokenCreated(token) = &mut cat.event else {
        unreachable!()
    };
    token.symbol = "CAT".into();
    token.name = MARKUP_NAME.into();
    let events = [
        cat,
        market.token_created(1, now - 2000),
        market.next_event_for(0, now - 1000),
        market.next_event_for(1, now - 1000),
    ];
    let body: String = events.iter().map(|e| e.to_json() + "\n").collect();
    let (status, report) = post_events(&server, body).await;
    assert_eq!(status, 200, "{report}");
    let (cat_mint, lynx_mint) = (market.mints()[0].to_string(), market.mints()[1].to_string());

    browser.goto(&server.url("/chart?interval=m1")).await;
    wait_until(
        "the picker lists both tokens",
        Duration::from_secs(30),
        || async {
            state(&browser).await["picker"]["options"]
                .as_array()
                .is_some_and(|options| options.len() == 2)
        },
    )
    .await;

    // By name: "simulated lynx" leaves the Lynx (and the chart's current symbol); Enter opens it.
    search_and_enter(&browser, "simulated LYNX").await;
    let lynx_title = format!("LYNX · Simulated Lynx ({})", short(&lynx_mint));
    wait_until(
        "the Lynx chart is open",
        Duration::from_secs(30),
        || async { state(&browser).await["title"] == lynx_title.as_str() },
    )
    .await;
    let seen = state(&browser).await;
    assert!(
        seen["documentTitle"]
            .as_str()
            .unwrap()
            .starts_with(&lynx_title),
        "{seen}"
    );
    let values = |seen: &Value| -> Vec<String> {
        seen["picker"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        values(&seen),
        std::slice::from_ref(&lynx_mint),
        "the search left only the Lynx: {seen}"
    );

    // By ticker, case-insensitive: "cat". Its name is markup, shown as text.
    search_and_enter(&browser, "cat").await;
    let cat_title = format!("CAT · {MARKUP_NAME} ({})", short(&cat_mint));
    wait_until("the Cat chart is open", Duration::from_secs(30), || async {
        state(&browser).await["title"] == cat_title.as_str()
    })
    .await;
    let seen = state(&browser).await;
    assert!(
        seen["legend"].as_str().unwrap().contains(MARKUP_NAME),
        "{seen}"
    );
    assert_eq!(seen["images"], 0, "no element was made of the name: {seen}");
    assert_eq!(
        seen["pwned"],
        Value::Null,
        "no script of the name ran: {seen}"
    );
    assert_eq!(values(&seen), std::slice::from_ref(&cat_mint), "{seen}");
    let texts: Vec<&str> = seen["picker"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["text"].as_str())
        .collect();
    assert!(texts.iter().any(|t| t.starts_with(&cat_title)), "{texts:?}");
}
