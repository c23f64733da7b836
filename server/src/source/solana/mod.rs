//! The `solana` source: live Spin Pet events from a Solana RPC node, with nothing lost across restarts.
//!
//! - Live: `logsSubscribe` with `{"mentions": [program_id]}` over WebSocket; failed transactions are
//!   skipped; every `Program data:` line the program itself emitted ([`logs`]) is decoded ([`decode`]) into
//!   an event whose `event_index` is its position in the transaction.
//! - Time and order: the block of the event's slot (`getBlock`, cached per slot, retried: [`blocks`]) gives
//!   its block time and the transaction's position in the block (`tx_index`). When the node cannot give
//!   the block, the time is the receive time (or the transaction's own `blockTime` in a backfill) and the
//!   position is unknown (ordered by signature); the stored event says which (`time_source`,
//!   `tx_index_source`).
//! - Nothing lost: the newest processed signature and slot (the *cursor*) are written in the same RocksDB
//!   batch as the events. On start and after every reconnect, the gap since the cursor is backfilled with
//!   `getSignaturesForAddress(until = cursor)` (paged) and `getTransaction`, oldest first, before the live
//!   notifications queued meanwhile are read. Overlaps are harmless: events are deduplicated by identity.
//!   With no cursor yet (first start), the source begins at the live edge.
//! - Reconnects with capped exponential backoff and jitter; pings the node; reports its state in
//!   [`SolanaStatus`] (shown by `/health` and `/metrics`).
//! - Reaches real providers: `wss://` and `https://` through rustls ([`kline_tls`]: the system's CA
//!   certificates plus `ca_file`), the configured headers on the handshake and every call (API keys), URLs
//!   logged redacted. A failed TLS handshake is logged once per distinct cause (unknown CA, wrong name,
//!   expired…), not on every reconnect.
//! - Bad input (unknown discriminator, truncated or oversized payload, bad base64, a notification of another
//!   shape) is logged with the signature, counted, and skipped.

pub mod blocks;
pub mod decode;
pub mod logs;
pub mod rpc;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kline_tls::{ClientTls, FailureLog, HandshakeFailure, Redacted};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use self::blocks::{BlockCache, BlockSettings};
use self::rpc::RpcClient;
use crate::config::SolanaConfig;
use crate::event::{
    EventMeta, EventRecord, EventTime, ParseLimits, Signature, TimeSource, TxIndexSource, validate,
};
use crate::pipeline::service::{IngestHandle, now_ms};
use crate::stats::{Counter, Gauge};
use crate::store::CandleStore;

/// Key of the cursor in the store's `meta` column family.
pub const CURSOR_KEY: &str = "solana.cursor";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub signature: String,
    pub slot: u64,
}

/// What the source is doing, for `/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct SolanaStatus {
    state: Mutex<&'static str>,
    /// 1 while the source follows live notifications.
    pub live: Gauge,
    pub last_slot: Gauge,
    /// Unix ms of the last processed transaction's time.
    pub last_event_ms: AtomicU64,
    pub transactions: Counter,
    pub events: Counter,
    pub skipped_failed: Counter,
    pub decode_errors: Counter,
    /// Slots whose block the node could not give (after retries).
    pub blocks_unavailable: Counter,
    pub bad_notifications: Counter,
    pub backfilled: Counter,
    pub reconnects: Counter,
}

impl SolanaStatus {
    pub fn state(&self) -> &'static str {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state(&self, state: &'static str) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        self.live.set(u64::from(state == "live"));
    }

    /// Seconds between now and the time of the last processed transaction.
    pub fn lag_secs(&self) -> Option<f64> {
        let last = self.last_event_ms.load(Ordering::Relaxed);
        (last > 0).then(|| (now_ms() - last as i64) as f64 / 1000.0)
    }

    fn add(counter: &Counter, n: usize) {
        counter.inc_by(n as u64);
    }
}

