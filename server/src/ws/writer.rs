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
    pub ping_every: Duration,
    /// A backlog that makes no progress for this long marks the client too slow (4008); the close frame
    /// then gets the same time before the connection is dropped.
    pub write_timeout: Duration,
}

/// Runs until the outbox has ended and its last frame is written (or the socket failed). Returns how it
/// ended.
pub async fn run(outbox: &Outbox, settings: &WriterSettings) -> Ending {
    let mut ping =
        tokio::time::interval_at(Instant::now() + settings.ping_every, settings.ping_every);
    loop {
        tokio::select! {
            _ = outbox.writer_wanted() => {}
            _ = ping.tick() => {
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

/// Writes the backlog until it is empty (`None`) or the outbox has ended (`Some`), waiting for room.
async fn write_all(outbox: &Outbox, settings: &WriterSettings) -> Option<Ending> {
    let mut deadline = Instant::now() + settings.write_timeout;
    loop {
        match outbox.write_backlog() {
            Backlog::Empty => return None,
            Backlog::Ended(ending) => return Some(ending),
            Backlog::Blocked { progressed } => {
                if progressed {
                    deadline = Instant::now() + settings.write_timeout;
                }
                tokio::select! {
                    ready = outbox.socket().writable() => {
                        if ready.is_err() {
                            outbox.fail();
                        }
                    }
                    // A new ending (e.g. the backlog overflowed: 4008) replaces what was waiting.
                    _ = outbox.writer_wanted() => {}
                    _ = tokio::time::sleep_until(deadline) => {
                        if outbox.is_closed() {
                            // Even the close frame could not be delivered in time.
                            outbox.fail();
                        } else {
                            outbox.close(CloseCode::TooSlow);
                        }
                        deadline = Instant::now() + settings.write_timeout;
                    }
                }
            }
        }
    }
}
