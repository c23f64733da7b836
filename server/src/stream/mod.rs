//! The stream from the writer to the edges (issue 16, docs/scaling.md): each committed write group of the
//! writer becomes one numbered entry of a Redis stream; edges apply the entries to their replica in order.
//!
//! - [`record`]: the entry's content (the group's candles, trades, events, symbol stats) and its encoding.
//! - [`outbox`]: the writer side of the pipeline's write: the group's record and its sequence number go
//!   into the same RocksDB write as the group (no gap, no duplicate after a crash).
//! - [`publisher`]: the writer's task that appends the outbox to the stream, in order, and republishes the
//!   missing tail after a crash or a Redis restart.
//! - [`apply`]: the edge's replica: records and snapshot frames into the local store, then to the local hub.
//! - [`replica`]: the edge's task: reads the stream (or a snapshot when the stream has a gap) into [`apply`].
//! - [`continuity`]: which entries of a read continue the replica (the next number, the same epoch).
//! - [`epoch`]: the numbering's lineage: the writer's store carries an epoch every entry carries, so a
//!   wiped or restored store starts a new one and the edges load a snapshot instead of stalling.
//! - [`redis`]: the stream engine (Redis Streams): connect, head, append, read after, reset.
//! - [`backoff`]: the jittered backoff of reconnects and snapshot retries.
//! - [`snapshot`]: `GET /internal/snapshot`, what a new or far-behind edge loads before reading the stream.
//! - [`status`]: sequence numbers, staleness and readiness, read by `/ready`, `/health` and `/metrics`.

pub mod apply;
pub mod backoff;
pub mod continuity;
pub mod epoch;
pub mod outbox;
pub mod publisher;
pub mod record;
pub mod redis;
pub mod replica;
pub mod snapshot;
pub mod status;

pub use status::{NotReady, ReadinessPolicy, StreamStatus};

#[cfg(test)]
mod tests;
