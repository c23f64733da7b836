//! The `solana` source: live Spin Pet events from a Solana RPC node, with nothing lost across restarts.
//!
//! - Live: `logsSubscribe` with `{"mentions": [program_id]}` over WebSocket; failed transactions are
//!   skipped; every `Program data:` line the program itself emitted ([`logs`]) is decoded ([`decode`]) into
//!   an event whose `event_index` is its position in the transaction.
//! - Pushed at once, stored in block order: a notification's events are pushed live *provisionally* the
//!   moment it arrives (time estimated from its receipt, no position: [`kline_pipeline::provisional`]).
//!   The block of its slot (`getBlock`, several slots at once, retried for as long as it takes: [`blocks`])
//!   gives its block time and its position in the block (`tx_index`); then the events are stored for good,
//!   and the candles they touched are published again with the block's open and close. A slow node delays
//!   the stored history and the trade feed, never the candle push.
//! - Written in groups: the transactions waiting at the head of the line whose blocks are known go to the
//!   pipeline as one write, with the cursor; writes are kept in flight (in order) while the next
//!   notifications are read. The line holds at most `solana.max_waiting_transactions`; when it is full the
//!   source stops reading the socket (backpressure; should the node drop the connection, the backfill
//!   recovers what it sent).
//! - Only a block's time and position, never a guess, are stored. Only when the node refuses a block for
//!   good (e.g. -32009, the slot missing from its storage) is the time the receive time (or the
//!   transaction's own `blockTime` in a backfill) and the position unknown (ordered by signature); the
//!   stored event says which (`time_source`, `tx_index_source`).
//! - Backfills, on every (re)connection, the gap since the cursor: completely, oldest first, in memory
//!   that does not grow with the gap; a gap longer than `solana.max_backfill` has its oldest part skipped
//!   *and recorded* (`/health`, `/metrics`, a warning), never in silence ([`backfill`]). A failed
//!   transaction stores nothing, so it waits for its turn in the line, not for its block.
//! - Reconnects with capped exponential backoff and jitter; pings the node; reports its state in
//!   [`SolanaStatus`] (shown by `/health` and `/metrics`). A rate-limited or failed JSON-RPC call is
//!   retried ([`rpc`]), never a reason to reconnect; every call waits for the node's request budget.
//! - Reaches real providers: `wss://` and `https://` through rustls ([`kline_tls`]: the system's CA
//!   certificates plus `ca_file`), the configured headers on the handshake and every call (API keys), URLs
//!   logged redacted. A failed TLS handshake is logged once per distinct cause (unknown CA, wrong name,
//!   expired…), not on every reconnect.
//! - Bad input (truncated or oversized payload, bad base64, a notification of another shape) is logged with
//!   the signature, counted, and skipped.
//! - Survives a program upgrade: an event with bytes after its known fields (Anchor appends new fields) is
//!   decoded from the fields it knows and counted (`events_trailing_bytes`); an event of a kind the IDL does
//!   not have is counted (`events_unknown_kind`) and skipped. Each is logged once per event kind, not per
//!   event; neither stops the transaction's other events.

pub mod backfill;
pub mod blocks;
pub mod decode;
pub mod gather;
pub mod logs;
pub mod rpc;
mod waiting;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kline_tls::{ClientTls, FailureLog, HandshakeFailure, Redacted};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use self::blocks::{BlockCache, BlockPositions, BlockSettings};
use self::gather::GatherWindow;
use self::rpc::{RpcClient, RpcCounters, RpcLimits};
use self::waiting::{HeardTx, ReceiptLag};
use kline_config::SolanaConfig;
use kline_core::clock::now_ms;
use kline_core::event::{
    EventMeta, EventRecord, EventTime, ParseLimits, Signature, TimeSource, TxIndexSource, validate,
};
use kline_core::stats::{Counter, Gauge};
use kline_pipeline::service::{IngestError, IngestHandle, PendingWrite, WriteChain};
use kline_store::CandleStore;

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
    /// Events decoded from their known fields with bytes left after them (a newer program version's
    /// fields).
    pub events_trailing_bytes: Counter,
    /// Events of our program with a discriminator the IDL does not have (skipped).
    pub events_unknown_kind: Counter,
    /// Slots whose block the node refused for good.
    pub blocks_unavailable: Counter,
    /// JSON-RPC calls repeated after a passing error (429, "Block not available", a lost connection…).
    pub rpc_retries: Counter,
    /// JSON-RPC calls the node answered with 429.
    pub rpc_rate_limited: Counter,
    /// Transactions heard but not stored yet (waiting for their block or their turn).
    pub waiting: Gauge,
    pub bad_notifications: Counter,
    pub backfilled: Counter,
    /// Signatures the current backfill has still to store.
    pub backfill_pending: Gauge,
    /// Signatures of gaps longer than `max_backfill` that were skipped ([`backfill::SkippedGap`]).
    pub backfill_skipped: Counter,
    pub backfill_gaps_skipped: Counter,
    skipped_gaps: Mutex<backfill::SkippedGaps>,
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

    /// The last few gaps skipped, oldest first.
    pub fn skipped_gaps(&self) -> Vec<backfill::SkippedGap> {
        self.skipped_gaps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recent()
    }

    fn add(counter: &Counter, n: usize) {
        counter.inc_by(n as u64);
    }
}

