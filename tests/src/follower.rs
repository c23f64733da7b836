//! `Follower`: a WebSocket client that subscribes to a few series and keeps the newest state of every candle
//! it is sent (history and live), across reconnects to any node: it resumes with `from` = the time of the
//! newest candle it holds, as docs/protocol.md tells a client to. For tests of what a client ends up with.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kline_protocol::{
    Candle, ClientRequest, Interval, MAX_HISTORY_LIMIT, ServerPayload, SubscribeRequest, Symbol,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ws::{Client, Received};

/// One (mint, interval) a follower subscribes to.
pub type Series = (Symbol, Interval);

/// What a candle must agree on between a client and the server's history: `time`, `update_count`, then
/// open, high, low, close and the four volumes. Finality is left out: it depends on wall-clock time.
pub type CandleValues = (i64, u32, [f64; 8]);

pub fn candle_values(candle: &Candle) -> CandleValues {
    (
        candle.time,
        candle.update_count,
        [
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
            candle.quote_volume,
            candle.taker_buy_volume,
            candle.taker_buy_quote_volume,
        ],
    )
}

/// Every candle a client was sent, per series, merged by `time`: the newest state wins (a higher
/// `update_count`, or the same count made final), whatever order the states came in and from which node.
#[derive(Debug, Default)]
pub struct CandleBook {
    series: BTreeMap<Series, BTreeMap<i64, Candle>>,
}

impl CandleBook {
    pub fn merge(&mut self, series: Series, candle: Candle) {
        let held = self.series.entry(series).or_default();
        let newer = held.get(&candle.time).is_none_or(|old| {
            (candle.update_count, candle.is_final) >= (old.update_count, old.is_final)
        });
        if newer {
            held.insert(candle.time, candle);
        }
    }

    /// The `time` of the newest candle held for `series`: where a resume starts.
    pub fn newest_time(&self, series: &Series) -> Option<i64> {
        self.series.get(series)?.keys().next_back().copied()
    }

    /// The candles held for `series`, ascending by time.
    pub fn values(&self, series: &Series) -> Vec<CandleValues> {
        self.series
            .get(series)
            .map(|held| held.values().map(candle_values).collect())
            .unwrap_or_default()
    }

    pub fn candles_held(&self) -> usize {
        self.series.values().map(BTreeMap::len).sum()
    }
}

/// A client following `series`: one connection at a time, read by a task that merges into the book.
pub struct Follower {
    series: Vec<Series>,
    book: Arc<Mutex<CandleBook>>,
    /// `subscription_confirmed` messages on the current connection.
    confirmed: Arc<AtomicUsize>,
    stop: CancellationToken,
    reader: Option<JoinHandle<()>>,
}

impl Follower {
    pub fn new(series: Vec<Series>) -> Follower {
        Follower {
            series,
            book: Arc::default(),
            confirmed: Arc::default(),
            stop: CancellationToken::new(),
            reader: None,
        }
    }

    /// Connects to `ws_url` and subscribes to every series: with `from` = the newest candle held (a
    /// resume), or the newest 1000 candles when it holds none. Panics if the connection is refused.
    pub async fn connect(&mut self, ws_url: &str) {
        assert!(self.reader.is_none(), "already connected");
        let mut client = Client::connect(ws_url).await;
        let hello = client.recv().await;
        assert!(
            matches!(hello.payload, ServerPayload::ConnectionSuccess(_)),
            "the first message must be connection_success, got {hello:?}"
        );
        self.confirmed.store(0, Ordering::Release);
        for series in &self.series {
            let request = SubscribeRequest::new(series.0.clone(), series.1);
            let from = self.book.lock().unwrap().newest_time(series);
            let request = match from {
                Some(time) => request.with_from(time),
                None => request
                    .with_limit(MAX_HISTORY_LIMIT)
                    .expect("the maximum limit is valid"),
            };
            client.send(&ClientRequest::Subscribe(request)).await;
        }
        let (book, confirmed, stop) =
            (self.book.clone(), self.confirmed.clone(), self.stop.clone());
        self.reader = Some(tokio::spawn(read(client, book, confirmed, stop)));
    }

    /// Every series is confirmed on the current connection.
    pub fn is_subscribed(&self) -> bool {
        self.confirmed.load(Ordering::Acquire) == self.series.len()
    }

    /// Waits until the server ends the connection (e.g. the node was killed); panics after `timeout`.
    pub async fn wait_disconnected(&mut self, timeout: Duration) {
        let reader = self.reader.take().expect("connected");
        match tokio::time::timeout(timeout, reader).await {
            Ok(joined) => propagate_panic(joined),
            Err(_) => panic!("the connection was still open after {timeout:?}"),
        }
    }

    /// Closes the connection (if any) and ends the reader.
    pub async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(reader) = self.reader.take() {
            propagate_panic(reader.await);
        }
    }

    pub fn series(&self) -> &[Series] {
        &self.series
    }

    pub fn values(&self, series: &Series) -> Vec<CandleValues> {
        self.book.lock().unwrap().values(series)
    }

    pub fn candles_held(&self) -> usize {
        self.book.lock().unwrap().candles_held()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Merges every candle the connection brings until the server closes it or `stop` is cancelled. An
/// `error` message is a failure of the test: the follower only sends valid requests.
async fn read(
    mut client: Client,
    book: Arc<Mutex<CandleBook>>,
    confirmed: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            received = client.recv_within(Duration::from_secs(600)) => received,
        };
        let message = match received {
            Received::Message(message) => message,
            Received::Closed(_) => return,
        };
        match message.payload {
            ServerPayload::HistoryData(history) => {
                let mut book = book.lock().unwrap();
                for candle in history.data {
                    book.merge((history.symbol.clone(), history.interval), candle);
                }
            }
            ServerPayload::KlineData(update) => book
                .lock()
                .unwrap()
                .merge((update.symbol, update.interval), update.data),
            ServerPayload::SubscriptionConfirmed(_) => {
                confirmed.fetch_add(1, Ordering::AcqRel);
            }
            ServerPayload::Error(error) => panic!("the server answered with an error: {error:?}"),
            _ => {}
        }
    }
}

fn propagate_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined
        && err.is_panic()
    {
        std::panic::resume_unwind(err.into_panic());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(time: i64, count: u32, close: f64, is_final: bool) -> Candle {
        Candle::new(time, [1.0, 2.0, 0.5, close], count, is_final)
    }

    #[test]
    fn the_newest_state_of_a_candle_wins_whatever_order_it_comes_in() {
        let series: Series = (Symbol::from_bytes(&[3; 32]), Interval::S1);
        let mut book = CandleBook::default();
        book.merge(series.clone(), candle(10, 2, 1.5, false));
        book.merge(series.clone(), candle(10, 1, 1.1, false));
        book.merge(series.clone(), candle(20, 1, 1.7, false));
        book.merge(series.clone(), candle(10, 2, 1.5, true));
        assert_eq!(
            book.values(&series),
            vec![
                candle_values(&candle(10, 2, 1.5, true)),
                candle_values(&candle(20, 1, 1.7, false))
            ]
        );
        assert_eq!(book.newest_time(&series), Some(20));
        assert_eq!(book.candles_held(), 2);
    }
}
