//! The few Solana JSON-RPC calls the source needs, over HTTP or HTTPS: `getSignaturesForAddress`,
//! `getTransaction`, `getBlock` (signatures only). Every call carries the configured headers (a provider's
//! API key); errors never carry the URL, which may hold a key too.

use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Without its URL (see [`RpcError::transport`]).
    #[error("RPC transport: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("RPC error from the node: {0}")]
    Node(String),
    #[error("unexpected RPC answer: {0}")]
    Shape(String),
}

/// A signature that mentions the program, as listed by `getSignaturesForAddress`.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureInfo {
    pub signature: String,
    pub slot: u64,
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

#[derive(Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    url: String,
    commitment: String,
}

impl RpcClient {
    /// `tls`: whom to trust for an `https://` URL; `headers`: sent with every call.
    pub fn new(
        url: &str,
        commitment: &str,
        tls: rustls::ClientConfig,
        headers: reqwest::header::HeaderMap,
    ) -> RpcClient {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .use_preconfigured_tls(tls)
            .default_headers(headers)
            .build()
            .expect("an HTTP client builds");
        RpcClient {
            http,
            url: url.to_owned(),
            commitment: commitment.to_owned(),
        }
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let answer: Value = self
            .http
            .post(&self.url)
            .json(&request)
            .send()
            .await?
            .json()
            .await?;
        if let Some(error) = answer.get("error") {
            return Err(RpcError::Node(error.to_string()));
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
