//! Helpers shared by the end-to-end tests: the real `kline-server` binary as a child process
//! ([`ServerProcess`]) or the server library in this process ([`InProcessServer`]), small HTTP helpers,
//! a WebSocket client speaking the protocol ([`ws`]), one following series across reconnects
//! ([`follower`]), one writing raw frames ([`raw_ws`]), a real `redis-server` ([`redis::RedisServer`]),
//! a writer → Redis → edges cluster of real processes ([`cluster`]),
//! certificates of a test CA and a TLS accept loop ([`tls`]), a terminal in tmux ([`tmux`]), a market
//! and reference values for the indicators ([`indicator_reference`]),
//! and [`wait_until`] for conditions. Tests talk to servers only through real sockets.

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
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
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

pub fn tui_binary() -> PathBuf {
    workspace_binary("kline-tui", "KLINE_TUI_BIN")
}

/// A loopback address with a port that was free a moment ago.
pub fn free_local_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").to_string()
}

pub mod cluster;
pub mod follower;
pub mod in_process;
pub mod raw_ws;
pub mod redis;
pub mod socketio;
pub mod tls;

pub use in_process::InProcessServer;

/// A server under test, wherever it runs.
pub trait KlineServer {
    fn addr(&self) -> SocketAddr;

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr())
    }
}

