//! The few Solana JSON-RPC calls the source needs, over HTTP or HTTPS: `getSignaturesForAddress`,
//! `getTransaction`, `getBlock` (signatures only). Every call carries the configured headers (a provider's
//! API key); errors never carry the URL, which may hold a key too.
//!
//! A real node's passing refusals are not failures:
//! - **Budget**: every call first waits for the per-node request budget (`solana.requests_per_sec`, a
//!   token bucket with a second's worth of burst: [`governor`]), so kline stays under a public node's limit.
//! - **Retries**: [`RpcClient::retrying`] repeats a call with jittered exponential backoff
//!   (`solana.retry_min_ms` doubling to `solana.retry_max_ms`, [`backon`]) for as long as the error is
//!   passing ([`RpcError::is_passing`]): HTTP 429 (waiting at least what its `Retry-After` asks), HTTP 5xx, a
//!   lost connection, "Block not available" (-32004: a load balancer sent the call to a node a slot or two
//!   behind), "node is behind" (-32005), "block status not yet available" (-32014), "minimum context slot
//!   not reached" (-32016). Anything else (a skipped slot, a bad answer) is returned at once.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::{Value, json};

use kline_core::stats::Counter;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Without its URL (the `From<reqwest::Error>` below strips it: URLs may carry API keys).
    #[error("RPC transport: {0}")]
    Transport(#[source] reqwest::Error),
    /// An HTTP status other than 200; `retry_after`: what a 429's or 503's `Retry-After` asked for.
    #[error("RPC answered HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("RPC error {code} from the node: {message}")]
    Node { code: i64, message: String },
    #[error("unexpected RPC answer: {0}")]
    Shape(String),
}

/// JSON-RPC error codes of a node that will have the answer soon (see the module docs).
const PASSING_CODES: [i64; 6] = [-32004, -32005, -32014, -32016, 429, -32429];

impl RpcError {
    /// Whether asking again later can succeed (see the module docs).
    pub fn is_passing(&self) -> bool {
        match self {
            RpcError::Transport(_) => true,
            RpcError::Status { status, .. } => *status == 429 || *status >= 500,
            RpcError::Node { code, .. } => PASSING_CODES.contains(code),
            RpcError::Shape(_) => false,
        }
    }

    /// Whether the node said it is rate-limiting us.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, RpcError::Status { status: 429, .. })
            || matches!(
                self,
                RpcError::Node {
                    code: 429 | -32429,
                    ..
                }
            )
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            RpcError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// How the client paces and retries its calls (from `[source.solana]`).
#[derive(Debug, Clone, Copy)]
pub struct RpcLimits {
    /// Calls per second to the node; 0: unlimited.
    pub requests_per_sec: u32,
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
}

/// What the client counts, shared with the source's status.
#[derive(Debug, Clone, Default)]
pub struct RpcCounters {
    /// Calls repeated after a passing error.
    pub retries: Counter,
    /// Calls the node answered with 429 (or a rate-limit error code).
    pub rate_limited: Counter,
}

/// A signature that mentions the program, as listed by `getSignaturesForAddress`.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureInfo {
    pub signature: String,
    pub slot: u64,
    /// `blockTime`, Unix seconds, when the node knows it.
    pub block_time: Option<i64>,
    pub failed: bool,
}

/// What the source needs of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionInfo {
    pub slot: u64,
    pub block_time: Option<i64>,
    pub failed: bool,
    pub logs: Vec<String>,
}

/// A block's transaction signatures in execution order, and its time.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSignatures {
    pub block_time: Option<i64>,
    pub signatures: Vec<String>,
}

impl From<reqwest::Error> for RpcError {
    fn from(err: reqwest::Error) -> RpcError {
        RpcError::Transport(err.without_url())
    }
}

type Budget = governor::DefaultDirectRateLimiter;

/// Cheap to clone: clones share the HTTP connections, the request budget and the counters.
#[derive(Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    url: String,
    commitment: String,
    budget: Option<Arc<Budget>>,
    limits: RpcLimits,
    counters: RpcCounters,
}

impl RpcClient {
    /// `tls`: whom to trust for an `https://` URL; `headers`: sent with every call.
    pub fn new(
        url: &str,
        commitment: &str,
        tls: rustls::ClientConfig,
        headers: reqwest::header::HeaderMap,
        limits: RpcLimits,
        counters: RpcCounters,
    ) -> RpcClient {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .use_preconfigured_tls(tls)
            .default_headers(headers)
            .build()
            .expect("an HTTP client builds");
        let budget = NonZeroU32::new(limits.requests_per_sec)
            .map(|rate| Arc::new(Budget::direct(governor::Quota::per_second(rate))));
        RpcClient {
            http,
            url: url.to_owned(),
            commitment: commitment.to_owned(),
            budget,
            limits,
            counters,
        }
    }

