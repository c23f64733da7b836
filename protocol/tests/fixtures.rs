//! Golden fixtures: one JSON file per message kind under `protocol/fixtures/`.
//!
//! Two checks per kind: the fixture parses and re-serialises to the same JSON value, and the message built
//! in code through the typed constructors serialises to exactly the fixture. The second fails whenever a
//! type's wire shape changes, so the contract never drifts silently: change the fixture (and
//! `docs/protocol.md`) on purpose, or not at all.

use kline_protocol::*;
use serde_json::Value;

const MINT: &str = "b4zeKt5mRRSyWiokzX63ww9FDZSkp6RrDjnbdtGFRbP";

fn fixture(name: &str) -> (String, Value) {
    // Read at run time: a test binary reused from another checkout must not look in that checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it for tests");
    let path = format!("{manifest_dir}/fixtures/{name}.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"));
    (text, value)
}

fn symbol() -> Symbol {
    Symbol::parse(MINT).unwrap()
}

fn sub_id(id: &str) -> Option<SubscriptionId> {
    Some(SubscriptionId::new(id).unwrap())
}

const REQUESTS: [&str; 8] = [
    "subscribe",
    "unsubscribe",
    "history",
    "subscribe_trades",
    "unsubscribe_trades",
    "subscribe_tickers",
    "unsubscribe_tickers",
    "ping",
];
const RESPONSES: [&str; 13] = [
    "connection_success",
    "history_data",
    "subscription_confirmed",
    "unsubscribe_confirmed",
    "kline_data",
    "error",
    "pong",
    "trades_snapshot",
    "trade",
    "trades_unsubscribed",
    "tickers_snapshot",
    "tickers",
    "tickers_unsubscribed",
];

const OTHER_MINT: &str = "JBMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ";

/// The tickers the fixtures show: a named mint that moved, and an unnamed one without a trade in the window.
fn sample_tickers(last: f64, volume: f64, quote_volume: f64, count: u64) -> Ticker {
    let day = DayStats {
        open: 2.5e-8,
        high: 2.9e-8,
        low: 2.4e-8,
        volume,
        quote_volume,
        trade_count: count,
    };
    Ticker::new(symbol(), last, Some(day))
        .with_names(TickerText::new("PET"), NameText::new("Spin Pet"))
}

/// A trade as the fixtures show it: a buy with its block position.
fn sample_trade(byte: u8, slot: u64, tx_index: Option<u32>) -> Trade {
    Trade {
        id: TradeId::new([byte; 64], 0),
        symbol: symbol(),
        time: 1_764_000_123_000,
        slot,
        tx_index,
        event_index: 0,
        signature: TradeId::new([byte; 64], 0).signature().to_owned(),
        event_type: TradeKind::BuySell,
        side: Side::Buy,
        price: 2.8e-8,
        token_amount: 35_714_285.714285,
        sol_amount: 1.0,
        payer: Symbol::from_bytes(&[3; 32]),
    }
}

