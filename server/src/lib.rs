//! # kline-server
//!
//! Turns Spin Pet trade events into OHLC candles, stores both in RocksDB, and serves them.
//!
//! ## Layout
//! - [`aggregator`]: open candles in memory; price ticks in, candle changes out.
//! - [`config`]: the typed configuration and its layers (default.toml → file → env → CLI).
//! - [`event`]: the seven Spin Pet events, their JSON form, identity and validation.
//! - [`pipeline`]: the single write path (dedup → aggregate → one write batch → publish), on its own thread.
//! - [`source`]: where events come from: simulator, replay (HTTP ingest is in `http`).
//! - [`stats`]: counters read by `/metrics` and `/health`.
//! - [`store`]: `CandleStore`, RocksDB column families for events, candles and metadata.
pub mod aggregator;
pub mod config;
pub mod event;
pub mod pipeline;
pub mod source;
pub mod stats;
pub mod store;
