//! Snapshots: a consistent copy of the replicated data (candles, trades and their events, symbol stats)
//! and the group number it is consistent with, for an edge that is new or further behind than the stream
//! reaches back.
//!
//! `GET /internal/snapshot` (served by the writer and by every edge) streams frames — a little-endian `u32`
//! length, then a borsh [`Frame`] — read from one RocksDB snapshot, so the copy is consistent while writes
//! go on; the first frame, [`Frame::Epoch`], carries the epoch of the copy's numbering (a snapshot of a
//! writer before epochs has none: epoch 0), the last, [`Frame::End`], the group number and the entry
//! count, so a cut-off body is never taken for a whole one. The producer runs on a blocking thread behind
//! a bounded channel: a slow reader slows the dump, it does not buffer it.
//!
//! The edge's download ([`load`]) gives up on a connection that takes `stream.snapshot_connect_timeout_ms`
//! and on a body that stalls for `stream.snapshot_read_timeout_ms`; the replica retries it with backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use borsh::{BorshDeserialize, BorshSerialize};
use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::Semaphore;

use super::apply::{ApplyError, Replica};
use kline_config::StreamConfig;
use kline_core::stats::StoreStats;
use kline_pipeline::feed::SeriesId;
use kline_store::replication::Replicated;
use kline_store::replication::epoch::Position;
use kline_store::{CandleStore, StoreError};

/// Entries per frame.
const FRAME_ENTRIES: usize = 2048;
/// Frames the producer may be ahead of the socket.
const FRAMES_AHEAD: usize = 4;
/// Largest frame a reader accepts (a frame holds at most [`FRAME_ENTRIES`] entries of a few KB).
const MAX_FRAME_BYTES: usize = 64 << 20;

/// One frame of a snapshot body.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub enum Frame {
    Entries {
        family: Replicated,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    },
    End {
        seq: u64,
        entries: u64,
    },
    /// The first frame: the epoch of the numbering `End`'s group number belongs to. (Last among the
    /// variants, so frames of builds before epochs decode as they did.)
    Epoch {
        epoch: u64,
    },
}

impl Frame {
    fn encode(&self) -> Bytes {
        let body = borsh::to_vec(self).expect("frames serialize");
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        Bytes::from(out)
    }
}

/// What serving snapshots needs: the store, the counters, and the bounds on readers — at most
/// `node.snapshot_concurrency` at once, each cut off after `node.snapshot_write_timeout_secs` without
/// taking a frame.
#[derive(Clone)]
pub struct SnapshotService {
    store: Arc<CandleStore>,
    /// Counts the snapshots served, refused and cut off, and their bytes.
    stats: Arc<StoreStats>,
    permits: Arc<Semaphore>,
    write_timeout: Duration,
}

impl SnapshotService {
    pub fn new(
        store: Arc<CandleStore>,
        stats: Arc<StoreStats>,
        concurrency: usize,
        write_timeout: Duration,
    ) -> SnapshotService {
        SnapshotService {
            store,
            stats,
            permits: Arc::new(Semaphore::new(concurrency)),
            write_timeout,
        }
    }
}

/// The snapshot route, with its state applied. Served only on the internal listener (`kline-server`'s
/// `node::internal`).
pub fn routes(service: SnapshotService) -> Router {
    Router::new()
        .route("/internal/snapshot", get(serve))
        .with_state(service)
}

async fn serve(State(service): State<SnapshotService>) -> Response {
    let Ok(permit) = service.permits.clone().try_acquire_owned() else {
        service.stats.snapshots_refused.inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "snapshots: all node.snapshot_concurrency are streaming; retry later\n",
        )
            .into_response();
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(FRAMES_AHEAD);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // Held until the dump ends: the RocksDB snapshot and this thread are what the permit bounds.
        let _permit = permit;
        let sink = FrameSink {
            tx,
            runtime,
            write_timeout: service.write_timeout,
        };
        match dump(&service.store, &sink) {
            Ok(sent) => {
                service.stats.snapshots_served.inc();
                service.stats.snapshot_bytes.inc_by(sent.bytes);
                tracing::info!(
                    entries = sent.entries,
                    bytes = sent.bytes,
                    "snapshot served"
                );
            }
            // The body ends without its End frame: the reader sees a cut-off snapshot.
            Err(err) => {
                service.stats.snapshots_cut_off.inc();
                tracing::warn!(error = %err, "snapshot dump stopped");
            }
        }
    });
    let frames = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|frame| frame.map(Ok::<_, std::io::Error>))
    });
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(frames),
    )
        .into_response()
}