/// Provisional events are ordered after the positioned ones of their slot, by arrival: their guessed
/// position is this plus the source's arrival count (a node notifies a slot's transactions in block order,
/// so the guess usually gives the block's open and close already).
const PROVISIONAL_POSITION: u32 = 1 << 31;
/// Writes kept in flight before the source waits for the oldest.
const WRITES_IN_FLIGHT: usize = 16;
/// Transactions of a backfill fetched, placed and written together.
const BACKFILL_CHUNK: usize = 256;

#[derive(Debug, thiserror::Error)]
enum SourceError {
    #[error("WebSocket: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error(transparent)]
    Rpc(#[from] rpc::RpcError),
    #[error("storing events failed: {0}")]
    Ingest(#[from] kline_pipeline::service::IngestError),
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
    store: Arc<CandleStore>,
    /// The cursor as last handed to the pipeline (read from the store at each session's start).
    cursor: Option<Cursor>,
    status: &'a SolanaStatus,
    blocks: BlockCache,
    /// How long a provisional push waits for more of a burst's notifications.
    gather: GatherWindow,
    /// How long after its block's time a notification arrives, to estimate a provisional time.
    lag: ReceiptLag,
    /// Transactions heard (or backfilled) and not yet handed to the pipeline, in order. Kept across a
    /// reconnect: the backfill then starts after its newest transaction.
    line: VecDeque<HeardTx>,
    /// Writes handed to the pipeline, oldest first.
    writes: VecDeque<PendingWrite>,
    /// The writes since the session started from the stored cursor: once one is refused, the later ones
    /// are too, so the cursor never passes events that were not stored.
    chain: WriteChain,
    /// Transactions heard, for the provisional position.
    heard: u32,
    /// A write failed (or nothing was read yet): the next session starts over from the stored cursor.
    from_store: bool,
    price_scale: u32,
    /// Event kinds already logged for trailing bytes or an unknown discriminator (logged once each).
    logged_kinds: HashSet<[u8; 8]>,
}

/// Distinct event kinds remembered for logging once; past this every further one is still counted.
const MAX_LOGGED_KINDS: usize = 256;

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
    store: Arc<CandleStore>,
    status: Arc<SolanaStatus>,
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
    let rpc = RpcClient::new(
        &config.rpc_url,
        &config.commitment,
        (*tls).clone(),
        headers.clone(),
        RpcLimits {
            requests_per_sec: config.requests_per_sec,
            retry_min_ms: config.retry_min_ms,
            retry_max_ms: config.retry_max_ms,
        },
        RpcCounters {
            retries: status.rpc_retries.clone(),
            rate_limited: status.rpc_rate_limited.clone(),
        },
    );
    let blocks = BlockCache::new(
        BlockSettings {
            // A backfill chunk's blocks must all fit.
            cache_slots: config.block_cache_slots.max(BACKFILL_CHUNK),
            concurrency: config.block_concurrency,
        },
        rpc.clone(),
        status.blocks_unavailable.clone(),
    );
    let mut source = Source {
        config: &config,
        rpc,
        tls,
        headers,
        ingest,
        cursor: None,
        store,
        status: &status,
        blocks,
        gather: GatherWindow {
            idle: Duration::from_millis(config.gather_idle_ms),
            max: Duration::from_millis(config.gather_max_ms),
        },
        lag: ReceiptLag::default(),
        line: VecDeque::new(),
        writes: VecDeque::new(),
        chain: WriteChain::default(),
        heard: 0,
        from_store: true,
        price_scale,
        logged_kinds: HashSet::new(),
    };
    let mut attempt: u32 = 0;
    let mut tls_failures = FailureLog::default();
    // Paused for the store since the last session that went live (logged once).
    let mut storage_paused = false;
    loop {
        status.set_state("connecting");
        let result = tokio::select! {
            _ = shutdown.cancelled() => Err(SourceError::Shutdown),
            result = source.session(&mut attempt) => result,
        };
        if status.state() == "live" {
            // The session got as far as live: a cause seen before that is news again.
            tls_failures.clear();
            storage_paused = false;
        }
        let mut delay = backoff(config.reconnect_min_ms, config.reconnect_max_ms, attempt);
        match result {
            Err(SourceError::Shutdown) => break,
            Err(SourceError::Ingest(IngestError::Unavailable {
                reason,
                retry_after_ms,
            })) => {
                // Paused while the store refuses writes; what was not stored is read again from the node,
                // after the stored cursor.
                if !std::mem::replace(&mut storage_paused, true) {
                    tracing::warn!(%reason, "solana source: storage unavailable; pausing until it takes writes");
                }
                delay = Duration::from_millis(retry_after_ms.max(config.reconnect_min_ms));
            }
            Err(err) => match HandshakeFailure::find(&err, "source.solana.ca_file") {
                Some(failure) => {
                    tls_failures.report("solana source", source.url_of(&err), &failure);
                }
                None => tracing::warn!(error = %err, "solana source: connection lost"),
            },
            Ok(()) => tracing::warn!("solana source: the node closed the subscription"),
        }
        status.set_state(if storage_paused {
            "storage_unavailable"
        } else {
            "retrying"
        });
        SolanaStatus::add(&status.reconnects, 1);
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
        if std::mem::take(&mut self.from_store) {
            // What a failed write handed over but did not store is recovered from the stored cursor.
            self.blocks.cancel();
            self.line.clear();
            self.writes.clear();
            self.chain = WriteChain::default();
            self.cursor = stored_cursor(&self.store);
        }
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
        self.backfill().await.inspect_err(|err| {
            self.from_store = matches!(err, SourceError::Ingest(_));
        })?;
        *attempt = 0;
        self.status.set_state("live");

        let ping_every = Duration::from_secs(self.config.ping_interval_secs.max(1));
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        let mut heard = tokio::time::Instant::now();
        let room = self.config.max_waiting_transactions.max(1);
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if heard.elapsed() > ping_every * 3 {
                        return Err(SourceError::Protocol("the node stopped answering pings".into()));
                    }
                    socket.send(Message::Ping(Default::default())).await?;
                }
                message = socket.next(), if self.line.len() < room => {
                    heard = tokio::time::Instant::now();
                    let mut message = message;
                    // The notifications of one burst (a slot's, as the node sends them) join the line
                    // before the next write, and their events are pushed together: each candle once.
                    let gathering_since = heard;
                    let mut provisional = Vec::new();
                    let mut first_received = None;
                    loop {
                        match message {
                            Some(Ok(Message::Text(text))) => {
                                if let Some(tx) = self.on_notification(&text)? {
                                    provisional.extend(self.provisional_events(&tx));
                                    first_received.get_or_insert(tx.received_at_ms);
                                    if !tx.failed {
                                        self.blocks.want(tx.slot);
                                    }
                                    self.line.push_back(tx);
                                }
                            }
                            Some(Ok(Message::Close(_))) | None => return Ok(()),
                            Some(Ok(_)) => {}
                            Some(Err(err)) => return Err(err.into()),
                        }
                        if self.line.len() >= room {
                            break;
                        }
                        match self.gather.next(&mut socket, gathering_since).await {
                            Some(next) => message = next,
                            None => break,
                        }
                    }
                    if let (false, Some(received_at_ms)) = (provisional.is_empty(), first_received) {
                        self.ingest.push_provisional(provisional, received_at_ms).await?;
                    }
                }
                _ = self.blocks.next_fetched() => {}
            }
            self.store_ready().await.inspect_err(|err| {
                self.from_store = matches!(err, SourceError::Ingest(_));
            })?;
        }
    }

    /// A notification's transaction, or `None` for the subscription's answer and for bad input (counted,
    /// logged, skipped).
    fn on_notification(&mut self, text: &str) -> Result<Option<HeardTx>, SourceError> {
        let received_at_ms = now_ms();
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            SolanaStatus::add(&self.status.bad_notifications, 1);
            tracing::warn!(%text, "solana source: notification is not JSON");
            return Ok(None);
        };
        if message.get("id").is_some() {
            if let Some(error) = message.get("error") {
                return Err(SourceError::Protocol(format!(
                    "logsSubscribe refused: {error}"
                )));
            }
            return Ok(None); // the subscription id
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
            return Ok(None);
        };
        let logs: Vec<String> = logs
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
        Ok(Some(HeardTx {
            signature: signature.to_owned(),
            slot,
            failed: !value["err"].is_null(),
            logs,
            block_time: None,
            received_at_ms,
        }))
    }

    /// The transaction's events to push live before its block is known: estimated time, a position after
    /// the slot's known ones in the order heard ([`PROVISIONAL_POSITION`]).
    fn provisional_events(&mut self, tx: &HeardTx) -> Vec<EventRecord> {
        if tx.failed {
            return Vec::new();
        }
        self.heard = (self.heard + 1) % PROVISIONAL_POSITION;
        let place = TxPlace {
            time_ms: self.lag.estimate_block_time_ms(tx.received_at_ms),
            time_source: TimeSource::Received,
            tx_index: Some(PROVISIONAL_POSITION + self.heard),
            tx_index_source: TxIndexSource::Unavailable,
        };
        self.decode_transaction(tx, place, false)
    }

    /// Stores, in one write, the transactions at the head of the line whose blocks are known. A head whose
    /// block was evicted before its turn is asked for again.
    async fn store_ready(&mut self) -> Result<(), SourceError> {
        let mut events = Vec::new();
        let mut last: Option<(String, u64, i64)> = None;
        let mut received_at_ms = 0;
        while let Some(tx) = self.line.front() {
            let block = match self.blocks.get(tx.slot) {
                Some(block) => block,
                // A failed transaction stores nothing: it needs its turn, not its block.
                None if tx.failed => None,
                None => {
                    self.blocks.want(tx.slot);
                    break;
                }
            };
            let place = place_in(block, &tx.signature, tx.block_time, tx.received_at_ms);
            if let (Some(block), None) = (block, tx.block_time) {
                // Heard live (a backfill's receipt says nothing of the node's lag).
                self.lag.observe(block, tx.received_at_ms);
            }
            let tx = self.line.pop_front().expect("the line has a head");
            SolanaStatus::add(&self.status.transactions, 1);
            if tx.failed {
                SolanaStatus::add(&self.status.skipped_failed, 1);
            } else {
                events.extend(self.decode_transaction(&tx, place, true));
            }
            received_at_ms = received_at_ms.max(tx.received_at_ms);
            last = Some((tx.signature, tx.slot, place.time_ms));
        }
        self.status.waiting.set(self.line.len() as u64);
        if let Some((signature, slot, time_ms)) = last {
            self.write(events, Cursor { signature, slot }, time_ms, received_at_ms)
                .await?;
        }
        self.settle_writes(false).await
    }

    /// Hands `events` and the advanced cursor to the pipeline as one write, without waiting for it.
    async fn write(
        &mut self,
        events: Vec<EventRecord>,
        cursor: Cursor,
        time_ms: i64,
        received_at_ms: i64,
    ) -> Result<(), SourceError> {
        let advance = self
            .cursor
            .as_ref()
            .is_none_or(|stored| cursor.slot >= stored.slot);
        let meta = if advance {
            vec![(
                CURSOR_KEY.to_owned(),
                serde_json::to_vec(&cursor).expect("a cursor serializes"),
            )]
        } else {
            Vec::new()
        };
        SolanaStatus::add(&self.status.events, events.len());
        let pending = self
            .ingest
            .enqueue_chained(&self.chain, events, meta, received_at_ms)
            .await?;
        self.writes.push_back(pending);
        self.status
            .last_slot
            .inner()
            .fetch_max(cursor.slot, Ordering::Relaxed);
        self.status
            .last_event_ms
            .store(time_ms.max(0) as u64, Ordering::Relaxed);
        if advance {
            self.cursor = Some(cursor);
        }
        Ok(())
    }

    /// Collects the writes that are over (a failed one ends the session); waits for the oldest while more
    /// than [`WRITES_IN_FLIGHT`] are out, or for all of them if `all`.
    async fn settle_writes(&mut self, all: bool) -> Result<(), SourceError> {
        while let Some(oldest) = self.writes.front_mut() {
            let outcome = match oldest.try_done() {
                Some(outcome) => outcome,
                None if all || self.writes.len() > WRITES_IN_FLIGHT => {
                    self.writes.pop_front().expect("a write").done().await
                }
                None => return Ok(()),
            };
            self.writes.pop_front();
            outcome?;
        }
        Ok(())
    }

    /// The events of a transaction at `place`. `report`: count and log what does not decode (once per
    /// transaction: the provisional push passes `false`).
    fn decode_transaction(
        &mut self,
        tx: &HeardTx,
        place: TxPlace,
        report: bool,
    ) -> Vec<EventRecord> {
        let signature = tx.signature.as_str();
        let Ok(parsed_signature) = Signature::parse(signature) else {
            if report {
                SolanaStatus::add(&self.status.bad_notifications, 1);
                tracing::warn!(%signature, "solana source: not a transaction signature, skipped");
            }
            return Vec::new();
        };
        let limits = ParseLimits {
            now_ms: now_ms(),
            price_scale: self.price_scale,
        };
        let mut events = Vec::new();
        for (index, payload) in logs::program_data(&tx.logs, &self.config.program_id)
            .into_iter()
            .enumerate()
        {
            let decoded = payload.and_then(|bytes| match decode::decode_event(&bytes) {
                Ok(decoded) => {
                    if report && decoded.trailing > 0 {
                        self.note_trailing(&bytes, &decoded, signature);
                    }
                    Ok(Some(decoded.event))
                }
                Err(decode::DecodeError::UnknownDiscriminator(kind)) => {
                    if report {
                        self.note_unknown_kind(kind, signature);
                    }
                    Ok(None)
                }
                Err(err) => Err(err.to_string()),
            });
            let Some(decoded) = decoded.transpose() else {
                continue;
            };
            let record = decoded.and_then(|event| {
                let record = EventRecord {
                    event,
                    meta: EventMeta {
                        timestamp: EventTime(place.time_ms),
                        signature: parsed_signature.clone(),
                        slot: tx.slot,
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
                Err(reason) if report => {
                    SolanaStatus::add(&self.status.decode_errors, 1);
                    tracing::warn!(%signature, event_index = index, %reason, "solana source: event skipped");
                }
                Err(_) => {}
            }
        }
        events
    }
}

impl Source<'_> {
    /// Counts an event decoded with bytes after its known fields; logs the first of its kind.
    fn note_trailing(&mut self, bytes: &[u8], decoded: &decode::Decoded, signature: &str) {
        SolanaStatus::add(&self.status.events_trailing_bytes, 1);
        let kind: [u8; 8] = bytes[..8]
            .try_into()
            .expect("a decoded event has a discriminator");
        if self.first_of_kind(kind) {
            tracing::warn!(
                %signature,
                event = decoded.event.event_type(),
                trailing_bytes = decoded.trailing,
                "solana source: event has fields after the known ones (a program upgrade?); decoded \
                 from the known fields. Logged once per event kind; counted in \
                 kline_events_trailing_bytes_total"
            );
        }
    }

    /// Counts an event whose discriminator the IDL does not have; logs the first of each.
    fn note_unknown_kind(&mut self, kind: [u8; 8], signature: &str) {
        SolanaStatus::add(&self.status.events_unknown_kind, 1);
        if self.first_of_kind(kind) {
            tracing::warn!(
                %signature,
                discriminator = ?kind,
                "solana source: event of an unknown kind (a program upgrade?), skipped. Logged once \
                 per kind; counted in kline_events_unknown_kind_total"
            );
        }
    }

    /// Whether `kind` is logged for the first time (remembering at most [`MAX_LOGGED_KINDS`]).
    fn first_of_kind(&mut self, kind: [u8; 8]) -> bool {
        self.logged_kinds.len() < MAX_LOGGED_KINDS && self.logged_kinds.insert(kind)
    }
}

/// Where a transaction sits, from its slot's block (`None`: refused for good). `tx_block_time`: the
/// transaction's own `blockTime`, when a backfill read it with the transaction.
fn place_in(
    block: Option<&BlockPositions>,
    signature: &str,
    tx_block_time: Option<i64>,
    received_at_ms: i64,
) -> TxPlace {
    let tx_index = block.and_then(|block| block.position(signature));
    let block_time = block.and_then(|block| block.block_time).or(tx_block_time);
    let (time_ms, time_source) = match block_time {
        Some(secs) => (secs * 1000, TimeSource::BlockTime),
        None => (received_at_ms, TimeSource::Received),
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

#[cfg(test)]
mod tests;
