//! # kline-stream
//!
//! The stream from the writer to the edges (issue 16, docs/scaling.md): each committed write group of the
//! writer becomes one numbered entry of a Redis stream; edges apply the entries to their replica in order.
//!
//! - `kline_store::replication`: what the stream keeps in the store: the entry's content (`record`), the
//!   writer's outbox (`outbox`), the numbering's lineage (`epoch`), and the shared status (`status`):
//!   sequence numbers, staleness and readiness, read by `/ready`, `/health` and `/metrics`.
//! - [`publisher`]: the writer's task that appends the outbox to the stream, in order, and republishes the
//!   missing tail after a crash or a Redis restart.
//! - [`apply`]: the edge's replica: records and snapshot frames into the local store, then to the local hub.
//! - [`replica`]: the edge's task: reads the stream (or a snapshot when the stream has a gap) into [`apply`].
//! - [`continuity`]: which entries of a read continue the replica (the next number, the same epoch).
//! - [`redis`]: the stream engine (Redis Streams): connect, head, append, read after, reset.
//! - [`backoff`]: the jittered backoff of reconnects and snapshot retries.
//! - [`snapshot`]: `GET /internal/snapshot`, what a new or far-behind edge loads before reading the stream.

pub mod apply;
pub mod backoff;
pub mod continuity;
pub mod publisher;
pub mod redis;
pub mod replica;
pub mod snapshot;

#[cfg(test)]
mod tests;
