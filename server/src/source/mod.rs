//! Where events come from. Every source hands validated events to the pipeline through an
//! [`IngestHandle`](kline_pipeline::service::IngestHandle); none writes to the store itself.
//!
//! - [`simulator`]: simulated Spin Pet trading for development (on in `default.toml`).
//! - [`replay`]: loads an NDJSON file of events (`kline-server replay FILE`).
//! - [`solana`]: live events from a Solana RPC node (`logsSubscribe`), backfilled across restarts.
//! - HTTP ingest (`POST /api/v1/events`) lives with the other routes in [`crate::http`].

pub mod replay;
pub mod simulator;
pub mod solana;
