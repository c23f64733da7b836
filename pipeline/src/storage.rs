//! Whether the store takes writes, and when the pipeline tries again after one failed.
//!
//! The policy, for a write that fails (RocksDB out of disk space, ENOSPC, being the case it is built for):
//! 1. Nothing of it is acknowledged or published: every request of its group gets
//!    [`IngestError::Unavailable`] with the reason and when to try again, and the pipeline's memory goes back
//!    to what the store holds.
//! 2. Until the next try is due (100 ms after the first failure, doubling to at most 5 s), further writes
//!    are refused at once with the same answer, without touching the store: HTTP ingest answers 503 with
//!    `Retry-After`, the sources pause for that long and try again.
//! 3. A try is a real write: the next request's, or, when none comes, a small probe the pipeline writes
//!    itself. RocksDB stops taking writes after a failed WAL write and resumes on its own once the disk
//!    has room again (its `SstFileManager` polls free space every 5 s), so the first write that succeeds
//!    after that ends the outage.
//! 4. [`StorageHealth`] says all of this to `/health` (the store's state and reason) and `/metrics`
//!    (`kline_store_degraded`, `kline_store_write_errors_total`).

use std::sync::Mutex;

use super::service::IngestError;
use kline_core::stats::Gauge;
use kline_store::StoreError;

/// First pause after a failed write.
const FIRST_PAUSE_MS: i64 = 100;
/// Longest pause between tries (RocksDB itself looks for free space every 5 s).
const MAX_PAUSE_MS: i64 = 5_000;

/// The store's state as the status routes show it. Written by the pipeline thread only.
#[derive(Debug, Default)]
pub struct StorageHealth {
    /// 1 while writes fail.
    pub degraded: Gauge,
    failure: Mutex<Option<Failure>>,
}

/// Why writes fail, and since when (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    pub since_ms: i64,
}

impl StorageHealth {
    /// `None` while writes succeed.
    pub fn failure(&self) -> Option<Failure> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, failure: Option<Failure>) {
        self.degraded.set(u64::from(failure.is_some()));
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }
}

/// The pipeline thread's side: when writes are refused and when the next try is due.
#[derive(Debug, Default)]
pub struct WriteGate {
    /// Failed tries in a row.
    failures: u32,
    /// While failing: the reason and when the next try is due (Unix ms).
    failing: Option<(String, i64)>,
}

impl WriteGate {
    /// The answer to a write arriving at `now_ms` before the next try is due; `None` to try it.
    pub fn refusal(&self, now_ms: i64) -> Option<IngestError> {
        let (reason, retry_at_ms) = self.failing.as_ref()?;
        (now_ms < *retry_at_ms).then(|| IngestError::Unavailable {
            reason: reason.clone(),
            retry_after_ms: (retry_at_ms - now_ms) as u64,
        })
    }

    /// When the next try is due, while writes fail.
    pub fn retry_at_ms(&self) -> Option<i64> {
        self.failing.as_ref().map(|(_, at)| *at)
    }

    /// A write failed at `now_ms`: schedules the next try and returns the answer for its requests.
    pub fn failed(&mut self, err: &StoreError, now_ms: i64, health: &StorageHealth) -> IngestError {
        let reason = if err.is_no_space() {
            format!("the disk is full: {err}")
        } else {
            format!("writing failed: {err}")
        };
        let pause = FIRST_PAUSE_MS
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_PAUSE_MS);
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            tracing::error!(%reason, "storage: a write failed; writes are refused and retried until it succeeds");
            health.set(Some(Failure {
                reason: reason.clone(),
                since_ms: now_ms,
            }));
        }
        self.failing = Some((reason.clone(), now_ms + pause));
        IngestError::Unavailable {
            reason,
            retry_after_ms: pause as u64,
        }
    }

    /// A write succeeded: the store takes writes (again).
    pub fn succeeded(&mut self, health: &StorageHealth) {
        if self.failing.take().is_some() {
            tracing::warn!(
                failed_tries = self.failures,
                "storage: writes succeed again"
            );
            health.set(None);
        }
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other_error() -> StoreError {
        StoreError::CorruptJson {
            what: "test",
            reason: "not a disk error".into(),
        }
    }

    #[test]
    fn a_failure_refuses_writes_until_the_next_try_with_a_growing_bounded_pause() {
        let health = StorageHealth::default();
        let mut gate = WriteGate::default();
        assert_eq!(gate.refusal(0), None);
        let mut now = 1_000;
        let mut pauses = Vec::new();
        for _ in 0..10 {
            let IngestError::Unavailable { retry_after_ms, .. } =
                gate.failed(&other_error(), now, &health)
            else {
                panic!("unavailable")
            };
            pauses.push(retry_after_ms);
            assert!(gate.refusal(now).is_some(), "refused right after");
            let due = gate.retry_at_ms().unwrap();
            assert_eq!(due, now + retry_after_ms as i64);
            assert!(matches!(
                gate.refusal(due - 1),
                Some(IngestError::Unavailable {
                    retry_after_ms: 1,
                    ..
                })
            ));
            assert_eq!(gate.refusal(due), None, "tried once due");
            now = due;
        }
        assert_eq!(
            pauses,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
        let failure = health.failure().unwrap();
        assert_eq!(failure.since_ms, 1_000, "since the first failure");
        assert!(failure.reason.starts_with("writing failed"), "{failure:?}");
        assert_eq!(health.degraded.get(), 1);

        gate.succeeded(&health);
        assert_eq!((health.failure(), health.degraded.get()), (None, 0));
        assert_eq!((gate.refusal(now), gate.retry_at_ms()), (None, None));
        let IngestError::Unavailable { retry_after_ms, .. } =
            gate.failed(&other_error(), now, &health)
        else {
            panic!("unavailable")
        };
        assert_eq!(retry_after_ms, 100, "the pause starts over");
    }
}
