//! The subscription hub: the subscription index (series → subscribers) and the fan-out, in shards.
//!
//! Each shard is a task on a thread of its own and the one owner of the subscriptions of its share of the
//! connections (connection id modulo the shard count), so fan-out writes spread over the cores with no
//! shared index and no lock. Each shard receives the pipeline's candle stream and its connections' commands.
//! For each update it encodes the `kline_data` frame **once** and pushes the same bytes into the outbox of
//! every subscriber of that series, which writes them to the socket at once when it has room (never
//! blocking: see [`Outbox`]'s overflow policy). Connections change the
//! index only through [`Hub`] commands over a bounded queue; their writers run on other threads.

use std::collections::HashMap;
use std::sync::Arc;

use kline_protocol::{CloseCode, Interval, KlineData, ServerMessage};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::frame;
use super::outbox::{Outbox, Pushed, SeriesKey, UpdateFrame};
use crate::stats::{PipelineStats, PushStats};

/// Identifies one connection in the index.
pub type ConnectionId = u64;

enum Command {
    Subscribe {
        conn: ConnectionId,
        series: SeriesKey,
        outbox: Arc<Outbox>,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        conn: ConnectionId,
        series: SeriesKey,
        done: oneshot::Sender<()>,
    },
    Disconnect {
        conn: ConnectionId,
        series: Vec<SeriesKey>,
        done: oneshot::Sender<()>,
    },
}

/// The handle connections use: routes each connection's commands to its shard. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    shards: Arc<[mpsc::Sender<Command>]>,
}

impl Hub {
    fn shard(&self, conn: ConnectionId) -> &mpsc::Sender<Command> {
        &self.shards[(conn % self.shards.len() as u64) as usize]
    }

