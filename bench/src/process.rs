//! `/proc` sampling of the engine under test: CPU time and resident memory of one process, or of a process
//! and its children (nginx: the master and its workers).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Which processes a [`ProcessProbe`] adds up.
#[derive(Debug, Clone, Copy)]
pub struct ProcessProbe {
    pub pid: u32,
    /// Also count the direct children of `pid` (nginx's workers).
    pub with_children: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    pub cpu_secs: f64,
    pub rss_kib: u64,
}

impl ProcessProbe {
    pub fn single(pid: u32) -> ProcessProbe {
        ProcessProbe {
            pid,
            with_children: false,
        }
    }

    /// CPU seconds used so far and resident memory in KiB, summed over the probed processes (None: the
    /// process is gone). The RSS of pages shared between processes (nchan's shared memory) counts once per
    /// process that touched them.
    pub fn sample(&self) -> Option<ProcSample> {
        let (mut cpu_secs, mut rss_kib) = read_process(self.pid)?;
        if self.with_children {
            for child in children_of(self.pid) {
                if let Some((cpu, rss)) = read_process(child) {
                    cpu_secs += cpu;
                    rss_kib += rss;
                }
            }
        }
        Some(ProcSample {
            at: Instant::now(),
            cpu_secs,
            rss_kib,
        })
    }
}

/// (CPU seconds, RSS KiB) of one process.
fn read_process(pid: u32) -> Option<(f64, u64)> {
    let fields = stat_fields(pid)?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())?;
    Some((ticks / 100.0, rss_kib))
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// Processes whose parent is `pid` (the 2nd field after the command name is the parent's id).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| {
            stat_fields(*candidate)
                .and_then(|fields| fields.get(1)?.parse::<u32>().ok())
                .is_some_and(|parent| parent == pid)
        })
        .collect()
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(from: &ProcSample, to: &ProcSample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        0.0
    } else {
        (to.cpu_secs - from.cpu_secs) / wall * 100.0
    }
}

/// SIGTERM, then at most 15 s for the child to exit, then SIGKILL; reaps it.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_sampled_and_its_children_are_found() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        assert!(children_of(me).contains(&child.id()));
        let alone = ProcessProbe::single(me).sample().unwrap();
        let family = ProcessProbe {
            pid: me,
            with_children: true,
        }
        .sample()
        .unwrap();
        assert!(alone.rss_kib > 0);
        assert!(family.rss_kib > alone.rss_kib, "the child's RSS is added");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
