use kline_protocol::{DayStats, NameText, TickerText};

use super::*;

fn mint(n: u8) -> Symbol {
    Symbol::from_bytes(&[n; 32])
}

/// A ticker that opened the day at 1.0 and now trades at `last`, with `sol` SOL of volume.
fn ticker(n: u8, label: Option<&str>, last: f64, sol: f64) -> Ticker {
    let day = DayStats {
        open: 1.0,
        high: last.max(1.0),
        low: last.min(1.0),
        volume: sol * 10.0,
        quote_volume: sol,
        trade_count: 3,
    };
    Ticker::new(mint(n), last, Some(day)).with_names(
        label.and_then(TickerText::new),
        label.and_then(|l| NameText::new(&format!("Token {l}"))),
    )
}

fn order(list: &Watchlist) -> Vec<Symbol> {
    list.ordered()
        .iter()
        .map(|row| row.ticker.symbol.clone())
        .collect()
}

fn listed() -> Watchlist {
    let mut list = Watchlist::new(Stars::default());
    list.apply_snapshot(
        &[
            ticker(1, Some("BBB"), 1.10, 5.0), // +10 %
            ticker(2, Some("AAA"), 0.80, 9.0), // -20 %
            ticker(3, None, 1.50, 1.0),        // +50 %, no name: sorted by address
        ],
        1_764_000_000_000,
    );
    list
}

#[test]
fn sorts_by_change_volume_and_name() {
    let mut list = listed();
    for (sort, expected, why) in [
        (
            SortKey::Change,
            [mint(3), mint(1), mint(2)],
            "largest change first",
        ),
        (
            SortKey::Volume,
            [mint(2), mint(1), mint(3)],
            "largest volume first",
        ),
    ] {
        assert_eq!(list.sort, sort);
        assert_eq!(order(&list), expected, "{why}");
        list.sort = list.sort.next();
    }
    assert_eq!(list.sort, SortKey::Name);
    // By ticker, and by address for the mint without one (wherever its address falls among them).
    let mut expected = vec![
        ("aaa".to_owned(), mint(2)),
        ("bbb".to_owned(), mint(1)),
        (mint(3).as_str().to_lowercase(), mint(3)),
    ];
    expected.sort();
    let expected: Vec<Symbol> = expected.into_iter().map(|(_, s)| s).collect();
    assert_eq!(order(&list), expected);
    assert_eq!(list.sort.next(), SortKey::Change);
    assert_eq!(SortKey::Change.previous(), SortKey::Name);
}

#[test]
fn updates_move_rows_and_the_selection_follows_its_mint() {
    let mut list = listed();
    list.move_selection(1, 10);
    assert_eq!(list.selected(), Some(mint(1)));
    // AAA jumps from -20 % to +100 %: it goes to the top; BBB stays selected, now second.
    list.apply_update(&[ticker(2, Some("AAA"), 2.0, 9.5)], 1_764_000_001_000);
    assert_eq!(order(&list), [mint(2), mint(3), mint(1)]);
    assert_eq!(list.selected(), Some(mint(1)));
    assert_eq!(list.page(10).selected, Some(2));
    assert_eq!(list.row(&mint(2)).unwrap().ticker.last_price, 2.0);
    list.move_selection(-10, 10);
    assert_eq!(list.selected(), Some(mint(2)), "stops at the top");
    list.move_selection(10, 10);
    assert_eq!(list.selected(), Some(mint(1)), "stops at the bottom");
}

#[test]
fn the_filter_matches_ticker_name_or_address_and_resets_the_selection() {
    let mut list = listed();
    list.move_selection(2, 10);
    for c in "token a".chars() {
        list.push_filter(c);
    }
    assert_eq!(order(&list), [mint(2)]);
    assert_eq!(list.selected(), Some(mint(2)));
    list.clear_filter();
    for c in mint(3).as_str()[..6].chars() {
        list.push_filter(c);
    }
    assert_eq!(order(&list), [mint(3)], "by address");
    list.pop_filter();
    list.push_filter('#');
    assert!(list.ordered().is_empty());
    assert_eq!(list.selected(), None);
    assert_eq!(list.page(5).rows.len(), 0);
    assert_eq!(list.len(), 3, "the rows are still held");
}

#[test]
fn a_starred_row_comes_first_and_stays_starred_across_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stars");
    let (stars, _) = Stars::load(Some(path.clone()));
    let mut list = Watchlist::new(stars);
    list.apply_snapshot(
        &[
            ticker(1, Some("BBB"), 1.10, 5.0),
            ticker(2, Some("AAA"), 0.80, 9.0),
        ],
        0,
    );
    list.move_selection(1, 10);
    let (symbol, starred) = list.toggle_star().unwrap().unwrap();
    assert_eq!((symbol.clone(), starred), (mint(2), true));
    assert_eq!(
        order(&list),
        [mint(2), mint(1)],
        "starred first whatever the sort"
    );
    assert_eq!(list.selected(), Some(mint(2)));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", mint(2))
    );
    // A reconnect's snapshot, and a new session reading the file, keep the star.
    list.apply_snapshot(&[ticker(2, Some("AAA"), 0.80, 9.0)], 1_000);
    assert!(list.row(&mint(2)).unwrap().starred);
    let mut next = Watchlist::new(Stars::load(Some(path)).0);
    next.apply_snapshot(&[ticker(2, Some("AAA"), 0.8, 9.0)], 0);
    assert!(next.row(&mint(2)).unwrap().starred);
}

#[test]
fn the_page_follows_the_selection_without_jumping() {
    let mut list = Watchlist::new(Stars::default());
    let tickers: Vec<Ticker> = (1..=10)
        .map(|n| ticker(n, None, 1.0 + f64::from(n), 1.0))
        .collect();
    list.apply_snapshot(&tickers, 0);
    // Change order: mint 10 first … mint 1 last.
    let page = list.page(3);
    assert_eq!((page.first, page.selected, page.matching), (0, Some(0), 10));
    list.move_selection(4, 3);
    let page = list.page(3);
    assert_eq!((page.first, page.selected), (2, Some(2)));
    assert_eq!(page.rows[2].ticker.symbol, mint(6));
    list.move_selection(-1, 3);
    assert_eq!(list.page(3).first, 2, "moving within the page keeps it");
    list.move_selection(100, 3);
    let page = list.page(3);
    assert_eq!((page.first, page.selected), (7, Some(2)));
}

#[test]
fn history_seeds_the_sparkline_of_a_listed_mint_only() {
    let mut list = listed();
    let now = 1_764_000_000;
    let candle = Candle::new(now - 120, [1.0, 1.0, 1.0, 1.05], 1, true);
    list.apply_history(&mint(1), &[candle]);
    list.apply_history(&mint(9), &[candle]);
    let hour = list.row(&mint(1)).unwrap().sparkline.hour(now);
    assert_eq!(&hour[57..], [Some(1.05), Some(1.05), Some(1.10)]);
    assert!(list.row(&mint(9)).is_none());
}