    /// `call` until it succeeds or fails for good: passing errors are retried with jittered exponential
    /// backoff, without limit (the caller drops the future to give up, e.g. when its session ends).
    pub async fn retrying<T, F, Fut>(&self, what: &str, call: F) -> Result<T, RpcError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, RpcError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.limits.retry_min_ms.max(1)))
            .with_max_delay(Duration::from_millis(
                self.limits
                    .retry_max_ms
                    .max(self.limits.retry_min_ms)
                    .max(1),
            ))
            .with_jitter()
            .without_max_times();
        call.retry(backoff)
            .when(RpcError::is_passing)
            .adjust(|err, delay| {
                // A Retry-After is a floor: jittered backoff on top keeps callers from retrying in step.
                Some(err.retry_after().unwrap_or_default() + delay.unwrap_or_default())
            })
            .notify(|err, after| {
                self.counters.retries.inc();
                if err.is_rate_limit() {
                    self.counters.rate_limited.inc();
                }
                tracing::debug!(what, error = %err, retry_in_ms = after.as_millis() as u64, "solana source: RPC call retried");
            })
            .await
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        if let Some(budget) = &self.budget {
            budget.until_ready().await;
        }
        let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let response = self.http.post(&self.url).json(&request).send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(RpcError::Status {
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            });
        }
        let answer: Value = response.json().await?;
        if let Some(error) = answer.get("error") {
            return Err(RpcError::Node {
                code: error["code"].as_i64().unwrap_or(0),
                message: error["message"]
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_owned),
            });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| RpcError::Shape(format!("{method}: no `result` in {answer}")))
    }

    /// Signatures mentioning `address`, newest first, strictly newer than `until` and older than `before`.
    pub async fn signatures_for_address(
        &self,
        address: &str,
        until: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SignatureInfo>, RpcError> {
        let mut options = json!({ "limit": limit, "commitment": self.commitment });
        if let Some(until) = until {
            options["until"] = json!(until);
        }
        if let Some(before) = before {
            options["before"] = json!(before);
        }
        let result = self
            .call("getSignaturesForAddress", json!([address, options]))
            .await?;
        let list = result
            .as_array()
            .ok_or_else(|| RpcError::Shape(format!("not a list: {result}")))?;
        list.iter()
            .map(|entry| {
                Ok(SignatureInfo {
                    signature: entry["signature"]
                        .as_str()
                        .ok_or_else(|| RpcError::Shape(format!("no signature in {entry}")))?
                        .to_owned(),
                    slot: entry["slot"].as_u64().unwrap_or(0),
                    block_time: entry["blockTime"].as_i64(),
                    failed: !entry["err"].is_null(),
                })
            })
            .collect()
    }

    /// A transaction's slot, block time, failure and logs; `None` if the node does not have it (yet).
    pub async fn transaction(&self, signature: &str) -> Result<Option<TransactionInfo>, RpcError> {
        let options = json!({ "encoding": "json", "commitment": self.commitment, "maxSupportedTransactionVersion": 0 });
        let result = self
            .call("getTransaction", json!([signature, options]))
            .await?;
        if result.is_null() {
            return Ok(None);
        }
        let meta = &result["meta"];
        Ok(Some(TransactionInfo {
            slot: result["slot"].as_u64().unwrap_or(0),
            block_time: result["blockTime"].as_i64(),
            failed: !meta["err"].is_null(),
            logs: meta["logMessages"]
                .as_array()
                .map(|lines| {
                    lines
                        .iter()
                        .filter_map(|l| l.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    /// The signatures of `slot`'s block in order, and its block time (`getBlock` with
    /// `transactionDetails: "signatures"`, no rewards). An error if the node does not have the block.
    pub async fn block_signatures(&self, slot: u64) -> Result<BlockSignatures, RpcError> {
        // getBlock does not serve `processed` blocks; `confirmed` is the nearest it has.
        let commitment = match self.commitment.as_str() {
            "processed" => "confirmed",
            other => other,
        };
        let options = json!({
            "encoding": "json", "transactionDetails": "signatures", "rewards": false,
            "maxSupportedTransactionVersion": 0, "commitment": commitment,
        });
        let result = self.call("getBlock", json!([slot, options])).await?;
        let signatures = result["signatures"]
            .as_array()
            .ok_or_else(|| RpcError::Shape(format!("getBlock {slot}: no `signatures` list")))?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| RpcError::Shape(format!("getBlock {slot}: signature {s}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(BlockSignatures {
            block_time: result["blockTime"].as_i64(),
            signatures,
        })
    }
}

/// A `Retry-After` of delay-seconds (what rate limiters send; an HTTP date is read as "no hint").
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}
