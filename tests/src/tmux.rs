//! A command in a real terminal: a detached `tmux` session of a given size whose screen the test reads
//! (`capture-pane`) and types into (`send-keys`). The session is killed when dropped, so a failed test
//! leaves no terminal behind.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long [`Tmux::wait_for`] waits for a screen.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Tmux {
    session: String,
}

impl Tmux {
    /// Runs `command` (a shell command line) in a new `width` x `height` session named after `name`.
    /// Panics with a clear message when tmux is missing (`.ci/run` installs it).
    pub fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let tmux_ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            tmux_ok,
            "tmux is needed for this test (.ci/run installs it)"
        );
        let tmux = Tmux {
            session: format!("{name}-{}", std::process::id()),
        };
        let started = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").args(args).output().expect("tmux runs")
    }

    /// The screen as text, one line per row.
    pub fn capture(&self) -> String {
        String::from_utf8(
            self.run(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .expect("the screen is UTF-8")
    }

    /// Types `keys` (tmux key names: `q`, `Left`, `Enter`).
    pub fn send_keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Polls the screen until `check` holds and returns it; panics naming `what`, with the screen, after
    /// 15 s.
    pub fn wait_for(&self, what: &str, check: &dyn Fn(&str) -> bool) -> String {
        self.wait_for_ok(what, &|screen| {
            check(screen)
                .then(|| screen.to_owned())
                .ok_or_else(|| "not yet".to_owned())
        })
    }

    /// Polls the screen until `check` gives `Ok` and returns that; panics naming `what`, with the last
    /// `Err` and the screen, after 15 s. A screen can be caught halfway through a redraw, so a test waits
    /// for what it expects rather than judging the first screen that looks ready.
    pub fn wait_for_ok<T>(&self, what: &str, check: &dyn Fn(&str) -> Result<T, String>) -> T {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.capture();
            match check(&screen) {
                Ok(value) => return value,
                Err(seen) => assert!(
                    Instant::now() < deadline,
                    "{what} never appeared ({seen}); screen:\n{screen}"
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most `timeout`) for the command to end, which ends the session.
    pub fn wait_for_exit(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self
            .run(&["has-session", "-t", &self.session])
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "the command did not end; screen:\n{}",
                self.capture()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-session", "-t", &self.session]);
    }
}
