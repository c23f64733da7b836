//! The writer's outbox: each committed write group's [`GroupRecord`] under its group number, stored in the
//! same RocksDB write as the group itself, so the store never holds a group without its record or the
//! reverse, and numbers are gap-free across crashes (the next number is read back from the store on start).
//!
//! The stream's publisher (`kline_stream::publisher`) reads records from the store, so the outbox keeps no
//! queue in memory: it retains the newest `stream.max_len` records (each write deletes the one that falls
//! out), which is also how far back the publisher can republish after Redis lost its data.

use std::sync::Arc;

use tokio::sync::watch;

use super::status::StreamStatus;
use crate::replication::COMMITTED_SEQ;
use crate::replication::record::GroupRecord;
use crate::{CandleStore, StoreBatch, StoreError};

/// Numbers the pipeline's write groups and adds their records to the writes. Owned by the pipeline.
pub struct Outbox {
    /// The number the next sealed group gets.
    next_seq: u64,
    max_len: u64,
    /// The group being built by the pipeline.
    record: GroupRecord,
    /// The newest committed number, for the publisher.
    committed: watch::Sender<u64>,
    status: Arc<StreamStatus>,
}

impl Outbox {
    /// Resumes numbering after the newest group committed in `store`; gives a store without a stream
    /// epoch its first ([`epoch`](super::epoch)).
    pub fn open(
        store: &CandleStore,
        max_len: u64,
        status: Arc<StreamStatus>,
    ) -> Result<Outbox, StoreError> {
        status.set_epoch(super::epoch::open_writer(store)?);
        let committed_seq = store.seq(COMMITTED_SEQ)?;
        status.committed_seq.set(committed_seq as i64);
        let (committed, _) = watch::channel(committed_seq);
        Ok(Outbox {
            next_seq: committed_seq + 1,
            max_len: max_len.max(1),
            record: GroupRecord::default(),
            committed,
            status,
        })
    }

    /// The newest committed group number, for the publisher.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// The record of the group being built.
    pub fn record(&mut self) -> &mut GroupRecord {
        &mut self.record
    }

    /// Adds the group's record to `write` under the next number, and drops the record that falls out of
    /// retention. Returns the number, or `None` when the group changed nothing the edges replicate.
    pub fn seal(&mut self, write: &mut StoreBatch<'_>) -> Option<u64> {
        let mut record = std::mem::take(&mut self.record);
        if record.is_empty() {
            return None;
        }
        let seq = self.next_seq;
        record.seq = seq;
        record.committed_at_us = chrono::Utc::now().timestamp_micros();
        write.put_outbox(seq, &record.encode());
        if seq > self.max_len {
            write.delete_outbox(seq - self.max_len);
        }
        Some(seq)
    }

    /// The write holding group `seq` succeeded: the number is used, the publisher may send it.
    pub fn committed_ok(&mut self, seq: u64) {
        self.next_seq = seq + 1;
        self.status.committed_seq.set(seq as i64);
        self.committed.send_replace(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::decode_seq;

    fn record_with_symbol(outbox: &mut Outbox, byte: u8) {
        let stats = crate::SymbolStats {
            last_price: 1.0,
            last_key: Default::default(),
            updated_at_ms: 1,
            event_count: 1,
        };
        outbox.record().add_symbol(&[byte; 32], &stats);
    }

    #[test]
    fn numbers_are_gap_free_across_reopen_and_a_failed_write_reuses_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let status = Arc::new(StreamStatus::default());
        {
            let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
            let mut outbox = Outbox::open(&store, 3, status.clone()).unwrap();
            let mut write = store.batch();
            assert_eq!(
                outbox.seal(&mut write),
                None,
                "an empty group gets no number"
            );
            for byte in 1..=4 {
                record_with_symbol(&mut outbox, byte);
                let mut write = store.batch();
                let seq = outbox.seal(&mut write).unwrap();
                assert_eq!(seq, u64::from(byte));
                store.write(write).unwrap();
                outbox.committed_ok(seq);
            }
            // A group sealed but never written (the write failed) does not use its number.
            record_with_symbol(&mut outbox, 9);
            assert_eq!(outbox.seal(&mut store.batch()), Some(5));
        }
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let mut outbox = Outbox::open(&store, 3, status).unwrap();
        assert_eq!(*outbox.committed().borrow(), 4);
        record_with_symbol(&mut outbox, 5);
        assert_eq!(outbox.seal(&mut store.batch()), Some(5));
        // Retention: the newest 3 of 4 records are kept, in order, each decoding to its number.
        let kept = store.outbox_from(0, 10, usize::MAX).unwrap();
        let seqs: Vec<u64> = kept.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        for (seq, bytes) in &kept {
            assert_eq!(GroupRecord::decode(bytes).unwrap().seq, *seq);
        }
        assert_eq!(store.oldest_outbox_seq().unwrap(), Some(2));
        // A byte bound stops after the record that reaches it, and never returns nothing.
        assert_eq!(store.outbox_from(0, 10, 1).unwrap().len(), 1);
        let first_two = store.outbox_from(0, 10, kept[0].1.len() + 1).unwrap();
        assert_eq!(first_two.len(), 2);
        assert_eq!(decode_seq(store.meta(COMMITTED_SEQ).unwrap().as_deref()), 4);
    }
}
