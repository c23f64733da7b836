//! The stream engine: Redis Streams through the `redis` crate. Entries carry their group number as their
//! stream id (`<seq>-0`), so "read after group N" is `XREAD … <N>-0` and the numbering survives a Redis
//! restart; and the writer's epoch (`kline_store::replication::epoch`) as a field beside the record. The
//! publisher and the replica use only the operations here (connect, head, append, read after, reset); another
//! engine (NATS JetStream: publish with a message id, consume from a sequence, purge) would provide the same
//! and nothing else would change.

use backon::Retryable;
use kline_tls::{ClientTls, FailureLog, HandshakeFailure, Redacted};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;

use super::backoff;
use kline_config::{READ_BLOCK, StreamConfig};
use kline_store::replication::epoch::Position;

/// The field holding an entry's record.
const FIELD: &str = "g";
/// The field holding an entry's epoch (decimal); absent in entries of writers before epochs (epoch 0).
const EPOCH_FIELD: &str = "e";

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stream.redis_ca_file: {0}")]
    Tls(#[from] kline_tls::TlsError),
    #[error("stream entry {id} is malformed: {reason}")]
    Malformed { id: String, reason: &'static str },
}

/// One stream entry: a group's record under its number and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub epoch: u64,
    pub record: Vec<u8>,
}

impl Entry {
    pub fn position(&self) -> Position {
        Position {
            seq: self.seq,
            epoch: self.epoch,
        }
    }
}

/// One connection to the stream.
pub struct RedisStream {
    connection: MultiplexedConnection,
    key: String,
    max_len: usize,
}

impl RedisStream {
    /// Connects, retrying with jittered backoff (`stream.reconnect_*`) until it succeeds; `None` on
    /// shutdown. A TLS handshake failure is logged once per distinct cause.
    pub async fn connect(
        config: &StreamConfig,
        shutdown: &CancellationToken,
    ) -> Option<RedisStream> {
        let mut tls_failures = FailureLog::default();
        let connecting = (|| Self::try_connect(config))
            .retry(backoff::policy(config))
            .sleep(tokio::time::sleep)
            .notify(|err: &StreamError, after| {
                match HandshakeFailure::find(err, "stream.redis_ca_file") {
                    Some(failure) => {
                        tls_failures.report("redis", &config.redis_url, &failure);
                    }
                    None => tracing::warn!(
                        error = %err,
                        url = %Redacted(&config.redis_url),
                        retry_in_ms = after.as_millis() as u64,
                        "cannot reach Redis"
                    ),
                }
            });
        tokio::select! {
            _ = shutdown.cancelled() => None,
            connected = connecting => connected.ok(),
        }
    }

    async fn try_connect(config: &StreamConfig) -> Result<RedisStream, StreamError> {
        let client = client(config)?;
        let settings = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.redis_timeout()))
            // A blocking read holds its reply for READ_BLOCK; a large append takes a while.
            .set_response_timeout(Some(READ_BLOCK + config.redis_timeout()));
        let connection = client
            .get_multiplexed_async_connection_with_config(&settings)
            .await?;
        Ok(RedisStream {
            connection,
            key: config.key.clone(),
            max_len: usize::try_from(config.max_len).unwrap_or(usize::MAX),
        })
    }

    /// The newest entry's number and epoch (number 0 when the stream is empty or missing).
    pub async fn head(&mut self) -> Result<Position, StreamError> {
        let reply: StreamRangeReply = self
            .connection
            .xrevrange_count(&self.key, "+", "-", 1)
            .await?;
        match reply.ids.into_iter().next() {
            Some(entry) => Ok(parse_entry(entry)?.position()),
            None => Ok(Position::default()),
        }
    }

    /// Appends `(seq, record)` entries of `epoch` in one round trip, trimming the stream to about `max_len`.
    pub async fn append(
        &mut self,
        entries: &[(u64, Vec<u8>)],
        epoch: u64,
    ) -> Result<(), StreamError> {
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
                .arg(EPOCH_FIELD)
                .arg(epoch.to_string())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.connection).await?;
        Ok(())
    }

    /// Deletes the stream (a writer replacing another epoch's entries: Redis accepts only ids above the
    /// stream's newest, and the new epoch numbers from its own store).
    pub async fn reset(&mut self) -> Result<(), StreamError> {
        let _: () = self.connection.del(&self.key).await?;
        Ok(())
    }

    /// Up to `count` entries after group `after`, waiting up to [`READ_BLOCK`] for the first one.
    pub async fn read_after(
        &mut self,
        after: u64,
        count: usize,
    ) -> Result<Vec<Entry>, StreamError> {
        let options = StreamReadOptions::default()
            .count(count)
            .block(READ_BLOCK.as_millis() as usize);
        let reply: Option<StreamReadReply> = self
            .connection
            .xread_options(&[&self.key], &[format!("{after}-0")], &options)
            .await?;
        reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(parse_entry)
            .collect()
    }
}

/// An entry's number, epoch and record.
fn parse_entry(mut entry: StreamId) -> Result<Entry, StreamError> {
    let malformed = |id: &str, reason| StreamError::Malformed {
        id: id.to_owned(),
        reason,
    };
    let seq = parse_seq(&entry.id)?;
    let epoch = match entry.map.remove(EPOCH_FIELD) {
        None => 0,
        Some(redis::Value::BulkString(bytes)) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| malformed(&entry.id, "its epoch is not a number"))?,
        Some(_) => return Err(malformed(&entry.id, "its epoch is not a string")),
    };
    match entry.map.remove(FIELD) {
        Some(redis::Value::BulkString(record)) => Ok(Entry { seq, epoch, record }),
        _ => Err(malformed(&entry.id, "no record field")),
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
