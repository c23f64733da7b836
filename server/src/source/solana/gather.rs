//! How long the live loop keeps reading notifications into one provisional push.
//!
//! A node sends a slot's notifications as a burst (at `confirmed`, when the slot is confirmed), but they
//! reach the source as several socket reads. Pushed read by read, each subscriber of a series would get one
//! frame per read, and the reads of one burst queue behind each other's fan-out. The [`GatherWindow`] keeps
//! the burst together: after a notification, the next one joins the same push if it arrives within
//! `solana.gather_idle_ms`; no wait goes past `solana.gather_max_ms` after the first (notifications that
//! have already arrived always join: taking them costs no waiting). So one slot is one frame per
//! subscriber, at the cost of the rest of the burst plus the idle gap on the first notification's push.
//! `0` turns it off.

use std::time::Duration;

use futures_util::{FutureExt, Stream, StreamExt};
use tokio::time::Instant;

/// The window of one provisional push (from `[source.solana]`).
#[derive(Debug, Clone, Copy)]
pub struct GatherWindow {
    /// Longest wait for the next notification.
    pub idle: Duration,
    /// No wait goes past this after the first.
    pub max: Duration,
}

impl GatherWindow {
    /// The next item of `stream` if it comes within the window that `first_at` opened (at once if it is
    /// already there); `None` once the window has closed.
    pub async fn next<S: Stream + Unpin>(
        &self,
        stream: &mut S,
        first_at: Instant,
    ) -> Option<Option<S::Item>> {
        if let Some(ready) = stream.next().now_or_never() {
            return Some(ready);
        }
        let now = Instant::now();
        let deadline = (now + self.idle).min(first_at + self.max);
        if self.idle.is_zero() || deadline <= now {
            return None;
        }
        tokio::time::timeout_at(deadline, stream.next()).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of `(at_ms, item)` sent at those times (relative to the start), on paused time.
    fn timed(items: &[(u64, u32)]) -> impl Stream<Item = u32> + Unpin {
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let items = items.to_vec();
        tokio::spawn(async move {
            let start = Instant::now();
            for (at_ms, item) in items {
                tokio::time::sleep_until(start + Duration::from_millis(at_ms)).await;
                sender.send(item).await.unwrap();
            }
        });
        Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async { receiver.recv().await.map(|item| (item, receiver)) },
        ))
    }

    /// The items one push gathers: the first, then whatever the window lets in.
    async fn first_push(
        window: GatherWindow,
        stream: &mut (impl Stream<Item = u32> + Unpin),
    ) -> Vec<u32> {
        let first = stream.next().await.unwrap();
        let first_at = Instant::now();
        let mut push = vec![first];
        while let Some(Some(item)) = window.next(stream, first_at).await {
            push.push(item);
        }
        push
    }

    const WINDOW: GatherWindow = GatherWindow {
        idle: Duration::from_millis(2),
        max: Duration::from_millis(10),
    };

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_push_and_a_pause_starts_the_next() {
        let mut stream = timed(&[(0, 1), (1, 2), (2, 3), (3, 4), (20, 5), (21, 6)]);
        assert_eq!(first_push(WINDOW, &mut stream).await, [1, 2, 3, 4]);
        assert_eq!(first_push(WINDOW, &mut stream).await, [5, 6]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_trickle_is_cut_at_the_longest_window() {
        let window = GatherWindow {
            idle: Duration::from_millis(3),
            max: Duration::from_millis(9),
        };
        let items: Vec<(u64, u32)> = (0..20).map(|i| (2 * i, i as u32)).collect();
        let mut stream = timed(&items);
        let push = first_push(window, &mut stream).await;
        assert_eq!(
            push,
            [0, 1, 2, 3, 4],
            "2 ms apart: cut 9 ms after the first"
        );
        assert_eq!(first_push(window, &mut stream).await[0], 5);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_gap_of_zero_takes_only_what_has_arrived() {
        let off = GatherWindow {
            idle: Duration::ZERO,
            max: Duration::from_millis(10),
        };
        let mut stream = timed(&[(0, 1), (1, 2)]);
        assert_eq!(first_push(off, &mut stream).await, [1]);
        assert_eq!(first_push(off, &mut stream).await, [2]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_the_stream_ends_the_push() {
        let mut stream = timed(&[(0, 1)]);
        let first_at = Instant::now();
        assert_eq!(stream.next().await, Some(1));
        // The sender is gone once its last item is sent: the stream ends inside the window.
        assert_eq!(WINDOW.next(&mut stream, first_at).await, Some(None));
    }
}
