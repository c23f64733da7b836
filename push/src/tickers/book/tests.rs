use super::*;

const H: i64 = 3600;
const START: i64 = 1_764_000_000 - 23 * H;

fn candle(time: i64, open: f64, close: f64, count: u32, volume: f64) -> Candle {
    Candle::new(
        time,
        [open, open.max(close), open.min(close), close],
        count,
        false,
    )
    .with_volumes([volume, volume * close, volume / 2.0, volume * close / 2.0])
}

fn live(candle: &Candle) -> CandleVersion {
    CandleVersion {
        update_count: candle.update_count,
        is_final: candle.is_final,
        stored: true,
    }
}

fn book() -> TickerBook {
    TickerBook::new(START, Arc::new(TokenNames::default()))
}

#[test]
fn sums_over_the_window_and_the_last_price_outlives_it() {
    let mut book = book();
    let mint = [1; 32];
    let old = candle(START - H, 1.0, 1.5, 9, 100.0);
    let first = candle(START, 2.0, 3.0, 2, 10.0);
    let second = candle(START + 5 * H, 3.0, 2.5, 3, 20.0);
    for c in [&old, &first, &second] {
        book.apply(mint, *c, live(c));
    }
    let [ticker] = book.take_changed().try_into().unwrap();
    assert_eq!(ticker.last_price, 2.5);
    assert_eq!(ticker.open_price, 2.0, "the window's first trade");
    assert_eq!((ticker.high_price, ticker.low_price), (3.0, 2.0));
    assert_eq!(
        ticker.volume, 30.0,
        "the candle before the window is not counted"
    );
    assert_eq!(ticker.quote_volume, 10.0 * 3.0 + 20.0 * 2.5);
    assert_eq!(ticker.trade_count, 5);
    assert!(book.take_changed().is_empty(), "handed over once");

    // The window moves past both candles: the 24-hour numbers empty, the price stays.
    book.advance(START + 6 * H);
    let [ticker] = book.take_changed().try_into().unwrap();
    assert_eq!(
        (
            ticker.last_price,
            ticker.open_price,
            ticker.volume,
            ticker.trade_count
        ),
        (2.5, 2.5, 0.0, 0)
    );
    book.advance(START);
    assert!(
        book.take_changed().is_empty(),
        "the window never moves back"
    );
}

#[test]
fn an_older_state_of_a_candle_is_ignored_and_an_equal_one_changes_nothing() {
    let mut book = book();
    let mint = [2; 32];
    let newer = candle(START, 1.0, 2.0, 5, 50.0);
    let older = candle(START, 1.0, 1.5, 3, 30.0);
    book.apply(mint, newer, live(&newer));
    book.take_changed();
    book.apply(mint, older, live(&older));
    book.apply(mint, newer, live(&newer));
    assert!(book.take_changed().is_empty());
    assert_eq!(book.snapshot()[0].trade_count, 5);
}

#[test]
fn loading_from_the_store_replaces_the_window_and_names_follow_the_directory() {
    let names = Arc::new(TokenNames::default());
    let dir = tempfile::tempdir().unwrap();
    let store = kline_store::CandleStore::open_at(dir.path(), false, 64).unwrap();
    names.reload(&store).unwrap();
    let mut book = TickerBook::new(START, names.clone());
    let mint = [3; 32];
    book.load(
        mint,
        Some(7.0),
        vec![
            candle(START - H, 1.0, 1.0, 1, 1.0),
            candle(START, 6.0, 7.0, 4, 8.0),
        ],
    );
    let [ticker] = book.take_changed().try_into().unwrap();
    assert_eq!((ticker.trade_count, ticker.last_price), (4, 7.0));
    assert_eq!(ticker.ticker, None);

    names.extend([(mint, TokenName::from_texts("CAT", "Cat", "").unwrap())]);
    book.refresh_names();
    let [ticker] = book.take_changed().try_into().unwrap();
    assert_eq!(ticker.ticker.unwrap().as_str(), "CAT");
    book.refresh_names();
    assert!(
        book.take_changed().is_empty(),
        "an unchanged directory changes nothing"
    );

    // A resync (no price given) keeps the price unless a newer candle says otherwise.
    book.load(mint, None, vec![]);
    assert_eq!(book.snapshot()[0].last_price, 7.0);
    assert_eq!(book.snapshot()[0].trade_count, 0);
    book.load([4; 32], None, vec![]);
    assert_eq!(book.len(), 1, "a mint without any price is not shown");
}
