//! # kline-core
//!
//! The domain the server's layers share, and the small things every layer may reach. It does no I/O and
//! imports no other layer of the server (only `kline-protocol`, the wire types).
//!
//! - [`event`]: the seven Spin Pet events, their JSON and stored forms, identity, validation, trades.
//! - [`aggregator`]: open candles in memory; price ticks in, candle changes out.
//! - [`names`]: [`names::TokenName`], a token's sanitised ticker, name and URI.
//! - [`simulated_market`]: a deterministic market of simulated tokens (the simulator source, tests, benches).
//! - [`clock`]: the wall clock in Unix milliseconds.
//! - [`stats`]: the counter types and the counters shared across layers (push, store), read by `/metrics`.
//! - [`own_thread`]: a task on a thread of its own, for the parts that must not queue behind connections.
pub mod aggregator;
pub mod clock;
pub mod event;
pub mod names;
pub mod own_thread;
pub mod simulated_market;
pub mod stats;
