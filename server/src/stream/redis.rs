//! The stream engine: Redis Streams through the `redis` crate. Entries carry their group number as their
//! stream id (`<seq>-0`), so "read after group N" is `XREAD … <N>-0` and the numbering survives a Redis
//! restart. The publisher and the replica use only the four operations here (connect, head, append, read
//! after); another engine (NATS JetStream: publish with a message id, consume from a sequence) would provide
//! the same four and nothing else would change.

use std::time::Duration;

use kline_tls::{ClientTls, FailureLog, HandshakeFailure, Redacted};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;

use crate::config::StreamConfig;

/// The field holding an entry's record.
const FIELD: &str = "g";

/// How long a blocking read waits for new entries before it returns empty.
pub const READ_BLOCK: Duration = Duration::from_millis(1000);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stream.redis_ca_file: {0}")]
    Tls(#[from] kline_tls::TlsError),
    #[error("stream entry {id} is malformed: {reason}")]
    Malformed { id: String, reason: &'static str },
}

/// One connection to the stream.
pub struct RedisStream {
    connection: MultiplexedConnection,
    key: String,
    max_len: usize,
}

impl RedisStream {
    /// Connects, retrying with backoff (`stream.reconnect_*`) until it succeeds; `None` on shutdown. A TLS
    /// handshake failure is logged once per distinct cause.
    pub async fn connect(
        config: &StreamConfig,
        shutdown: &CancellationToken,
    ) -> Option<RedisStream> {
        let mut delay = Duration::from_millis(config.reconnect_min_ms);
        let max_delay = Duration::from_millis(config.reconnect_max_ms);
        let mut tls_failures = FailureLog::default();
        loop {
            match Self::try_connect(config).await {
                Ok(stream) => return Some(stream),
                Err(err) => match HandshakeFailure::find(&err, "stream.redis_ca_file") {
                    Some(failure) => {
                        tls_failures.report("redis", &config.redis_url, &failure);
                    }
                    None => tracing::warn!(
                        error = %err,
                        url = %Redacted(&config.redis_url),
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot reach Redis"
                    ),
                },
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(max_delay);
        }
    }

    async fn try_connect(config: &StreamConfig) -> Result<RedisStream, StreamError> {
        let client = client(config)?;
        let settings = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            // A blocking read holds its reply for READ_BLOCK; a large append takes a while.
            .set_response_timeout(Some(READ_BLOCK + Duration::from_secs(5)));
        let connection = client
            .get_multiplexed_async_connection_with_config(&settings)
            .await?;
        Ok(RedisStream {
            connection,
            key: config.key.clone(),
            max_len: usize::try_from(config.max_len).unwrap_or(usize::MAX),
        })
    }

    /// The newest group number the stream holds (0 when it is empty or missing).
    pub async fn head(&mut self) -> Result<u64, StreamError> {
        let reply: StreamRangeReply = self
            .connection
            .xrevrange_count(&self.key, "+", "-", 1)
            .await?;
        match reply.ids.first() {
            Some(entry) => parse_seq(&entry.id),
            None => Ok(0),
        }
    }

    /// Appends `(seq, record)` entries in one round trip, trimming the stream to about `max_len`.
    pub async fn append(&mut self, entries: &[(u64, Vec<u8>)]) -> Result<(), StreamError> {
        let mut pipe = redis::pipe();
        for (seq, record) in entries {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg(format!("{seq}-0"))
                .arg(FIELD)
                .arg(record.as_slice())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.connection).await?;
        Ok(())
    }

    /// Up to `count` entries after group `after`, waiting up to [`READ_BLOCK`] for the first one.
    pub async fn read_after(
        &mut self,
        after: u64,
        count: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StreamError> {
        let options = StreamReadOptions::default()
            .count(count)
            .block(READ_BLOCK.as_millis() as usize);
        let reply: Option<StreamReadReply> = self
            .connection
            .xread_options(&[&self.key], &[format!("{after}-0")], &options)
            .await?;
        let mut out = Vec::new();
        for mut entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            let seq = parse_seq(&entry.id)?;
            let record = match entry.map.remove(FIELD) {
                Some(redis::Value::BulkString(bytes)) => bytes,
                _ => {
                    return Err(StreamError::Malformed {
                        id: entry.id,
                        reason: "no record field",
                    });
                }
            };
            out.push((seq, record));
        }
        Ok(out)
    }
}

/// A client for `stream.redis_url`: over TLS for `rediss://`, trusting the system's CA certificates and
/// `stream.redis_ca_file` (the `redis` crate replaces the system's roots with the ones it is given, so it
/// is given both).
fn client(config: &StreamConfig) -> Result<redis::Client, StreamError> {
    if !config.redis_url.starts_with("rediss:") {
        return Ok(redis::Client::open(config.redis_url.as_str())?);
    }
    let roots = ClientTls::with_ca_file(&config.redis_ca_file).roots_pem()?;
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(roots),
    };
    Ok(redis::Client::build_with_tls(
        config.redis_url.as_str(),
        certificates,
    )?)
}

/// The group number of a stream id `<seq>-0`.
fn parse_seq(id: &str) -> Result<u64, StreamError> {
    id.split_once('-')
        .and_then(|(seq, _)| seq.parse().ok())
        .ok_or_else(|| StreamError::Malformed {
            id: id.to_owned(),
            reason: "id is not <group>-0",
        })
}
