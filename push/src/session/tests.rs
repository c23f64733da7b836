use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reads_run_at_most_permits_at_once_and_every_one_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let permits = Arc::new(Semaphore::new(2));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut reads = Vec::new();
    for i in 0..12 {
        let (permits, store, running, most) = (
            permits.clone(),
            store.clone(),
            running.clone(),
            most.clone(),
        );
        reads.push(tokio::spawn(async move {
            read_history(&permits, &store, move |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(i)
            })
            .await
        }));
    }
    let mut answered = Vec::new();
    for read in reads {
        answered.push(read.await.unwrap().unwrap());
    }
    answered.sort_unstable();
    assert_eq!(answered, (0..12).collect::<Vec<_>>());
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} reads ran at once with 2 permits");
}

#[tokio::test]
async fn a_closed_permit_pool_answers_with_an_error_instead_of_reading() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let permits = Semaphore::new(1);
    permits.close();
    let result = read_history(&permits, &store, |_| Ok(())).await;
    assert!(result.unwrap_err().contains("shutting down"));
}
