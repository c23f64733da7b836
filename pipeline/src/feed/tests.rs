use super::*;
use kline_protocol::Candle;

fn mint(n: u8) -> [u8; 32] {
    [n; 32]
}

struct Change {
    mint: [u8; 32],
    time: i64,
    count: u32,
    is_final: bool,
}

fn change(mint_n: u8, time: i64, count: u32, is_final: bool) -> Change {
    Change {
        mint: mint(mint_n),
        time,
        count,
        is_final,
    }
}

fn publish(feed: &CandleFeed, changes: Vec<Change>) -> usize {
    feed.publish(
        changes,
        |c| (c.mint, Interval::S1),
        |c| {
            CandleUpdate::new(
                Symbol::from_bytes(&c.mint),
                Interval::S1,
                Candle::new(c.time, [1.0; 4], c.count, c.is_final),
                0,
                None,
                false,
            )
        },
    )
}

fn states(drained: &Drained) -> Vec<(u8, i64, u32, bool)> {
    drained
        .updates
        .iter()
        .map(|u| {
            (
                u.symbol.to_bytes()[0],
                u.candle.time,
                u.candle.update_count,
                u.candle.is_final,
            )
        })
        .collect()
}

#[test]
fn only_watched_series_are_stored_and_the_newest_state_of_a_candle_wins_in_place() {
    let feed = CandleFeed::new(1, 100);
    let inbox = &feed.inboxes()[0];
    inbox.watch((mint(1), Interval::S1));
    let watched = publish(
        &feed,
        vec![
            change(1, 10, 1, false),
            change(2, 10, 1, false),
            change(1, 11, 1, false),
            change(1, 10, 2, false),
            change(1, 10, 3, true),
        ],
    );
    assert_eq!(watched, 4, "mint 2 is nobody's");
    let drained = inbox.drain();
    assert_eq!(
        states(&drained),
        [(1, 10, 3, true), (1, 11, 1, false)],
        "one entry per candle, at the place of its first state"
    );
    assert_eq!(drained.coalesced, 2);
    assert!(drained.resync.is_empty());
    assert!(inbox.drain().updates.is_empty(), "drained once");
}

#[test]
fn a_full_inbox_puts_the_series_in_resync_from_its_oldest_dropped_candle() {
    let feed = CandleFeed::new(1, 3);
    let inbox = &feed.inboxes()[0];
    inbox.watch((mint(1), Interval::S1));
    inbox.watch((mint(2), Interval::S1));
    publish(
        &feed,
        vec![
            change(1, 10, 1, false),
            change(2, 10, 1, false),
            change(1, 11, 1, false),
            // Full: mint 1's entries are dropped and it resyncs from 10.
            change(1, 12, 1, false),
            // Later states of a resyncing series only lower its start if older.
            change(1, 13, 1, false),
            // Room again for others.
            change(2, 11, 1, false),
        ],
    );
    let drained = inbox.drain();
    assert_eq!(states(&drained), [(2, 10, 1, false), (2, 11, 1, false)]);
    assert_eq!(drained.resync, [((mint(1), Interval::S1), 10)]);
}

#[test]
fn unwatched_series_are_forgotten_and_every_reader_gets_its_own_copy() {
    let feed = CandleFeed::new(2, 10);
    let (a, b) = (&feed.inboxes()[0], &feed.inboxes()[1]);
    a.watch((mint(1), Interval::S1));
    b.watch((mint(1), Interval::S1));
    publish(&feed, vec![change(1, 10, 1, false)]);
    let (from_a, from_b) = (a.drain(), b.drain());
    assert!(
        Arc::ptr_eq(&from_a.updates[0], &from_b.updates[0]),
        "built once, shared"
    );
    b.unwatch(&(mint(1), Interval::S1));
    publish(&feed, vec![change(1, 10, 2, false)]);
    assert_eq!(a.drain().updates.len(), 1);
    assert!(b.drain().updates.is_empty());
}
