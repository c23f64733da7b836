//! The connection's writer: writes its outbox's backlog when the socket has room, sends server pings, and
//! ends the connection once its last frame is written.
//!
//! Most frames never come here: the outbox writes them at once. The writer runs inside the connection's
//! task (no task of its own) and only wakes for a backlog, a ping, or an ending.

use std::time::Duration;

use kline_protocol::CloseCode;
use tokio::time::Instant;

use super::frame;
use super::outbox::{Backlog, Ending, Outbox};

pub struct WriterSettings {
    /// WebSocket pings (`None`: the protocol above has its own heartbeat, as Engine.IO does).
    pub ping_every: Option<Duration>,
    /// While a backlog waits, its drain is measured over windows this long: a window in which fewer than
    /// `min_drain_bytes_per_sec` × its length (and at least one byte) were written marks the client too slow
    /// (4008); the close frame then gets one more window before the connection is dropped. A client reading
    /// a byte now and then cannot hold its backlog forever.
    pub write_timeout: Duration,
    pub min_drain_bytes_per_sec: u64,
}

impl WriterSettings {
    /// The bytes a window must drain.
    fn min_window_bytes(&self) -> u64 {
        let required = self.min_drain_bytes_per_sec as f64 * self.write_timeout.as_secs_f64();
        (required as u64).max(1)
    }
}

/// Runs until the outbox has ended and its last frame is written (or the socket failed). Returns how it
/// ended.
pub async fn run(outbox: &Outbox, settings: &WriterSettings) -> Ending {
    let mut ping = settings
        .ping_every
        .map(|every| tokio::time::interval_at(Instant::now() + every, every));
    loop {
        tokio::select! {
            _ = outbox.writer_wanted() => {}
            _ = tick(&mut ping) => {
                outbox.push_message(frame::ping());
            }
        }
        // Boxed: the waiting state (timers, readiness) exists only while a backlog is written, so an idle
        // connection's task does not carry it.
        if let Some(ending) = Box::pin(write_all(outbox, settings)).await {
            if ending != Ending::Failed {
                outbox.shutdown_socket();
            }
            return ending;
        }
    }
}

/// The next ping, or never.
async fn tick(ping: &mut Option<tokio::time::Interval>) {
    match ping {
        Some(ping) => {
            ping.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Writes the backlog until it is empty (`None`) or the outbox has ended (`Some`), waiting for room.
async fn write_all(outbox: &Outbox, settings: &WriterSettings) -> Option<Ending> {
    let mut deadline = Instant::now() + settings.write_timeout;
    let mut window_start = outbox.bytes_written();
    loop {
        match outbox.write_backlog() {
            Backlog::Empty => return None,
            Backlog::Ended(ending) => return Some(ending),
            Backlog::Blocked { .. } => {
                tokio::select! {
                    ready = outbox.socket().writable() => {
                        if ready.is_err() {
                            outbox.fail();
                        }
                    }
                    // A new ending (e.g. the backlog overflowed: 4008) replaces what was waiting.
                    _ = outbox.writer_wanted() => {}
                    _ = tokio::time::sleep_until(deadline) => {
                        let drained = outbox.bytes_written() - window_start;
                        if drained < settings.min_window_bytes() {
                            if outbox.is_closed() {
                                // Even the close frame could not be delivered in time.
                                outbox.fail();
                            } else {
                                outbox.close(CloseCode::TooSlow);
                            }
                        }
                        window_start = outbox.bytes_written();
                        deadline = Instant::now() + settings.write_timeout;
                    }
                }
            }
        }
    }
}