#[derive(Debug, thiserror::Error)]
enum SourceError {
    #[error("WebSocket: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error(transparent)]
    Rpc(#[from] rpc::RpcError),
    #[error("storing events failed: {0}")]
    Ingest(#[from] crate::pipeline::service::IngestError),
    #[error("{0}")]
    Protocol(String),
    #[error("shutting down")]
    Shutdown,
}

struct Source<'a> {
    config: &'a SolanaConfig,
    /// Whom the WebSocket and JSON-RPC clients trust.
    tls: std::sync::Arc<rustls::ClientConfig>,
    /// Sent with the WebSocket handshake and every JSON-RPC call.
    headers: axum::http::HeaderMap,
    rpc: RpcClient,
    ingest: IngestHandle,
    /// The cursor as last written to the store (read once at start; the store only changes through us).
    cursor: Option<Cursor>,
    status: &'a SolanaStatus,
    blocks: BlockCache,
    price_scale: u32,
}

/// Where a transaction sits: its time and its position in the block, and how each was obtained.
#[derive(Debug, Clone, Copy)]
struct TxPlace {
    time_ms: i64,
    time_source: TimeSource,
    tx_index: Option<u32>,
    tx_index_source: TxIndexSource,
}

/// Runs until `shutdown`.
pub async fn run(
    config: SolanaConfig,
    price_scale: u32,
    ingest: IngestHandle,
    store: std::sync::Arc<CandleStore>,
    status: std::sync::Arc<SolanaStatus>,
    shutdown: CancellationToken,
) {
    // Both were checked when the configuration was built; the CA file may have gone since.
    let (tls, headers) = match (
        ClientTls::with_ca_file(&config.ca_file).config(),
        config.headers.to_header_map(),
    ) {
        (Ok(tls), Ok(headers)) => (tls, headers),
        (Err(err), _) => return misconfigured(&status, &err.to_string()),
        (_, Err(err)) => return misconfigured(&status, &err),
    };
    let mut source = Source {
        config: &config,
        rpc: RpcClient::new(
            &config.rpc_url,
            &config.commitment,
            (*tls).clone(),
            headers.clone(),
        ),
        tls,
        headers,
        ingest,
        cursor: stored_cursor(&store),
        status: &status,
        blocks: BlockCache::new(BlockSettings {
            cache_slots: config.block_cache_slots,
            retries: config.block_retries,
            retry_ms: config.block_retry_ms,
        }),
        price_scale,
    };
    let mut attempt: u32 = 0;
    let mut tls_failures = FailureLog::default();
    loop {
        status.set_state("connecting");
        let result = tokio::select! {
            _ = shutdown.cancelled() => Err(SourceError::Shutdown),
            result = source.session(&mut attempt) => result,
        };
        if status.state() == "live" {
            // The session got as far as live: a cause seen before that is news again.
            tls_failures.clear();
        }
        match result {
            Err(SourceError::Shutdown) => break,
            Err(err) => match HandshakeFailure::find(&err, "source.solana.ca_file") {
                Some(failure) => {
                    tls_failures.report("solana source", source.url_of(&err), &failure);
                }
                None => tracing::warn!(error = %err, "solana source: connection lost"),
            },
            Ok(()) => tracing::warn!("solana source: the node closed the subscription"),
        }
        status.set_state("retrying");
        SolanaStatus::add(&status.reconnects, 1);
        let delay = backoff(config.reconnect_min_ms, config.reconnect_max_ms, attempt);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    status.set_state("stopped");
}

/// A source that cannot start: says why in the log and in `/health`.
fn misconfigured(status: &SolanaStatus, reason: &str) {
    tracing::error!(%reason, "solana source: cannot start");
    status.set_state("misconfigured");
}

/// The cursor the store holds, if any.
fn stored_cursor(store: &CandleStore) -> Option<Cursor> {
    let bytes = store.meta(CURSOR_KEY).ok().flatten()?;
    serde_json::from_slice(&bytes).ok()
}

/// `min · 2^attempt`, capped at `max`, then a random point in its upper half.
fn backoff(min_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let ceiling = min_ms
        .saturating_mul(1 << attempt.min(20))
        .min(max_ms)
        .max(1);
    let jitter = (now_ms() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % (ceiling / 2 + 1);
    Duration::from_millis(ceiling - jitter)
}

impl Source<'_> {
    /// The endpoint `err` came from: the RPC URL for a JSON-RPC error, else the WebSocket URL.
    fn url_of(&self, err: &SourceError) -> &str {
        match err {
            SourceError::Rpc(_) => &self.config.rpc_url,
            _ => &self.config.ws_url,
        }
    }

    /// One connection: subscribe, backfill the gap, then follow live notifications.
    async fn session(&mut self, attempt: &mut u32) -> Result<(), SourceError> {
        let mut request = self.config.ws_url.as_str().into_client_request()?;
        request.headers_mut().extend(self.headers.clone());
        let connector = Connector::Rustls(self.tls.clone());
        let (mut socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
                .await?;
        let subscribe = json!({
            "jsonrpc": "2.0", "id": 1, "method": "logsSubscribe",
            "params": [{ "mentions": [self.config.program_id] }, { "commitment": self.config.commitment }],
        });
        socket.send(Message::text(subscribe.to_string())).await?;
        tracing::info!(ws = %Redacted(&self.config.ws_url), program = %self.config.program_id, "solana source: subscribed");

        self.status.set_state("backfilling");
        self.backfill().await?;
        *attempt = 0;
        self.status.set_state("live");

        let ping_every = Duration::from_secs(self.config.ping_interval_secs.max(1));
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if heard.elapsed() > ping_every * 3 {
                        return Err(SourceError::Protocol("the node stopped answering pings".into()));
                    }
                    socket.send(Message::Ping(Default::default())).await?;
                }
                message = socket.next() => {
                    heard = tokio::time::Instant::now();
                    match message {
                        Some(Ok(Message::Text(text))) => self.on_notification(&text).await?,
                        Some(Ok(Message::Close(_))) | None => return Ok(()),
                        Some(Ok(_)) => {}
                        Some(Err(err)) => return Err(err.into()),
                    }
                }
            }
        }
    }