#[test]
fn request_fixtures_round_trip() {
    for name in REQUESTS {
        let (text, value) = fixture(name);
        let request = ClientRequest::parse(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(request.msg_type(), name);
        let again: Value = serde_json::from_str(&request.to_json()).unwrap();
        assert_eq!(again, value, "{name} did not round-trip");
    }
}

#[test]
fn response_fixtures_round_trip() {
    for name in RESPONSES {
        let (text, value) = fixture(name);
        let message = ServerMessage::parse(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(message.kind(), name);
        let again: Value = serde_json::from_str(&message.to_json()).unwrap();
        assert_eq!(again, value, "{name} did not round-trip");
    }
}

fn built_request(name: &str) -> ClientRequest {
    match name {
        "subscribe" => ClientRequest::Subscribe(
            SubscribeRequest::new(symbol(), Interval::M5)
                .with_subscription_id(sub_id("chart-1").unwrap())
                .with_limit(100)
                .unwrap()
                .with_from(1_764_000_000),
        ),
        "unsubscribe" => ClientRequest::Unsubscribe(
            UnsubscribeRequest::new(symbol(), Interval::M5)
                .with_subscription_id(sub_id("chart-1").unwrap()),
        ),
        "history" => ClientRequest::History(
            HistoryRequest::new(symbol(), Interval::M5)
                .with_subscription_id(sub_id("page-2").unwrap())
                .with_limit(200)
                .unwrap()
                .with_range(Some(1_763_000_000), Some(1_764_000_000))
                .unwrap(),
        ),
        "subscribe_trades" => ClientRequest::SubscribeTrades(
            SubscribeTradesRequest::new(symbol())
                .with_subscription_id(sub_id("trades-1").unwrap())
                .with_limit(50)
                .unwrap()
                .with_after(TradeId::new([17; 64], 0)),
        ),
        "unsubscribe_trades" => ClientRequest::UnsubscribeTrades(
            UnsubscribeTradesRequest::new(symbol())
                .with_subscription_id(sub_id("trades-1").unwrap()),
        ),
        "subscribe_tickers" => ClientRequest::SubscribeTickers(
            SubscribeTickersRequest::new().with_subscription_id(sub_id("watchlist").unwrap()),
        ),
        "unsubscribe_tickers" => ClientRequest::UnsubscribeTickers(
            UnsubscribeTickersRequest::new().with_subscription_id(sub_id("watchlist").unwrap()),
        ),
        "ping" => ClientRequest::Ping,
        other => panic!("no request {other}"),
    }
}

fn built_response(name: &str) -> ServerMessage {
    let (payload, timestamp): (ServerPayload, i64) = match name {
        "connection_success" => {
            let other = Symbol::parse(OTHER_MINT).unwrap();
            let names = vec![
                SymbolName::new(symbol(), TickerText::new("PET"), NameText::new("Spin Pet")),
                SymbolName::new(other.clone(), None, None),
            ];
            (
                ConnectionSuccess::new(
                    "2f1c6b8e-4a53-4c1e-9a8f-0c5d3e7b9a10",
                    1_764_000_123,
                    vec![symbol(), other],
                    "0.1.0",
                )
                .with_symbol_names(names)
                .into(),
                1_764_000_123_456,
            )
        }
        "history_data" => (
            HistoryData::new(
                symbol(),
                Interval::M5,
                sub_id("chart-1"),
                vec![
                    Candle::new(
                        1_763_999_700,
                        [2.796e-8, 2.81234567891e-8, 2.79e-8, 2.8e-8],
                        12,
                        true,
                    )
                    .with_volumes([1_250_000_000.5, 35.123456789, 1e9, 28.0]),
                    Candle::new(1_764_000_000, [2.8e-8, 2.85e-8, 2.8e-8, 2.845e-8], 3, false),
                ],
                true,
            )
            .into(),
            1_764_000_123_456,
        ),
        "subscription_confirmed" => (
            SubscriptionConfirmed::new(symbol(), Interval::M5, sub_id("chart-1")).into(),
            1_764_000_123_457,
        ),
        "unsubscribe_confirmed" => (
            UnsubscribeConfirmed::new(symbol(), Interval::M5, sub_id("chart-1")).into(),
            1_764_000_123_458,
        ),
        "kline_data" => (
            KlineData::new(
                symbol(),
                Interval::M5,
                Candle::new(1_764_000_000, [2.8e-8, 2.86e-8, 2.8e-8, 2.86e-8], 4, false)
                    .with_volumes([71_428_571.428571, 2.0, 35_714_285.714285, 1.0]),
                1_764_000_124_001,
            )
            .into(),
            1_764_000_124_002,
        ),
        "error" => {
            let rejected = ClientRequest::parse(&format!(
                r#"{{"msg_type":"subscribe","symbol":"{MINT}","interval":"m2","subscription_id":"chart-1"}}"#
            ))
            .unwrap_err();
            (ErrorData::from(&rejected).into(), 1_764_000_124_100)
        }
        "pong" => (Pong::new(1_764_000_125).into(), 1_764_000_125_000),
        "trades_snapshot" => (
            TradesSnapshot::new(
                symbol(),
                sub_id("trades-1"),
                vec![
                    sample_trade(18, 381_000_124, Some(3)),
                    sample_trade(17, 381_000_123, Some(17)),
                ],
                true,
            )
            .into(),
            1_764_000_125_100,
        ),
        "trade" => (
            sample_trade(19, 381_000_125, None).into(),
            1_764_000_125_200,
        ),
        "trades_unsubscribed" => (
            TradesUnsubscribed::new(symbol(), sub_id("trades-1")).into(),
            1_764_000_125_300,
        ),
        "tickers_snapshot" => (
            TickersSnapshot::new(
                sub_id("watchlist"),
                1_763_917_200,
                vec![
                    sample_tickers(2.86e-8, 1_250_000_000.5, 35.123456789, 412),
                    Ticker::new(Symbol::parse(OTHER_MINT).unwrap(), 1.1e-7, None),
                ],
            )
            .into(),
            1_764_000_125_400,
        ),
        "tickers" => (
            Tickers::new(
                1_763_917_200,
                vec![sample_tickers(2.9e-8, 1_285_714_285.5, 36.123456789, 413)],
            )
            .into(),
            1_764_000_126_400,
        ),
        "tickers_unsubscribed" => (
            TickersUnsubscribed::new(sub_id("watchlist")).into(),
            1_764_000_127_000,
        ),
        other => panic!("no response {other}"),
    };
    ServerMessage::new(payload, timestamp)
}

#[test]
fn wire_shape_of_every_request_matches_its_fixture() {
    for name in REQUESTS {
        let built: Value = serde_json::from_str(&built_request(name).to_json()).unwrap();
        assert_eq!(built, fixture(name).1, "wire shape of `{name}` changed");
    }
}

#[test]
fn wire_shape_of_every_response_matches_its_fixture() {
    for name in RESPONSES {
        let built: Value = serde_json::from_str(&built_response(name).to_json()).unwrap();
        assert_eq!(built, fixture(name).1, "wire shape of `{name}` changed");
    }
}

#[test]
fn every_error_code_has_its_documented_number() {
    let numbers: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.as_u16()).collect();
    assert_eq!(numbers, [1001, 1002, 1003, 1004, 1005]);
}

/// A `connection_success` from a server before names were kept (no `symbol_names`) still parses.
#[test]
fn connection_success_without_symbol_names_parses() {
    let (_, mut value) = fixture("connection_success");
    value["data"]
        .as_object_mut()
        .unwrap()
        .remove("symbol_names");
    let message: ServerMessage = serde_json::from_value(value).unwrap();
    let ServerPayload::ConnectionSuccess(hello) = message.payload else {
        panic!("not a connection_success");
    };
    assert!(hello.symbol_names.is_empty());
    assert_eq!(hello.supported_symbols.len(), 2);
}

#[test]
fn an_unknown_server_message_type_is_rejected() {
    let err = ServerMessage::parse(r#"{"type":"nope","data":{},"timestamp":1}"#).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

/// The REST trades page (`GET /api/v1/trades`): parses, re-serialises to the same JSON, and the page built
/// in code serialises to exactly the fixture.
#[test]
fn trades_page_fixture_round_trips_and_matches_the_types() {
    let (text, value) = fixture("trades_page");
    let page: TradesPage = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_value(&page).unwrap(), value);

    let signature = |byte: u8| TradeId::new([byte; 64], 0).signature().to_owned();
    let payer = Symbol::from_bytes(&[3; 32]);
    let built = TradesPage {
        symbol: symbol(),
        data: vec![
            Trade {
                id: TradeId::new([17; 64], 0),
                symbol: symbol(),
                time: 1_764_000_123_000,
                slot: 381_000_123,
                tx_index: Some(17),
                event_index: 0,
                signature: signature(17),
                event_type: TradeKind::BuySell,
                side: Side::Buy,
                price: 2.8e-8,
                token_amount: 35_714_285.714285,
                sol_amount: 1.0,
                payer: payer.clone(),
            },
            Trade {
                id: TradeId::new([42; 64], 1),
                symbol: symbol(),
                time: 1_764_000_122_600,
                slot: 381_000_122,
                tx_index: None,
                event_index: 1,
                signature: signature(42),
                event_type: TradeKind::FullClose,
                side: Side::Sell,
                price: 2.79e-8,
                token_amount: 1_000_000.5,
                sol_amount: 0.0279,
                payer,
            },
        ],
        has_more: true,
    };
    assert_eq!(serde_json::to_value(&built).unwrap(), value);
    assert_eq!(page, built);
}
