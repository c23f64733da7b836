//! Token names through the real server (issue 26, item 1): a `TokenCreated` event's ticker, name and URI
//! are stored with it, sanitised, and served wherever a client learns of a mint — `GET /api/v1/symbols`,
//! `connection_success.symbol_names`, the ticker stream's snapshot — and they survive a restart. The names
//! of a hostile token (10 KB, control characters, a bidirectional override, `<script>`) come out capped,
//! without a control character, and as the same text everywhere.

use std::time::Duration;

use kline_core::event::{EventRecord, SpinPetEvent};
use kline_core::simulated_market::SimulatedMarket;
use kline_protocol::token::{MAX_NAME_CHARS, MAX_TICKER_CHARS};
use kline_protocol::{NameText, ServerPayload, Symbol, SymbolName, Ticker, TickerText};
use kline_tests::ws::Client;
use kline_tests::{KlineServer, ServerProcess, get_json, post_events};
use serde_json::Value;

/// What the hostile token announces.
const HOSTILE_TICKER: &str = "\u{202E}EV\u{0}IL\n";
fn hostile_name() -> String {
    format!(
        "<script>alert('kline')</script>\u{1b}[2J\u{1b}]0;owned\u{7}{}",
        "A".repeat(10 * 1024)
    )
}
const HOSTILE_URI: &str = "javascript:alert(1)\r\n\u{9b}";

/// What survives of the hostile texts (the module's rules: controls gone, capped, trimmed).
fn expected_hostile_name() -> String {
    let kept = "<script>alert('kline')</script>[2J]0;owned";
    let mut name = kept.to_owned();
    name.extend(std::iter::repeat_n(
        'A',
        MAX_NAME_CHARS - kept.chars().count(),
    ));
    name
}

/// Mint 0 is hostile, mint 1 keeps the simulator's name; both trade once (a mint is listed once it has a
/// price).
fn events(market: &mut SimulatedMarket) -> Vec<EventRecord> {
    let now = kline_protocol::response::unix_millis_now();
    let mut hostile = market.token_created(0, now - 2000);
    let SpinPetEvent::TokenCreated(token) = &mut hostile.event else {
        unreachable!("token_created makes a TokenCreated")
    };
    token.symbol = HOSTILE_TICKER.into();
    token.name = hostile_name();
    token.uri = HOSTILE_URI.into();
    let plain = market.token_created(1, now - 2000);
    let trades = [
        market.next_event_for(0, now - 1000),
        market.next_event_for(1, now - 1000),
    ];
    [hostile, plain].into_iter().chain(trades).collect()
}

fn start(dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start(
        &dir.join("db"),
        &["--set", "source.simulator.enabled=false"],
    )
}

fn no_control(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

/// `/api/v1/symbols` names both mints as expected.
async fn assert_rest_names(server: &ServerProcess, market: &SimulatedMarket) {
    let list = get_json(&server.url("/api/v1/symbols")).await;
    let entry = |index: usize| -> Value {
        let mint = market.mints()[index].to_string();
        list.as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["symbol"] == mint.as_str())
            .unwrap_or_else(|| panic!("{mint} is not listed: {list}"))
            .clone()
    };
    let hostile = entry(0);
    assert_eq!(hostile["ticker"], "EVIL", "{hostile}");
    assert_eq!(hostile["name"], expected_hostile_name().as_str());
    assert_eq!(hostile["uri"], "javascript:alert(1)");
    for field in ["ticker", "name", "uri"] {
        assert!(no_control(hostile[field].as_str().unwrap()), "{field}");
    }
    assert!(
        hostile["last_price"].as_f64().unwrap() > 0.0,
        "the old fields stay"
    );
    let plain = entry(1);
    assert_eq!(plain["ticker"], "LYNX");
    assert_eq!(plain["name"], "Simulated Lynx");
    assert_eq!(plain["uri"], "https://example.invalid/simulated/lynx.json");
}

/// `connection_success.symbol_names` follows `supported_symbols` and names both mints.
async fn hello_names(server: &ServerProcess) -> (Client, Vec<SymbolName>) {
    let mut client = Client::connect(&server.ws_url()).await;
    let ServerPayload::ConnectionSuccess(hello) = client.recv().await.payload else {
        panic!("the server speaks first with connection_success");
    };
    let listed: Vec<_> = hello
        .symbol_names
        .iter()
        .map(|n| n.symbol.clone())
        .collect();
    assert_eq!(listed, hello.supported_symbols);
    (client, hello.symbol_names)
}

