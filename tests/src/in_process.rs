//! `InProcessServer`: the server library (`node::run`) on `127.0.0.1:0` in this process, for tests that do
//! not need the binary (no process start, no log scraping). It runs on its own thread and runtime, like the
//! binary, so a test's own blocking cannot stall it; dropping it shuts it down and waits.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use kline_config::ConfigLayers;
use kline_server::node;
use tokio_util::sync::CancellationToken;

use crate::{KlineServer, TOKEN};

pub struct InProcessServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<()>>,
    _data: tempfile::TempDir,
}

impl InProcessServer {
    /// Starts a server with the simulator off, ingest on with [`TOKEN`], and `overrides` (`key=value` in
    /// TOML, as `--set` takes them), on a fresh data directory.
    pub fn start(overrides: &[&str]) -> InProcessServer {
        let data = tempfile::tempdir().expect("a temporary data directory");
        let data_dir = format!(
            "storage.data_dir={:?}",
            data.path().join("db").display().to_string()
        );
        let token = format!("ingest.token={TOKEN:?}");
        let base = [
            "server.host=\"127.0.0.1\"",
            "server.port=0",
            "source.simulator.enabled=false",
            "ingest.enabled=true",
            token.as_str(),
            data_dir.as_str(),
        ];
        let config = ConfigLayers::new()
            .overrides(base.iter().chain(overrides).copied())
            .and_then(ConfigLayers::build)
            .expect("a valid test configuration");
        let shutdown = CancellationToken::new();
        let (bound, addr) = std::sync::mpsc::channel();
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = node::bind(&config).expect("binds 127.0.0.1:0");
                let _ = bound.send(listener.local_addr().expect("a local address"));
                node::run(config, listener, stop)
                    .await
                    .expect("the server runs");
            });
        });
        let addr = addr.recv().expect("the server thread binds its listener");
        InProcessServer {
            addr,
            shutdown,
            thread: Some(thread),
            _data: data,
        }
    }
}

impl KlineServer for InProcessServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
