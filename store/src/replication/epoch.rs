//! Stream epochs (Centrifugo's answer to the same problem): group numbers only mean something within the
//! store that made them. The writer's store carries an **epoch** (a random non-zero `u64` in `meta`,
//! created with the store, so a wiped store gets a new one), and every stream entry carries it next to
//! its record. A position in the stream is a [`Position`]: a group number within an epoch.
//!
//! - **Writer** ([`resume_plan`]): on every (re)connection it compares the stream's head with its store.
//!   A head of another epoch (the store was wiped or replaced) makes it replace the stream with its own
//!   outbox; a head of its own epoch *past* its committed number (the store was restored from a backup,
//!   or lost its newest writes) makes it start a new epoch first, then replace the stream. Either way the
//!   new groups reach the edges; resuming after the stream's head, as before epochs, would have numbered
//!   them below it and no edge would ever have read them.
//! - **Edge** (`kline_stream::continuity`): an entry or a head of an epoch other than its replica's makes it
//!   load a snapshot (which carries the epoch it is consistent with) and read on in the new epoch.
//!
//! Entries and snapshots of writers before epochs carry none: they read as epoch 0, which a writer takes
//! for its own (an in-place upgrade) and an edge matches only with a replica of epoch 0.

use rand::Rng;

use crate::replication::EPOCH;
use crate::{CandleStore, StoreError};

/// A place in the stream's numbering: group `seq` of `epoch` (`seq` 0: before the first group, or an
/// empty stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub seq: u64,
    pub epoch: u64,
}

/// The writer's epoch, created (and stored) when the store has none yet: a new store, a wiped one, or one
/// of a version before epochs.
pub fn open_writer(store: &CandleStore) -> Result<u64, StoreError> {
    match store.seq(EPOCH)? {
        0 => {
            let epoch = start_new(store)?;
            tracing::info!(epoch = %hex(epoch), "the store has no stream epoch yet; started one");
            Ok(epoch)
        }
        epoch => Ok(epoch),
    }
}

/// Stores a new random epoch for the writer's store and returns it.
pub fn start_new(store: &CandleStore) -> Result<u64, StoreError> {
    let epoch = rand::rng().random_range(1..=u64::MAX);
    let mut write = store.batch();
    write.put_meta(EPOCH, &epoch.to_be_bytes());
    store.write(write)?;
    Ok(epoch)
}

/// An epoch as logs and `/health` show it.
pub fn hex(epoch: u64) -> String {
    format!("{epoch:016x}")
}

/// What the writer's publisher does with the stream it connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumePlan {
    /// The stream is this store's: publish the groups after its head.
    After(u64),
    /// The stream is empty: publish everything the outbox holds.
    Republish,
    /// The stream is of another epoch (this store was wiped or replaced): delete it and publish the outbox.
    Replace,
    /// The stream is of this store's epoch but past its newest group (a restored or truncated store):
    /// start a new epoch, then replace the stream.
    NewEpoch,
}

/// The publisher's plan for a stream whose newest entry is `head`, from a store of epoch `ours` whose
/// newest committed group is `committed`.
pub fn resume_plan(head: Position, ours: u64, committed: u64) -> ResumePlan {
    let same_lineage = head.epoch == ours || head.epoch == 0;
    match head.seq {
        0 => ResumePlan::Republish,
        seq if same_lineage && seq <= committed => ResumePlan::After(seq),
        _ if same_lineage => ResumePlan::NewEpoch,
        _ => ResumePlan::Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: u64, epoch: u64) -> Position {
        Position { seq, epoch }
    }

    #[test]
    fn the_writer_resumes_its_own_stream_and_replaces_any_other() {
        let ours = 7;
        assert_eq!(resume_plan(at(0, 0), ours, 50), ResumePlan::Republish);
        assert_eq!(resume_plan(at(40, ours), ours, 50), ResumePlan::After(40));
        assert_eq!(resume_plan(at(50, ours), ours, 50), ResumePlan::After(50));
        // A writer before epochs wrote the stream: an in-place upgrade goes on from its head.
        assert_eq!(resume_plan(at(40, 0), ours, 50), ResumePlan::After(40));
        // A restored store: the stream holds groups this store never committed under these numbers.
        assert_eq!(resume_plan(at(51, ours), ours, 50), ResumePlan::NewEpoch);
        assert_eq!(resume_plan(at(60, 0), ours, 50), ResumePlan::NewEpoch);
        // A wiped store (a new epoch of its own) behind, level with or past another epoch's stream.
        assert_eq!(resume_plan(at(500, 3), ours, 0), ResumePlan::Replace);
        assert_eq!(resume_plan(at(50, 3), ours, 50), ResumePlan::Replace);
        assert_eq!(resume_plan(at(5, 3), ours, 50), ResumePlan::Replace);
    }

    #[test]
    fn a_store_keeps_its_epoch_until_a_new_one_is_started() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let first = open_writer(&store).unwrap();
        assert_ne!(first, 0);
        assert_eq!(open_writer(&store).unwrap(), first);
        let second = start_new(&store).unwrap();
        assert_ne!(second, first);
        assert_eq!(open_writer(&store).unwrap(), second);
    }
}