    /// Adds `conn` to the subscribers of `series` (again is a no-op); returns once the index has it.
    pub async fn subscribe(&self, conn: ConnectionId, series: SeriesKey, outbox: Arc<Outbox>) {
        let (done, wait) = oneshot::channel();
        let command = Command::Subscribe {
            conn,
            series,
            outbox,
            done,
        };
        if self.shard(conn).send(command).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Removes `conn` from `series`; once this returns, no further update of it is pushed to `conn`.
    pub async fn unsubscribe(&self, conn: ConnectionId, series: SeriesKey) {
        let (done, wait) = oneshot::channel();
        let command = Command::Unsubscribe { conn, series, done };
        if self.shard(conn).send(command).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Removes every subscription of a closed connection; returns once the index no longer has them, so a
    /// client that sees its close frame never finds itself still counted.
    pub async fn disconnect(&self, conn: ConnectionId, series: Vec<SeriesKey>) {
        let (done, wait) = oneshot::channel();
        let command = Command::Disconnect { conn, series, done };
        if self.shard(conn).send(command).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Starts `shards` hub shards (at least one), each on a thread of its own with its own receiver of `feed`;
/// they end when `shutdown` is cancelled or the candle stream closes.
///
/// Threads of their own, not tasks on the shared runtime: with thousands of connection tasks competing for
/// the worker threads, a hub task was starved under connection churn and fell behind the candle stream
/// (measured: 55,798 updates dropped by the broadcast channel in `kline-bench churn`).
pub fn spawn(
    feed: &broadcast::Sender<Arc<KlineData>>,
    shards: usize,
    queue_capacity: usize,
    stats: Arc<PushStats>,
    shutdown: CancellationToken,
) -> (Hub, Vec<std::thread::JoinHandle<()>>) {
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for shard in 0..shards.max(1) {
        let (tx, rx) = mpsc::channel(queue_capacity);
        let updates = feed.subscribe();
        let (stats, shutdown) = (stats.clone(), shutdown.clone());
        let thread = std::thread::Builder::new()
            .name(format!("kline-hub-{shard}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                runtime.block_on(run(updates, rx, stats, shutdown));
            })
            .expect("a hub thread starts");
        senders.push(tx);
        threads.push(thread);
    }
    (
        Hub {
            shards: senders.into(),
        },
        threads,
    )
}

/// The index's key: a series by its mint's 32 bytes, so looking up an update (9 per event, most of them of
/// series nobody watches) neither clones nor hashes the mint's text.
type IndexKey = ([u8; 32], Interval);

fn index_key(series: &SeriesKey) -> IndexKey {
    (series.0.to_bytes(), series.1)
}

struct Index {
    subscribers: HashMap<IndexKey, Vec<(ConnectionId, Arc<Outbox>)>>,
    stats: Arc<PushStats>,
}

async fn run(
    mut updates: broadcast::Receiver<Arc<KlineData>>,
    mut commands: mpsc::Receiver<Command>,
    stats: Arc<PushStats>,
    shutdown: CancellationToken,
) {
    let mut index = Index {
        subscribers: HashMap::new(),
        stats,
    };
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(command) = commands.recv() => index.apply(command),
            update = updates.recv() => match update {
                Ok(update) => index.fan_out(&update),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "hub fell behind the candle stream; closing subscribers with 4008");
                    PipelineStats::add(&index.stats.feed_lagged, missed as usize);
                    index.close_all_lagged();
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}

impl Index {
    fn apply(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                conn,
                series,
                outbox,
                done,
            } => {
                let list = self.subscribers.entry(index_key(&series)).or_default();
                if !list.iter().any(|(id, _)| *id == conn) {
                    list.push((conn, outbox));
                    PipelineStats::add(&self.stats.subscriptions_active, 1);
                }
                let _ = done.send(());
            }
            Command::Unsubscribe { conn, series, done } => {
                self.remove(conn, &series);
                let _ = done.send(());
            }
            Command::Disconnect { conn, series, done } => {
                for series in &series {
                    self.remove(conn, series);
                }
                let _ = done.send(());
            }
        }
    }

    fn remove(&mut self, conn: ConnectionId, series: &SeriesKey) {
        let key = index_key(series);
        let Some(list) = self.subscribers.get_mut(&key) else {
            return;
        };
        if let Some(position) = list.iter().position(|(id, _)| *id == conn) {
            list.swap_remove(position);
            self.stats
                .subscriptions_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        if list.is_empty() {
            self.subscribers.remove(&key);
        }
    }

    /// The stream dropped updates and nobody knows which series they were for: rather than let clients
    /// silently miss them, close every subscriber with 4008 ("reconnect and resume with `from`"), which the
    /// protocol makes gap-free.
    fn close_all_lagged(&mut self) {
        let mut closed = 0;
        for (_, subscribers) in self.subscribers.drain() {
            for (_, outbox) in subscribers {
                outbox.close(CloseCode::TooSlow);
                closed += 1;
            }
        }
        self.stats
            .subscriptions_active
            .fetch_sub(closed, std::sync::atomic::Ordering::Relaxed);
    }

    fn fan_out(&mut self, update: &KlineData) {
        let key = (update.symbol.to_bytes(), update.interval);
        let Some(list) = self.subscribers.get_mut(&key) else {
            return;
        };
        let frame = Arc::new(UpdateFrame {
            series: (update.symbol.clone(), update.interval),
            time: update.data.time,
            update_count: update.data.update_count,
            is_final: update.data.is_final,
            produced_at_ms: update.timestamp,
            frame: frame::text(&ServerMessage::now(update.clone()).to_json()),
        });
        let mut replaced = 0;
        let before = list.len();
        // A closed outbox (client gone or too slow) leaves the index here even before its Disconnect.
        list.retain(|(_, outbox)| match outbox.push_update(&frame) {
            Pushed::Closed => false,
            Pushed::Replaced => {
                replaced += 1;
                true
            }
            Pushed::Written | Pushed::Queued | Pushed::Held => true,
        });
        let removed = before - list.len();
        if removed > 0 {
            self.stats
                .subscriptions_active
                .fetch_sub(removed as u64, std::sync::atomic::Ordering::Relaxed);
        }
        if list.is_empty() {
            self.subscribers.remove(&key);
        }
        PipelineStats::add(&self.stats.updates_replaced, replaced);
    }
}
