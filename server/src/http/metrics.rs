//! `GET /metrics`: every counter in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::stats::LATENCY_BUCKETS_MS;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let p = &state.stats;
    let w = &state.push_stats;
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, value: &AtomicU64| {
        let _ = writeln!(
            out,
            "# HELP kline_{name} {help}\n# TYPE kline_{name} {kind}\nkline_{name} {}",
            value.load(Ordering::Relaxed)
        );
    };
    metric(
        "connections_active",
        "gauge",
        "Open WebSocket connections.",
        &w.connections_active,
    );
    metric(
        "connections_total",
        "counter",
        "WebSocket connections accepted.",
        &w.connections_total,
    );
    metric(
        "connections_rejected_total",
        "counter",
        "Connections closed with 1013 at the limit.",
        &w.connections_rejected,
    );
    metric(
        "sockets_refused_total",
        "counter",
        "Client sockets refused with 503 for want of file descriptors.",
        &w.sockets_refused,
    );
    metric(
        "subscriptions_active",
        "gauge",
        "Subscriptions in the hub's index.",
        &w.subscriptions_active,
    );
    metric(
        "messages_sent_total",
        "counter",
        "Text frames written to clients.",
        &w.messages_sent,
    );
    metric(
        "updates_replaced_total",
        "counter",
        "Unsent candle updates replaced by a newer one of the same candle.",
        &w.updates_replaced,
    );
    metric(
        "feed_lagged_total",
        "counter",
        "Candle updates the hub missed by falling behind.",
        &w.feed_lagged,
    );
    metric(
        "slow_client_closes_total",
        "counter",
        "Clients closed with 4008 (too slow).",
        &w.slow_client_closes,
    );
    metric(
        "memory_trims_total",
        "counter",
        "Times freed heap memory was returned to the OS after connections fell.",
        &w.memory_trims,
    );
    metric(
        "idle_timeouts_total",
        "counter",
        "Clients closed with 4000 (idle).",
        &w.idle_timeouts,
    );
    metric(
        "protocol_error_closes_total",
        "counter",
        "Clients closed with 1002 for breaking RFC 6455.",
        &w.protocol_error_closes,
    );
    metric(
        "invalid_payload_closes_total",
        "counter",
        "Clients closed with 1007 for text that is not UTF-8.",
        &w.invalid_payload_closes,
    );
    metric(
        "message_too_big_closes_total",
        "counter",
        "Clients closed with 1009 for a message above the limit.",
        &w.message_too_big_closes,
    );
    metric(
        "rate_limited_total",
        "counter",
        "Requests refused with 1004.",
        &w.rate_limited,
    );
    metric(
        "request_errors_total",
        "counter",
        "Requests answered with an error message.",
        &w.request_errors,
    );
    metric(
        "events_ingested_total",
        "counter",
        "Events stored.",
        &p.events_accepted,
    );
    metric(
        "events_duplicate_total",
        "counter",
        "Events dropped as already stored.",
        &p.events_duplicate,
    );
    metric(
        "events_rejected_total",
        "counter",
        "Events rejected as invalid.",
        &p.events_rejected,
    );
    metric(
        "events_late_total",
        "counter",
        "Events that corrected an already final candle.",
        &p.events_late,
    );
    metric(
        "candle_updates_published_total",
        "counter",
        "Candle updates published to the live stream.",
        &p.candle_updates_published,
    );
    metric(
        "candles_finalized_total",
        "counter",
        "Candles marked final.",
        &p.candles_finalized,
    );
    metric(
        "store_write_errors_total",
        "counter",
        "Failed RocksDB write batches.",
        &p.write_errors,
    );

    if let Some(solana) = &state.solana {
        metric(
            "solana_last_slot",
            "gauge",
            "Newest slot the Solana source processed.",
            &solana.last_slot,
        );
        metric(
            "solana_transactions_total",
            "counter",
            "Transactions the Solana source processed.",
            &solana.transactions,
        );
        metric(
            "solana_events_total",
            "counter",
            "Events the Solana source decoded.",
            &solana.events,
        );
        metric(
            "solana_backfilled_total",
            "counter",
            "Transactions recovered by backfill.",
            &solana.backfilled,
        );
        metric(
            "solana_decode_errors_total",
            "counter",
            "Program data lines that did not decode.",
            &solana.decode_errors,
        );
        metric(
            "solana_bad_notifications_total",
            "counter",
            "Notifications of an unexpected shape.",
            &solana.bad_notifications,
        );
        metric(
            "solana_reconnects_total",
            "counter",
            "Reconnections to the Solana node.",
            &solana.reconnects,
        );
        let live = u64::from(solana.state() == "live");
        let _ = writeln!(
            out,
            "# HELP kline_solana_live 1 while the Solana source follows live notifications.\n# TYPE kline_solana_live gauge\nkline_solana_live {live}"
        );
    }
    let (cumulative, count, sum) = w.push_latency.snapshot();
    let name = "kline_event_to_push_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} From a candle update's production (after its write) to its write on a client socket."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (bound, value) in LATENCY_BUCKETS_MS.iter().zip(&cumulative) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {value}", bound / 1000.0);
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
    );
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
