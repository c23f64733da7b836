//! Giving freed heap memory back to the operating system after the number of connections falls.
//!
//! glibc keeps the memory freed by closed connections mapped, so a burst of connections leaves the process
//! at its peak size for good (measured: 10,000 idle connections closed, RSS stayed at 57 MB against a
//! 17.6 MB baseline; `malloc_trim(0)` brought it back to 23.7 MB). This task watches the open-connection
//! count and, once it has fallen by `websocket.memory_trim_after_closes` since its last peak, asks the
//! allocator to return its free pages. The count is of every transport's connections: `/ws` and Socket.IO
//! (socketioxide's sessions and our own websocket transport's connections, which are counted apart because
//! one may not have joined `/kline` yet). While connections merely come and go (churn), the count does not
//! fall that far and nothing is trimmed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use kline_core::stats::PushStats;

/// How often the connection count is looked at (an atomic load).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Runs until `shutdown`; `after_closes == 0` disables trimming.
pub async fn run(stats: Arc<PushStats>, after_closes: u64, shutdown: CancellationToken) {
    if after_closes == 0 || !can_trim() {
        return;
    }
    let mut peak = 0;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let open = open_connections(&stats);
        peak = peak.max(open);
        if peak - open < after_closes {
            continue;
        }
        let started = Instant::now();
        let released = tokio::task::spawn_blocking(trim).await.unwrap_or(false);
        tracing::info!(
            closed = peak - open,
            open,
            released,
            took_ms = started.elapsed().as_millis() as u64,
            "connections fell; returned freed heap memory to the OS"
        );
        kline_core::stats::add(&stats.memory_trims, 1);
        peak = open;
    }
}

/// Connections open over every transport. A Socket.IO websocket connection that joined `/kline` is in both
/// Socket.IO gauges, so their larger one stands for Socket.IO: exact when either kind of Socket.IO
/// connection is open alone, and it falls as connections of either kind close, which is what the trim needs.
fn open_connections(stats: &PushStats) -> u64 {
    let socketio = stats
        .socketio_connections_active
        .get()
        .max(stats.socketio_websocket_connections_active.get());
    stats.connections_active.get() + socketio
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn can_trim() -> bool {
    true
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn can_trim() -> bool {
    false
}

/// `malloc_trim(0)`: returns whether glibc gave memory back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim only walks and releases the allocator's own free lists; it has no preconditions.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}
