//! `GET /metrics`: every counter, gauge and histogram of the server, registered once each with the
//! Prometheus project's client (`prometheus-client`), which writes the OpenMetrics text format.
//!
//! Names: the registry prefixes `kline_`, and counters get the `_total` suffix from the library (so
//! `events_ingested` is exported as `kline_events_ingested_total`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus_client::registry::Registry;

use super::status::NodeStatus;
use crate::source::solana::SolanaStatus;
use kline_core::stats::{PushStats, StoreStats};
use kline_pipeline::stats::PipelineStats;

/// Builds the registry of a role's metrics; called once at start. `pipeline`: roles `all` and `writer`.
/// The push metrics are registered on every role: the HTTP socket budget's refusals are counted there
/// (`sockets_refused`); a writer's WebSocket gauges stay 0.
pub fn registry(
    pipeline: Option<&PipelineStats>,
    push: &PushStats,
    solana: Option<&Arc<SolanaStatus>>,
    store: &StoreStats,
) -> Registry {
    let mut r = Registry::with_prefix("kline");
    register_push(&mut r, push);
    register_store(&mut r, store);
    if let Some(pipeline) = pipeline {
        register_pipeline(&mut r, pipeline);
    }
    if let Some(solana) = solana {
        register_solana(&mut r, solana);
    }
    r
}

fn register_push(r: &mut Registry, w: &PushStats) {
    r.register(
        "connections_active",
        "Open WebSocket connections",
        w.connections_active.clone(),
    );
    r.register(
        "connections",
        "WebSocket connections accepted",
        w.connections_total.clone(),
    );
    r.register(
        "socketio_connections_active",
        "Open Socket.IO sockets on /kline",
        w.socketio_connections_active.clone(),
    );
    r.register(
        "socketio_connections",
        "Socket.IO sockets accepted on /kline",
        w.socketio_connections_total.clone(),
    );
    r.register(
        "socketio_websocket_connections_active",
        "Open Socket.IO connections on the server's own websocket transport (the rest are socketioxide's)",
        w.socketio_websocket_connections_active.clone(),
    );
    r.register(
        "connections_rejected",
        "Connections closed with 1013 at the limit",
        w.connections_rejected.clone(),
    );
    r.register(
        "sockets_refused",
        "Client sockets refused with 503 for want of file descriptors",
        w.sockets_refused.clone(),
    );
    r.register(
        "subscriptions_active",
        "Subscriptions in the hub's index",
        w.subscriptions_active.clone(),
    );
    r.register(
        "messages_sent",
        "Text frames written to clients",
        w.messages_sent.clone(),
    );
    r.register(
        "updates_replaced",
        "Unsent candle updates replaced by a newer one of the same candle",
        w.updates_replaced.clone(),
    );
    r.register(
        "feed_lagged",
        "Times a hub shard's feed inbox overflowed and a series was re-read from the store to catch up",
        w.feed_lagged.clone(),
    );
    r.register(
        "feed_coalesced",
        "Candle states a hub shard skipped because a newer state of the same candle was waiting",
        w.feed_coalesced.clone(),
    );
    r.register(
        "trade_subscriptions_active",
        "(connection, mint) trade subscriptions",
        w.trade_subscriptions_active.clone(),
    );
    r.register(
        "trades_delivered",
        "Trades pushed to subscribers, once per subscriber",
        w.trades_delivered.clone(),
    );
    r.register(
        "trade_feed_lagged",
        "Times the trade feed overflowed and a mint's trades were re-read from the store",
        w.trade_feed_lagged.clone(),
    );
    r.register(
        "ticker_subscriptions_active",
        "Connections subscribed to the ticker stream",
        w.ticker_subscriptions_active.clone(),
    );
    r.register(
        "tickers_delivered",
        "tickers messages pushed, once per subscriber",
        w.tickers_delivered.clone(),
    );
    r.register(
        "slow_client_closes",
        "Clients closed with 4008 (too slow)",
        w.slow_client_closes.clone(),
    );
    r.register(
        "memory_trims",
        "Times freed heap memory was returned to the OS after connections fell",
        w.memory_trims.clone(),
    );
    r.register(
        "idle_timeouts",
        "Clients closed with 4000 (idle)",
        w.idle_timeouts.clone(),
    );
    r.register(
        "protocol_error_closes",
        "Clients closed with 1002 for breaking RFC 6455",
        w.protocol_error_closes.clone(),
    );
    r.register(
        "invalid_payload_closes",
        "Clients closed with 1007 for text that is not UTF-8",
        w.invalid_payload_closes.clone(),
    );
    r.register(
        "message_too_big_closes",
        "Clients closed with 1009 for a message above the limit",
        w.message_too_big_closes.clone(),
    );
    r.register(
        "rate_limited",
        "Requests refused with 1004",
        w.rate_limited.clone(),
    );
    r.register(
        "request_errors",
        "Requests answered with an error message",
        w.request_errors.clone(),
    );
    r.register(
        "event_to_push_seconds",
        "From a candle update's production (after its write) to its write on a client socket",
        w.push_latency.clone(),
    );
    r.register(
        "receipt_to_push_seconds",
        "From the receipt of the event behind a candle update (HTTP request read, Solana notification) to \
         its write on a client socket: queueing, aggregation, storage, feed and fan-out",
        w.receipt_to_push.clone(),
    );
}

