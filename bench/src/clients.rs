//! The WebSocket load: N real clients, each bound to a source address in 127.0.0.x (so no address runs out
//! of ports), connected in ramps so the listen backlog never overflows, each subscribed to one pair.
//! Every update is timed against the moment its event was published (the event's price encodes its
//! sequence number). On kline's `/ws` ([`Wire::Kline`]) a client subscribes with a request and remembers
//! the latest state of every candle it saw; on kline's Socket.IO endpoint ([`Wire::SocketIo`]) it does the
//! same over Engine.IO v4's websocket transport (namespace `/kline`, the old server's events), answering
//! Engine.IO pings; on the nchan reference ([`Wire::Nchan`]) it connects to its pair's channel and counts
//! the messages.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::client_stream::CountingStream;

/// Price of event `seq`: `(seq + 1) * 1e-9` SOL, so a client can tell which event a candle's close is.
pub fn price_raw(seq: u64) -> u128 {
    u128::from(seq + 1) * 10u128.pow(19)
}

pub fn seq_of_price(price: f64) -> Option<u64> {
    let n = (price * 1e9).round();
    (n >= 1.0).then(|| n as u64 - 1)
}

/// State shared by the driver and every client.
pub struct Shared {
    pub epoch: Instant,
    /// Nanoseconds since `epoch` at which event `seq` was POSTed (0: not sent).
    pub sent_at_ns: Vec<AtomicU64>,
    pub latency_us: Mutex<Histogram<u64>>,
    pub deliveries: AtomicU64,
    /// Bytes the clients read from their sockets (what the engine put on the wire, compressed or not).
    pub wire_bytes: AtomicU64,
    pub connected: AtomicUsize,
    pub connect_errors: AtomicU64,
    pub closes: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    pub fn new(max_events: usize) -> Arc<Shared> {
        Arc::new(Shared {
            epoch: Instant::now(),
            sent_at_ns: (0..max_events).map(|_| AtomicU64::new(0)).collect(),
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            ),
            deliveries: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
            connected: AtomicUsize::new(0),
            connect_errors: AtomicU64::new(0),
            closes: Mutex::new(BTreeMap::new()),
        })
    }

    fn note_close(&self, why: String) {
        *self.closes.lock().unwrap().entry(why).or_default() += 1;
    }
}

/// How clients reach an engine and what it sends them.
#[derive(Debug, Clone)]
pub enum Wire {
    /// kline's `/ws` at `url`: a `subscribe` request per client, `kline_data` messages; with `compression`
    /// the clients offer permessage-deflate (as browsers do) and inflate what comes compressed.
    Kline { url: String, compression: bool },
    /// kline's Socket.IO endpoint (`url`: the Engine.IO websocket URL): connect to `/kline`, a `subscribe`
    /// event per client, `kline_data` events.
    SocketIo { url: String },
    /// nchan at `base` (`ws://IP:PORT`): a subscriber location per channel, one message per event.
    Nchan { base: String },
}

impl Wire {
    /// The URL a client of `mint`'s s1 pair connects to.
    pub fn url(&self, mint: &str) -> String {
        match self {
            Wire::Kline { url, .. } | Wire::SocketIo { url } => url.clone(),
            Wire::Nchan { base } => format!("{base}/sub/{}", channel(mint)),
        }
    }

    /// The request that subscribes a client to `mint`'s s1 pair (None: connecting is subscribing).
    pub fn subscribe_request(&self, mint: &str) -> Option<String> {
        match self {
            Wire::Kline { .. } => Some(format!(
                r#"{{"msg_type":"subscribe","symbol":"{mint}","interval":"s1","limit":1}}"#
            )),
            Wire::SocketIo { .. } => Some(format!(
                r#"{SOCKETIO_EVENT}["subscribe",{{"symbol":"{mint}","interval":"s1"}}]"#
            )),
            Wire::Nchan { .. } => None,
        }
    }
}

/// The prefix of a Socket.IO event packet on `/kline` (Engine.IO message `4`, Socket.IO event `2`).
const SOCKETIO_EVENT: &str = "42/kline,";

/// Engine.IO v4 over websocket, then Socket.IO's connect to `/kline`: returns once the namespace
/// acknowledged it (an event sent earlier could reach the server before the namespace has the socket).
async fn socketio_connect<S>(ws: &mut S) -> std::io::Result<()>
where
    S: SinkExt<Message>
        + StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    let mut sent_connect = false;
    while let Some(message) = ws.next().await {
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        if text.as_str() == "2" {
            // engineioxide pings as soon as the session opens: unanswered, it closes the socket 60 s later.
            ws.send(Message::text("3"))
                .await
                .map_err(|_| std::io::Error::other("send failed"))?;
        } else if text.starts_with('0') && !sent_connect {
            sent_connect = true;
            ws.send(Message::text("40/kline,"))
                .await
                .map_err(|_| std::io::Error::other("send failed"))?;
        } else if text.starts_with("40/kline,") {
            return Ok(());
        }
    }
    Err(std::io::Error::other(
        "closed during the Socket.IO handshake",
    ))
}

