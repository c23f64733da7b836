//! A faithful, local fake of the parts of a Solana RPC node the `solana` source uses: WebSocket
//! `logsSubscribe` notifications, and HTTP JSON-RPC `getSignaturesForAddress`, `getTransaction`,
//! `getBlock` (signatures only) and `getBlockTime`. It plays a script of transactions: the test decides
//! when each is "produced", can drop every WebSocket connection, and keeps producing while nobody listens.
//! A block is its slot's transactions at their `tx_index` (other programs' transactions fill the gaps); it
//! exists once one of its transactions has been produced, whole, as a real node's would.
//!
//! It behaves like a real provider where that hurts: a block can become available only some time after
//! its first transaction was notified ([`FakeSolana::set_block_delay`]: "Block not available", -32004,
//! until then, as a load balancer's node a slot or two behind answers); `getBlock`/`getTransaction` can
//! answer late ([`FakeSolana::set_rpc_delay`], a remote node sending a full block); a share of calls can be
//! rate-limited ([`FakeSolana::set_rate_limit`]: HTTP 429 with `Retry-After`, as providers answer). `kline-bench live` uses it too, as
//! a chain that grows slot by slot ([`FakeSolana::extend_script`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct FakeTx {
    pub signature: String,
    pub slot: u64,
    /// Position of the transaction in its slot's block.
    pub tx_index: u32,
    pub block_time: i64,
    pub failed: bool,
    pub logs: Vec<String>,
}

#[derive(Default)]
struct Chain {
    script: Vec<FakeTx>,
    produced: usize,
    subscribers: Vec<mpsc::Sender<String>>,
    next_subscription: u64,
    /// `getBlock` answers "Block not available" (-32004) while set (a node that is behind).
    blocks_unavailable: bool,
    /// `getBlock` answers "Slot … was skipped, or missing in long-term storage" (-32009) while set (a node
    /// that will never have the block).
    blocks_missing: bool,
    /// When set, every request (JSON-RPC and the WebSocket handshake) must carry this key or gets 401.
    api_key: Option<ApiKey>,
    /// When each slot's first transaction was produced.
    slot_produced_at: HashMap<u64, Instant>,
    /// A block is available this long after its first transaction was produced.
    block_delay: Duration,
    /// `getBlock` and `getTransaction` answer this late.
    rpc_delay: Duration,
    /// Every `n`th JSON-RPC call (by a fixed pseudo-random pattern) gets 429 with this `Retry-After`.
    rate_limit: Option<RateLimit>,
    calls: u64,
    /// When each JSON-RPC call arrived.
    call_times: Vec<Instant>,
    /// Calls answered with 429.
    pub rate_limited: u64,
}

#[derive(Debug, Clone, Copy)]
struct RateLimit {
    percent: u64,
    retry_after_secs: u64,
}

/// Where a provider expects its API key.
#[derive(Debug, Clone)]
pub enum ApiKey {
    /// A header, e.g. `x-token: KEY` or `Authorization: Bearer KEY`.
    Header { name: String, value: String },
    /// A query parameter, e.g. `?api-key=KEY`.
    Query { name: String, value: String },
}

#[derive(Clone, Default)]
struct Node(Arc<Mutex<Chain>>);

pub struct FakeSolana {
    node: Node,
    pub addr: SocketAddr,
    /// Whether it speaks TLS (`https://`, `wss://`), as every provider does.
    tls: bool,
}

impl FakeSolana {
    pub async fn start(script: Vec<FakeTx>) -> FakeSolana {
        Self::start_with(script, None).await
    }

    /// A node behind TLS with `certificate` (see [`crate::tls::TestCa`]): its URLs are `https://` and
    /// `wss://` to `localhost`, the name a test certificate is issued for.
    pub async fn start_tls(
        script: Vec<FakeTx>,
        certificate: &crate::tls::IssuedCert,
    ) -> FakeSolana {
        Self::start_with(script, Some(certificate.server_config())).await
    }