fn register_store(r: &mut Registry, s: &StoreStats) {
    r.register(
        "retention_passes",
        "Retention passes completed",
        s.retention_passes.clone(),
    );
    r.register(
        "retention_series_pruned",
        "Candle series that had candles past their retention deleted",
        s.series_pruned.clone(),
    );
    r.register(
        "retention_trades_pruned",
        "Trades deleted past retention.trades",
        s.trades_pruned.clone(),
    );
    r.register(
        "store_family_bytes",
        "Bytes per RocksDB column family, on disk (table files) and in memory (memtables)",
        s.family_bytes.clone(),
    );
    r.register(
        "store_data_dir_bytes",
        "Bytes of the whole data directory (write-ahead log included)",
        s.data_dir_bytes.clone(),
    );
    r.register(
        "store_fs_size_bytes",
        "Size of the file system holding the data directory",
        s.fs_size_bytes.clone(),
    );
    r.register(
        "store_fs_avail_bytes",
        "Bytes of the data directory's file system this process may still write",
        s.fs_avail_bytes.clone(),
    );
    r.register(
        "snapshots_served",
        "Snapshots served to edges",
        s.snapshots_served.clone(),
    );
    r.register(
        "snapshot_bytes",
        "Bytes of the snapshots served to edges",
        s.snapshot_bytes.clone(),
    );
    r.register(
        "snapshots_refused",
        "Snapshot requests refused with 503: node.snapshot_concurrency snapshots were streaming",
        s.snapshots_refused.clone(),
    );
    r.register(
        "snapshots_cut_off",
        "Snapshots cut off before their end: the reader stalled past node.snapshot_write_timeout_secs or left",
        s.snapshots_cut_off.clone(),
    );
    r.register(
        "rest_reads_refused",
        "REST reads answered 503 because no read permit freed within rest.read_wait_ms",
        s.rest_reads_refused.clone(),
    );
    r.register(
        "store_candles_read",
        "Candle entries stepped over by history and page reads (answered or skipped)",
        s.candles_read.clone(),
    );
}

fn register_pipeline(r: &mut Registry, p: &PipelineStats) {
    r.register(
        "events_ingested",
        "Events stored",
        p.events_accepted.clone(),
    );
    r.register(
        "events_duplicate",
        "Events dropped as already stored",
        p.events_duplicate.clone(),
    );
    r.register(
        "events_rejected",
        "Events rejected as invalid",
        p.events_rejected.clone(),
    );
    r.register(
        "events_late",
        "Events that corrected an already final candle",
        p.events_late.clone(),
    );
    r.register(
        "candle_updates_published",
        "Candle updates published to the live feed",
        p.candle_updates_published.clone(),
    );
    r.register(
        "candle_updates_watched",
        "Published candle updates of series some hub shard has subscribers for",
        p.candle_updates_watched.clone(),
    );
    r.register(
        "provisional_events",
        "Events pushed live before their block position was known (corrected once it is)",
        p.provisional_events.clone(),
    );
    r.register(
        "provisional_corrections",
        "Candles published again because provisional events were confirmed or expired",
        p.provisional_corrections.clone(),
    );
    r.register(
        "provisional_orphaned",
        "Provisional-only candles whose events all moved to another bucket (not retracted live)",
        p.provisional_orphaned.clone(),
    );
    r.register(
        "candles_finalized",
        "Candles marked final",
        p.candles_finalized.clone(),
    );
    r.register(
        "store_write_errors",
        "Failed RocksDB write batches",
        p.write_errors.clone(),
    );
    r.register(
        "store_degraded",
        "1 while writes to the store fail (e.g. the disk is full): ingest is refused with 503 and retried",
        p.storage.degraded.clone(),
    );
}

