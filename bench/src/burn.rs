//! `--burn-cores N`: busy threads in the bench process for the whole measured run, taking CPU away from
//! the engine under test (graceful degradation: what happens to latency, losses and closes when the
//! server cannot have the cores it wants). A fraction takes part of a core: `0.12` is one thread busy
//! 1.2 ms of every 10 ms (a stand-in for another process's load, e.g. the writer's and Redis's in a
//! `--through-edge` run, to tell their CPU apart from the hop itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The duty cycle of a thread that burns part of a core.
const PERIOD: Duration = Duration::from_millis(10);

/// Spinning threads; they stop when this is dropped.
pub struct CoreBurner {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl CoreBurner {
    /// Burns `cores` cores: one thread spinning per whole core, and one more busy for the fraction left of
    /// each [`PERIOD`] (asleep the rest).
    pub fn start(cores: f64) -> CoreBurner {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = cores.max(0.0);
        let whole = cores.trunc() as usize;
        let part = cores.fract();
        let duties = std::iter::repeat_n(1.0, whole).chain((part > 0.0).then_some(part));
        let threads = duties
            .enumerate()
            .map(|(index, duty)| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("burn-{index}"))
                    .spawn(move || burn(&stop, duty))
                    .expect("spawn a burner thread")
            })
            .collect();
        CoreBurner { stop, threads }
    }
}

/// Spins for `duty` (0..=1) of every [`PERIOD`] until `stop`.
fn burn(stop: &AtomicBool, duty: f64) {
    let busy = PERIOD.mul_f64(duty);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        while started.elapsed() < busy {
            std::hint::spin_loop();
        }
        if duty < 1.0 {
            std::thread::sleep(PERIOD - busy);
        }
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
    use std::sync::Mutex;

    use super::*;

    /// The tests find their burner threads by name: one test at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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

    /// Waits until this process has a thread named `name` that used at least `ticks` ticks; returns its ticks.
    /// (A new thread sets its own name once it runs.)
    fn wait_for_ticks(name: &str, ticks: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match thread_ticks(name) {
                Some(used) if used >= ticks => return used,
                _ => assert!(Instant::now() < deadline, "{name} used no CPU"),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_burner_thread_uses_cpu_until_dropped() {
        let _serial = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let burner = CoreBurner::start(1.0);
        wait_for_ticks("burn-0", 10);
        drop(burner);
        assert_eq!(thread_ticks("burn-0"), None, "the thread has ended");
    }

    #[test]
    fn a_fraction_of_a_core_is_one_thread_busy_for_that_part_of_the_time() {
        let _serial = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let burner = CoreBurner::start(0.25);
        let before = wait_for_ticks("burn-0", 0);
        std::thread::sleep(Duration::from_secs(2));
        let used = thread_ticks("burn-0").unwrap() - before;
        drop(burner);
        // A quarter of 2 s is 50 ticks (of 10 ms); a busy machine gives the thread less, never a whole core (200).
        assert!(used > 0 && used < 120, "burn-0 used {used} ticks in 2 s");
        assert_eq!(thread_ticks("burn-1"), None, "no thread for whole cores");
    }
}
