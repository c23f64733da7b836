//! The edge's rule for what it may apply: an entry continues the replica when it is the next group of the
//! replica's epoch. Everything else — a gap (the stream was trimmed past the replica, Redis lost data, the
//! writer's outbox overflowed while Redis was away) or another epoch (the writer's store was wiped or
//! restored: `kline_store::replication::epoch`) — is a [`Break`], which the replica answers with a snapshot.
//! A read is applied up to its first break, so a gap in the middle of one read never makes the edge re-read
//! the same entries.

use super::redis::Entry;
use kline_store::replication::epoch::Position;

/// Why the stream does not continue the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    #[error("the stream skips from group {applied} to {}", .next.seq)]
    Gap { applied: u64, next: Position },
    #[error("the stream is of epoch {theirs:016x}, the replica of epoch {ours:016x}")]
    Epoch { ours: u64, theirs: u64 },
}

impl Break {
    /// The epoch a snapshot that repairs this break must be of.
    pub fn epoch(&self) -> u64 {
        match self {
            Break::Gap { next, .. } => next.epoch,
            Break::Epoch { theirs, .. } => *theirs,
        }
    }
}

/// A replica with nothing applied and no epoch (a new edge): it takes the epoch of the first group.
fn is_new(at: Position) -> bool {
    at == Position::default()
}

/// Whether an entry at `next` continues a replica at `at`, or why not.
pub fn check(at: Position, next: Position) -> Result<(), Break> {
    if next.epoch != at.epoch && !is_new(at) {
        return Err(Break::Epoch {
            ours: at.epoch,
            theirs: next.epoch,
        });
    }
    if next.seq != at.seq + 1 {
        return Err(Break::Gap {
            applied: at.seq,
            next,
        });
    }
    Ok(())
}

/// How many entries at the front of `read` continue a replica at `at`, one after the other, and why the
/// entry after them does not.
pub fn continuing(mut at: Position, read: &[Entry]) -> (usize, Option<Break>) {
    for (taken, entry) in read.iter().enumerate() {
        if let Err(broken) = check(at, entry.position()) {
            return (taken, Some(broken));
        }
        at = entry.position();
    }
    (read.len(), None)
}

/// What an edge does once it has read the stream's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtHead {
    /// Read on after the applied group.
    Follow,
    /// The stream is empty and there is nothing to load: the replica is as loaded as it can be (the writer
    /// republishes into the stream).
    Loaded,
    /// Load a snapshot, of this epoch when one is known.
    Snapshot { epoch: Option<u64> },
}

/// The rule for a replica at `at` (`loaded` or not) and a stream whose newest entry is `head`.
pub fn at_head(at: Position, loaded: bool, head: Position, snapshot_source: bool) -> AtHead {
    if head.seq == 0 {
        // A new edge with a snapshot source: the writer may hold data the stream lost (Redis restarted
        // empty while the writer was idle); its snapshot says, and is empty if not. Once: after it the
        // replica is loaded.
        return if at.seq == 0 && !loaded && snapshot_source {
            AtHead::Snapshot { epoch: None }
        } else {
            AtHead::Loaded
        };
    }
    if head.epoch != at.epoch && !is_new(at) {
        return AtHead::Snapshot {
            epoch: Some(head.epoch),
        };
    }
    AtHead::Follow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: u64, epoch: u64) -> Position {
        Position { seq, epoch }
    }

    fn read(positions: &[(u64, u64)]) -> Vec<Entry> {
        positions
            .iter()
            .map(|&(seq, epoch)| Entry {
                seq,
                epoch,
                record: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_read_continues_up_to_its_first_gap_or_change_of_epoch() {
        let whole = read(&[(4, 9), (5, 9), (6, 9)]);
        assert_eq!(continuing(at(3, 9), &whole), (3, None));
        // A gap in the middle: the groups before it are applied, then a snapshot of the same epoch.
        let gap = read(&[(4, 9), (5, 9), (8, 9), (9, 9)]);
        let (taken, broken) = continuing(at(3, 9), &gap);
        assert_eq!(taken, 2);
        let broken = broken.unwrap();
        assert_eq!(
            broken,
            Break::Gap {
                applied: 5,
                next: at(8, 9)
            }
        );
        assert_eq!(broken.epoch(), 9);
        // A gap at the front: nothing is applied.
        assert_eq!(continuing(at(1, 9), &gap).0, 0);
        // Another epoch, even with the next number: nothing of it is applied.
        let other = read(&[(4, 9), (5, 2)]);
        assert_eq!(
            continuing(at(3, 9), &other),
            (1, Some(Break::Epoch { ours: 9, theirs: 2 }))
        );
        // A new edge takes the epoch of group 1, and holds the next groups to it.
        assert_eq!(continuing(at(0, 0), &read(&[(1, 5), (2, 5)])), (2, None));
        assert_eq!(continuing(at(0, 0), &read(&[(1, 5), (2, 6)])).0, 1);
        // Entries of a writer before epochs continue a replica of epoch 0 only.
        assert_eq!(continuing(at(3, 0), &read(&[(4, 0)])), (1, None));
        assert_eq!(continuing(at(3, 7), &read(&[(4, 0)])).0, 0);
    }

    #[test]
    fn the_head_of_another_epoch_or_an_empty_stream_calls_for_a_snapshot_only_when_needed() {
        let source = true;
        assert_eq!(at_head(at(10, 9), true, at(40, 9), source), AtHead::Follow);
        assert_eq!(
            at_head(at(10, 9), true, at(3, 4), source),
            AtHead::Snapshot { epoch: Some(4) }
        );
        // A new edge reads from the start; a gap there calls for the snapshot.
        assert_eq!(at_head(at(0, 0), false, at(40, 9), source), AtHead::Follow);
        // An empty stream: a new edge loads one snapshot, once; others wait for the writer.
        assert_eq!(
            at_head(at(0, 0), false, at(0, 0), source),
            AtHead::Snapshot { epoch: None }
        );
        assert_eq!(at_head(at(0, 0), true, at(0, 0), source), AtHead::Loaded);
        assert_eq!(at_head(at(7, 9), false, at(0, 0), source), AtHead::Loaded);
        assert_eq!(at_head(at(0, 0), false, at(0, 0), false), AtHead::Loaded);
    }
}