/// The nchan channel of `mint`'s s1 pair.
pub fn channel(mint: &str) -> String {
    format!("{mint}_s1")
}

/// What one client saw: for each candle time, the highest (update_count, is_final) (kline), and how many
/// update messages arrived (both).
pub struct ClientOutcome {
    pub pair: usize,
    pub candles: HashMap<i64, (u32, bool)>,
    pub messages: u64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct KlineLite {
    data: CandleLite,
}

/// A message of the nchan reference: the fields a client needs, in the order the publisher writes them.
#[derive(Deserialize)]
struct NchanLite {
    close: f64,
}

#[derive(Deserialize)]
struct CandleLite {
    time: i64,
    close: f64,
    update_count: u32,
    is_final: bool,
}

/// Opens `count` clients (in ramps of `ramp` at a time), client `i` on pair `i % mints.len()`, and waits
/// until each is subscribed (or failed). Returns their tasks.
pub async fn open(
    server: SocketAddr,
    wire: &Wire,
    mints: &[String],
    count: usize,
    ramp: usize,
    shared: &Arc<Shared>,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<Option<ClientOutcome>>> {
    let mut tasks = Vec::with_capacity(count);
    for start in (0..count).step_by(ramp.max(1)) {
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(ramp.max(1));
        for index in start..(start + ramp).min(count) {
            let pair = index % mints.len();
            let task = run_client(
                index,
                server,
                wire.clone(),
                pair,
                mints[pair].clone(),
                shared.clone(),
                stop.clone(),
                ready_tx.clone(),
            );
            tasks.push(tokio::spawn(task));
        }
        drop(ready_tx);
        while ready_rx.recv().await.is_some() {}
    }
    tasks
}

#[allow(clippy::too_many_arguments)]
async fn run_client(
    index: usize,
    server: SocketAddr,
    wire: Wire,
    pair: usize,
    mint: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Option<ClientOutcome> {
    let source = Ipv4Addr::new(127, 0, 0, 2 + (index % 250) as u8);
    let url = wire.url(&mint);
    let connect = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((source, 0)))?;
        let stream = socket.connect(server).await?;
        let config = WebSocketConfig::default()
            .read_buffer_size(512)
            .write_buffer_size(0);
        let compression = matches!(
            wire,
            Wire::Kline {
                compression: true,
                ..
            }
        );
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(std::io::Error::other)?;
        if compression {
            request.headers_mut().insert(
                "Sec-WebSocket-Extensions",
                HeaderValue::from_static("permessage-deflate; client_max_window_bits"),
            );
        }
        let stream = CountingStream::new(stream, compression);
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>(ws)
    };
    let mut ws = match tokio::time::timeout(Duration::from_secs(30), connect).await {
        Ok(Ok(ws)) => ws,
        _ => {
            shared.connect_errors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    if matches!(wire, Wire::SocketIo { .. }) {
        let handshake = tokio::time::timeout(Duration::from_secs(30), socketio_connect(&mut ws));
        if !matches!(handshake.await, Ok(Ok(()))) {
            shared.connect_errors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    }
    let mut ready = Some(ready);
    let mut subscribed = false;
    match wire.subscribe_request(&mint) {
        Some(subscribe) => {
            if ws.send(Message::text(subscribe)).await.is_err() {
                shared.connect_errors.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        None => {
            subscribed = true;
            shared.connected.fetch_add(1, Ordering::Relaxed);
            ready.take();
        }
    }
    let mut outcome = ClientOutcome {
        pair,
        candles: HashMap::new(),
        messages: 0,
    };
    let mut pending = Vec::with_capacity(256);
    // Latencies reach the shared histogram at least this often, so a sampler reading it per window (the
    // soak) sees each one in about the window it happened in.
    let mut flushed_ns = shared.epoch.elapsed().as_nanos() as u64;
    // The newest event this client has timed: an event is timed when it is first seen (a later state of
    // the same candle, e.g. the Solana source's correction once the block is known, repeats its close).
    let mut newest_timed: Option<u64> = None;
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            next = ws.next() => next,
        };
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                shared.note_close(frame.map_or("close without code".into(), |f| {
                    format!("close {}", u16::from(f.code))
                }));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                shared.note_close(format!("error: {err}"));
                break;
            }
            None => {
                shared.note_close("eof".into());
                break;
            }
        };
        let now_ns = shared.epoch.elapsed().as_nanos() as u64;
        let timed_seq = match wire {
            Wire::Kline { .. } => {
                on_kline_message(&text, &mut outcome, &mut subscribed, &shared, &mut ready)
            }
            // Engine.IO's heartbeat: the server pings, the client answers.
            Wire::SocketIo { .. } if text.as_str() == "2" => {
                let _ = ws.send(Message::text("3")).await;
                None
            }
            Wire::SocketIo { .. } => {
                on_socketio_message(&text, &mut outcome, &mut subscribed, &shared, &mut ready)
            }
            Wire::Nchan { .. } => {
                outcome.messages += 1;
                serde_json::from_str::<NchanLite>(&text)
                    .ok()
                    .and_then(|message| seq_of_price(message.close))
            }
        };
        let timed_seq = timed_seq.filter(|seq| newest_timed.is_none_or(|newest| *seq > newest));
        if timed_seq.is_some() {
            newest_timed = timed_seq;
        }
        if let Some(sent) = timed_seq
            .and_then(|seq| shared.sent_at_ns.get(seq as usize))
            .map(|sent| sent.load(Ordering::Relaxed))
            .filter(|sent| *sent > 0)
        {
            pending.push(now_ns.saturating_sub(sent) / 1000);
            if pending.len() == pending.capacity()
                || now_ns.saturating_sub(flushed_ns) >= FLUSH_EVERY_NS
            {
                flush(&shared, &mut pending);
                flushed_ns = now_ns;
            }
        }
    }
    flush(&shared, &mut pending);
    shared
        .wire_bytes
        .fetch_add(ws.get_ref().read_bytes(), Ordering::Relaxed);
    let _ = ws.close(None).await;
    Some(outcome)
}

/// Handles one message from kline; returns the sequence number of the event it delivers, if it is timed.
fn on_kline_message(
    text: &str,
    outcome: &mut ClientOutcome,
    subscribed: &mut bool,
    shared: &Shared,
    ready: &mut Option<tokio::sync::mpsc::Sender<()>>,
) -> Option<u64> {
    let envelope = serde_json::from_str::<Envelope>(text).ok()?;
    match envelope.kind {
        "subscription_confirmed" if !*subscribed => {
            confirmed(subscribed, shared, ready);
            None
        }
        "kline_data" => on_candle_update(envelope.data.get(), outcome),
        _ => None,
    }
}

/// Handles one Socket.IO packet from kline's `/kline` namespace, like [`on_kline_message`].
fn on_socketio_message(
    text: &str,
    outcome: &mut ClientOutcome,
    subscribed: &mut bool,
    shared: &Shared,
    ready: &mut Option<tokio::sync::mpsc::Sender<()>>,
) -> Option<u64> {
    let event = text.strip_prefix(SOCKETIO_EVENT)?;
    if let Some(update) = event.strip_prefix(r#"["kline_data","#) {
        return on_candle_update(update.strip_suffix(']')?, outcome);
    }
    if event.starts_with(r#"["subscription_confirmed","#) && !*subscribed {
        confirmed(subscribed, shared, ready);
    }
    None
}

/// A client's subscription is confirmed: it counts as connected and the ramp may go on.
fn confirmed(
    subscribed: &mut bool,
    shared: &Shared,
    ready: &mut Option<tokio::sync::mpsc::Sender<()>>,
) {
    *subscribed = true;
    shared.connected.fetch_add(1, Ordering::Relaxed);
    ready.take();
}

/// Records a `kline_data` payload (`{symbol, interval, data: candle, ...}`); returns the sequence number
/// of the event it delivers, if it is timed.
fn on_candle_update(payload: &str, outcome: &mut ClientOutcome) -> Option<u64> {
    let candle = serde_json::from_str::<KlineLite>(payload).ok()?.data;
    outcome.messages += 1;
    let entry = outcome.candles.entry(candle.time).or_insert((0, false));
    *entry = (*entry).max((candle.update_count, candle.is_final));
    // A final candle repeats the last event's price seconds later (bucket end + grace): it is a
    // finalization, not an event delivery, so it is not timed.
    (!candle.is_final)
        .then_some(candle.close)
        .and_then(seq_of_price)
}

/// The longest a client keeps timed latencies before adding them to [`Shared::latency_us`].
const FLUSH_EVERY_NS: u64 = 1_000_000_000;

fn flush(shared: &Shared, pending: &mut Vec<u64>) {
    if pending.is_empty() {
        return;
    }
    shared
        .deliveries
        .fetch_add(pending.len() as u64, Ordering::Relaxed);
    let mut histogram = shared.latency_us.lock().unwrap();
    for micros in pending.drain(..) {
        let _ = histogram.record(micros.max(1));
    }
}
