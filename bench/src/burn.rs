//! `--burn-cores N`: N busy threads in the bench process for the whole measured run, taking CPU away from
//! the engine under test (graceful degradation: what happens to latency, losses and closes when the
//! server cannot have the cores it wants).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Spinning threads; they stop when this is dropped.
pub struct CoreBurner {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl CoreBurner {
    pub fn start(threads: usize) -> CoreBurner {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|index| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("burn-{index}"))
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    })
                    .expect("spawn a burner thread")
            })
            .collect();
        CoreBurner { stop, threads }
    }
}

impl Drop for CoreBurner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// CPU ticks (utime + stime) of this process's threads named `name`.
    fn thread_ticks(name: &str) -> Option<u64> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let path = task.ok()?.path();
                let comm = std::fs::read_to_string(path.join("comm")).ok()?;
                (comm.trim() == name).then_some(())?;
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                Some(fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?)
            })
            .next()
    }

    #[test]
    fn a_burner_thread_uses_cpu_until_dropped() {
        let burner = CoreBurner::start(1);
        let deadline = Instant::now() + Duration::from_secs(20);
        while thread_ticks("burn-0").unwrap_or(0) < 10 {
            assert!(Instant::now() < deadline, "burn-0 used no CPU");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(burner);
        assert_eq!(thread_ticks("burn-0"), None, "the thread has ended");
    }
}
