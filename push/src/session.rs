//! A connection's subscriptions and the steps every transport takes to change them, and history reads.
//!
//! A subscribe is, for every transport: check the limit → [`Subscriptions::join`] (gate the series at the
//! subscriber, then add it to the hub's index) → read the snapshot ([`read_history`]) → the transport
//! opens the gate with its own encoding of the snapshot and the confirmation (or, if the read failed,
//! [`Subscriptions::abort`]). The transport parses requests and encodes replies; nothing here knows a
//! frame or a packet.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::hub::{ConnectionId, Hub};
use super::{SeriesKey, Subscriber};
use kline_store::{CandleStore, StoreError};

/// The series one connection is subscribed to. A few per connection (bounded by
/// `kline.max_subscriptions_per_client`): a vector is smaller than a set.
#[derive(Debug, Default)]
pub struct Subscriptions(Vec<SeriesKey>);

impl Subscriptions {
    /// `Err(message)` if subscribing to `series` would go over `limit` (subscribing again is allowed).
    pub fn check_limit(&self, series: &SeriesKey, limit: usize) -> Result<(), String> {
        if !self.0.contains(series) && self.0.len() >= limit {
            return Err(format!(
                "subscription limit reached ({limit} per connection); unsubscribe first"
            ));
        }
        Ok(())
    }

    /// Gates `series` at `subscriber`, then adds it to the hub's index: every update published after the
    /// snapshot's read (which comes next) is held, and follows the snapshot when the gate opens.
    pub async fn join(
        &mut self,
        hub: &Hub,
        conn: ConnectionId,
        series: &SeriesKey,
        subscriber: &Subscriber,
    ) {
        subscriber.close_gate(series);
        hub.subscribe(conn, series.clone(), subscriber.clone())
            .await;
        if !self.0.contains(series) {
            self.0.push(series.clone());
        }
    }

    /// Undoes [`Subscriptions::join`] when the snapshot could not be read.
    pub async fn abort(
        &mut self,
        hub: &Hub,
        conn: ConnectionId,
        series: &SeriesKey,
        subscriber: &Subscriber,
    ) {
        hub.unsubscribe(conn, series.clone()).await;
        self.0.retain(|s| s != series);
        subscriber.purge(series);
    }

    /// Unsubscribes from `series` (if subscribed): once this returns no update of it is pushed any more,
    /// and none still waits. Returns whether it was subscribed.
    pub async fn leave(
        &mut self,
        hub: &Hub,
        conn: ConnectionId,
        series: &SeriesKey,
        subscriber: &Subscriber,
    ) -> bool {
        let was = match self.0.iter().position(|s| s == series) {
            Some(index) => {
                self.0.swap_remove(index);
                hub.unsubscribe(conn, series.clone()).await;
                true
            }
            None => false,
        };
        subscriber.purge(series);
        was
    }

    /// Whether some series of `symbol` is subscribed.
    pub fn has_symbol(&self, symbol: &kline_protocol::Symbol) -> bool {
        self.0.iter().any(|(known, _)| known == symbol)
    }

    /// Every subscribed series (for [`Hub::disconnect`] when the connection ends).
    pub fn into_series(self) -> Vec<SeriesKey> {
        self.0
    }
}

/// Runs a history read on the blocking pool under the server-wide permit bound
/// (`websocket.max_concurrent_history_reads`: many clients asking for large histories at once wait their
/// turn). `Err` carries the message for the client.
pub async fn read_history<T, F>(
    permits: &Semaphore,
    store: &Arc<CandleStore>,
    read: F,
) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&CandleStore) -> Result<T, StoreError> + Send + 'static,
{
    let Ok(_permit) = permits.acquire().await else {
        return Err("history query failed: the server is shutting down".to_owned());
    };
    let store = store.clone();
    match tokio::task::spawn_blocking(move || read(&store)).await {
        Ok(Ok(history)) => Ok(history),
        Ok(Err(err)) => Err(format!("history query failed: {err}")),
        Err(err) => Err(format!("history query failed: {err}")),
    }
}

#[cfg(test)]
mod tests;