    async fn start_with(script: Vec<FakeTx>, tls: Option<Arc<rustls::ServerConfig>>) -> FakeSolana {
        let node = Node::default();
        node.0.lock().unwrap().script = script;
        let app = Router::new()
            .route("/", post(rpc))
            .route("/ws", any(ws))
            // Providers put an API key in the path (`/<key>/`, `/ws/<key>`): any path below works.
            .route("/{*key}", post(rpc))
            .route("/ws/{*key}", any(ws))
            .layer(axum::middleware::from_fn_with_state(
                node.clone(),
                check_api_key,
            ))
            .with_state(node.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let secure = tls.is_some();
        match tls {
            Some(tls) => {
                crate::tls::serve_tls(listener, app, tls);
            }
            None => {
                // As the servers in front of real nodes (nginx, envoy) do: each notification is sent at
                // once, not held by Nagle's algorithm until the previous one is acknowledged (~40 ms with
                // the receiver's delayed ACK).
                use axum::serve::ListenerExt;
                let listener = listener.tap_io(|socket| {
                    let _ = socket.set_nodelay(true);
                });
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
        }
        FakeSolana {
            node,
            addr,
            tls: secure,
        }
    }

    pub fn rpc_url(&self) -> String {
        match self.tls {
            true => format!("https://localhost:{}/", self.addr.port()),
            false => format!("http://{}/", self.addr),
        }
    }

    pub fn ws_url(&self) -> String {
        match self.tls {
            true => format!("wss://localhost:{}/ws", self.addr.port()),
            false => format!("ws://{}/ws", self.addr),
        }
    }

    /// Adds transactions to the end of the script (a load generator writes the chain as it goes).
    pub fn extend_script(&self, transactions: impl IntoIterator<Item = FakeTx>) {
        self.node.0.lock().unwrap().script.extend(transactions);
    }

    /// Makes the next `n` transactions of the script happen, notifying live subscribers.
    pub fn produce(&self, n: usize) {
        let mut chain = self.node.0.lock().unwrap();
        let end = (chain.produced + n).min(chain.script.len());
        let now = Instant::now();
        for index in chain.produced..end {
            let tx = chain.script[index].clone();
            chain.slot_produced_at.entry(tx.slot).or_insert(now);
            // The source reads the content, not the subscription id: one text serves every subscriber.
            let notification = json!({
                "jsonrpc": "2.0", "method": "logsNotification",
                "params": {
                    "result": {
                        "context": { "slot": tx.slot },
                        "value": { "signature": tx.signature, "err": tx_error(&tx), "logs": tx.logs },
                    },
                    "subscription": 1,
                },
            })
            .to_string();
            chain
                .subscribers
                .retain(|sender| sender.try_send(notification.clone()).is_ok());
        }
        chain.produced = end;
    }

    /// From now on a block is available only `delay` after its slot's first transaction was produced
    /// ("Block not available" until then).
    pub fn set_block_delay(&self, delay: Duration) {
        self.node.0.lock().unwrap().block_delay = delay;
    }

    /// From now on `getBlock` and `getTransaction` answer `delay` late.
    pub fn set_rpc_delay(&self, delay: Duration) {
        self.node.0.lock().unwrap().rpc_delay = delay;
    }

    /// From now on `percent`% of JSON-RPC calls (a fixed pseudo-random pattern) get HTTP 429 with
    /// `Retry-After: retry_after_secs`; 0 turns it off.
    pub fn set_rate_limit(&self, percent: u64, retry_after_secs: u64) {
        self.node.0.lock().unwrap().rate_limit = (percent > 0).then_some(RateLimit {
            percent,
            retry_after_secs,
        });
    }

    /// When each JSON-RPC call so far arrived.
    pub fn rpc_call_times(&self) -> Vec<Instant> {
        self.node.0.lock().unwrap().call_times.clone()
    }

    /// JSON-RPC calls answered with 429 so far.
    pub fn rate_limited_calls(&self) -> u64 {
        self.node.0.lock().unwrap().rate_limited
    }

    /// Makes `getBlock` refuse blocks for good (-32009, `true`) or serve them again (`false`).
    pub fn set_blocks_missing(&self, missing: bool) {
        self.node.0.lock().unwrap().blocks_missing = missing;
    }

    /// Makes `getBlock` fail (`false`) or serve blocks again (`true`).
    pub fn set_blocks_available(&self, available: bool) {
        self.node.0.lock().unwrap().blocks_unavailable = !available;
    }

    /// From now on every request must carry `key` (as a provider's endpoint does); others get 401 with the
    /// JSON-RPC error a provider sends.
    pub fn require_api_key(&self, key: ApiKey) {
        self.node.0.lock().unwrap().api_key = Some(key);
    }

    /// Closes every WebSocket connection (the node restarts, the network drops…).
    pub fn drop_connections(&self) {
        self.node.0.lock().unwrap().subscribers.clear();
    }

    /// Sends a notification of an unexpected shape to every subscriber (bad input must be skipped).
    pub fn send_garbage(&self) {
        let chain = self.node.0.lock().unwrap();
        for sender in &chain.subscribers {
            let _ = sender.try_send(
                r#"{"jsonrpc":"2.0","method":"logsNotification","params":{"weird":true}}"#.into(),
            );
            let _ = sender.try_send("not json at all".into());
        }
    }
}

async fn check_api_key(
    State(node): State<Node>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let required = node.0.lock().unwrap().api_key.clone();
    let allowed = match &required {
        None => true,
        Some(ApiKey::Header { name, value }) => request
            .headers()
            .get(name.as_str())
            .is_some_and(|got| got.as_bytes() == value.as_bytes()),
        Some(ApiKey::Query { name, value }) => request.uri().query().is_some_and(|query| {
            url::form_urlencoded::parse(query.as_bytes()).any(|(n, v)| n == *name && v == *value)
        }),
    };
    if allowed {
        return next.run(request).await;
    }
    let body = json!({ "jsonrpc": "2.0", "error": { "code": -32401, "message": "invalid api key provided" }, "id": null });
    (axum::http::StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

async fn ws(upgrade: WebSocketUpgrade, State(node): State<Node>) -> impl IntoResponse {
    upgrade.on_upgrade(move |socket| serve_ws(socket, node))
}

async fn serve_ws(mut socket: WebSocket, node: Node) {
    // The first message must be logsSubscribe.
    let Some(Ok(Message::Text(request))) = socket.recv().await else {
        return;
    };
    let request: Value = serde_json::from_str(&request).unwrap_or_default();
    if request["method"] != "logsSubscribe" {
        return;
    }
    let (sender, mut notifications) = mpsc::channel(100_000);
    let subscription = {
        let mut chain = node.0.lock().unwrap();
        chain.next_subscription += 1;
        chain.subscribers.push(sender);
        chain.next_subscription
    };
    let reply =
        json!({ "jsonrpc": "2.0", "result": subscription, "id": request["id"] }).to_string();
    if socket.send(Message::Text(reply.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            notification = notifications.recv() => match notification {
                Some(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

async fn rpc(State(node): State<Node>, Json(request): Json<Value>) -> Response {
    let delay = {
        let mut chain = node.0.lock().unwrap();
        chain.calls += 1;
        chain.call_times.push(Instant::now());
        if let Some(limit) = chain.rate_limit {
            // A fixed scramble of the call number: the same share of calls each run, spread out.
            let roll = chain.calls.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
            if roll % 100 < limit.percent {
                chain.rate_limited += 1;
                let body = json!({ "jsonrpc": "2.0", "id": request["id"],
                    "error": { "code": 429, "message": "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com." } });
                return (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", limit.retry_after_secs.to_string())],
                    Json(body),
                )
                    .into_response();
            }
        }
        match request["method"].as_str() {
            Some("getBlock" | "getTransaction") => chain.rpc_delay,
            _ => Duration::ZERO,
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    answer(&node, &request).into_response()
}

fn answer(node: &Node, request: &Value) -> Json<Value> {
    let chain = node.0.lock().unwrap();
    let produced = &chain.script[..chain.produced];
    let params = &request["params"];
    let result = match request["method"].as_str().unwrap_or_default() {
        "getSignaturesForAddress" => {
            let options = &params[1];
            let position = |sig: &Value| {
                sig.as_str()
                    .and_then(|s| produced.iter().position(|tx| tx.signature == s))
            };
            let newer_than = position(&options["until"]);
            let older_than = position(&options["before"]).unwrap_or(produced.len());
            let limit = options["limit"].as_u64().unwrap_or(1000) as usize;
            let list: Vec<Value> = produced
                .iter()
                .enumerate()
                .rev()
                .filter(|(index, _)| {
                    *index < older_than && newer_than.is_none_or(|until| *index > until)
                })
                .take(limit)
                .map(|(_, tx)| {
                    json!({ "signature": tx.signature, "slot": tx.slot, "blockTime": tx.block_time,
                            "err": tx_error(tx) })
                })
                .collect();
            json!(list)
        }
        "getTransaction" => {
            let signature = params[0].as_str().unwrap_or_default();
            match produced.iter().find(|tx| tx.signature == signature) {
                Some(tx) => json!({
                    "slot": tx.slot,
                    "blockTime": tx.block_time,
                    "meta": {
                        "err": tx_error(tx),
                        "logMessages": tx.logs,
                    },
                    "transaction": { "signatures": [tx.signature] },
                }),
                None => Value::Null,
            }
        }
        "getBlock" if chain.blocks_missing => {
            let slot = params[0].as_u64().unwrap_or(0);
            return Json(json!({ "jsonrpc": "2.0", "id": request["id"],
                "error": { "code": -32009, "message": format!("Slot {slot} was skipped, or missing in long-term storage") } }));
        }
        "getBlock" => {
            let slot = params[0].as_u64().unwrap_or(0);
            match block_signatures(&chain, slot) {
                Some(signatures) => json!({
                    "blockHeight": slot, "blockTime": produced.iter().find(|tx| tx.slot == slot).map(|tx| tx.block_time),
                    "blockhash": filler_signature(slot, u32::MAX), "parentSlot": slot.saturating_sub(1),
                    "previousBlockhash": filler_signature(slot.saturating_sub(1), u32::MAX),
                    "signatures": signatures,
                }),
                None => {
                    return Json(json!({ "jsonrpc": "2.0", "id": request["id"],
                        "error": { "code": -32004, "message": format!("Block not available for slot {slot}") } }));
                }
            }
        }
        "getBlockTime" => {
            let slot = params[0].as_u64().unwrap_or(0);
            match produced.iter().find(|tx| tx.slot == slot) {
                Some(tx) => json!(tx.block_time),
                None => {
                    return Json(json!({ "jsonrpc": "2.0", "id": request["id"],
                        "error": { "code": -32009, "message": format!("Slot {slot} was skipped, or missing") } }));
                }
            }
        }
        other => {
            return Json(json!({ "jsonrpc": "2.0", "id": request["id"],
                "error": { "code": -32601, "message": format!("Method not found: {other}") } }));
        }
    };
    Json(json!({ "jsonrpc": "2.0", "id": request["id"], "result": result }))
}

/// The signatures of `slot`'s block in order, if the block exists (one of its transactions was produced).
fn block_signatures(chain: &Chain, slot: u64) -> Option<Vec<String>> {
    let produced_at = chain.slot_produced_at.get(&slot)?;
    if chain.blocks_unavailable || produced_at.elapsed() < chain.block_delay {
        return None;
    }
    let ours: Vec<&FakeTx> = chain.script.iter().filter(|tx| tx.slot == slot).collect();
    let len = ours.iter().map(|tx| tx.tx_index + 1).max().unwrap_or(0);
    let mut signatures: Vec<String> = (0..len).map(|i| filler_signature(slot, i)).collect();
    for tx in ours {
        signatures[tx.tx_index as usize] = tx.signature.clone();
    }
    Some(signatures)
}

/// A signature of another program's transaction at position `index` of `slot`'s block.
fn filler_signature(slot: u64, index: u32) -> String {
    let mut bytes = [0xEEu8; 64];
    bytes[..8].copy_from_slice(&slot.to_be_bytes());
    bytes[8..12].copy_from_slice(&index.to_be_bytes());
    bs58::encode(bytes).into_string()
}

/// The `err` of a transaction as the node reports it.
fn tx_error(tx: &FakeTx) -> Value {
    if tx.failed {
        json!({ "InstructionError": [0, { "Custom": 1 }] })
    } else {
        Value::Null
    }
}
