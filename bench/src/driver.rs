//! The event load: events at a target rate, each with a unique price that encodes its sequence number,
//! recording when each was published. Where they go is the [`Feed`]: kline's HTTP ingest, the nchan
//! reference's publisher, or kline's Solana source through the fake RPC node.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use kline_core::event::{
    BuySell, EventMeta, EventRecord, EventTime, Pubkey, Signature, SpinPetEvent, U128,
};

use crate::clients::{Shared, channel, price_raw};
use crate::live::SlotFeed;

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
            tx_index: None,
            time_source: None,
            tx_index_source: None,
        },
    }
}

/// Where the driver's events go.
pub enum Feed {
    /// kline's `POST /api/v1/events`: the events due at a 5 ms tick as one NDJSON request, or (with
    /// `events_per_request`) as concurrent requests of that many events each (1: one event per POST, as a
    /// naive indexer posts).
    Ingest {
        http: reqwest::Client,
        url: String,
        token: String,
        events_per_request: Option<u64>,
    },
    /// nchan's publisher (`http://IP:PORT`): one POST per event to its pair's channel, a small JSON
    /// message with the event's price (`close`), as concurrent requests per 5 ms tick.
    Nchan { http: reqwest::Client, base: String },
    /// kline's Solana source: the events due at each slot (`slot`) as that slot's transactions.
    Solana { slots: SlotFeed, slot: Duration },
}

impl Feed {
    fn tick(&self) -> Duration {
        match self {
            Feed::Ingest { .. } | Feed::Nchan { .. } => Duration::from_millis(5),
            Feed::Solana { slot, .. } => *slot,
        }
    }

    /// Publishes events `seqs`; returns how many the engine accepted (added per pair to `per_pair`) and
    /// how many requests failed.
    async fn publish(
        &mut self,
        seqs: std::ops::Range<u64>,
        mints: &[Pubkey],
        run: u64,
        per_pair: &mut [u64],
    ) -> (u64, u64) {
        let mint_of = |seq: u64| mints[seq as usize % mints.len()].clone();
        match self {
            Feed::Ingest {
                http,
                url,
                token,
                events_per_request,
            } => {
                let per_request = events_per_request.unwrap_or(seqs.end - seqs.start).max(1);
                let requests = (seqs.start..seqs.end)
                    .step_by(per_request as usize)
                    .map(|start| start..(start + per_request).min(seqs.end))
                    .map(|chunk| {
                        let body: String = chunk
                            .clone()
                            .map(|seq| event(seq, &mint_of(seq), run).to_json() + "\n")
                            .collect();
                        let (http, url, token) = (&*http, &*url, &*token);
                        async move {
                            let accepted = post(http, url, token, body).await;
                            (chunk, accepted)
                        }
                    });
                let (mut accepted, mut failed) = (0, 0);
                for (chunk, outcome) in join_all(requests).await {
                    let Some(count) = outcome else {
                        failed += 1;
                        continue;
                    };
                    accepted += count;
                    if count == chunk.end - chunk.start {
                        chunk.for_each(|seq| per_pair[seq as usize % mints.len()] += 1);
                    }
                }
                (accepted, failed)
            }
            Feed::Nchan { http, base } => {
                let (http, base) = (&*http, &*base);
                let posts = seqs.clone().map(|seq| {
                    let mint = mint_of(seq);
                    let body = nchan_message(mint.as_str(), seq);
                    let url = format!("{base}/pub/{}", channel(mint.as_str()));
                    async move {
                        let response = http.post(url).body(body).send().await.ok()?;
                        // 201: delivered to subscribers; 202: queued, nobody subscribed.
                        response.status().is_success().then_some(seq)
                    }
                });
                let published: Vec<u64> = join_all(posts).await.into_iter().flatten().collect();
                published
                    .iter()
                    .for_each(|seq| per_pair[*seq as usize % mints.len()] += 1);
                (published.len() as u64, 0)
            }
            Feed::Solana { slots, .. } => {
                seqs.clone()
                    .for_each(|seq| per_pair[seq as usize % mints.len()] += 1);
                (slots.produce_slot(seqs, mint_of, run), 0)
            }
        }
    }
}

/// The nchan reference's message for event `seq`: what a chart client needs to show the update.
pub fn nchan_message(mint: &str, seq: u64) -> String {
    let close = price_raw(seq) as f64 / 1e28;
    format!(r#"{{"symbol":"{mint}","interval":"s1","seq":{seq},"close":{close:e}}}"#)
}

#[derive(Debug, Default, Clone)]
pub struct DriveOutcome {
    pub events_sent: u64,
    pub events_accepted: u64,
    pub publishes: u64,
    /// Requests that failed (kline's ingest; nchan's failed posts are not counted).
    pub publish_errors: u64,
    /// Events accepted per pair (pair = seq % pairs).
    pub accepted_per_pair: Vec<u64>,
}

/// Sends `rate` events/s for `duration` to `feed`, spread over `mints` round-robin.
pub async fn drive(
    feed: &mut Feed,
    mints: &[Pubkey],
    rate: f64,
    duration: Duration,
    shared: &Arc<Shared>,
) -> DriveOutcome {
    let mut outcome = DriveOutcome {
        accepted_per_pair: vec![0; mints.len()],
        ..DriveOutcome::default()
    };
    let run = shared.epoch.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let start = Instant::now();
    let mut tick = tokio::time::interval(feed.tick());
    let capacity = shared.sent_at_ns.len() as u64;
    while start.elapsed() < duration {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(capacity);
        if due <= outcome.events_sent {
            continue;
        }
        let sent_at = shared.epoch.elapsed().as_nanos() as u64;
        for seq in outcome.events_sent..due {
            shared.sent_at_ns[seq as usize].store(sent_at, Ordering::Relaxed);
        }
        let seqs = outcome.events_sent..due;
        outcome.publishes += 1;
        outcome.events_sent = due;
        let (accepted, failed) = feed
            .publish(seqs, mints, run, &mut outcome.accepted_per_pair)
            .await;
        outcome.events_accepted += accepted;
        outcome.publish_errors += failed;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_nchan_message_carries_the_price_that_encodes_its_sequence_number() {
        let message: serde_json::Value =
            serde_json::from_str(&nchan_message("Mint111", 41)).unwrap();
        let close = message["close"].as_f64().unwrap();
        assert_eq!((close * 1e9).round() as u64 - 1, 41);
        assert_eq!(message["seq"], 41);
    }
}
