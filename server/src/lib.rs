//! # kline-server
//!
//! Turns Spin Pet trade events into OHLC candles, stores both in RocksDB, and serves them.
//!
//! ## Layout
//! - [`fds`]: the open-file limit and how it is shared between client sockets, RocksDB and the rest.
//! - [`http`]: the HTTP parts, each a sub-router with its own state: REST reads, ingest, status; the
//!   accept loop.
//! - [`node`]: a process by role (`all`, `writer`, `edge`): its parts, `bind`, `run`, the shutdown order.
//! - [`push`]: the transport-neutral push core: subscription hub, rate limit.
//! - [`readiness`]: whether the node takes new clients (`/ready`, `/ws`, Socket.IO).
//! - [`socketio`]: the old Spin Pet server's Socket.IO endpoint (`/socket.io`, namespace `/kline`).
//! - [`source`]: where events come from: simulator, replay (HTTP ingest is in `http`).
//! - [`ws`]: the WebSocket push service at `/ws`: subscription hub, fan-out, per-connection outboxes.
pub mod fds;
pub mod http;
pub mod memory;
pub mod node;
pub mod push;
pub mod readiness;
pub mod socketio;
pub mod source;
pub mod ws;
