//! # kline-server
//!
//! Turns Spin Pet trade events into OHLC candles, stores both in RocksDB, and serves them: the top of the
//! server's crates (docs/architecture.md, "The crates"). The layers below it are `kline-config`,
//! `kline-core`, `kline-store`, `kline-pipeline`, `kline-stream`, `kline-push`, `kline-ws` and
//! `kline-socketio`; this crate composes them by role and adds what only a process has.
//!
//! ## Layout
//! - [`node`]: a process by role (`all`, `writer`, `edge`): the parts each runs, `bind`, `run`, the one
//!   start and shutdown order.
//! - [`http`]: the HTTP parts, each a sub-router with its own state: REST reads, ingest, status, the chart
//!   page, the internal snapshot route; the accept loop and TLS on the server's own listener.
//! - [`source`]: where events come from: simulator, Solana, replay (HTTP ingest is in `http`).
//! - [`fds`]: the open-file limit and how it is shared between client sockets, RocksDB and the rest.
//! - [`memory`]: giving freed heap memory back to the operating system after connections fall.
pub mod fds;
pub mod http;
pub mod memory;
pub mod node;
pub mod source;
