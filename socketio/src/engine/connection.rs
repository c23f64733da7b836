//! One Socket.IO connection on our own websocket transport, on one task: Engine.IO's open packet and
//! heartbeat, the client's packets read in order, and the `/kline` session ([`session::run`]) polled by the
//! same task. Frames go out through the connection's [`Outbox`] (the `/ws` writer and its overflow policy,
//! bounded by `socketio.max_backlog_packets` / `max_backlog_bytes`), whose backlog the `/ws` [`writer`]
//! writes. Whatever ends the connection (the client closes, a ping times out, a malformed packet, a reader
//! that stopped, shutdown), the session ends first, so the socket's subscriptions leave the hubs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use kline_protocol::CloseCode;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::heartbeat::{Beat, Heartbeat};
use super::packet::{self, ClientPacket, EnginePacket, Malformed};
use super::socket::{self as direct, DirectSocket};
use crate::NAMESPACE;
use crate::session::{self, EVENTS, Request, RequestQueue};
use crate::transport::Transport;
use kline_push::PushContext;
use kline_push::hub::next_connection_id;
use kline_push::websocket::close::{self, ReadEnd};
use kline_push::websocket::deflate::Deflate;
use kline_push::websocket::frame;
use kline_push::websocket::outbox::{Framing, Outbox};
use kline_push::websocket::socket::ClientStream;
use kline_push::websocket::writer::{self, WriterSettings};

/// Serves one upgraded socket until it closes (`_deflate`: never negotiated here; engine.io's
/// `perMessageDeflate` is off by default too).
pub async fn serve(
    socket: TcpStream,
    read_ahead: Bytes,
    _deflate: Option<Deflate>,
    state: PushContext,
) {
    let sid = new_sid();
    let span = tracing::info_span!("socketio_ws", %sid);
    serve_socket(socket, read_ahead, state, sid)
        .instrument(span)
        .await;
}

/// A random id: 16 URL-safe characters, like socketioxide's.
fn new_sid() -> Box<str> {
    let random = uuid::Uuid::new_v4();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(&random.as_bytes()[..12])
        .into()
}

/// The `/kline` socket of the connection, once joined.
struct Joined {
    queue: RequestQueue,
    /// Cancelled when the client disconnects the socket (or the connection ends).
    gone: CancellationToken,
    session: Pin<Box<dyn Future<Output = ()> + Send>>,
}

async fn serve_socket(socket: TcpStream, read_ahead: Bytes, state: PushContext, sid: Box<str>) {
    let push = state.push_stats.clone();
    push.socketio_websocket_connections_active.inc();
    let _active = kline_core::stats::Decrement(&push.socketio_websocket_connections_active);
    let config = &state.config.socketio;
    let ws = &state.config.websocket;
    let outbox = Arc::new(
        Outbox::new(
            socket,
            config.max_backlog_packets,
            config.max_backlog_bytes,
            push.clone(),
        )
        .with_framing(Framing::Updates(direct::kline_data)),
    );
    let settings = WriterSettings {
        ping_every: None,
        write_timeout: Duration::from_millis(ws.write_timeout_ms),
        min_drain_bytes_per_sec: ws.min_drain_bytes_per_sec,
    };
    let mut writer = std::pin::pin!(writer::run(&outbox, &settings));
    let linger = Duration::from_millis(ws.close_linger_ms);
    // A message above maxPayload is a capacity error: closed with 1009, as engine.io's `ws` does.
    let max_payload = usize::try_from(config.max_payload_bytes).unwrap_or(usize::MAX);
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(ws.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload));
    let mut stream = WebSocketStream::from_raw_socket(
        ClientStream::new(read_ahead, outbox.clone(), None),
        Role::Server,
        Some(ws_config),
    )
    .await;

    let interval = Duration::from_secs(config.ping_interval_secs);
    let timeout = Duration::from_secs(config.ping_timeout_secs);
    let open = packet::Open {
        sid: &new_sid(),
        upgrades: [],
        ping_interval: interval.as_millis() as u64,
        ping_timeout: timeout.as_millis() as u64,
        max_payload: config.max_payload_bytes,
    };
    outbox.push_message(frame::text(&open.encode()));
    let socket = Arc::new(DirectSocket::new(sid, outbox.clone()));
    let mut heartbeat = Heartbeat::new(interval, timeout, tokio::time::Instant::now());
    let mut joined: Option<Joined> = None;
    let end = loop {
        let message = tokio::select! {
            _ = state.shutdown.cancelled() => break ReadEnd::Close(CloseCode::ServerShutdown),
            ending = &mut writer => break ReadEnd::WriterDone(ending),
            () = session_ended(&mut joined) => {
                joined = None;
                continue;
            }
            () = tokio::time::sleep_until(heartbeat.deadline()) => {
                match heartbeat.beat(tokio::time::Instant::now()) {
                    Beat::Ping => {
                        outbox.push_message(frame::text(packet::PING));
                        continue;
                    }
                    Beat::Expired => {
                        tracing::debug!("ping timeout");
                        break ReadEnd::Close(CloseCode::Normal);
                    }
                }
            }
            next = stream.next() => next,
        };
        let text = match message {
            None => break ReadEnd::ClientGone,
            Some(Err(err)) => match close::violation(&err) {
                Some(code) => {
                    tracing::debug!(error = %err, code = code.as_u16(), "protocol violation");
                    close::count_violation(&push, code);
                    break ReadEnd::Violation(code);
                }
                None => break ReadEnd::ClientGone,
            },
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                // No binary packet is part of the contract; socketioxide cannot parse one alone either.
                tracing::debug!("binary frame; closing");
                break ReadEnd::Close(CloseCode::Normal);
            }
            Some(Ok(Message::Close(frame))) => {
                break ReadEnd::ClientClosed(close::echo_code(frame.as_ref()));
            }
            Some(Ok(_)) => continue,
        };
        let read = Read {
            state: &state,
            socket: &socket,
            heartbeat: &mut heartbeat,
            joined: &mut joined,
        };
        match read.packet(text.as_str()) {
            Ok(true) => {}
            Ok(false) => break ReadEnd::Close(CloseCode::Normal),
            Err(malformed) => {
                tracing::debug!(%malformed, "closing");
                break ReadEnd::Close(CloseCode::Normal);
            }
        }
    };

    if let Some(Joined { gone, session, .. }) = joined.take() {
        gone.cancel();
        session.await;
    }
    if let ReadEnd::Close(_) = end {
        // Engine.IO's close packet before the WebSocket close frame.
        outbox.push_message(frame::text("1"));
    }
    let ending = Box::pin(close::finish(
        end,
        &outbox,
        writer,
        &mut stream,
        settings.write_timeout,
        linger,
    ))
    .await;
    tracing::debug!(ending = ?ending, "Socket.IO websocket closed");
}