/// Where the dump's frames go: the response body's channel, waited on for at most `write_timeout` a frame.
struct FrameSink {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    runtime: tokio::runtime::Handle,
    write_timeout: Duration,
}

impl FrameSink {
    /// `false` when the reader went away or took no frame within the write timeout.
    fn send(&self, frame: Bytes) -> bool {
        // The timeout is made inside the runtime: its timer needs the runtime's context, which a thread
        // that is not one of the runtime's (the unit tests') does not have outside `block_on`.
        let sent = self.runtime.block_on(async {
            tokio::time::timeout(self.write_timeout, self.tx.send(frame)).await
        });
        matches!(sent, Ok(Ok(())))
    }
}

#[derive(Debug, thiserror::Error)]
enum DumpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the reader went away or took no frame within node.snapshot_write_timeout_secs")]
    Gone,
}

/// What a snapshot held.
struct Sent {
    entries: u64,
    bytes: u64,
}

/// Streams the replicated families, as retention keeps them, to `tx`.
fn dump(store: &CandleStore, sink: &FrameSink) -> Result<Sent, DumpError> {
    let bytes = std::cell::Cell::new(0u64);
    let send = |frame: Frame| {
        let encoded = frame.encode();
        bytes.set(bytes.get() + encoded.len() as u64);
        sink.send(encoded)
    };
    let mut count = 0u64;
    let mut pending: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(FRAME_ENTRIES);
    let mut pending_family = Replicated::Candles;
    let seq = store.dump_replicated(
        |epoch| send(Frame::Epoch { epoch }),
        |family, key, value| {
            // Expired events stay until compaction; an edge is not sent them.
            if family == Replicated::Events && store.event_expired(value) {
                return true;
            }
            count += 1;
            let mut open = true;
            if !pending.is_empty() && (family != pending_family || pending.len() >= FRAME_ENTRIES) {
                let entries = std::mem::take(&mut pending);
                open = send(Frame::Entries {
                    family: pending_family,
                    entries,
                });
            }
            pending_family = family;
            pending.push((key.to_vec(), value.to_vec()));
            open
        },
    )?;
    let seq = seq.ok_or(DumpError::Gone)?;
    let last = !pending.is_empty()
        && !send(Frame::Entries {
            family: pending_family,
            entries: pending,
        });
    if last
        || !send(Frame::End {
            seq,
            entries: count,
        })
    {
        return Err(DumpError::Gone);
    }
    Ok(Sent {
        entries: count,
        bytes: bytes.get(),
    })
}

