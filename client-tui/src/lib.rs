//! # kline-tui: live candlestick charts in a terminal
//!
//! ## Layout
//! - [`state`]: the pure chart model, fed by protocol messages.
//! - [`indicators`]: SMA, EMA, VWAP and Bollinger bands computed from the candles held, and which are shown.
//! - [`conn`]: the connection state machine (reconnect with capped, jittered backoff).
//! - [`view`]: rendering only: the `CandleChart` widget, axes, header, status, overlays.
//! - [`input`]: keys → actions, and the key table.
//! - [`app`]: the interactive loop (input + connection + coalesced redraws).
//! - [`headless`]: `watch --json` and `snapshot` for scripts and tests.
//! - [`endpoint`]: the server's WebSocket URL and the REST URLs next to it.
//! - [`term`]: the guard that always restores the terminal.
//! - [`watchlist`]: the watchlist's model: every mint's ticker and sparkline, sort, filter, stars.
//! - [`token_match`]: how a typed filter matches a token (picker and watchlist).

pub mod app;
pub mod conn;
pub mod endpoint;
pub mod headless;
pub mod indicators;
pub mod input;
pub mod state;
pub mod term;
pub mod token_match;
pub mod view;
pub mod watchlist;
