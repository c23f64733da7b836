//! Helpers shared by the end-to-end tests: the real `kline-server` binary as a child process, and small
//! HTTP helpers. Tests talk to it only through real sockets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The ingest token the tests configure.
pub const TOKEN: &str = "test-token";

/// Path of a workspace binary built next to the test executable (`target/<profile>/<name>`).
/// `cargo test --workspace` builds it; `KLINE_SERVER_BIN`-style overrides are honoured via `env_var`.
pub fn workspace_binary(name: &str, env_var: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env_var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run the tests with `cargo test --workspace` so it is built",
        path.display()
    );
    path
}

pub fn server_binary() -> PathBuf {
    workspace_binary("kline-server", "KLINE_SERVER_BIN")
}

/// A running `kline-server` on `127.0.0.1:<free port>`, killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts the server on `data_dir` with `args` (e.g. `--set source.simulator.enabled=false`) and waits
    /// until it listens. Ingest is on with [`TOKEN`].
    pub fn start(data_dir: &Path, args: &[&str]) -> ServerProcess {
        let log = data_dir.with_extension(format!("log.{}", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(server_binary())
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--set", "ingest.enabled=true"])
            .args(args)
            .env("KLINE_INGEST_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("kline-server starts");
        let addr = wait_for_listen_addr(&log, Duration::from_secs(60));
        ServerProcess { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (at most `timeout`) for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_listen_addr(log: &Path, timeout: Duration) -> SocketAddr {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains("kline-server listening")) {
            let addr = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("addr="))
                .expect("listening line has addr=");
            return addr.parse().expect("addr parses");
        }
        assert!(Instant::now() < deadline, "server did not start; log:\n{text}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// POSTs a body to `/api/v1/events` with the test token; returns (status, JSON body).
pub async fn post_events(server: &ServerProcess, body: String) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/events"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .expect("POST reaches the server");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// GETs a JSON document.
pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.expect("GET").json().await.expect("JSON body")
}