/// Completes when the joined socket's session has ended (never while none is joined).
async fn session_ended(joined: &mut Option<Joined>) {
    match joined {
        Some(joined) => (&mut joined.session).await,
        None => std::future::pending().await,
    }
}

/// What one text message from the client does.
struct Read<'a> {
    state: &'a PushContext,
    socket: &'a Arc<DirectSocket>,
    heartbeat: &'a mut Heartbeat,
    joined: &'a mut Option<Joined>,
}

impl Read<'_> {
    /// Handles an Engine.IO packet: `Ok(false)` when the client closes the connection.
    fn packet(self, text: &str) -> Result<bool, Malformed> {
        match packet::parse_engine(text)? {
            EnginePacket::Close => return Ok(false),
            EnginePacket::Pong => self.heartbeat.pong(tokio::time::Instant::now()),
            EnginePacket::Ping | EnginePacket::Ignored => {}
            EnginePacket::Message(message) => self.message(message)?,
        }
        Ok(true)
    }

    /// Handles a Socket.IO packet.
    fn message(self, message: &str) -> Result<(), Malformed> {
        match packet::parse_socketio(message)? {
            ClientPacket::Connect { namespace } if namespace == NAMESPACE => {
                if self.joined.is_none() {
                    self.heartbeat.joined();
                    *self.joined = Some(join(self.state, self.socket));
                }
            }
            ClientPacket::Connect { namespace } => {
                self.socket
                    .outbox
                    .push_message(frame::text(&packet::invalid_namespace(namespace)));
            }
            ClientPacket::Disconnect { namespace } if namespace == NAMESPACE => {
                if let Some(joined) = self.joined {
                    joined.gone.cancel();
                }
            }
            ClientPacket::Event {
                namespace,
                event,
                data,
            } if namespace == NAMESPACE => {
                // As socketioxide: an event with no handler is dropped.
                let Some(joined) = self.joined.as_ref().filter(|_| EVENTS.contains(&&*event))
                else {
                    return Ok(());
                };
                if let Err(refused) = joined.queue.offer(Request { event, data }) {
                    self.socket.emit("error", &refused);
                }
            }
            // Packets for a namespace not joined, and acks: ignored, as socketioxide does.
            ClientPacket::Disconnect { .. }
            | ClientPacket::Event { .. }
            | ClientPacket::Ack { .. } => {}
        }
        Ok(())
    }
}

/// Joins `/kline`: `40/kline,{"sid":…}`, then the socket's session (`connection_success`, its requests).
fn join(state: &PushContext, socket: &Arc<DirectSocket>) -> Joined {
    socket
        .outbox
        .push_message(frame::text(&packet::connected(&socket.id)));
    let (queue, requests) = RequestQueue::new(state);
    let gone = CancellationToken::new();
    let conn = next_connection_id();
    let transport = Transport::WebSocket(socket.clone());
    let session = session::run(transport, requests, gone.clone(), state.clone(), conn)
        .instrument(tracing::info_span!("socketio", conn));
    Joined {
        queue,
        gone,
        session: Box::pin(session),
    }
}
