//! Subscribe gating, for every transport: while a subscription's snapshot is being read, its series'
//! updates wait aside; when the snapshot is sent, only those newer than it follow.
//!
//! The order that makes it exact (see docs/architecture.md, "Subscribe ordering"): close the gate, add the
//! subscriber to the hub, read the snapshot, then open the gate. Every update published after the read is
//! held (or replaced by a newer state of its candle while held) and follows the snapshot; an update the
//! snapshot already covers is dropped, so a client never gets an older state after a newer one.

use std::collections::HashMap;
use std::sync::Arc;

use kline_protocol::Candle;

use kline_pipeline::feed::{CandleUpdate, CandleVersion, SeriesId};

/// The gated series of one subscriber and the updates each holds. Empty for most subscribers.
#[derive(Default)]
pub struct SeriesGates(HashMap<SeriesId, Vec<Arc<CandleUpdate>>>);

impl SeriesGates {
    /// Starts holding the updates of `series`.
    pub fn close(&mut self, series: SeriesId) {
        self.0.entry(series).or_default();
    }

    /// Holds `update` if its series is gated (in place of a held state of the same candle): `true` if held.
    pub fn hold(&mut self, update: &Arc<CandleUpdate>) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let Some(held) = self.0.get_mut(&update.series()) else {
            return false;
        };
        held.retain(|waiting| !waiting.same_candle(update));
        held.push(update.clone());
        true
    }

    /// Opens the gate of `series`: the held updates newer than `snapshot` (ascending by time), in order. A
    /// candle the snapshot does not hold (and not older than its oldest), or a later state of one it holds
    /// (more events, or newly final).
    pub fn open(&mut self, series: SeriesId, snapshot: &[Candle]) -> Vec<Arc<CandleUpdate>> {
        let held = self.0.remove(&series).unwrap_or_default();
        if self.0.is_empty() {
            // A map keeps its table after its last entry goes; most subscribers gate rarely.
            self.0.shrink_to_fit();
        }
        let oldest = snapshot.first().map(|c| c.time);
        held.into_iter()
            .filter(|update| {
                let time = update.candle.time;
                match snapshot.binary_search_by_key(&time, |c| c.time) {
                    Ok(index) => {
                        let known = &snapshot[index];
                        update.is_newer_than(CandleVersion::stored(known))
                    }
                    Err(_) => oldest.is_none_or(|oldest| time > oldest),
                }
            })
            .collect()
    }

    /// Drops the gate of `series` and what it holds (after an unsubscribe).
    pub fn purge(&mut self, series: &SeriesId) {
        self.0.remove(series);
    }
}