    async fn on_notification(&mut self, text: &str) -> Result<(), SourceError> {
        let received_at_ms = now_ms();
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            SolanaStatus::add(&self.status.bad_notifications, 1);
            tracing::warn!(%text, "solana source: notification is not JSON");
            return Ok(());
        };
        if message.get("id").is_some() {
            if let Some(error) = message.get("error") {
                return Err(SourceError::Protocol(format!(
                    "logsSubscribe refused: {error}"
                )));
            }
            return Ok(()); // the subscription id
        }
        let result = &message["params"]["result"];
        let value = &result["value"];
        let (Some(signature), Some(slot), Some(logs)) = (
            value["signature"].as_str(),
            result["context"]["slot"].as_u64(),
            value["logs"].as_array(),
        ) else {
            SolanaStatus::add(&self.status.bad_notifications, 1);
            tracing::warn!(%text, "solana source: notification of an unexpected shape, skipped");
            return Ok(());
        };
        let logs: Vec<String> = logs
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
        let failed = !value["err"].is_null();
        let place = self.place_of(signature, slot, None).await;
        self.process(signature, slot, failed, &logs, place, received_at_ms)
            .await
    }

    /// The time and block position of a transaction from its slot's block. `tx_block_time`: the
    /// transaction's own `blockTime`, when a backfill read it with the transaction.
    async fn place_of(
        &mut self,
        signature: &str,
        slot: u64,
        tx_block_time: Option<i64>,
    ) -> TxPlace {
        let block = self
            .blocks
            .get(&self.rpc, slot, &self.status.blocks_unavailable)
            .await;
        let tx_index = block.and_then(|block| block.position(signature));
        let block_time = block.and_then(|block| block.block_time).or(tx_block_time);
        let (time_ms, time_source) = match block_time {
            Some(secs) => (secs * 1000, TimeSource::BlockTime),
            None => (now_ms(), TimeSource::Received),
        };
        TxPlace {
            time_ms,
            time_source,
            tx_index,
            tx_index_source: if tx_index.is_some() {
                TxIndexSource::Block
            } else {
                TxIndexSource::Unavailable
            },
        }
    }

    /// Fills the gap between the stored cursor and now, oldest first.
    async fn backfill(&mut self) -> Result<(), SourceError> {
        let Some(cursor) = self.cursor.clone() else {
            tracing::info!("solana source: no cursor yet; starting at the live edge");
            return Ok(());
        };
        let mut signatures = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let page = self
                .rpc
                .signatures_for_address(
                    &self.config.program_id,
                    Some(&cursor.signature),
                    before.as_deref(),
                    self.config.backfill_page,
                )
                .await?;
            let full = page.len() >= self.config.backfill_page;
            before = page.last().map(|s| s.signature.clone());
            signatures.extend(page);
            if !full || signatures.len() >= self.config.max_backfill {
                break;
            }
        }
        signatures.reverse();
        tracing::info!(
            missed = signatures.len(),
            since_slot = cursor.slot,
            "solana source: backfilling"
        );
        for info in signatures {
            let Some(tx) = self.rpc.transaction(&info.signature).await? else {
                return Err(SourceError::Protocol(format!(
                    "the node does not have transaction {} yet",
                    info.signature
                )));
            };
            let received_at_ms = now_ms();
            let place = self.place_of(&info.signature, tx.slot, tx.block_time).await;
            self.process(
                &info.signature,
                tx.slot,
                tx.failed || info.failed,
                &tx.logs,
                place,
                received_at_ms,
            )
            .await?;
            SolanaStatus::add(&self.status.backfilled, 1);
        }
        Ok(())
    }

    /// Decodes a transaction's events and stores them with the advanced cursor, in one write.
    /// `received_at_ms`: when the transaction reached the server (notification or backfill fetch).
    async fn process(
        &mut self,
        signature: &str,
        slot: u64,
        failed: bool,
        logs: &[String],
        place: TxPlace,
        received_at_ms: i64,
    ) -> Result<(), SourceError> {
        SolanaStatus::add(&self.status.transactions, 1);
        let mut events = Vec::new();
        if failed {
            SolanaStatus::add(&self.status.skipped_failed, 1);
        } else {
            events = self.decode_transaction(signature, slot, logs, place);
        }
        let cursor = Cursor {
            signature: signature.to_owned(),
            slot,
        };
        let advance = self
            .cursor
            .as_ref()
            .is_none_or(|stored| slot >= stored.slot);
        let meta = if advance {
            vec![(
                CURSOR_KEY.to_owned(),
                serde_json::to_vec(&cursor).expect("a cursor serializes"),
            )]
        } else {
            Vec::new()
        };
        SolanaStatus::add(&self.status.events, events.len());
        self.ingest
            .submit_received(events, meta, received_at_ms)
            .await?;
        if advance {
            self.cursor = Some(cursor);
        }
        self.status
            .last_slot
            .inner()
            .fetch_max(slot, Ordering::Relaxed);
        self.status
            .last_event_ms
            .store(place.time_ms.max(0) as u64, Ordering::Relaxed);
        Ok(())
    }

    fn decode_transaction(
        &self,
        signature: &str,
        slot: u64,
        logs: &[String],
        place: TxPlace,
    ) -> Vec<EventRecord> {
        let Ok(parsed_signature) = Signature::parse(signature) else {
            SolanaStatus::add(&self.status.bad_notifications, 1);
            tracing::warn!(%signature, "solana source: not a transaction signature, skipped");
            return Vec::new();
        };
        let limits = ParseLimits {
            now_ms: now_ms(),
            price_scale: self.price_scale,
        };
        let mut events = Vec::new();
        for (index, payload) in logs::program_data(logs, &self.config.program_id)
            .into_iter()
            .enumerate()
        {
            let decoded = payload
                .and_then(|bytes| decode::decode_event(&bytes).map_err(|err| err.to_string()));
            let record = decoded.and_then(|event| {
                let record = EventRecord {
                    event,
                    meta: EventMeta {
                        timestamp: EventTime(place.time_ms),
                        signature: parsed_signature.clone(),
                        slot,
                        event_index: index as u32,
                        tx_index: place.tx_index,
                        time_source: Some(place.time_source),
                        tx_index_source: Some(place.tx_index_source),
                    },
                };
                validate(&record, &limits)
                    .map(|()| record)
                    .map_err(|err| err.to_string())
            });
            match record {
                Ok(record) => events.push(record),
                Err(reason) => {
                    SolanaStatus::add(&self.status.decode_errors, 1);
                    tracing::warn!(%signature, event_index = index, %reason, "solana source: event skipped");
                }
            }
        }
        events
    }
}

#[cfg(test)]
mod tests;