fn register_solana(r: &mut Registry, s: &SolanaStatus) {
    r.register(
        "solana_live",
        "1 while the Solana source follows live notifications",
        s.live.clone(),
    );
    r.register(
        "solana_last_slot",
        "Newest slot the Solana source processed",
        s.last_slot.clone(),
    );
    r.register(
        "solana_transactions",
        "Transactions the Solana source processed",
        s.transactions.clone(),
    );
    r.register(
        "solana_events",
        "Events the Solana source decoded",
        s.events.clone(),
    );
    r.register(
        "solana_backfilled",
        "Transactions recovered by backfill",
        s.backfilled.clone(),
    );
    r.register(
        "solana_backfill_pending",
        "Signatures the running backfill has still to store",
        s.backfill_pending.clone(),
    );
    r.register(
        "solana_backfill_skipped",
        "Signatures of gaps longer than max_backfill that were not backfilled (see /health for their slots)",
        s.backfill_skipped.clone(),
    );
    r.register(
        "solana_backfill_gaps_skipped",
        "Gaps longer than max_backfill whose oldest signatures were not backfilled",
        s.backfill_gaps_skipped.clone(),
    );
    r.register(
        "solana_decode_errors",
        "Program data lines that did not decode",
        s.decode_errors.clone(),
    );
    r.register(
        "events_trailing_bytes",
        "Events of the program decoded from their known fields with bytes left after them (fields a \
         newer program version added)",
        s.events_trailing_bytes.clone(),
    );
    r.register(
        "events_unknown_kind",
        "Events of the program with a discriminator the IDL does not have (skipped)",
        s.events_unknown_kind.clone(),
    );
    r.register(
        "solana_blocks_unavailable",
        "Slots whose block (getBlock) the node refused for good: their transactions have no block position",
        s.blocks_unavailable.clone(),
    );
    r.register(
        "solana_rpc_retries",
        "JSON-RPC calls repeated after a passing error (429, Block not available, a lost connection)",
        s.rpc_retries.clone(),
    );
    r.register(
        "solana_rpc_rate_limited",
        "JSON-RPC calls the node answered with 429",
        s.rpc_rate_limited.clone(),
    );
    r.register(
        "solana_waiting_transactions",
        "Transactions heard but not stored yet (waiting for their block)",
        s.waiting.clone(),
    );
    r.register(
        "solana_bad_notifications",
        "Notifications of an unexpected shape",
        s.bad_notifications.clone(),
    );
    r.register(
        "solana_reconnects",
        "Reconnections to the Solana node",
        s.reconnects.clone(),
    );
}

pub async fn metrics(State(status): State<Arc<NodeStatus>>) -> impl IntoResponse {
    let mut out = String::with_capacity(8192);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &status.metrics);
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_once_with_its_value() {
        let (pipeline, push) = (PipelineStats::default(), PushStats::default());
        let store = StoreStats::default();
        kline_core::stats::add(&pipeline.events_accepted, 3);
        store
            .family_bytes
            .get_or_create(&vec![("family", "events"), ("where", "disk")])
            .set(1234);
        push.connections_active.inc();
        push.push_latency.observe_ms(1.5);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(
            &mut text,
            &registry(Some(&pipeline), &push, None, &store),
        )
        .unwrap();
        for line in [
            "kline_events_ingested_total 3",
            "kline_connections_active 1",
            "kline_event_to_push_seconds_count 1",
            "kline_event_to_push_seconds_bucket{le=\"0.002\"} 1",
            "kline_event_to_push_seconds_bucket{le=\"0.001\"} 0",
            "kline_receipt_to_push_seconds_count 0",
            "kline_feed_lagged_total 0",
            "kline_store_family_bytes{family=\"events\",where=\"disk\"} 1234",
            "kline_retention_trades_pruned_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        let names: Vec<_> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "each metric once");
    }
}