fn assert_named(names: &[Named], market: &SimulatedMarket) {
    let find = |index: usize| {
        let mint = market.mints()[index].to_string();
        names
            .iter()
            .find(|(symbol, ..)| *symbol == mint)
            .unwrap_or_else(|| panic!("{mint} missing from {names:?}"))
            .clone()
    };
    let (_, ticker, name) = find(0);
    assert_eq!(ticker.as_deref(), Some("EVIL"));
    assert_eq!(name, Some(expected_hostile_name()));
    assert!(ticker.unwrap().chars().count() <= MAX_TICKER_CHARS);
    let (_, ticker, name) = find(1);
    assert_eq!(
        (ticker.as_deref(), name.as_deref()),
        (Some("LYNX"), Some("Simulated Lynx"))
    );
}

/// (symbol, ticker, name) as text.
type Named = (String, Option<String>, Option<String>);

fn named(symbol: &Symbol, ticker: Option<&TickerText>, name: Option<&NameText>) -> Named {
    let text = |t: &str| t.to_owned();
    (
        symbol.to_string(),
        ticker.map(|t| text(t.as_str())),
        name.map(|t| text(t.as_str())),
    )
}

fn hello_triples(names: &[SymbolName]) -> Vec<Named> {
    let entry = |n: &SymbolName| named(&n.symbol, n.ticker.as_ref(), n.name.as_ref());
    names.iter().map(entry).collect()
}

fn ticker_triples(tickers: &[Ticker]) -> Vec<Named> {
    let entry = |t: &Ticker| named(&t.symbol, t.ticker.as_ref(), t.name.as_ref());
    tickers.iter().map(entry).collect()
}

/// The ticker stream's snapshot.
async fn ticker_snapshot(client: &mut Client) -> Vec<Ticker> {
    client
        .subscribe_tickers()
        .await
        .expect("subscribe_tickers answered")
        .data
}

#[tokio::test]
async fn a_hostile_name_is_stored_sanitised_served_everywhere_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let mut market = SimulatedMarket::new(26, 2);
    let body: String = events(&mut market)
        .iter()
        .map(|event| event.to_json() + "\n")
        .collect();
    let (status, report) = post_events(&server, body).await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (200, Some(4)),
        "{report}"
    );

    assert_rest_names(&server, &market).await;
    let (mut client, names) = hello_names(&server).await;
    assert_named(&hello_triples(&names), &market);
    // The ticker hub learns the trades through the feed: wait until its snapshot names both.
    let mut tickers = Vec::new();
    for _ in 0..100 {
        tickers = ticker_snapshot(&mut client).await;
        if tickers.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_named(&ticker_triples(&tickers), &market);

    // A restart (SIGTERM, the same data directory) keeps every name.
    drop(client);
    assert!(
        server
            .terminate(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );
    let server = start(dir.path());
    assert_rest_names(&server, &market).await;
    let (mut client, names) = hello_names(&server).await;
    assert_named(&hello_triples(&names), &market);
    assert_named(
        &ticker_triples(&ticker_snapshot(&mut client).await),
        &market,
    );
}

#[tokio::test]
async fn the_simulator_names_its_mints_through_token_created_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("db"),
        &[
            "--set",
            "source.simulator.mints=3",
            "--set",
            "source.simulator.seed=4",
        ],
    );
    let expected = SimulatedMarket::new(4, 3);
    kline_tests::wait_until(
        "the simulated mints are listed with names",
        Duration::from_secs(30),
        || async {
            let list = get_json(&server.url("/api/v1/symbols")).await;
            let named = list.as_array().map_or(0, |list| {
                list.iter()
                    .filter(|entry| {
                        entry["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("Simulated "))
                    })
                    .count()
            });
            named == expected.mints().len()
        },
    )
    .await;
    let list = get_json(&server.url("/api/v1/symbols")).await;
    for (index, mint) in expected.mints().iter().enumerate() {
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["symbol"] == mint.to_string().as_str())
            .unwrap();
        let name = expected.token_name(index);
        assert_eq!(entry["ticker"], name.ticker.unwrap().as_str());
        assert_eq!(entry["name"], name.name.unwrap().as_str());
    }
}
