//! The reference engine: nginx with the nchan pub/sub module, started by the bench with a temporary prefix
//! and config on a loopback port. Fan-out only, no aggregation and no storage: one channel per (mint, s1)
//! pair, subscribed with `nchan_subscriber websocket` at `/sub/<channel>` and published to by HTTP POST at
//! `/pub/<channel>`. `worker_processes` is the number of cores; CPU and RSS are counted over the master and
//! its workers.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::{ProcessProbe, terminate};

/// Where Debian's `libnginx-mod-nchan` installs the module (`dpkg -L libnginx-mod-nchan`).
pub const MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";
/// How to install the reference, for the skip message.
pub const INSTALL: &str = "apt-get install nginx-light libnginx-mod-nchan";

pub struct NginxNchan {
    pub addr: SocketAddr,
    pub workers: usize,
    child: Child,
    _prefix: tempfile::TempDir,
}

/// The nginx binary (`KLINE_BENCH_NGINX`, else `nginx` on PATH or in /usr/sbin) and the module
/// (`KLINE_BENCH_NCHAN_MODULE`, else [`MODULE`]); Err says which is missing and how to install them.
pub fn locate() -> Result<(PathBuf, PathBuf), String> {
    let nginx = match std::env::var_os("KLINE_BENCH_NGINX") {
        Some(path) => Some(PathBuf::from(path)),
        None => std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file()),
    };
    let module = std::env::var_os("KLINE_BENCH_NCHAN_MODULE")
        .map_or_else(|| PathBuf::from(MODULE), PathBuf::from);
    match nginx {
        None => Err(format!("nginx not found (install: `{INSTALL}`)")),
        Some(nginx) if !nginx.is_file() => Err(format!(
            "nginx not found at {} (install: `{INSTALL}`)",
            nginx.display()
        )),
        Some(_) if !module.is_file() => Err(format!(
            "the nchan module is not at {} (install: `{INSTALL}`)",
            module.display()
        )),
        Some(nginx) => Ok((nginx, module)),
    }
}

impl NginxNchan {
    /// Starts nginx in the foreground with `workers` worker processes and waits until it accepts.
    pub fn start(nginx: &Path, module: &Path, workers: usize) -> anyhow::Result<NginxNchan> {
        let prefix = tempfile::tempdir()?;
        let addr = free_loopback_addr()?;
        let config = prefix.path().join("nginx.conf");
        std::fs::write(&config, config_text(module, prefix.path(), addr, workers))?;
        let error_log = prefix.path().join("error.log");
        let stderr_path = prefix.path().join("stderr.log");
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg(&error_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .with_context(|| format!("starting {}", nginx.display()))?;
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let log = || {
                let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
                read(&stderr_path) + &read(&error_log)
            };
            if let Some(status) = child.try_wait()? {
                bail!("nginx exited ({status}):\n{}", log());
            }
            if started.elapsed() > Duration::from_secs(20) {
                terminate(&mut child);
                bail!("nginx did not listen on {addr} within 20 s:\n{}", log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(NginxNchan {
            addr,
            workers,
            child,
            _prefix: prefix,
        })
    }

    /// The master and its workers.
    pub fn probe(&self) -> ProcessProbe {
        ProcessProbe {
            pid: self.child.id(),
            with_children: true,
        }
    }
}

impl Drop for NginxNchan {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The whole nginx configuration: no access log, temp paths in the prefix, enough connections for the
/// largest scenario (the limit on open files is ~20,000 per process).
fn config_text(module: &Path, prefix: &Path, addr: SocketAddr, workers: usize) -> String {
    let prefix = prefix.display();
    format!(
        r#"load_module {module};
worker_processes {workers};
worker_rlimit_nofile 19900;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 19500;
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    server {{
        listen {addr} backlog=8192;
        location ~ ^/sub/(\w+)$ {{
            nchan_subscriber websocket;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
        }}
        location ~ ^/pub/(\w+)$ {{
            nchan_publisher http;
            nchan_channel_id $1;
            nchan_message_buffer_length 16;
            nchan_message_timeout 60s;
        }}
    }}
}}
"#,
        module = module.display(),
    )
}
