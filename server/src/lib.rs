//! # kline-server
//!
//! Turns Spin Pet trade events into OHLC candles, stores both in RocksDB, and serves them.
//!
//! ## Layout
//! - [`fds`]: the open-file limit and how it is shared between client sockets, RocksDB and the rest.
//! - [`http`]: the HTTP parts, each a sub-router with its own state: REST reads, ingest, status; the
//!   accept loop.
//! - [`node`]: a process by role (`all`, `writer`, `edge`): its parts, `bind`, `run`, the shutdown order.
//! - [`source`]: where events come from: simulator, replay (HTTP ingest is in `http`).
pub mod fds;
pub mod http;
pub mod memory;
pub mod node;
pub mod source;