/// Why a request failed, without its URL: the TLS cause in words when there is one.
fn request_failure(err: reqwest::Error) -> String {
    match kline_tls::HandshakeFailure::find(&err, "stream.snapshot_ca_file") {
        Some(failure) => failure.message,
        None => err.without_url().to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "the snapshot is of epoch {got:016x}, the stream of epoch {want:016x}: its source is behind"
    )]
    Epoch { got: u64, want: u64 },
    /// `url` is shown redacted.
    #[error("snapshot request to {} failed: {reason}", kline_tls::Redacted(url))]
    Http { url: String, reason: String },
    #[error("stream.snapshot_ca_file: {0}")]
    Tls(#[from] kline_tls::TlsError),
    #[error("snapshot body is malformed: {0}")]
    Malformed(String),
    #[error("snapshot body ended before its last frame")]
    CutOff,
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// A snapshot installed in the replica.
#[derive(Debug)]
pub struct Loaded {
    /// The group (and epoch) the replica is now consistent with.
    pub at: Position,
    /// Per series it changed, the oldest candle time changed (for the hub to re-read).
    pub changed: HashMap<SeriesId, i64>,
}

/// Loads the snapshot served at `stream.snapshot_url` (`http://` or `https://`, trusting the system's CA
/// certificates and `stream.snapshot_ca_file`) into `replica`. `epoch`: the epoch it must be of, when the
/// stream says (a snapshot source behind the writer's new epoch is refused before anything is written).
pub async fn load(
    config: &StreamConfig,
    replica: &mut Replica,
    epoch: Option<u64>,
) -> Result<Loaded, SnapshotError> {
    let url = format!(
        "{}/internal/snapshot",
        config.snapshot_url.trim_end_matches('/')
    );
    let http_error = |reason: String| SnapshotError::Http {
        url: url.clone(),
        reason,
    };
    let tls = kline_tls::ClientTls::with_ca_file(&config.snapshot_ca_file).config()?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .connect_timeout(Duration::from_millis(config.snapshot_connect_timeout_ms))
        .read_timeout(Duration::from_millis(config.snapshot_read_timeout_ms))
        .build()
        .map_err(|err| http_error(err.without_url().to_string()))?;
    let mut request = client.get(&url);
    if !config.snapshot_token.is_empty() {
        request = request.bearer_auth(&config.snapshot_token);
    }
    let mut response = request
        .send()
        .await
        .map_err(|err| http_error(request_failure(err)))?;
    if response.status() != StatusCode::OK {
        return Err(http_error(format!("status {}", response.status())));
    }
    let mut buffer = BytesMut::new();
    let mut changed = HashMap::new();
    let mut entries = 0u64;
    // Until its first frame says otherwise, a snapshot of a writer before epochs.
    let mut snapshot_epoch = None;
    loop {
        while let Some(frame) = next_frame(&mut buffer)? {
            let of_epoch = *snapshot_epoch.get_or_insert(match frame {
                Frame::Epoch { epoch } => epoch,
                _ => 0,
            });
            if let Some(want) = epoch.filter(|want| *want != of_epoch) {
                return Err(SnapshotError::Epoch {
                    got: of_epoch,
                    want,
                });
            }
            match frame {
                Frame::Epoch { .. } => {}
                Frame::Entries {
                    family,
                    entries: batch,
                } => {
                    entries += batch.len() as u64;
                    let replaces = of_epoch != replica.position().epoch;
                    replica.install(family, batch, replaces, &mut changed)?;
                }
                Frame::End { seq, entries: sent } => {
                    if sent != entries {
                        return Err(SnapshotError::Malformed(format!(
                            "{entries} entries received, {sent} announced"
                        )));
                    }
                    let at = Position {
                        seq,
                        epoch: of_epoch,
                    };
                    replica.finish_snapshot(at)?;
                    return Ok(Loaded { at, changed });
                }
            }
        }
        match response
            .chunk()
            .await
            .map_err(|err| http_error(request_failure(err)))?
        {
            Some(chunk) => buffer.extend_from_slice(&chunk),
            None => return Err(SnapshotError::CutOff),
        }
    }
}

/// Takes one whole frame off the front of `buffer`, if it holds one.
fn next_frame(buffer: &mut BytesMut) -> Result<Option<Frame>, SnapshotError> {
    if buffer.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_le_bytes(buffer[..4].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(SnapshotError::Malformed(format!("a frame of {len} bytes")));
    }
    if buffer.len() < 4 + len {
        return Ok(None);
    }
    buffer.advance(4);
    let body = buffer.split_to(len);
    borsh::from_slice(&body)
        .map(Some)
        .map_err(|err| SnapshotError::Malformed(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_core::simulated_market::SimulatedMarket;

    /// The frames a dump of `store` sends, decoded.
    fn dump_frames(store: &CandleStore) -> (Sent, Vec<Frame>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let sink = FrameSink {
            tx,
            runtime: runtime.handle().clone(),
            write_timeout: Duration::from_secs(10),
        };
        let sent = dump(store, &sink).map_err(|err| err.to_string()).unwrap();
        drop(sink);
        let mut frames = Vec::new();
        while let Ok(bytes) = rx.try_recv() {
            frames.push(borsh::from_slice(&bytes[4..]).unwrap());
        }
        (sent, frames)
    }

    #[test]
    fn a_snapshot_leaves_out_expired_events_and_counts_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let mut market = SimulatedMarket::new(2, 3);
        let mut batch = store.batch();
        for i in 0..10 {
            // Five events at t = 1..5 s, five at t = 101..105 s.
            let time_ms = if i < 5 {
                1_000 + i * 1000
            } else {
                96_000 + i * 1000
            };
            batch.put_event(&market.next_event(time_ms));
        }
        store.write(batch).unwrap();
        let events_sent = |frames: &[Frame]| {
            frames
                .iter()
                .map(|frame| match frame {
                    Frame::Entries {
                        family: Replicated::Events,
                        entries,
                    } => entries.len(),
                    _ => 0,
                })
                .sum::<usize>()
        };

        let (sent, frames) = dump_frames(&store);
        assert_eq!((events_sent(&frames), sent.entries), (10, 10));
        let full_bytes = sent.bytes;
        assert!(full_bytes > 10 * 100, "{full_bytes}");

        store.set_event_cutoff(Some(50_000));
        let (sent, frames) = dump_frames(&store);
        assert_eq!(events_sent(&frames), 5, "expired events are not sent");
        assert_eq!(sent.entries, 5);
        assert!(sent.bytes < full_bytes, "{} < {full_bytes}", sent.bytes);
        assert!(matches!(frames.last(), Some(Frame::End { entries: 5, .. })));
    }
}
