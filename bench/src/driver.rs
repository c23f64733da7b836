//! The event load: POSTs Spin Pet events to `/api/v1/events` at a target rate, each with a unique price,
//! recording when each was sent.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kline_server::event::{
    BuySell, EventMeta, EventRecord, EventTime, Pubkey, Signature, SpinPetEvent, U128,
};

use crate::clients::{Shared, price_raw};

/// One event on `mint` with sequence number `seq` (unique signature and price).
pub fn event(seq: u64, mint: &Pubkey, run: u64) -> EventRecord {
    let mut signature = [7u8; 64];
    signature[..8].copy_from_slice(&run.to_be_bytes());
    signature[8..16].copy_from_slice(&seq.to_be_bytes());
    let now = kline_protocol::response::unix_millis_now();
    EventRecord {
        event: SpinPetEvent::BuySell(BuySell {
            payer: mint.clone(),
            mint_account: mint.clone(),
            is_buy: seq.is_multiple_of(2),
            token_amount: 1_000_000,
            sol_amount: 10_000_000,
            latest_price: U128(price_raw(seq)),
        }),
        meta: EventMeta {
            timestamp: EventTime(now),
            signature: Signature::from_bytes(signature),
            slot: 300_000_000 + seq,
            event_index: 0,
            time_source: None,
        },
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct DriveOutcome {
    pub events_sent: u64,
    pub events_accepted: u64,
    pub posts: u64,
    pub post_errors: u64,
}

/// Sends `rate` events/s for `duration`, spread over `mints` round-robin.
pub async fn drive(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    mints: &[Pubkey],
    rate: f64,
    duration: Duration,
    shared: &Arc<Shared>,
) -> DriveOutcome {
    let mut outcome = DriveOutcome::default();
    let run = shared.epoch.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let capacity = shared.sent_at_ns.len() as u64;
    while start.elapsed() < duration {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(capacity);
        if due <= outcome.events_sent {
            continue;
        }
        let sent_at = shared.epoch.elapsed().as_nanos() as u64;
        let mut body = String::new();
        for seq in outcome.events_sent..due {
            shared.sent_at_ns[seq as usize].store(sent_at, Ordering::Relaxed);
            body.push_str(&event(seq, &mints[seq as usize % mints.len()], run).to_json());
            body.push('\n');
        }
        outcome.posts += 1;
        outcome.events_sent = due;
        match post(client, url, token, body).await {
            Some(accepted) => outcome.events_accepted += accepted,
            None => outcome.post_errors += 1,
        }
        if due == capacity {
            break;
        }
    }
    outcome
}

/// POSTs NDJSON; returns the number of accepted events.
pub async fn post(client: &reqwest::Client, url: &str, token: &str, body: String) -> Option<u64> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let report: serde_json::Value = response.json().await.ok()?;
    report["accepted"].as_u64()
}
