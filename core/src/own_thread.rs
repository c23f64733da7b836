//! A task on a thread of its own, driven by a single-threaded tokio runtime: for the parts that must never
//! wait behind the connection tasks on tokio's shared workers (the pipeline, the hub shards, the trade hub,
//! an edge's replica).

use std::future::Future;
use std::thread::JoinHandle;

/// Starts a thread named `name` that runs the future `task()` makes to completion and returns its output.
/// The future is made on the new thread, so it need not be `Send`.
pub fn spawn<F, Fut>(name: impl Into<String>, task: F) -> JoinHandle<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future,
    Fut::Output: Send + 'static,
{
    let name = name.into();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds")
                .block_on(task())
        })
        .unwrap_or_else(|err| panic!("the thread {name} does not start: {err}"))
}
