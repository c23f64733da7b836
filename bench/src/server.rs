//! The server under test: started from the release binary with a temporary data dir (or attached to
//! `--url`), and sampled from `/proc` (CPU time, RSS).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::{ProcSample, ProcessProbe, terminate};

/// The ingest token used when the bench starts the server itself.
pub const TOKEN: &str = "kline-bench";

/// Under `cargo run`, builds `kline-server` in the bench's own profile first, so one command measures the
/// current server (a stale or missing binary next to the bench would otherwise be used or fail).
fn build_server_with_cargo(exe: &std::path::Path) -> anyhow::Result<()> {
    let (Some(cargo), Some(manifest_dir)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) else {
        return Ok(());
    };
    let release = exe
        .parent()
        .and_then(|dir| dir.file_name())
        .is_some_and(|name| name == "release");
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(PathBuf::from(manifest_dir).join("../Cargo.toml"))
        .args(["-p", "kline-server"]);
    if release {
        command.arg("--release");
    }
    eprintln!(
        "building kline-server ({})…",
        if release { "release" } else { "dev" }
    );
    let status = command
        .status()
        .context("running cargo build -p kline-server")?;
    if !status.success() {
        bail!("cargo build -p kline-server failed ({status})");
    }
    Ok(())
}

pub struct ServerUnderTest {
    pub base_url: String,
    pub token: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    /// The server's stderr (a server the bench started).
    log_path: Option<PathBuf>,
    _data: Option<tempfile::TempDir>,
}

impl ServerUnderTest {
    /// Starts `kline-server` (next to this binary) on a free loopback port with ingest on, simulator off.
    pub fn start(extra: &[String]) -> anyhow::Result<ServerUnderTest> {
        let exe = std::env::current_exe()?;
        let binary: PathBuf = match std::env::var_os("KLINE_SERVER_BIN") {
            Some(path) => PathBuf::from(path),
            None => {
                build_server_with_cargo(&exe)?;
                exe.with_file_name("kline-server")
            }
        };
        if !binary.exists() {
            bail!(
                "{} not found: build it first (`cargo build --release -p kline-server`)",
                binary.display()
            );
        }
        let data = tempfile::tempdir()?;
        let log_path = data.path().join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(&binary);
        command
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data.path().join("db"))
            .args([
                "--set",
                "ingest.enabled=true",
                "--set",
                "source.simulator.enabled=false",
            ])
            // The most connections the server accepts under a 20,000-descriptor limit: it refuses to start
            // when max_connections + storage.max_open_files (256) + server.fd_reserve (256) exceed it.
            .args([
                "--set",
                "websocket.max_connections=19400",
                "--set",
                "server.listen_backlog=8192",
                // Writers and edges: the internal listener on a free port (several run at once).
                "--set",
                "node.internal_addr=\"127.0.0.1:0\"",
            ])
            .args(extra)
            .env("KLINE_INGEST_TOKEN", TOKEN)
            .env("RUST_LOG", "warn,kline_server::node=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let started = Instant::now();
        let addr = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(addr) = logged_addr(&text, "kline-server listening") {
                break addr;
            }
            if let Some(status) = child.try_wait()? {
                bail!("kline-server exited ({status}):\n{text}");
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("kline-server did not start:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(ServerUnderTest {
            base_url: format!("http://{addr}"),
            token: TOKEN.into(),
            pid: Some(child.id()),
            child: Some(child),
            log_path: Some(log_path),
            _data: Some(data),
        })
    }

    /// `http://IP:PORT` of the internal listener of a writer or edge the bench started.
    pub fn internal_base_url(&self) -> anyhow::Result<String> {
        let log_path = self
            .log_path
            .as_ref()
            .context("the internal listener of an attached server is unknown")?;
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(log_path).unwrap_or_default();
            if let Some(addr) = logged_addr(&text, "kline-server internal listener") {
                return Ok(format!("http://{addr}"));
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("kline-server logged no internal listener:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A server somebody else runs (no `/proc` sampling unless `pid` is given).
    pub fn attach(url: &str, token: String, pid: Option<u32>) -> ServerUnderTest {
        ServerUnderTest {
            base_url: url.trim_end_matches('/').to_owned(),
            token,
            pid,
            child: None,
            log_path: None,
            _data: None,
        }
    }

    /// The server's `IP:PORT`.
    pub fn socket_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        self.base_url
            .trim_start_matches("http://")
            .parse()
            .context("--url must be http://IP:PORT")
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base_url.replacen("http", "ws", 1))
    }

    /// The Engine.IO v4 websocket URL of the Socket.IO endpoint.
    pub fn socketio_url(&self) -> String {
        format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            self.base_url.replacen("http", "ws", 1)
        )
    }

    /// The RocksDB directory of a server the bench started (None: attached with `--url`).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self._data.as_ref().map(|data| data.path().join("db"))
    }

    /// The `/proc` probe of this server (None: attached without `--pid`).
    pub fn probe(&self) -> Option<ProcessProbe> {
        self.pid.map(ProcessProbe::single)
    }

    /// CPU seconds used so far and resident memory in KiB, from `/proc`.
    pub fn sample(&self) -> Option<ProcSample> {
        self.probe()?.sample()
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            terminate(child);
        }
    }
}

/// The `addr=` of the first line of `log` holding `message`.
fn logged_addr(log: &str, message: &str) -> Option<String> {
    log.lines()
        .find(|line| line.contains(message))?
        .split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
        .map(str::to_owned)
}
