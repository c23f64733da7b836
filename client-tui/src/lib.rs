//! kline-tui: a terminal client for kline servers.
//!
//! The chart client is built in its own issue; this crate compiles so the workspace is complete.