impl KlineServer for ServerProcess {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Polls `check` every 20 ms until it holds; panics naming `what` after `timeout`. For conditions a test
/// waits for (a metric, a state), in place of a fixed sleep.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of an unlabelled metric in a `/metrics` text, if present.
pub fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// The current value of an unlabelled metric (0 when absent).
pub async fn metric(server: &impl KlineServer, name: &str) -> f64 {
    metric_value(&metrics_text(server).await, name).unwrap_or(0.0)
}

/// Waits until the metric `name` is at least `at_least`.
pub async fn wait_for_metric(server: &impl KlineServer, name: &str, at_least: f64) {
    wait_until(
        &format!("{name} >= {at_least}"),
        Duration::from_secs(20),
        || async { metric(server, name).await >= at_least },
    )
    .await;
}

/// [`wait_for_metric`] for tests without a runtime (e.g. the terminal client's).
pub fn wait_for_metric_blocking(server: &impl KlineServer, name: &str, at_least: f64) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(wait_for_metric(server, name, at_least));
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
        Self::start_on(data_dir, "127.0.0.1:0", args)
    }

    /// Like [`ServerProcess::start`], on a given address (to restart a server where clients expect it).
    pub fn start_on(data_dir: &Path, bind: &str, args: &[&str]) -> ServerProcess {
        Self::spawn(data_dir, bind, args, None)
    }

    /// Like [`ServerProcess::start`], with the open-file limit (soft and hard `RLIMIT_NOFILE`) set to
    /// `fd_limit` for the server process.
    pub fn start_with_fd_limit(data_dir: &Path, fd_limit: u64, args: &[&str]) -> ServerProcess {
        Self::spawn(data_dir, "127.0.0.1:0", args, Some(fd_limit))
    }

    fn spawn(data_dir: &Path, bind: &str, args: &[&str], fd_limit: Option<u64>) -> ServerProcess {
        let log = data_dir.with_extension(format!("log.{}", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(server_binary());
        command
            .args(["--bind", bind, "--data-dir"])
            .arg(data_dir)
            .args(["--set", "ingest.enabled=true"])
            // Writers and edges also listen on an internal port; many run at once here.
            .args(["--set", "node.internal_addr=\"127.0.0.1:0\""])
            .args(args)
            .env("KLINE_INGEST_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(limit) = fd_limit {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: only `setrlimit` runs between fork and exec (async-signal-safe, no allocation).
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("kline-server starts");
        let addr = wait_for_listen_addr(&mut child, &log, Duration::from_secs(60));
        ServerProcess { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (at most `timeout`) for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
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

    /// The internal listener's address (roles writer and edge), waiting for its log line.
    pub fn internal_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.log_text();
            if let Some(addr) = logged_addr(&text, "kline-server internal listener") {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "no internal listener logged; log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// The `addr=` of the first log line holding `message`.
fn logged_addr(log: &str, message: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|line| line.contains(message))?;
    let addr = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
        .expect("the listening line has addr=");
    Some(addr.parse().expect("addr parses"))
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_listen_addr(child: &mut Child, log: &Path, timeout: Duration) -> SocketAddr {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = logged_addr(&text, "kline-server listening") {
            return addr;
        }
        let exited = child.try_wait().ok().flatten();
        assert!(
            exited.is_none(),
            "server exited ({exited:?}) before listening; log:\n{text}"
        );
        assert!(
            Instant::now() < deadline,
            "server did not start; log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// POSTs a body to `/api/v1/events` with the test token; returns (status, JSON body).
pub async fn post_events(server: &impl KlineServer, body: String) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/events"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .expect("POST reaches the server");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// Every candle of a series (up to 1000) as `[time, open, high, low, close, update_count]`, for comparing
/// two servers' history. Finality is left out: it depends on wall-clock time, the values must not.
pub async fn candle_values(
    server: &impl KlineServer,
    mint: &str,
    interval: kline_protocol::Interval,
) -> Vec<serde_json::Value> {
    let url = server.url(&format!(
        "/api/v1/klines?symbol={mint}&interval={interval}&limit=1000"
    ));
    let data = get_json(&url).await;
    data["data"]
        .as_array()
        .unwrap_or_else(|| panic!("history for {mint} {interval}: {data}"))
        .iter()
        .map(|c| {
            serde_json::json!([
                c["time"],
                c["open"],
                c["high"],
                c["low"],
                c["close"],
                c["update_count"]
            ])
        })
        .collect()
}

/// The text of `/metrics`.
pub async fn metrics_text(server: &impl KlineServer) -> String {
    reqwest::get(server.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// GETs a JSON document.
pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON body")
}

/// A WebSocket client speaking the protocol, for tests.
pub mod ws {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use kline_protocol::{
        ClientRequest, ErrorData, ServerMessage, ServerPayload, SubscribeTickersRequest,
        TickersSnapshot,
    };
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

    pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

    /// What a read produced.
    #[derive(Debug)]
    pub enum Received {
        Message(ServerMessage),
        /// The server closed the connection with this code (None: no close frame).
        Closed(Option<u16>),
    }

    pub struct Client {
        pub socket: Socket,
    }

    impl Client {
        pub async fn connect(url: &str) -> Client {
            let (socket, _) = connect_async(url).await.expect("WebSocket connects");
            Client { socket }
        }

        pub async fn send(&mut self, request: &ClientRequest) {
            self.send_text(&request.to_json()).await;
        }

        pub async fn send_text(&mut self, text: &str) {
            self.socket.send(Message::text(text)).await.expect("send");
        }

        pub async fn send_raw(&mut self, message: Message) {
            let _ = self.socket.send(message).await;
        }

        /// The next protocol message or close, skipping pings; panics after `timeout`.
        pub async fn recv_within(&mut self, timeout: Duration) -> Received {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let next = tokio::time::timeout_at(deadline, self.socket.next())
                    .await
                    .expect("a message within the timeout");
                match next {
                    Some(Ok(Message::Text(text))) => {
                        let message = ServerMessage::parse(&text).unwrap_or_else(|err| {
                            panic!("server sent an invalid message {text}: {err}")
                        });
                        return Received::Message(message);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Received::Closed(frame.map(|f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Received::Closed(None),
                }
            }
        }

        pub async fn recv(&mut self) -> ServerMessage {
            match self.recv_within(Duration::from_secs(10)).await {
                Received::Message(message) => message,
                Received::Closed(code) => {
                    panic!("connection closed ({code:?}) while a message was expected")
                }
            }
        }

        /// A client whose socket takes little (a 4 KiB receive buffer), for a test in which it never
        /// reads: the server's socket buffers fill after a few megabytes, and its outbox after them.
        pub async fn connect_never_reading(server: &impl crate::KlineServer) -> Client {
            let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
            socket
                .set_recv_buffer_size(4096)
                .expect("a small receive buffer");
            let stream = socket.connect(server.addr()).await.expect("TCP connects");
            let stream = MaybeTlsStream::Plain(stream);
            let (socket, _) = tokio_tungstenite::client_async(server.ws_url(), stream)
                .await
                .expect("WebSocket connects");
            Client { socket }
        }

        /// Sends `subscribe_tickers` and reads until its answer: the snapshot, or the error that refused it
        /// (the messages before it are skipped).
        pub async fn subscribe_tickers(&mut self) -> Result<TickersSnapshot, ErrorData> {
            self.send(&ClientRequest::SubscribeTickers(
                SubscribeTickersRequest::new(),
            ))
            .await;
            loop {
                match self.recv().await.payload {
                    ServerPayload::TickersSnapshot(snapshot) => return Ok(snapshot),
                    ServerPayload::Error(error) => return Err(error),
                    _ => {}
                }
            }
        }

        /// Reads until the server closes; returns the close code.
        pub async fn close_code(&mut self, timeout: Duration) -> Option<u16> {
            loop {
                if let Received::Closed(code) = self.recv_within(timeout).await {
                    return code;
                }
            }
        }
    }
}
pub mod fake_solana;
pub mod indicator_reference;
pub mod spinpet_script;
pub mod tmux;
pub mod webdriver;
