//! File descriptors: the process's limit (`RLIMIT_NOFILE`), raised to its hard limit at start, and how it
//! is shared. RocksDB keeps up to `storage.max_open_files` table files open; `server.fd_reserve` is kept
//! for everything else that is not a client socket (RocksDB's WAL, manifest, info log and lock, the
//! listener, the runtime, standard streams, the refusal of extra clients). Client sockets (WebSocket and
//! HTTP) get the rest: the accept loop refuses more (503) rather than let RocksDB or the listener run out,
//! and a configuration whose `websocket.max_connections` does not fit is rejected at start and by
//! `check-config`.

use std::io;

use kline_config::{Config, ConfigError};

/// The soft limit on open files, raised to the hard limit first (the soft limit is often far lower).
pub fn raise_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` and `setrlimit` only read and write the struct passed by reference.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        } else {
            tracing::warn!(
                soft = limit.rlim_cur,
                hard = limit.rlim_max,
                "cannot raise the open-file limit"
            );
        }
    }
    Ok(limit.rlim_cur)
}

/// How many client sockets (WebSocket and HTTP) may be open at once under `limit`.
pub fn socket_budget(config: &Config, limit: u64) -> usize {
    let kept = non_negative(config.storage.max_open_files) + config.server.fd_reserve as u64;
    let clients = limit.saturating_sub(kept) / fds_per_client(config);
    usize::try_from(clients).unwrap_or(usize::MAX)
}

/// File descriptors one client holds: its socket, and with `server.tls` on both ends of the loopback
/// connection its bytes are relayed through ([`crate::http::tls`]).
fn fds_per_client(config: &Config) -> u64 {
    if config.server.tls.enabled { 3 } else { 1 }
}

/// Rejects a configuration whose WebSocket connections, RocksDB files and reserve exceed `limit`.
pub fn check(config: &Config, limit: u64) -> Result<(), ConfigError> {
    let needed = config.websocket.max_connections as u64 * fds_per_client(config)
        + non_negative(config.storage.max_open_files)
        + config.server.fd_reserve as u64;
    if needed > limit {
        return Err(ConfigError::invalid(
            "websocket.max_connections",
            format!(
                "{} connections × {} + storage.max_open_files {} + server.fd_reserve {} = {needed} \
                 file descriptors, above this process's limit of {limit} (RLIMIT_NOFILE): lower them or \
                 raise the limit (3 descriptors a connection with server.tls on)",
                config.websocket.max_connections,
                fds_per_client(config),
                config.storage.max_open_files,
                config.server.fd_reserve
            ),
        ));
    }
    Ok(())
}

fn non_negative(files: i32) -> u64 {
    u64::try_from(files).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_connections: usize, max_open_files: i32, reserve: usize) -> Config {
        let mut config = Config::defaults();
        config.websocket.max_connections = max_connections;
        config.storage.max_open_files = max_open_files;
        config.server.fd_reserve = reserve;
        config
    }

    #[test]
    fn connections_files_and_reserve_must_fit_the_limit() {
        assert!(check(&config(10_000, 256, 256), 20_000).is_ok());
        assert!(
            check(&config(19_488, 256, 256), 20_000).is_ok(),
            "exactly the limit"
        );
        let err = check(&config(19_489, 256, 256), 20_000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("websocket.max_connections") && err.contains("20001"),
            "{err}"
        );
        assert!(check(&config(900, 256, 256), 1024).is_err());
    }

    #[test]
    fn a_tls_client_costs_three_descriptors() {
        let mut tls = config(6_000, 256, 256);
        tls.server.tls.enabled = true;
        assert_eq!(socket_budget(&tls, 20_000), 19_488 / 3);
        let err = check(&tls, 18_000).unwrap_err().to_string();
        assert!(err.contains("18512") && err.contains("server.tls"), "{err}");
        assert!(check(&config(6_000, 256, 256), 18_000).is_ok());
    }

    #[test]
    fn sockets_get_what_rocksdb_and_the_reserve_leave() {
        assert_eq!(socket_budget(&config(1, 256, 256), 20_000), 19_488);
        assert_eq!(socket_budget(&config(1, 256, 256), 100), 0);
    }

    #[test]
    fn the_limit_is_readable() {
        assert!(raise_limit().unwrap() > 0);
    }
}
