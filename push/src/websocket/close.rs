//! How a connection's closing handshake goes (RFC 6455 §5.5.1, §7): the close code for what the client
//! did wrong, and what the server reads after its own close frame.
//!
//! tungstenite reads the client's frames and reports what breaks the protocol as errors; [`violation`] maps
//! them to the codes of §7.4.1 (1002 protocol error, 1007 invalid UTF-8, 1009 too big). The server then sends
//! its close frame and, since the client's later bytes may not even be frames any more, reads and drops raw
//! bytes until the client closes TCP ([`drain_until_eof`]). After a close the server started for any other
//! reason, the client is still speaking the protocol: [`linger_for_close`] reads its messages until its
//! close frame. Either way, dropping a socket with unread data makes the kernel send a reset, which can
//! destroy our close frame before the client reads it (seen: a client still sending requests got
//! `Broken pipe` instead of its 1008).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use kline_protocol::CloseCode;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{self, Message};

use super::inflate::InflateError;
use super::outbox::{Ending, Outbox};
use super::socket::ClientStream;
use kline_core::stats::PushStats;

/// Why a connection's read loop ended: what [`finish`] does next.
#[derive(Debug)]
pub enum ReadEnd {
    /// The server closes the connection with this code (it starts the closing handshake).
    Close(CloseCode),
    /// The client broke the protocol: close with this code; what it sends next may not even be frames.
    Violation(CloseCode),
    /// The client started the closing handshake: echo its close frame with this code.
    ClientClosed(u16),
    /// The client went away without a close frame, or the socket failed.
    ClientGone,
    /// The writer already ended the connection.
    WriterDone(Ending),
}

/// Ends a connection after its read loop ended with `end`: the last frames (a close frame, or the echo of
/// the client's) get the write timeout twice, then the server reads what the client still sends as the
/// closing handshake requires (see the module doc). Returns how the writer ended.
pub async fn finish(
    end: ReadEnd,
    outbox: &Outbox,
    writer: Pin<&mut impl Future<Output = Ending>>,
    stream: &mut WebSocketStream<ClientStream>,
    write_timeout: Duration,
    linger: Duration,
) -> Option<Ending> {
    let violated = matches!(end, ReadEnd::Violation(_));
    match &end {
        ReadEnd::WriterDone(_) => {}
        ReadEnd::Close(code) | ReadEnd::Violation(code) => outbox.close(*code),
        ReadEnd::ClientClosed(code) => outbox.echo_close(*code),
        ReadEnd::ClientGone => outbox.finish(),
    }
    let ending = match end {
        ReadEnd::WriterDone(ending) => Some(ending),
        _ => tokio::time::timeout(write_timeout * 2, writer).await.ok(),
    };
    match ending {
        // A client that broke the protocol may not send frames any more; one that closed sends nothing
        // more but may still have bytes in flight: read raw bytes until it closes TCP.
        // Boxed, like the linger below: the drain's 1 KiB scratch buffer would otherwise be part of every
        // connection's task for its whole life (measured: 3.7 → 4.75 KB per idle connection).
        Some(Ending::Close(_)) if violated => {
            Box::pin(drain_until_eof(outbox.socket(), linger)).await
        }
        Some(Ending::Echo(_)) => Box::pin(drain_until_eof(outbox.socket(), linger)).await,
        // A close the server started: the client still speaks the protocol until it answers.
        Some(Ending::Close(_)) => Box::pin(linger_for_close(stream, linger)).await,
        _ => {}
    }
    ending
}

/// The close code for a read error that is the client's fault; `None` when the client merely went away.
pub fn violation(err: &tungstenite::Error) -> Option<CloseCode> {
    match err {
        tungstenite::Error::Capacity(_) => Some(CloseCode::MessageTooBig),
        // A text message, also one split across fragments, or a close reason that is not UTF-8: tungstenite
        // reports them alike (the same `Utf8Error` text), so a bad close reason gets 1007, not 1002 (Autobahn
        // 7.5.1 accepts either).
        tungstenite::Error::Utf8(_) => Some(CloseCode::InvalidPayload),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        // Unmasked frame, reserved bits, reserved opcode, fragmented or oversize control frame, a
        // continuation without a start, a new message inside a fragmented one, a 1-byte close payload.
        tungstenite::Error::Protocol(_) => Some(CloseCode::ProtocolError),
        // A compressed message that could not be inflated (see `super::inflate`).
        tungstenite::Error::Io(err) => err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<InflateError>())
            .map(InflateError::close_code),
        _ => None,
    }
}

/// Counts a connection closed for a protocol violation, by code.
pub fn count_violation(stats: &PushStats, code: CloseCode) {
    let counter = match code {
        CloseCode::ProtocolError => &stats.protocol_error_closes,
        CloseCode::InvalidPayload => &stats.invalid_payload_closes,
        CloseCode::MessageTooBig => &stats.message_too_big_closes,
        _ => return,
    };
    kline_core::stats::add(counter, 1);
}

/// The code to echo for the client's close frame: its own (tungstenite has already replaced a code the
/// RFC does not allow on the wire, e.g. 999, 1005 or 2999, with 1002), or 1000 when it sent none.
pub fn echo_code(frame: Option<&tungstenite::protocol::CloseFrame>) -> u16 {
    frame.map_or(CloseCode::Normal.as_u16(), |frame| u16::from(frame.code))
}

/// Whether tungstenite replaced the client's close code with 1002 because the RFC does not allow it on the
/// wire (it does so with the reason "Protocol violation"): counted like the other protocol violations.
pub fn is_invalid_code(frame: Option<&tungstenite::protocol::CloseFrame>) -> bool {
    frame.is_some_and(|frame| {
        u16::from(frame.code) == CloseCode::ProtocolError.as_u16()
            && frame.reason.as_str() == "Protocol violation"
    })
}

/// After our close frame, while the client still speaks the protocol: reads (and drops) its messages until
/// its close frame, its end of the stream, or `limit`.
pub async fn linger_for_close(stream: &mut WebSocketStream<ClientStream>, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
}

/// After our close frame for a protocol violation: reads (and drops) raw bytes until the client closes
/// TCP, or `limit`.
pub async fn drain_until_eof(socket: &TcpStream, limit: Duration) {
    let mut scratch = [0u8; 1024];
    let _ = tokio::time::timeout(limit, async {
        loop {
            if socket.readable().await.is_err() {
                return;
            }
            match socket.try_read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}
