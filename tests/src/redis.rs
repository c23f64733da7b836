//! `RedisServer`: a real `redis-server` child process on a loopback port, for the tests and the bench of
//! the writer → Redis → edge stream (issue 16). In memory only (`--save ""`, `--appendonly no`), so
//! [`RedisServer::shutdown_nosave`] followed by [`RedisServer::restart`] gives an empty Redis on the same
//! port, as after a failover to an empty replica. Killed when dropped.
//!
//! The binary is `redis-server` on `PATH`, or `KLINE_REDIS_SERVER` (`.ci/run` installs the Debian package).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start or a shutdown may take before the fixture gives up (with the server's log).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A `redis-server` on `127.0.0.1:<port>`, with its working directory and log in a temporary directory.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Extra configuration (`--name value` pairs), kept for restarts.
    config: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a port that was free a moment ago and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Like [`RedisServer::start`], with extra configuration, e.g. `["--stream-node-max-entries", "4"]`
    /// (small stream nodes, so `XADD MAXLEN ~` trims a short stream).
    pub fn start_with(config: &[&str]) -> RedisServer {
        let port = crate::free_local_addr()
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .expect("a free port");
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("a directory for redis-server"),
            config: config.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        server.spawn();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL kline's `stream.redis_url` takes.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A synchronous connection (for checks such as `XLEN`), or the error that prevented it.
    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// `SHUTDOWN NOSAVE`: the server exits and its data is gone. Waits for the exit.
    pub fn shutdown_nosave(&mut self) {
        if let Ok(mut connection) = self.connection() {
            // The server closes the connection instead of answering: an error here is the success case.
            let _ = redis::cmd("SHUTDOWN")
                .arg("NOSAVE")
                .query::<()>(&mut connection);
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server did not exit after SHUTDOWN NOSAVE; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port, empty (a running one is shut down without saving first).
    pub fn restart(&mut self) {
        self.shutdown_nosave();
        self.spawn();
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the server keeps its port, connections and data but answers nothing (a hung Redis, or one
    /// stalled by its host) until [`RedisServer::resume`].
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.pid().expect("redis-server is running") as libc::pid_t;
        // SAFETY: `kill` only sends a signal, to our own child, which has not been reaped (it is running).
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "signal {signal} to redis-server");
    }

    /// The process id while it runs (for CPU sampling).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn spawn(&mut self) {
        let binary =
            std::env::var_os("KLINE_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("redis log file");
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {}: {err} (install the `redis-server` package, or set KLINE_REDIS_SERVER)",
                    binary.to_string_lossy()
                )
            });
        self.child = Some(child);
        self.wait_for_ping();
    }

    /// Polls `PING` until it answers `PONG`; panics with the log if the server exits or the time is up.
    fn wait_for_ping(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let pong = self
                .connection()
                .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
            if matches!(pong.as_deref(), Ok("PONG")) {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            assert!(
                exited.is_none(),
                "redis-server exited ({exited:?}) on port {}; log:\n{}",
                self.port,
                self.log_text()
            );
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {} ({pong:?}); log:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_and_get(server: &RedisServer) -> Option<String> {
        let mut connection = server.connection().expect("connects");
        redis::cmd("SET")
            .arg("probe")
            .arg("here")
            .query::<()>(&mut connection)
            .expect("SET");
        redis::cmd("GET")
            .arg("probe")
            .query(&mut connection)
            .expect("GET")
    }

    #[test]
    fn a_restarted_server_is_empty_on_the_same_port() {
        let mut server = RedisServer::start();
        let port = server.port();
        assert_eq!(set_and_get(&server).as_deref(), Some("here"));
        server.shutdown_nosave();
        assert!(!server.is_running());
        assert!(
            server.connection().is_err(),
            "nothing listens after shutdown"
        );
        server.restart();
        assert_eq!(server.port(), port);
        let mut connection = server.connection().expect("connects after restart");
        let value: Option<String> = redis::cmd("GET")
            .arg("probe")
            .query(&mut connection)
            .expect("GET");
        assert_eq!(value, None, "SHUTDOWN NOSAVE kept nothing");
    }
}
