use super::*;
use kline_core::aggregator::OrderKey;

fn stats(updated_at_ms: i64) -> SymbolStats {
    SymbolStats {
        last_price: 1.0,
        last_key: OrderKey::default(),
        updated_at_ms,
        event_count: 1,
    }
}

fn put_symbols(store: &CandleStore, symbols: impl IntoIterator<Item = (u8, i64)>) {
    let mut batch = store.batch();
    for (mint, updated_at_ms) in symbols {
        batch.put_symbol(&[mint; 32], &stats(updated_at_ms));
    }
    store.write(batch).unwrap();
}

fn mints(list: &[SymbolEntry]) -> Vec<u8> {
    list.iter().map(|entry| entry.mint[0]).collect()
}

fn store() -> (tempfile::TempDir, Arc<CandleStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    (dir, store)
}

#[tokio::test]
async fn the_list_keeps_the_most_recently_updated_mints_newest_first() {
    let (_dir, store) = store();
    // Mint 5 and 6 share an update time: the mint breaks the tie.
    put_symbols(
        &store,
        [(1, 10), (2, 50), (3, 30), (4, 20), (5, 40), (6, 40)],
    );
    let directory = SymbolDirectory::new(store, Duration::from_secs(1), 4);
    let list = directory.list().await.unwrap();
    assert_eq!(
        mints(&list),
        [2, 5, 6, 3],
        "the 4 newest of 6, newest first"
    );
}

#[tokio::test]
async fn a_cursor_starts_the_page_after_the_mint_it_names_even_after_a_refresh() {
    let (_dir, store) = store();
    put_symbols(&store, (1..=9).map(|mint| (mint, 100 - i64::from(mint))));
    let directory = SymbolDirectory::new(store.clone(), Duration::ZERO, 100);
    let list = directory.list().await.unwrap();
    let cursor = SymbolCursor::after(&list[2]);
    let text = cursor.to_string();
    assert_eq!(SymbolCursor::parse(&text), Some(cursor), "{text}");
    assert_eq!(
        mints(&list[cursor.position_in(&list)..]),
        [4, 5, 6, 7, 8, 9]
    );
    // Mint 6 trades and moves to the front; the next page goes on after mint 3 without it.
    put_symbols(&store, [(6, 1_000)]);
    let list = directory.list().await.unwrap();
    assert_eq!(mints(&list[cursor.position_in(&list)..]), [4, 5, 7, 8, 9]);
    for bad in ["", "12", "x_abc", "12_notbase58!"] {
        assert_eq!(SymbolCursor::parse(bad), None, "{bad}");
    }
}

#[test]
fn a_list_is_read_again_only_after_a_write_and_once_it_is_older_than_the_refresh() {
    let (at, refresh) = (Instant::now(), Duration::from_secs(2));
    let later = |secs| at + Duration::from_secs(secs);
    assert!(!is_fresh(None, 0, at, refresh), "never read");
    assert!(
        is_fresh(Some((at, 5)), 5, later(3600), refresh),
        "no write since: however old"
    );
    assert!(
        is_fresh(Some((at, 5)), 6, later(1), refresh),
        "a write, within the refresh"
    );
    assert!(
        !is_fresh(Some((at, 5)), 6, later(2), refresh),
        "a write, and the refresh is up"
    );
}

#[tokio::test]
async fn requests_share_one_scan_until_a_write_changes_the_symbols() {
    let (_dir, store) = store();
    put_symbols(&store, [(1, 10)]);
    let directory = SymbolDirectory::new(store.clone(), Duration::ZERO, 100);
    for _ in 0..10 {
        assert_eq!(mints(&directory.list().await.unwrap()), [1]);
    }
    assert_eq!(directory.scans(), 1, "one scan for ten requests");
    put_symbols(&store, [(2, 20)]);
    assert_eq!(mints(&directory.list().await.unwrap()), [2, 1]);
    assert_eq!(directory.scans(), 2);

    let patient = SymbolDirectory::new(store.clone(), Duration::from_secs(3600), 100);
    assert_eq!(mints(&patient.list().await.unwrap()), [2, 1]);
    put_symbols(&store, [(3, 30)]);
    assert_eq!(
        mints(&patient.list().await.unwrap()),
        [2, 1],
        "a write within the refresh interval waits for it"
    );
    assert_eq!(patient.scans(), 1);
}
