//! # kline-server
//!
//! Turns Spin Pet trade events into OHLC candles, stores both in RocksDB, and serves them.
//!
//! ## Layout
//! - [`config`]: the typed configuration and its layers (default.toml → file → env → CLI).
//! - [`event`]: the seven Spin Pet events, their JSON form, identity and validation.
pub mod aggregator;
pub mod config;
pub mod event;
